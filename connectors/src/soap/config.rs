//! Configuration of the SOAP input.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_max_body_size() -> usize {
    16 * 1024 * 1024
}

fn default_max_depth() -> usize {
    64
}

/// One operation of a SOAP input: the Body element it answers and the pipeline it runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SoapHandler {
    /// Local name of the first element inside the SOAP Body (the operation, e.g. `Connect`).
    pub function: String,
    /// Pipeline run on the XML tree of that element; it returns `#{obj: ..., routing_key: "..."}`.
    pub pipeline: String,
}

/// `connector.input[]` of `type: soap`: SOAP 1.1/1.2 envelopes posted to `POST /soap`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SoapInputConfig {
    /// Name of the input (shown in metrics and the repair queue).
    pub name: String,
    /// The service description answered by `GET /soap?wsdl`, usually `{__file: service.wsdl}`.
    #[serde(default)]
    pub wsdl: Option<String>,
    /// The operations: the Body element's local name selects the handler and so the pipeline.
    #[schemars(length(min = 1))]
    pub handlers: Vec<SoapHandler>,
    /// Answer body of an accepted message, returned as is (default: a SOAP envelope with
    /// `<{function}Response><id>...</id></{function}Response>`). `?sync=true` always answers the
    /// default envelope, which then carries the outcome.
    #[serde(default)]
    pub success_response_body: Option<String>,
    /// Answer body of a refused message: `%s` is replaced by the XML-escaped reason (default: a
    /// SOAP Fault).
    #[serde(default)]
    pub error_response_body: Option<String>,
    /// Largest accepted request body in bytes (at most 1 GiB); larger bodies get 413.
    #[serde(default = "default_max_body_size")]
    #[schemars(range(min = 1, max = 1073741824))]
    pub max_body_size: usize,
    /// Deepest accepted nesting of XML elements, Envelope and Body included; deeper messages
    /// get 400. At most 100 (each element is two levels of the JSON tree scripts receive).
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 3, max = 100))]
    pub max_depth: usize,
}

impl SoapInputConfig {
    /// The handler of the operation `function` (a Body element's local name).
    pub fn handler(&self, function: &str) -> Option<&SoapHandler> {
        self.handlers.iter().find(|h| h.function == function)
    }

    /// The operations, comma-separated (for error messages).
    pub fn functions(&self) -> String {
        self.handlers.iter().map(|h| h.function.as_str()).collect::<Vec<_>>().join(", ")
    }
}
