//! The Kafka producer output.

use super::config::{KafkaFormat, KafkaOutputConfig};
use crate::intake::BoxFuture;
use crate::metrics::StatsRecorder;
use crate::registry::{BuildError, Outgoing, Output, SendError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientContext;
use serde_json::Value;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Produces objects to one topic.
pub struct KafkaOutput {
    config: KafkaOutputConfig,
    producer: Arc<Current>,
}

/// The producer's context: sets the output's metrics from librdkafka's statistics.
struct Stats(StatsRecorder);

impl ClientContext for Stats {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.record(&statistics);
    }
}

type Producer = FutureProducer<Stats>;

fn create(config: &KafkaOutputConfig) -> Result<Producer, KafkaError> {
    config.client_config().create_with_context(Stats(StatsRecorder::new(&config.name, "producer")))
}

/// The producer in use, replaced when it cannot go on.
struct Current {
    config: KafkaOutputConfig,
    /// (generation, producer).
    producer: RwLock<(u64, Arc<Producer>)>,
}

impl Current {
    fn get(&self) -> (u64, Arc<Producer>) {
        let current = self.producer.read().unwrap_or_else(PoisonError::into_inner);
        (current.0, current.1.clone())
    }

    /// After a failed delivery: an idempotent producer that hit a fatal error, or whose
    /// messages time out (its sequence state may be stuck, e.g. after the broker lost it), is
    /// replaced by a fresh one. Only the generation that failed is replaced, once.
    fn recover(&self, generation: u64, error: &KafkaError) {
        let (_, producer) = self.get();
        let stuck = producer.client().fatal_error().is_some()
            || matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageTimedOut));
        if !stuck {
            return;
        }
        let mut current = self.producer.write().unwrap_or_else(PoisonError::into_inner);
        if current.0 != generation {
            return;
        }
        match create(&self.config) {
            Ok(fresh) => {
                tracing::warn!(output = %self.config.name, error = %error, "kafka producer replaced after a failed delivery");
                *current = (generation + 1, Arc::new(fresh));
            }
            Err(e) => tracing::error!(output = %self.config.name, error = %e, "replacing the kafka producer failed"),
        }
    }
}

impl KafkaOutput {
    /// Build the producer (it connects in the background).
    pub fn new(config: KafkaOutputConfig) -> Result<Self, BuildError> {
        let producer = create(&config)
            .map_err(|e: KafkaError| BuildError { name: config.name.clone(), message: e.to_string() })?;
        let current = Current { config: config.clone(), producer: RwLock::new((0, Arc::new(producer))) };
        Ok(Self { config, producer: Arc::new(current) })
    }

    fn encode(&self, object: &Value) -> Result<Vec<u8>, SendError> {
        match (self.config.format, object) {
            (KafkaFormat::Plain, Value::String(text)) => Ok(text.as_bytes().to_vec()),
            _ => serde_json::to_vec(object).map_err(|e| SendError::Rejected(format!("encoding JSON: {e}"))),
        }
    }
}

/// Errors that the same message will meet again.
fn is_permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
        )
    )
}

fn send_error(topic: &str, e: KafkaError) -> SendError {
    let message = format!("producing to {topic} failed: {e}");
    if is_permanent(&e) {
        SendError::Rejected(message)
    } else {
        SendError::Unavailable(message)
    }
}

impl Output for KafkaOutput {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let encoded =
            self.encode(&message.object).and_then(|payload| Ok((payload, self.config.message_key(&message)?)));
        let (payload, key) = match encoded {
            Ok(encoded) => encoded,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let topic = self.config.topic.clone();
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).payload(&payload);
        if let Some(key) = &key {
            record = record.key(key);
        }
        let (generation, producer) = self.producer.get();
        let delivery = match producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((e, _)) => {
                self.producer.recover(generation, &e);
                let error = send_error(&topic, e);
                return Box::pin(async move { Err(error) });
            }
        };
        let current = self.producer.clone();
        if !self.config.is_async {
            let name = self.config.name.clone();
            tokio::spawn(async move {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        tracing::error!(output = %name, error = %e, "a kafka delivery failed");
                        current.recover(generation, &e);
                    }
                    Err(_) => tracing::error!(output = %name, "a kafka delivery was cancelled"),
                }
            });
            return Box::pin(async { Ok(()) });
        }
        Box::pin(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => {
                    current.recover(generation, &e);
                    Err(send_error(&topic, e))
                }
                Err(_) => Err(SendError::Unavailable(format!("producing to {topic}: the producer was closed"))),
            }
        })
    }

    fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.get().1.flush(timeout) {
            tracing::warn!(output = %self.config.name, error = %e, "flushing the kafka producer");
        }
    }
}
