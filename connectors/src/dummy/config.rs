//! Configuration of the dummy output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connector.output[]` of `type: dummy`: drops every object sent to it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DummyOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
}
