//! The envelope that travels with one object through the engine.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object and what the engine knows about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id, assigned when the object was accepted (also its repair-queue key).
    pub id: String,
    /// The input that received it.
    pub input: String,
    /// Kind of source (`http`, `soap`, `kafka`).
    pub source: String,
    /// The object as received.
    pub payload: Value,
    /// How many times processing was attempted.
    pub attempt: u32,
}

/// What a routing step produced: TDG's `{obj, routing_key, priority}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The object.
    pub obj: Value,
    /// Its routing key, if one was set.
    pub routing_key: Option<String>,
    /// Priority (kept for compatibility; higher is more urgent).
    pub priority: i64,
    /// The message key a step set (`key` in its result, as it is), for outputs whose messages
    /// have keys: the Kafka output checks and uses it, others ignore it.
    pub key: Option<Value>,
}
