//! Host services that scripts reach through the API modules. The sandbox only declares them;
//! the engine crate implements them (storage, job queue, sequences).
//!
//! All values are JSON (`serde_json::Value`): the API modules convert script values on the way in
//! and out. An absent `options` argument is passed as an empty object `{}`.

use std::sync::Arc;

use serde_json::Value;

use crate::error::HostError;

/// Data access for `repository::*` (TDG filter syntax `[["$id", ">", 10]]`, TDG options).
pub trait DataAccess: Send + Sync {
    /// Objects of `type_name` matching `filter`; returns a JSON array.
    fn find(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError>;
    /// The object of `type_name` whose index `index` equals `key`; an object or `null`.
    fn get(&self, type_name: &str, index: &str, key: &Value, options: &Value) -> Result<Value, HostError>;
    /// Store `object` as a new version; returns the stored object.
    fn put(&self, type_name: &str, object: &Value, options: &Value) -> Result<Value, HostError>;
    /// Apply `updaters` (`[["$field", "set", value], ...]`) to the matching objects; returns
    /// the updated objects.
    fn update(&self, type_name: &str, filter: &Value, updaters: &Value, options: &Value) -> Result<Value, HostError>;
    /// Delete the matching objects; returns the deleted objects.
    fn delete(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError>;
    /// Queue the job `name` with `args` (run later by the scheduler).
    fn push_job(&self, name: &str, args: &Value) -> Result<(), HostError>;
    /// One page of a scan over every object of `type_name` matching `filter` (`map_reduce`):
    /// `options` as `find`'s (`version`, `after`; the host chooses the page size under its
    /// limits); the objects, and the cursor to continue after (`None`: that was the last page).
    fn scan_page(
        &self,
        type_name: &str,
        filter: &Value,
        options: &Value,
    ) -> Result<(Vec<Value>, Option<String>), HostError>;
}

/// What a `repository` call needs of the caller a call runs for (see [`DataScope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataNeed<'a> {
    /// `find`, `get`: read objects of the type.
    Read(&'a str),
    /// `put`: write an object of the type.
    Write(&'a str),
    /// `update`, `delete`: find objects of the type, change them and return them.
    ReadWrite(&'a str),
    /// `push_job`: a job runs later, for nobody in particular, with every data right.
    Jobs,
}

/// The data rights of the caller a call runs for. A GraphQL service runs its function on its
/// caller's behalf: every `repository` call of that function (and of the functions it calls)
/// is checked here first. Calls without a scope (pipelines, tasks, jobs) are not checked.
pub trait DataScope: Send + Sync + std::fmt::Debug {
    /// `Ok` when the caller may; otherwise the error the script gets (the host records the
    /// refusal).
    fn check(&self, function: &str, need: DataNeed<'_>) -> Result<(), HostError>;
}

/// Named, persistent, monotonically increasing counters for `sequence::next`.
pub trait Sequences: Send + Sync {
    /// The next value of the sequence `name` (created on first use).
    fn next(&self, name: &str) -> Result<i64, HostError>;
}

/// The services given to a `Sandbox`, shared by all its script engines.
#[derive(Clone)]
pub struct Host {
    /// Backs `repository::*`.
    pub repository: Arc<dyn DataAccess>,
    /// Backs `sequence::next`.
    pub sequences: Arc<dyn Sequences>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host { .. }")
    }
}
