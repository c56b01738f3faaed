//! The Kafka consumer input: consume, hand each message to the engine's intake, and store the
//! offset of a message only once it and all before it in its partition are durably accepted.

use super::config::KafkaInputConfig;
use super::progress::Progress;
use crate::intake::{Intake, IntakeError, Received, Wait};
use crate::json::parse_object;
use crate::registry::BuildError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// How long the consuming loop waits for a free worker before it pauses fetching.
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// The consumer's context: forgets the progress of revoked partitions.
struct Context {
    progress: Arc<Mutex<Progress>>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked: Vec<(String, i32)> =
                list.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            lock(&self.progress).forget(&revoked);
        }
    }
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the consuming loop and the acceptance tasks share.
struct ConsumerState {
    config: KafkaInputConfig,
    intake: Arc<dyn Intake>,
    consumer: StreamConsumer<Context>,
    progress: Arc<Mutex<Progress>>,
    stop: watch::Receiver<bool>,
}

/// A Kafka input: a consumer in the configured group, started by [`crate::Input::start`].
pub struct KafkaInput {
    config: KafkaInputConfig,
    intake: Arc<dyn Intake>,
}

impl KafkaInput {
    /// Build the input from its configuration and the engine's intake.
    pub fn new(config: KafkaInputConfig, intake: Arc<dyn Intake>) -> Self {
        Self { config, intake }
    }
}

impl crate::Input for KafkaInput {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn start(&self) -> Result<Option<Box<dyn crate::Running>>, BuildError> {
        Ok(Some(Box::new(KafkaConsumer::start(self.config.clone(), self.intake.clone())?)))
    }
}

/// A running Kafka consumer.
pub struct KafkaConsumer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl crate::Running for KafkaConsumer {
    fn stop(self: Box<Self>) -> crate::BoxFuture<()> {
        Box::pin(KafkaConsumer::stop(*self))
    }
}

impl KafkaConsumer {
    /// Subscribe and start consuming on the current async runtime.
    pub fn start(config: KafkaInputConfig, intake: Arc<dyn Intake>) -> Result<Self, BuildError> {
        let fail = |e: rdkafka::error::KafkaError| BuildError { name: config.name.clone(), message: e.to_string() };
        let progress = Arc::new(Mutex::new(Progress::default()));
        let consumer: StreamConsumer<Context> =
            config.client_config().create_with_context(Context { progress: progress.clone() }).map_err(fail)?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(fail)?;
        tracing::info!(
            input = %config.name,
            topics = ?config.topics,
            group_id = %config.group_id,
            token_name = ?config.token_name,
            "kafka input consuming"
        );
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(ConsumerState { config, intake, consumer, progress, stop: stop_rx });
        let task = tokio::spawn(consume(shared));
        Ok(Self { stop, task })
    }

    /// Stop consuming, wait for the messages being accepted, commit the stored offsets and
    /// leave the group.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the kafka input task failed");
        }
    }
}

/// The object a message carries: a JSON object, or (when it is not one) its text, which the
/// engine keeps in the repair queue with the parse error.
fn payload_of(message: &OwnedMessage, max_depth: usize) -> Value {
    let bytes = message.payload().unwrap_or_default();
    match parse_object(bytes, max_depth) {
        Ok(object) => Value::Object(object),
        Err(_) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

async fn consume(shared: Arc<ConsumerState>) {
    let workers = shared.config.workers_count;
    let permits = Arc::new(Semaphore::new(workers));
    let mut stop = shared.stop.clone();
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = shared.consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message.detach(),
            Err(e) => {
                tracing::warn!(input = %shared.config.name, error = %e, "kafka consume error");
                continue;
            }
        };
        // A worker usually frees up within a moment; only when none does (the engine pushes
        // back) is fetching paused, since a pause drops what librdkafka prefetched.
        let permit = match tokio::time::timeout(PAUSE_AFTER, permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => break,
            Err(_) => {
                let paused = shared.consumer.assignment().ok().filter(|a| shared.consumer.pause(a).is_ok());
                tracing::debug!(input = %shared.config.name, "every worker busy: consumption paused");
                let permit = tokio::select! {
                    _ = stop.changed() => break,
                    permit = permits.clone().acquire_owned() => permit,
                };
                if let Some(assignment) = paused {
                    let _ = shared.consumer.resume(&assignment);
                }
                match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                }
            }
        };
        lock(&shared.progress).started(message.topic(), message.partition(), message.offset());
        tokio::spawn(accept(shared.clone(), message, permit));
    }
    // Wait for the messages being accepted, then commit what they allow.
    let _ = permits.acquire_many(workers as u32).await;
    match shared.consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(e) => tracing::debug!(input = %shared.config.name, error = %e, "final offset commit"),
    }
    shared.consumer.unsubscribe();
    tracing::info!(input = %shared.config.name, "kafka input stopped");
}

/// Accept one message, retrying while the engine is busy or starting; then store its offset
/// as far as the partition allows.
async fn accept(shared: Arc<ConsumerState>, message: OwnedMessage, permit: OwnedSemaphorePermit) {
    let config = &shared.config;
    let wait = if config.workers_count == 1 { Wait::Outcome } else { Wait::Durable };
    let received =
        Received { input: config.name.clone(), source: "kafka", payload: payload_of(&message, config.max_depth) };
    let mut delay = Duration::from_millis(5);
    loop {
        match shared.intake.accept(received.clone(), wait).await {
            Ok(_) => break,
            Err(IntakeError::Busy | IntakeError::Starting) => {}
            Err(IntakeError::Draining) => return,
            Err(e @ IntakeError::Internal(_)) => {
                tracing::error!(input = %config.name, offset = message.offset(), error = %e, "accepting a message failed");
            }
        }
        if *shared.stop.borrow() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
    let (topic, partition) = (message.topic(), message.partition());
    // Stored under the lock, so two tasks of a partition cannot store out of order.
    let mut progress = lock(&shared.progress);
    if let Some(next) = progress.accepted(topic, partition, message.offset()) {
        let mut list = TopicPartitionList::new();
        if list.add_partition_offset(topic, partition, Offset::Offset(next)).is_ok() {
            if let Err(e) = shared.consumer.store_offsets(&list) {
                tracing::debug!(input = %config.name, topic, partition, error = %e, "storing an offset");
            }
        }
    }
    drop(progress);
    drop(permit);
}
