//! SOAP connectors. The output POSTs each routed object inside a SOAP envelope (`output.rs`).
//! The input: `POST /soap` takes a SOAP 1.1 or 1.2 envelope, hands the XML tree of the first
//! Body element to the pipeline of the handler named after that element, and answers once the
//! object is durably accepted; `GET /soap?wsdl` answers the configured WSDL.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | `SoapInputConfig`, `SoapHandler` |
//! | `xml.rs` | envelope parsing (quick-xml, namespaces resolved, no DTD/entities) into the XML tree |
//! | `answer.rs` | response envelopes and SOAP Faults of both versions, templates |
//! | `input.rs` | the actix-web handlers |
//! | `output.rs` | the `soap` output: objects and XML trees written into envelopes |
//! | `tests.rs` | parser and handler tests against an in-memory intake |
//!
//! The XML tree (the object scripts get as `param`, and the repair queue keeps): a node is
//! `{"tag": local name, "ns": namespace URI (absent when none), "attr": {name: value},
//! "children": [node or text, ...]}`; see [`xml`].

mod answer;
mod config;
mod input;
mod output;
#[cfg(test)]
mod tests;
pub mod xml;

pub use config::{SoapHandler, SoapInputConfig, SoapOutputConfig, SoapOutputVersion};
pub use input::{get_wsdl, post_soap, SoapInput};
pub use output::{envelope, SoapOutput};

/// An object whose tag names no handler of the input (e.g. edited in the repair queue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no SOAP handler for operation \"{tag}\" (handlers: {handlers})")]
pub struct NoHandler {
    /// The tag of the object (empty when it has none).
    pub tag: String,
    /// The operations the input has.
    pub handlers: String,
}

impl SoapInputConfig {
    /// The pipeline of the handler whose function is the tag of the tree `payload`.
    pub fn pipeline_for(&self, payload: &serde_json::Value) -> Result<&str, NoHandler> {
        let tag = payload.get("tag").and_then(serde_json::Value::as_str).unwrap_or_default();
        self.handler(tag)
            .map(|h| h.pipeline.as_str())
            .ok_or_else(|| NoHandler { tag: tag.to_string(), handlers: self.functions() })
    }
}
