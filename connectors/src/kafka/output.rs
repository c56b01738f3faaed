//! The Kafka producer output.
//!
//! Deliveries are reported by librdkafka on the producer's polling thread, which calls what the
//! send left with the message ([`Delivered`]): an object handed on by [`Output::send_then`]
//! goes on from there (to its commit) without a task on the async runtime or a wake of it.

use super::config::{KafkaFormat, KafkaOutputConfig};
use crate::intake::BoxFuture;
use crate::metrics::StatsRecorder;
use crate::registry::{BuildError, Outgoing, Output, SendError, Sent};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Produces objects to one topic.
pub struct KafkaOutput {
    config: KafkaOutputConfig,
    producer: Arc<Current>,
}

/// What is called with a message's delivery report (on the producer's polling thread: it must
/// not block). In a mutex only because librdkafka's opaque must be `Sync`; it is consumed once.
type Delivered = Mutex<Box<dyn FnOnce(Result<(), KafkaError>) + Send>>;

fn delivered(f: impl FnOnce(Result<(), KafkaError>) + Send + 'static) -> Box<Delivered> {
    Box::new(Mutex::new(Box::new(f)))
}

/// Call the message's callback. A panic there (a bug, or no thread left to spawn) is caught
/// and logged: on the polling thread it would end that thread, and with it every later report.
fn call(opaque: Delivered, result: Result<(), KafkaError>) {
    let f = opaque.into_inner().unwrap_or_else(PoisonError::into_inner);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(result))).is_err() {
        tracing::error!("handling a kafka delivery report panicked (its message is on stderr); the producer goes on");
    }
}

/// The producer's context: sets the output's metrics from librdkafka's statistics; hands each
/// delivery report to its message's [`Delivered`].
struct Context(StatsRecorder);

impl ClientContext for Context {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.record(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(&error, reason);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Delivered>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        call(*opaque, result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// A producer, closed on a thread of its own when its last handle goes: closing joins its
/// polling thread, and the last handle may go there (in a delivery callback that replaced it,
/// or that held the output after a configuration change). What it still holds is flushed first
/// (at most [`FLUSH_ON_CLOSE`]): librdkafka purges what is queued when a producer is dropped, and
/// an output that sends in order already counted those messages as sent.
struct Producer(Option<ThreadedProducer<Context>>);

impl std::ops::Deref for Producer {
    type Target = ThreadedProducer<Context>;

    fn deref(&self) -> &Self::Target {
        // Taken only in `drop`.
        self.0.as_ref().unwrap_or_else(|| unreachable!("a producer is used after it was closed"))
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let Some(producer) = self.0.take() else { return };
        let slot = Arc::new(Mutex::new(Some(producer)));
        let closing = slot.clone();
        let spawned = std::thread::Builder::new().name("kafka-producer-close".into()).spawn(move || {
            let producer = closing.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(producer) = producer {
                if let Err(e) = producer.flush(FLUSH_ON_CLOSE) {
                    tracing::warn!(error = %e, "closing a kafka producer: flushing what it held");
                }
            }
        });
        if let Err(e) = spawned {
            // Closing it here could be on its own polling thread (a join of itself): left open.
            tracing::error!(error = %e, "closing a kafka producer: no thread to close it on; it is left open");
            std::mem::forget(slot.lock().unwrap_or_else(PoisonError::into_inner).take());
        }
    }
}

/// How long a producer being closed may take to deliver what it still holds.
const FLUSH_ON_CLOSE: Duration = Duration::from_secs(10);

fn create(config: &KafkaOutputConfig) -> Result<Producer, KafkaError> {
    let producer = config.client_config().create_with_context(Context(StatsRecorder::new(&config.name, "producer")))?;
    Ok(Producer(Some(producer)))
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

impl KafkaOutput {
    /// Produce `message`; `sent` is called once with how it ended: with `is_async` when the
    /// broker's delivery report comes (on the producer's polling thread), otherwise once the
    /// message is in the producer's buffer (a delivery that fails later is only logged). A
    /// message the producer does not take is reported at once, on this thread.
    fn produce(&self, message: &Outgoing, sent: Sent) {
        let encoded = self.encode(&message.object).and_then(|payload| Ok((payload, self.config.message_key(message)?)));
        let (payload, key) = match encoded {
            Ok(encoded) => encoded,
            Err(e) => return sent(Err(e)),
        };
        let topic = self.config.topic.clone();
        let (generation, producer) = self.producer.get();
        let current = self.producer.clone();
        let waits = self.config.is_async;
        let (report, sent) = if waits {
            let topic = topic.clone();
            let report = delivered(move |result: Result<(), KafkaError>| match result {
                Ok(()) => sent(Ok(())),
                Err(e) => {
                    current.recover(generation, &e);
                    sent(Err(send_error(&topic, e)));
                }
            });
            (report, None)
        } else {
            let name = self.config.name.clone();
            let report = delivered(move |result: Result<(), KafkaError>| {
                if let Err(e) = result {
                    tracing::error!(output = %name, error = %e, "a kafka delivery failed");
                    current.recover(generation, &e);
                }
            });
            (report, Some(sent))
        };
        let mut record = BaseRecord::with_opaque_to(&topic, report).payload(&payload);
        if let Some(key) = &key {
            record = record.key(key);
        }
        match producer.send(record) {
            Ok(()) => {
                if let Some(sent) = sent {
                    sent(Ok(()));
                }
            }
            // Not taken: waiting for the report, its callback is told now (it recovers and
            // reports); otherwise told here, and the logging callback is dropped unused.
            Err((e, record)) => match sent {
                None => call(*record.delivery_opaque, Err(e)),
                Some(sent) => {
                    self.producer.recover(generation, &e);
                    sent(Err(send_error(&topic, e)));
                }
            },
        }
    }
}

impl Output for KafkaOutput {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.produce(
            &message,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        let topic = self.config.topic.clone();
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(SendError::Unavailable(format!("producing to {topic}: the producer was closed")))
            })
        })
    }

    fn send_then(self: Arc<Self>, message: Outgoing, _io: &tokio::runtime::Handle, sent: Sent) {
        self.produce(&message, sent);
    }

    fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.get().1.flush(timeout) {
            tracing::warn!(output = %self.config.name, error = %e, "flushing the kafka producer");
        }
    }
}
