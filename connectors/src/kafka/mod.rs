//! Kafka connectors (rdkafka): the consumer input (at-least-once: offsets are stored only after
//! durable acceptance) and the producer output (idempotent, `acks=all`).

mod config;
mod input;
mod output;
mod progress;
#[cfg(test)]
mod tests;

pub use config::{KafkaFormat, KafkaInputConfig, KafkaOutputConfig};
pub use input::{KafkaConsumer, KafkaInput};
pub use output::KafkaOutput;
