//! Configuration of the SOAP input and output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_max_body_size() -> usize {
    16 * 1024 * 1024
}

fn default_max_depth() -> usize {
    64
}

fn default_max_elements() -> usize {
    100_000
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
    /// Most XML elements one message may hold, Envelope and Body included; a message with more
    /// gets 413 (each element becomes a map in memory, some hundred bytes, before any script
    /// runs).
    #[serde(default = "default_max_elements")]
    #[schemars(range(min = 3, max = 10000000))]
    pub max_elements: usize,
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

/// The SOAP version the `soap` output writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SoapOutputVersion {
    /// SOAP 1.1 (`text/xml`, `SOAPAction` header).
    #[default]
    #[serde(rename = "1.1")]
    V11,
    /// SOAP 1.2 (`application/soap+xml`).
    #[serde(rename = "1.2")]
    V12,
}

/// `connector.output[]` of `type: soap`: each object routed here is POSTed to `url` inside a
/// SOAP envelope. An XML tree (as the SOAP input makes) is written back as XML; any other object
/// becomes an element named after the routing key with one child element per field (arrays
/// repeat the element). A 2xx answer is success; a Fault or any other answer leaves the object
/// in the repair queue with a `Sending error` quoting the peer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SoapOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
    /// Absolute `http://` or `https://` URL of the service.
    pub url: String,
    /// SOAP version of the envelope.
    #[serde(default)]
    pub version: SoapOutputVersion,
    /// `SOAPAction` header of SOAP 1.1 requests (the `action` parameter of the content type in 1.2).
    #[serde(default)]
    pub soap_action: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Client options: timeouts, keep-alive, TLS.
    #[serde(default)]
    pub options: crate::http::HttpClientOptions,
}

impl SoapOutputConfig {
    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<crate::ConfigProblem> {
        let mut problems = crate::http::client::check_url(&self.url);
        problems.extend(crate::http::client::check_headers(&self.headers));
        problems.extend(self.options.validate());
        if self.soap_action.as_deref().is_some_and(|a| a.contains(['"', '\r', '\n'])) {
            problems.push(crate::ConfigProblem::new("soap_action", "must not contain quotes or line breaks"));
        }
        problems
    }
}
