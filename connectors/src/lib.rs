//! Ferrogrid connectors: the I/O edges of the engine.
//!
//! Inputs ([`Input`]) turn what arrives (HTTP JSON, SOAP XML, Kafka) into raw objects handed to
//! the engine's [`Intake`]: an input that answers requests registers its routes on the engine's
//! HTTP server, one that fetches (Kafka) runs once started. Outputs take routed objects away
//! ([`Output::send`], asynchronous). Every connector type lives in its own folder with the same
//! file names (`mod.rs`, `config.rs`, `input.rs` / `output.rs`, `tests.rs`) and is listed once in
//! [`registry`], whose `InputConfig::build` / `OutputConfig::build` are the only constructors the
//! engine calls. This crate depends on no other Ferrogrid crate.
//!
//! | folder / file | what |
//! | --- | --- |
//! | `http/` | `POST /http` JSON input; the `http` output and the HTTP client the `soap` output shares |
//! | `soap/` | `POST /soap` SOAP 1.1/1.2 input (XML tree, faults, WSDL); the `soap` output |
//! | `kafka/` | Kafka consumer input (offsets committed after acceptance) and producer output |
//! | `smtp/` | the `smtp` output (lettre) |
//! | `dummy/`, `input_processor/` | the output that drops, and the one that is the engine itself |
//! | `intake.rs` | the contract between inputs and the engine |
//! | `json.rs` | JSON object parsing with a nesting limit |
//! | `registry.rs` | the one list of connector types, their configs and builders; the `Input`, `Running` and `Output` traits |

pub mod dummy;
pub mod http;
pub mod input_processor;
pub mod intake;
pub mod json;
pub mod kafka;
pub mod metrics;
pub mod registry;
pub mod smtp;
pub mod soap;

pub use intake::{Accepted, BoxFuture, Intake, IntakeError, Outcome, OutcomeStatus, Received, Wait};
pub use registry::{
    registry, BuildError, ConfigProblem, ConnectorKind, Input, InputConfig, Outgoing, Output, OutputConfig, Running,
    SendError, Sent,
};
