//! Configuration of the `input_processor` output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connector.output[]` of `type: input_processor`: objects routed here go on to the input
/// processor. Objects whose routing key has no connector route go there too.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InputProcessorOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
}
