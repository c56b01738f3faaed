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

/// Seconds from the configuration as a duration: at least `min`, at most a year (a larger or an
/// infinite value means a year; a value that is not a number means `min`), so that no setting
/// makes a duration overflow.
pub fn config_seconds(value: f64, min: f64) -> std::time::Duration {
    const MAX: f64 = 365.0 * 24.0 * 3600.0;
    let seconds = if value.is_nan() { min } else { value.clamp(min, MAX) };
    std::time::Duration::from_secs_f64(seconds)
}

#[cfg(test)]
mod config_seconds_tests {
    #[test]
    fn any_value_gives_a_duration() {
        use super::config_seconds;
        assert_eq!(config_seconds(2.5, 0.001).as_millis(), 2_500);
        assert_eq!(config_seconds(-1.0, 0.001).as_millis(), 1);
        assert_eq!(config_seconds(f64::NAN, 0.001).as_millis(), 1);
        assert_eq!(config_seconds(1e300, 0.0).as_secs(), 31_536_000);
        assert_eq!(config_seconds(f64::INFINITY, 0.0).as_secs(), 31_536_000);
    }
}
