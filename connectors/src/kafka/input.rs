//! The Kafka consumer input: consume, hand each message to the engine's intake, and store the
//! offset of a message only once it and all before it in its partition are durably accepted.
//!
//! The consumer is an actix actor, a [`StreamHandler`] of the consumer's messages, under a
//! [`Supervisor`]. It owns the back-pressure: each message takes one of `workers_count` permits
//! for its acceptance (a task of its own); when none is free the actor stops taking messages
//! (`ctx.wait`), and pauses fetching when none frees up within [`PAUSE_AFTER`]. The rebalance
//! callback and the acceptance tasks share the partitions' [`Progress`].

use super::config::KafkaInputConfig;
use super::progress::Progress;
use crate::intake::{Intake, IntakeError, Received, Wait};
use crate::json::parse_object;
use crate::metrics::StatsRecorder;
use crate::registry::BuildError;
use actix::prelude::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long the consuming loop waits for a free worker before it pauses fetching.
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// The consumer's context: forgets the progress of revoked partitions; sets the input's metrics
/// from librdkafka's statistics.
struct KafkaContext {
    progress: Arc<Mutex<Progress>>,
    stats: StatsRecorder,
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.stats.record(&statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.stats.error(&error, reason);
    }
}

impl ConsumerContext for KafkaContext {
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

/// What the actor and the acceptance tasks share.
struct ConsumerState {
    config: KafkaInputConfig,
    intake: Arc<dyn Intake>,
    consumer: Arc<StreamConsumer<KafkaContext>>,
    progress: Arc<Mutex<Progress>>,
    /// One per message being accepted (`workers_count`).
    permits: Arc<Semaphore>,
    /// Set when the input is told to stop: a message still being retried (the engine busy, the
    /// input's token refused) is given up, not accepted and not committed (it is consumed
    /// again later), so the stop does not wait for it.
    cancelled: Arc<std::sync::atomic::AtomicBool>,
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

/// The consumer's messages as a stream (owned, so the actor can hold it).
struct Messages {
    consumer: Arc<StreamConsumer<KafkaContext>>,
    next: Option<Pin<Box<dyn Future<Output = KafkaResult<OwnedMessage>> + Send>>>,
}

impl Stream for Messages {
    type Item = KafkaResult<OwnedMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let consumer = &this.consumer;
        let next = this.next.get_or_insert_with(|| {
            let consumer = consumer.clone();
            Box::pin(async move { consumer.recv().await.map(|m| m.detach()) })
        });
        match next.as_mut().poll(cx) {
            Poll::Ready(message) => {
                this.next = None;
                Poll::Ready(Some(message))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The consumer actor.
struct ConsumerActor {
    shared: Arc<ConsumerState>,
    /// A stop began: messages still coming are not taken (their offsets are not stored).
    stopping: bool,
    /// The consumer's messages, handled as a stream.
    messages: Option<actix::SpawnHandle>,
}

impl Actor for ConsumerActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.messages = Some(ctx.add_stream(Messages { consumer: self.shared.consumer.clone(), next: None }));
    }
}

impl Supervised for ConsumerActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(input = %self.shared.config.name, "kafka consumer actor restarting");
    }
}

impl ConsumerActor {
    /// Hand `message` to an acceptance task of its own, holding `permit` until it ends.
    fn dispatch(&self, message: OwnedMessage, permit: OwnedSemaphorePermit) {
        lock(&self.shared.progress).started(message.topic(), message.partition(), message.offset());
        actix::spawn(accept(self.shared.clone(), message, permit));
    }
}

impl StreamHandler<KafkaResult<OwnedMessage>> for ConsumerActor {
    fn handle(&mut self, message: KafkaResult<OwnedMessage>, ctx: &mut Self::Context) {
        if self.stopping {
            return;
        }
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                self.shared.consumer.context().stats.error(&e, "consuming");
                return;
            }
        };
        if let Ok(permit) = self.shared.permits.clone().try_acquire_owned() {
            self.dispatch(message, permit);
            return;
        }
        // Every worker busy: take no further message until one frees up. That usually takes a
        // moment; only when it does not (the engine pushes back) is fetching paused, since a
        // pause drops what librdkafka prefetched.
        let shared = self.shared.clone();
        let freed = async move {
            let permit = match tokio::time::timeout(PAUSE_AFTER, shared.permits.clone().acquire_owned()).await {
                Ok(permit) => permit,
                Err(_) => {
                    let paused = shared.consumer.assignment().ok().filter(|a| shared.consumer.pause(a).is_ok());
                    tracing::debug!(input = %shared.config.name, "every worker busy: consumption paused");
                    let permit = shared.permits.clone().acquire_owned().await;
                    if let Some(assignment) = paused {
                        let _ = shared.consumer.resume(&assignment);
                    }
                    permit
                }
            };
            permit.ok()
        };
        ctx.wait(freed.into_actor(self).map(move |permit, act, _| match permit {
            Some(permit) if !act.stopping => act.dispatch(message, permit),
            _ => {}
        }));
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The stream of a consumer never ends; the actor ends with a stop.
    }
}

/// Stop consuming, wait for the messages being accepted, commit what they allow and leave
/// the group.
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Stop> for ConsumerActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Stop, _: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let shared = self.shared.clone();
        let finished = async move {
            let workers = shared.config.workers_count as u32;
            let _ = shared.permits.acquire_many(workers).await;
            if let Err(e) = shared.consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(input = %shared.config.name, error = %e, "final offset commit");
            }
            shared.consumer.unsubscribe();
            tracing::info!(input = %shared.config.name, "kafka input stopped");
        };
        // Not `ctx.stop()`: the caller still holds the address, and a supervised actor stopped
        // while its address lives is restarted (its stream, its consumer and the consumer's
        // metric series with it, for good). Without its stream it ends once the address goes.
        Box::pin(finished.into_actor(self).map(|(), act, ctx| {
            if let Some(messages) = act.messages.take() {
                ctx.cancel_future(messages);
            }
        }))
    }
}

/// A running Kafka consumer: the address of its actor.
pub struct KafkaConsumer {
    addr: Addr<ConsumerActor>,
    cancelled: Arc<std::sync::atomic::AtomicBool>,
}

impl crate::Running for KafkaConsumer {
    fn stop(self: Box<Self>) -> crate::BoxFuture<()> {
        Box::pin(KafkaConsumer::stop(*self))
    }
}

impl KafkaConsumer {
    /// Subscribe and start the consumer actor on the current arbiter.
    pub fn start(config: KafkaInputConfig, intake: Arc<dyn Intake>) -> Result<Self, BuildError> {
        let fail = |e: rdkafka::error::KafkaError| BuildError { name: config.name.clone(), message: e.to_string() };
        let progress = Arc::new(Mutex::new(Progress::default()));
        let consumer: StreamConsumer<KafkaContext> = config
            .client_config()
            .create_with_context(KafkaContext {
                progress: progress.clone(),
                stats: StatsRecorder::new(&config.name, "consumer"),
            })
            .map_err(fail)?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(fail)?;
        tracing::info!(
            input = %config.name,
            topics = ?config.topics,
            group_id = %config.group_id,
            token_name = ?config.token_name,
            "kafka input consuming"
        );
        let permits = Arc::new(Semaphore::new(config.workers_count));
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = Arc::new(ConsumerState {
            config,
            intake,
            consumer: Arc::new(consumer),
            progress,
            permits,
            cancelled: cancelled.clone(),
        });
        let addr = Supervisor::start(move |_| ConsumerActor { shared, stopping: false, messages: None });
        Ok(Self { addr, cancelled })
    }

    /// Stop consuming, wait for the messages being accepted, commit the stored offsets and
    /// leave the group.
    pub async fn stop(self) {
        // Outside the actor's mailbox: the actor may be waiting for a permit that only a
        // cancelled retry gives back.
        self.cancelled.store(true, std::sync::atomic::Ordering::Release);
        if let Err(e) = self.addr.send(Stop).await {
            tracing::error!(error = %e, "the kafka consumer actor was gone before it stopped");
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

/// Accept one message, retrying while the engine is busy or starting; then store its offset
/// as far as the partition allows.
async fn accept(shared: Arc<ConsumerState>, message: OwnedMessage, permit: OwnedSemaphorePermit) {
    let config = &shared.config;
    let wait = if config.workers_count == 1 { Wait::Outcome } else { Wait::Durable };
    let received = Received {
        input: config.name.clone(),
        source: "kafka",
        payload: payload_of(&message, config.max_depth),
        version: None,
    };
    let mut delay = Duration::from_millis(5);
    let mut longest = Duration::from_secs(1);
    loop {
        match shared.intake.accept(received.clone(), wait).await {
            Ok(_) => break,
            Err(IntakeError::Busy | IntakeError::Starting) => {}
            Err(IntakeError::Draining) => return,
            Err(e @ IntakeError::Internal(_)) => {
                tracing::error!(input = %config.name, offset = message.offset(), error = %e, "accepting a message failed");
            }
            Err(e @ IntakeError::Refused(_)) => {
                // Not committed: the message waits until the token may post again. Logged on
                // its first refusal (a few lines: one per message in flight), not on each retry.
                if delay == Duration::from_millis(5) {
                    tracing::warn!(input = %config.name, offset = message.offset(), error = %e, "the input's token may not post; retrying");
                }
                longest = Duration::from_secs(5);
            }
        }
        if shared.cancelled.load(std::sync::atomic::Ordering::Acquire) {
            // Stopping: given up, neither accepted nor committed.
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(longest);
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
