//! The one list of connector types. Adding a connector = one folder + one line in each enum here.

use crate::dummy::{DummyOutput, DummyOutputConfig};
use crate::http::{HttpInput, HttpInputConfig, HttpOutput, HttpOutputConfig};
use crate::input_processor::InputProcessorOutputConfig;
use crate::intake::{BoxFuture, Intake};
use crate::kafka::{KafkaInput, KafkaInputConfig, KafkaOutput, KafkaOutputConfig};
use crate::smtp::{SmtpOutput, SmtpOutputConfig};
use crate::soap::{NoHandler, SoapInput, SoapInputConfig, SoapOutput, SoapOutputConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A problem in a connector's configuration: the field (relative to the connector) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Field path inside the connector, e.g. `url`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// `connector.input[]`: one input, selected by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputConfig {
    /// JSON objects posted to `POST /http`.
    Http(HttpInputConfig),
    /// JSON messages consumed from Kafka topics.
    Kafka(KafkaInputConfig),
    /// SOAP 1.1/1.2 envelopes posted to `POST /soap`.
    Soap(SoapInputConfig),
}

impl InputConfig {
    /// The input's name.
    pub fn name(&self) -> &str {
        match self {
            InputConfig::Http(c) => &c.name,
            InputConfig::Kafka(c) => &c.name,
            InputConfig::Soap(c) => &c.name,
        }
    }

    /// The deepest nesting of a message the input accepts.
    pub fn max_depth(&self) -> usize {
        match self {
            InputConfig::Http(c) => c.max_depth,
            InputConfig::Kafka(c) => c.max_depth,
            InputConfig::Soap(c) => c.max_depth,
        }
    }

    /// The pipeline run on the received object `payload`; `None` for TDG's default step. It is
    /// chosen from the payload at each run, so that an object edited in the repair queue (a SOAP
    /// tree given another tag) runs the pipeline of what it now is.
    pub fn pipeline_for(&self, payload: &Value) -> Result<Option<&str>, NoHandler> {
        match self {
            InputConfig::Http(c) => Ok(c.pipeline.as_deref()),
            InputConfig::Kafka(c) => Ok(c.pipeline.as_deref()),
            InputConfig::Soap(c) => c.pipeline_for(payload).map(Some),
        }
    }

    /// The configuration of a SOAP input.
    pub fn as_soap(&self) -> Option<&SoapInputConfig> {
        match self {
            InputConfig::Soap(c) => Some(c),
            _ => None,
        }
    }

    /// Build the input; it hands what it receives to `intake`.
    pub fn build(&self, intake: Arc<dyn Intake>) -> Box<dyn Input> {
        match self {
            InputConfig::Http(c) => Box::new(HttpInput::new(c.clone(), intake)),
            InputConfig::Kafka(c) => Box::new(KafkaInput::new(c.clone(), intake)),
            InputConfig::Soap(c) => Box::new(SoapInput::new(c.clone(), intake)),
        }
    }

    /// Problems that the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        match self {
            InputConfig::Http(_) => Vec::new(),
            InputConfig::Kafka(c) => c.validate(),
            InputConfig::Soap(_) => Vec::new(),
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
    /// POST objects as JSON to a URL.
    Http(HttpOutputConfig),
    /// Produce objects to a Kafka topic.
    Kafka(KafkaOutputConfig),
    /// POST objects inside SOAP envelopes to a URL.
    Soap(SoapOutputConfig),
    /// Mail objects through an SMTP server.
    Smtp(SmtpOutputConfig),
}

impl OutputConfig {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            OutputConfig::InputProcessor(c) => &c.name,
            OutputConfig::Dummy(c) => &c.name,
            OutputConfig::Http(c) => &c.name,
            OutputConfig::Kafka(c) => &c.name,
            OutputConfig::Soap(c) => &c.name,
            OutputConfig::Smtp(c) => &c.name,
        }
    }

    /// Problems that the schema cannot express (URLs, addresses, options).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        match self {
            OutputConfig::InputProcessor(_) | OutputConfig::Dummy(_) => Vec::new(),
            OutputConfig::Http(c) => c.validate(),
            OutputConfig::Kafka(c) => c.validate(),
            OutputConfig::Soap(c) => c.validate(),
            OutputConfig::Smtp(c) => c.validate(),
        }
    }

    /// Build the output; `Ok(None)` for the input processor, which the engine handles itself.
    pub fn build(&self) -> Result<Option<Box<dyn Output>>, BuildError> {
        Ok(Some(match self {
            OutputConfig::InputProcessor(_) => return Ok(None),
            OutputConfig::Dummy(c) => Box::new(DummyOutput::new(c.clone())),
            OutputConfig::Http(c) => Box::new(HttpOutput::new(c.clone())?),
            OutputConfig::Kafka(c) => Box::new(KafkaOutput::new(c.clone())?),
            OutputConfig::Soap(c) => Box::new(SoapOutput::new(c.clone())?),
            OutputConfig::Smtp(c) => Box::new(SmtpOutput::new(c.clone())?),
        }))
    }
}

/// Why a connector could not be built from a configuration that passed validation.
#[derive(Debug, thiserror::Error)]
#[error("connector {name}: {message}")]
pub struct BuildError {
    /// The connector's name.
    pub name: String,
    /// What failed.
    pub message: String,
}

/// A connector input, built from its configuration and the engine's [`Intake`]. An input that
/// answers requests registers its routes on the engine's HTTP server; one that fetches by itself
/// (Kafka) runs once started. Either way it hands each object to the intake, which answers once
/// the object is durable.
pub trait Input: Send + Sync {
    /// The input's name.
    fn name(&self) -> &str;

    /// Register the routes it answers on the engine's HTTP server (called once per server
    /// worker); an input that answers no request registers none.
    fn routes(&self, _cfg: &mut actix_web::web::ServiceConfig) {}

    /// Start fetching on the current async runtime; `None` for an input that only answers its
    /// routes.
    fn start(&self) -> Result<Option<Box<dyn Running>>, BuildError> {
        Ok(None)
    }
}

/// An input fetching by itself.
pub trait Running: Send {
    /// Stop fetching; resolves once what was being accepted is accepted and its progress
    /// committed (Kafka offsets).
    fn stop(self: Box<Self>) -> BoxFuture<()>;
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

/// One object for an output.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The object (as the pipeline left it).
    pub object: Value,
    /// Its routing key.
    pub routing_key: String,
    /// The message key a script gave (`key` in its result, as it is), used by outputs whose
    /// messages have keys (Kafka: a string, number or boolean, winning over its `set_key`).
    pub key: Option<Value>,
}

impl Outgoing {
    /// `object` with `routing_key` and no key.
    pub fn new(object: Value, routing_key: impl Into<String>) -> Self {
        Self { object, routing_key: routing_key.into(), key: None }
    }
}

/// What [`Output::send_then`] calls with how a send ended.
pub type Sent = Box<dyn FnOnce(Result<(), SendError>) + Send>;

/// A connector output. `send` resolves once the peer has the object (for Kafka with
/// `is_async: true`, once the broker acknowledged it); the engine keeps the object in the repair
/// queue until then.
pub trait Output: Send + Sync + 'static {
    /// The output's name.
    fn name(&self) -> &str;

    /// Deliver one object. The future is polled on the engine's async runtime; blocking clients
    /// run their I/O on its blocking pool.
    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>>;

    /// Deliver one object and call `sent` once with how it ended, from whichever thread learns
    /// it (`sent` must not block). For callers off the async runtime (a script worker): by
    /// default `send`'s future runs on `io`; an output whose client reports deliveries on a
    /// thread of its own (Kafka) calls `sent` from there, without a task on `io`.
    fn send_then(self: Arc<Self>, message: Outgoing, io: &tokio::runtime::Handle, sent: Sent) {
        io.spawn(async move { sent(self.send(message).await) });
    }

    /// What `send` refuses before any I/O (an object it cannot encode), without sending:
    /// `ferrogrid test` runs it on what its recorders are given.
    fn check(&self, _message: &Outgoing) -> Result<(), SendError> {
        Ok(())
    }

    /// Deliver what is buffered, waiting at most `timeout` (at shutdown).
    fn flush(&self, _timeout: std::time::Duration) {}
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
        ("kafka", ConnectorKind::Input),
        ("input_processor", ConnectorKind::Output),
        ("dummy", ConnectorKind::Output),
        ("http", ConnectorKind::Output),
        ("soap", ConnectorKind::Output),
        ("kafka", ConnectorKind::Output),
        ("smtp", ConnectorKind::Output),
    ]
}
