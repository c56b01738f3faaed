//! Configuration of the HTTP JSON input.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_max_body_size() -> usize {
    16 * 1024 * 1024
}

fn default_max_depth() -> usize {
    128
}

/// `connector.input[]` of `type: http`: JSON objects posted to `POST /http`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpInputConfig {
    /// Name of the input (shown in metrics and the repair queue).
    pub name: String,
    /// Pipeline run on each object before connector routing. Without it the default step turns
    /// `{"User": {...}}` into the object `{...}` with routing key `User`.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Largest accepted request body in bytes (at most 1 GiB); larger bodies get 413.
    #[serde(default = "default_max_body_size")]
    #[schemars(range(min = 1, max = 1073741824))]
    pub max_body_size: usize,
    /// Deepest accepted nesting of arrays/objects; deeper bodies get 400. At most 200, so that
    /// parsing stays well inside the stack and scripts can still wrap the object.
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 1, max = 200))]
    pub max_depth: usize,
}
