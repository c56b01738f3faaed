//! The one list of connector types. Adding a connector = one folder + one line in each enum here.

use crate::dummy::{DummyOutput, DummyOutputConfig};
use crate::http::HttpInputConfig;
use crate::input_processor::InputProcessorOutputConfig;
use crate::soap::{NoHandler, SoapInputConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `connector.input[]`: one input, selected by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputConfig {
    /// JSON objects posted to `POST /http`.
    Http(HttpInputConfig),
    /// SOAP 1.1/1.2 envelopes posted to `POST /soap`.
    Soap(SoapInputConfig),
}

impl InputConfig {
    /// The input's name.
    pub fn name(&self) -> &str {
        match self {
            InputConfig::Http(c) => &c.name,
            InputConfig::Soap(c) => &c.name,
        }
    }

    /// The pipeline run on the received object `payload`; `None` for TDG's default step. It is
    /// chosen from the payload at each run, so that an object edited in the repair queue (a SOAP
    /// tree given another tag) runs the pipeline of what it now is.
    pub fn pipeline_for(&self, payload: &Value) -> Result<Option<&str>, NoHandler> {
        match self {
            InputConfig::Http(c) => Ok(c.pipeline.as_deref()),
            InputConfig::Soap(c) => c.pipeline_for(payload).map(Some),
        }
    }

    /// The configuration of an HTTP JSON input.
    pub fn as_http(&self) -> Option<&HttpInputConfig> {
        match self {
            InputConfig::Http(c) => Some(c),
            InputConfig::Soap(_) => None,
        }
    }

    /// The configuration of a SOAP input.
    pub fn as_soap(&self) -> Option<&SoapInputConfig> {
        match self {
            InputConfig::Soap(c) => Some(c),
            InputConfig::Http(_) => None,
        }
    }
}

/// `connector.output[]`: one output, selected by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// Hand objects to the input processor (classify, route, validate, store).
    InputProcessor(InputProcessorOutputConfig),
    /// Drop objects.
    Dummy(DummyOutputConfig),
}

impl OutputConfig {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            OutputConfig::InputProcessor(c) => &c.name,
            OutputConfig::Dummy(c) => &c.name,
        }
    }

    /// Build the output; `None` for the input processor, which the engine handles itself.
    pub fn build(&self) -> Option<Box<dyn Output>> {
        match self {
            OutputConfig::InputProcessor(_) => None,
            OutputConfig::Dummy(c) => Some(Box::new(DummyOutput::new(c.clone()))),
        }
    }
}

/// Why an output could not send an object.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The peer refused the object: retrying the same object will not help.
    #[error("Sending error: {0}")]
    Rejected(String),
    /// The peer could not be reached or failed: retrying may help.
    #[error("Sending error: {0}")]
    Unavailable(String),
}

/// A connector output.
pub trait Output: Send + Sync {
    /// The output's name.
    fn name(&self) -> &str;
    /// Deliver one object.
    fn send(&self, object: &Value, routing_key: &str) -> Result<(), SendError>;
}

/// Direction of a connector type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    /// Receives objects.
    Input,
    /// Sends objects.
    Output,
}

/// Every connector type this build knows: `(type name, direction)`.
pub fn registry() -> &'static [(&'static str, ConnectorKind)] {
    &[
        ("http", ConnectorKind::Input),
        ("soap", ConnectorKind::Input),
        ("input_processor", ConnectorKind::Output),
        ("dummy", ConnectorKind::Output),
    ]
}
