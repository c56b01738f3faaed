//! Ferrogrid connectors: the I/O edges of the engine.
//!
//! Inputs turn what arrives (HTTP JSON, SOAP XML, Kafka) into raw objects handed to the engine's
//! [`Intake`]; outputs take routed objects away. Every connector type lives in its own folder with the same
//! file names (`mod.rs`, `config.rs`, `input.rs` / `output.rs`, `tests.rs`) and is listed once in
//! [`registry`].

pub mod dummy;
pub mod http;
pub mod input_processor;
pub mod intake;
pub mod json;
pub mod kafka;
pub mod registry;
pub mod smtp;
pub mod soap;

pub use intake::{Accepted, BoxFuture, Intake, IntakeError, Outcome, OutcomeStatus, Received, Wait};
pub use registry::{registry, BuildError, ConfigProblem, ConnectorKind, InputConfig, Output, OutputConfig, SendError};
