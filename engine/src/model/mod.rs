//! Ferrogrid's domain model: an Avro schema with Tarantool Data Grid 1.x extensions (aggregates,
//! indexes, relations, affinity, Date/Time/DateTime, defaults, auto-increment), used to validate
//! objects before storage and to give the storage its types and indexes. See README.md.

mod api;
mod error;
mod extensions;
mod keys;
mod relations;
mod schema;
pub mod temporal;
mod text;
mod types;
mod validate;

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod validate_tests;

pub use api::Model;
pub use error::{ErrorClass, ModelError, ModelErrors, SchemaError, Violation, ViolationKind, Violations};
pub use types::{Collation, FieldDef, FieldType, IndexDef, IndexPart, RelationDef, ScalarKind, TypeDef, TypeKind};
pub use validate::{NoHooks, ValidationHooks};
