//! The script API: static modules called as `module::function(...)`.
//!
//! | module | file |
//! | --- | --- |
//! | `repository` | repository.rs |
//! | `log` | log.rs |
//! | `datetime` | datetime.rs |
//! | `uuid` | uuid.rs |
//! | `json` | json.rs |
//! | `sequence` | sequence.rs |
//! | `shared` | shared.rs |
//! | `xml` | xml.rs |
//! | `digest` | digest.rs |

pub(crate) mod datetime;
pub(crate) mod decimal;
pub(crate) mod digest;
pub(crate) mod json;
pub(crate) mod log;
pub(crate) mod repository;
pub(crate) mod sequence;
pub(crate) mod shared;
pub(crate) mod uuid;
pub(crate) mod xml;

use std::sync::Arc;

use rhai::{Module, Shared};

/// A module shared by every engine of a sandbox.
pub(crate) type SharedModule = Shared<Module>;

use crate::host::Host;
use crate::limits::Limits;
use shared::SharedStore;

/// Names of the API modules (a library may not take one of them).
pub(crate) const MODULE_NAMES: [&str; 10] =
    ["repository", "log", "datetime", "uuid", "json", "sequence", "shared", "xml", "digest", "decimal"];

/// Build every API module once; engines share them.
pub(crate) fn build(
    host: &Host,
    limits: &Limits,
    store: Arc<SharedStore>,
    compiled: crate::sandbox::Compiled,
) -> Vec<(&'static str, SharedModule)> {
    let depth = limits.max_value_depth;
    let modules = [
        repository::module(host.repository.clone(), limits, compiled),
        log::module(depth),
        datetime::module(),
        uuid::module(),
        json::module(depth),
        sequence::module(host.sequences.clone()),
        shared::module(store, depth),
        xml::module(depth, limits.max_array_size),
        digest::module(),
        decimal::module(),
    ];
    MODULE_NAMES
        .into_iter()
        .zip(modules)
        .map(|(name, mut module)| {
            module.set_id(name);
            module.build_index();
            (name, SharedModule::new(module))
        })
        .collect()
}
