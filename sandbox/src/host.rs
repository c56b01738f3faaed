//! Services the engine provides to scripts. The sandbox only declares them; the engine
//! implements them over its storage.

use serde_json::Value;
use std::sync::Arc;

/// How an error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad data or a bad request: keep the object in the repair queue, retrying will not help.
    UserData,
    /// A peer or resource failed: retrying later may help.
    External,
    /// A bug or a broken storage: log and alert.
    Internal,
}

/// An error of a host service.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    /// Classification.
    pub class: ErrorClass,
    /// What went wrong.
    pub message: String,
}

impl HostError {
    /// A host error of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> HostError {
        HostError { class, message: message.into() }
    }
}

/// The repository (TDG's `repository.*`).
pub trait Repository: Send + Sync {
    /// Objects matching `filter` (`[["$field", "op", value], ...]`); an array.
    fn find(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError>;
    /// The first object whose `index` equals `key`, or null.
    fn get(&self, type_name: &str, index: &str, key: &Value, options: &Value) -> Result<Value, HostError>;
    /// Store a new version of `object`; returns the stored object.
    fn put(&self, type_name: &str, object: &Value, options: &Value) -> Result<Value, HostError>;
    /// Apply `updaters` to the matching objects; returns them.
    fn update(&self, type_name: &str, filter: &Value, updaters: &Value, options: &Value) -> Result<Value, HostError>;
    /// Delete the matching objects; returns them.
    fn delete(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError>;
    /// Enqueue a background job.
    fn push_job(&self, name: &str, args: &Value) -> Result<(), HostError>;
}

/// Persistent sequences.
pub trait Sequences: Send + Sync {
    /// The next number of sequence `name`.
    fn next(&self, name: &str) -> Result<i64, HostError>;
}

/// Everything the engine provides.
#[derive(Clone)]
pub struct Host {
    /// The repository.
    pub repository: Arc<dyn Repository>,
    /// The sequences.
    pub sequences: Arc<dyn Sequences>,
}
