//! The output actors: one per output named in `output_processor`, under an actix
//! [`Supervisor`]. Each owns its output's in-flight state (the sends running, the deliveries
//! sent but not yet removed from the queue) and nothing else holds it.
//!
//! One actor's life is a loop of *turns*. A turn removes the deliveries sent since the last one
//! (one commit) and reads the next ones due from the queue (both on the blocking pool, never on
//! the reactor); then each is sent by a task of its own (at most [`CONCURRENCY`] at once; one in
//! sync mode), which prepares it (preprocessing pipeline on a script worker), sends it, records a
//! failure (retry with backoff, or park in the output repair queue) and reports back with
//! [`Delivered`]. A turn starts when the output queue's bell rings (a commit queued deliveries),
//! when a send ends, or when the next delivery waiting for its backoff is due.
//!
//! A panic in the actor restarts it (see [`crate::actors`]): the sends already running are tasks
//! of their own and still report to the same mailbox, so the restarted actor keeps what it knows
//! of them and reads everything else from the queue again. Nothing is sent twice by a restart.
//! A panic inside one send parks that delivery with the panic text and harms nothing else.

use super::queue::{now_ms, Delivery, PREPROCESSING_ERROR, SENDING_ERROR};
use crate::actors::{guarded, ActorName};
use crate::config::RetryPolicy;
use crate::metrics::metrics;
use crate::processor::panic_text;
use crate::processor::Processor;
use crate::runtime::Runtime;
use actix::prelude::*;
use ferrogrid_connectors::{Outgoing, SendError};
use ferrogrid_pipelines::steps::message_key_of;
use ferrogrid_sandbox::CallContext;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Deliveries in flight per output.
const CONCURRENCY: usize = 64;
/// Deliveries read from the queue per scan, at least (more when many senders are free).
const SCAN: usize = 64;
/// How long an async output lets commits and finished sends gather before the next turn: each
/// turn is a storage read and a commit, so fewer and larger ones leave more of the machine to
/// ingest (at the price of this much delivery latency).
const GATHER: Duration = Duration::from_millis(10);
/// Longest wait between two turns.
const IDLE: Duration = Duration::from_secs(1);
/// How long a stop waits for the sends in flight.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The running output actors.
pub struct OutputProcessor {
    actors: Vec<Addr<OutputActor>>,
}

impl OutputProcessor {
    /// Start a supervised actor for every output that `output_processor` names (on the
    /// current arbiter).
    pub fn start(engine: Arc<Processor>) -> OutputProcessor {
        let outputs = engine.runtime().config.replicated_outputs();
        if let Err(e) = engine.runtime().output_queue.park_unconfigured(&outputs) {
            tracing::error!(error = %e, "parking deliveries to outputs the configuration no longer has failed");
        }
        let actors = outputs
            .into_iter()
            .map(|output| {
                let engine = engine.clone();
                Supervisor::start(move |_| OutputActor::new(engine, output))
            })
            .collect();
        OutputProcessor { actors }
    }

    /// Stop every actor: no new sends, wait (a while) for those in flight, remove the sent ones
    /// from the queue. What is left stays queued for the next start.
    pub async fn stop(self) {
        // Every stop is queued before any is awaited, so the outputs wind down together.
        let stops: Vec<_> = self.actors.iter().map(|actor| actor.send(Stop)).collect();
        for stop in stops {
            if let Err(e) = stop.await {
                tracing::error!(error = %e, "an output actor was gone before it stopped");
            }
        }
    }
}

/// The wait before attempt `attempts + 1`: `initial * 2^attempts`, at most `max`, times a
/// random factor in [0.5, 1) so that many failed deliveries do not come back together.
pub fn backoff(policy: &RetryPolicy, attempts: u32) -> Duration {
    let base = policy.initial_backoff_ms.saturating_mul(1u64 << attempts.min(30)).min(policy.max_backoff_ms);
    let jitter = 0.5 + (getrandom::u32().unwrap_or(u32::MAX / 2) as f64 / u32::MAX as f64) / 2.0;
    Duration::from_millis(((base as f64) * jitter) as u64)
}

/// Run a blocking queue operation off the reactor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Sync mode of an output (TDG's `is_async: false`): one delivery at a time, in order.
#[derive(Debug, Clone, Copy)]
struct SyncMode {
    retry_after: Duration,
    threshold: Option<u32>,
}

/// The sync mode of `output`, when a key delivers to it with `is_async: false`.
fn sync_mode(rt: &Runtime, output: &str) -> Option<SyncMode> {
    rt.config.sync_route_of(output).map(|route| SyncMode {
        retry_after: ferrogrid_connectors::config_seconds(route.sync_retry_timeout, 0.001),
        threshold: route.sync_failed_attempt_count_threshold,
    })
}

/// The output queue's bell rang: deliveries were queued.
#[derive(Message)]
#[rtype(result = "()")]
struct Bell;

/// A send ended: `sent` holds the delivery when its peer has it (to be removed from the queue
/// at the next turn); `None` when it failed (and was rescheduled or parked).
#[derive(Message)]
#[rtype(result = "()")]
struct Delivered {
    id: uuid::Uuid,
    sent: Option<Delivery>,
}

/// Stop: no new sends; resolves once the sends in flight ended (or [`STOP_WAIT`] passed) and
/// the sent deliveries are removed.
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

/// What a turn read: the ids of the sent deliveries it removed (or why it could not, with the
/// deliveries, to be removed at the next turn), and the next batch.
/// What a turn removed (or failed to), and what it read: the deliveries, and the earliest retry
/// time of those it passed over as not due yet.
type TurnResult = (Result<Vec<uuid::Uuid>, (String, Vec<Delivery>)>, Result<(Vec<Delivery>, Option<i64>), String>);

/// One output's actor.
struct OutputActor {
    who: ActorName,
    engine: Arc<Processor>,
    rt: Arc<Runtime>,
    output: String,
    sync: Option<SyncMode>,
    concurrency: usize,
    /// Sends running now, each a task of its own that reports [`Delivered`].
    sending: usize,
    /// Deliveries sending or sent and not yet removed: a scan leaves them out.
    in_flight: HashSet<uuid::Uuid>,
    /// Sent (or expired) deliveries, removed from the queue at the next turn.
    sent: Vec<Delivery>,
    /// A turn is reading the queue.
    turning: bool,
    /// Something happened during the turn: another one is due soon.
    again: bool,
    /// The next turn, scheduled, and when.
    next: Option<(SpawnHandle, Instant)>,
    /// The task forwarding the output queue's bell.
    bell: Option<SpawnHandle>,
    /// Stopping: no new sends.
    stopping: bool,
    /// Stops waiting for the sends in flight to end.
    drained: Vec<oneshot::Sender<()>>,
    /// The stop's last removal ran: a send that ends later is removed on its own.
    finished: bool,
    /// Restarts since the last turn that went well (the first turn after one waits longer).
    restarts: u32,
}

impl OutputActor {
    fn new(engine: Arc<Processor>, output: String) -> OutputActor {
        let rt = engine.runtime_arc();
        let sync = sync_mode(&rt, &output);
        OutputActor {
            who: ActorName { kind: "output", name: output.as_str().into() },
            engine,
            sync,
            // In sync mode one delivery at a time, and only the oldest is looked at: a failing
            // one holds the output back until it is sent or parked.
            concurrency: if sync.is_some() { 1 } else { CONCURRENCY },
            rt,
            output,
            sending: 0,
            in_flight: HashSet::new(),
            sent: Vec::new(),
            turning: false,
            again: false,
            next: None,
            bell: None,
            stopping: false,
            drained: Vec::new(),
            finished: false,
            restarts: 0,
        }
    }

    /// How soon to turn again after an event (a bell, a finished send): in sync mode at once
    /// (there is only ever one send), else after [`GATHER`].
    fn soon(&self) -> Duration {
        if self.sync.is_some() {
            Duration::ZERO
        } else {
            GATHER
        }
    }

    /// Make sure a turn runs within `delay`.
    fn schedule(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        if self.turning {
            self.again = true;
            return;
        }
        let at = Instant::now() + delay;
        if let Some((handle, when)) = self.next {
            if when <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(delay, |act, ctx| {
            let who = act.who.clone();
            guarded(&who, act, ctx, |act, ctx| act.turn(ctx));
        });
        self.next = Some((handle, at));
    }

    /// Remove what was sent and read the next deliveries, off the reactor; then [`Self::dispatch`].
    fn turn(&mut self, ctx: &mut Context<Self>) {
        self.next = None;
        if self.turning || self.stopping {
            return;
        }
        self.turning = true;
        self.again = false;
        let done = std::mem::take(&mut self.sent);
        let free = self.concurrency.saturating_sub(self.sending);
        let wanted = match (free, self.sync) {
            (0, _) => 0,
            (_, Some(_)) => 1,
            (free, None) => SCAN.max(free * 2),
        };
        // Sent ones are still in flight until their removal is committed, so no scan in between
        // picks them up again.
        let skip = self.in_flight.clone();
        let (rt, output, in_order) = (self.rt.clone(), self.output.clone(), self.sync.is_some());
        let work = blocking(move || {
            let ids: Vec<uuid::Uuid> = done.iter().filter_map(|d| d.uuid().ok()).collect();
            let removed = match done.is_empty() {
                true => Ok(ids),
                false => match rt.output_queue.done_all(&done) {
                    Ok(()) => Ok(ids),
                    Err(e) => Err((e.to_string(), done)),
                },
            };
            // An output that sends one at a time keeps the order: its oldest delivery waits for
            // its retry, and holds the rest. One that sends in parallel reads what is due.
            let batch = match (wanted, in_order) {
                (0, _) => Ok((Vec::new(), None)),
                (n, true) => rt.output_queue.pending(&output, &skip, n).map(|b| (b, None)).map_err(|e| e.to_string()),
                (n, false) => rt.output_queue.due(&output, &skip, n, now_ms()).map_err(|e| e.to_string()),
            };
            (removed, batch)
        });
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            let who = act.who.clone();
            let result = result.unwrap_or_else(|| (Ok(Vec::new()), Err("the blocking pool is gone".into())));
            guarded(&who, act, ctx, |act, ctx| act.dispatch(result, ctx));
        }));
    }

    /// Start sending what a turn read; schedule the next turn.
    fn dispatch(&mut self, (removed, batch): TurnResult, ctx: &mut Context<Self>) {
        self.turning = false;
        match removed {
            Ok(ids) => {
                for id in &ids {
                    self.in_flight.remove(id);
                }
            }
            // Still in flight (not sent again); their removal is tried again at the next turn.
            Err((e, done)) => {
                tracing::error!(output = %self.output, error = %e, "removing sent deliveries failed; trying again");
                self.sent.extend(done);
                self.again = true;
            }
        }
        let (batch, mut next_due) = batch.unwrap_or_else(|e| {
            tracing::error!(output = %self.output, error = %e, "reading the output queue failed");
            (Vec::new(), None)
        });
        tracing::trace!(output = %self.output, batch = batch.len(), "output queue scanned");
        let now = now_ms();
        for delivery in batch {
            if self.stopping {
                break;
            }
            if expired(&self.rt, &delivery) {
                tracing::warn!(output = %self.output, id = %delivery.id, routing_key = %delivery.routing_key, "delivery expired: dropped from the queue");
                metrics().output_expired.with_label_values(&[&self.output]).inc();
                if let Ok(id) = delivery.uuid() {
                    self.in_flight.insert(id);
                }
                // Removed with the sent ones, at the next turn.
                self.sent.push(delivery);
                self.again = true;
                continue;
            }
            if delivery.next_at_ms > now {
                next_due = Some(next_due.map_or(delivery.next_at_ms, |t| t.min(delivery.next_at_ms)));
                continue;
            }
            if self.sending >= self.concurrency {
                // The rest is read again when a send ends.
                break;
            }
            let Ok(id) = delivery.uuid() else {
                tracing::error!(output = %self.output, id = %delivery.id, "skipping a delivery with a malformed id");
                continue;
            };
            // Test builds: the failpoint `output-send/<output>` makes the actor panic here.
            fail::fail_point!(&format!("output-send/{}", self.output));
            self.start(id, delivery, ctx);
        }
        // This turn went well.
        self.restarts = 0;
        let wait = match (self.again, next_due) {
            (true, _) => self.soon(),
            (false, Some(t)) => Duration::from_millis((t - now_ms()).clamp(1, IDLE.as_millis() as i64) as u64),
            (false, None) => IDLE,
        };
        self.schedule(wait, ctx);
    }

    /// Send `delivery` in a task of its own, which reports [`Delivered`].
    fn start(&mut self, id: uuid::Uuid, delivery: Delivery, ctx: &mut Context<Self>) {
        self.sending += 1;
        self.in_flight.insert(id);
        let (engine, sync, addr) = (self.engine.clone(), self.sync, ctx.address());
        tokio::spawn(async move {
            let sent = deliver(engine, delivery, sync).await;
            addr.do_send(Delivered { id, sent });
        });
    }

    fn delivered(&mut self, msg: Delivered, ctx: &mut Context<Self>) {
        self.sending = self.sending.saturating_sub(1);
        match msg.sent {
            // Sent after the stop's last removal (a slow peer): removed now, on its own.
            Some(delivery) if self.finished => {
                let (rt, output) = (self.rt.clone(), self.output.clone());
                actix_rt::spawn(async move {
                    let removed = blocking(move || rt.output_queue.done_all(std::slice::from_ref(&delivery))).await;
                    if !matches!(removed, Some(Ok(()))) {
                        tracing::error!(
                            output,
                            "removing a late sent delivery failed; it is sent again at the next start"
                        );
                    }
                });
            }
            Some(delivery) => self.sent.push(delivery),
            None => {
                self.in_flight.remove(&msg.id);
            }
        }
        if self.stopping {
            if self.sending == 0 {
                for waiter in self.drained.drain(..) {
                    let _ = waiter.send(());
                }
            }
            return;
        }
        self.schedule(self.soon(), ctx);
    }
}

impl Actor for OutputActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Commits that queue deliveries ring the bell; it is forwarded as a message, and the
        // forwarder stops with the actor (it holds no strong address).
        let mut bell = self.rt.output_queue.bell();
        let me = ctx.address().downgrade();
        let forward = async move {
            while bell.changed().await.is_ok() {
                match me.upgrade() {
                    Some(addr) => addr.do_send(Bell),
                    None => break,
                }
            }
        };
        self.bell = Some(ctx.spawn(forward.into_actor(self)));
        tracing::info!(output = %self.output, "output actor started");
        self.schedule(crate::actors::restart_delay(self.restarts), ctx);
    }
}

impl Supervised for OutputActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // The scheduled turn, the turn reading the queue and the bell forwarder were futures of
        // the old context and are gone. What the actor knows of the sends still running (their
        // ids, what they sent) stays: those tasks report to this same mailbox. Everything else
        // is read from the queue again by the first turn.
        tracing::warn!(output = %self.output, sending = self.sending, "output actor restarting");
        self.restarts += 1;
        self.turning = false;
        self.next = None;
        self.bell = None;
    }
}

impl Handler<Bell> for OutputActor {
    type Result = ();

    fn handle(&mut self, _: Bell, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| act.schedule(act.soon(), ctx));
    }
}

impl Handler<Delivered> for OutputActor {
    type Result = ();

    fn handle(&mut self, msg: Delivered, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| act.delivered(msg, ctx));
    }
}

impl Handler<Stop> for OutputActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        for handle in [self.next.take().map(|(h, _)| h), self.bell.take()].into_iter().flatten() {
            ctx.cancel_future(handle);
        }
        let (tx, rx) = oneshot::channel();
        if self.sending == 0 {
            let _ = tx.send(());
        } else {
            self.drained.push(tx);
        }
        let output = self.output.clone();
        let waited = async move {
            if tokio::time::timeout(STOP_WAIT, rx).await.is_err() {
                tracing::warn!(output, "stopping with sends in flight; they are sent again at the next start");
            }
        };
        Box::pin(waited.into_actor(self).then(|(), act, _| {
            act.finished = true;
            let done = std::mem::take(&mut act.sent);
            let (rt, output) = (act.rt.clone(), act.output.clone());
            async move {
                if !done.is_empty() && !matches!(blocking(move || rt.output_queue.done_all(&done)).await, Some(Ok(())))
                {
                    tracing::error!(output, "removing sent deliveries failed; they are sent again at the next start");
                }
                tracing::info!(output, "output actor stopped");
            }
            .into_actor(act)
        }))
    }
}

fn expired(rt: &Runtime, d: &Delivery) -> bool {
    let Some(timeout) = rt.config.output_processor.get(&d.routing_key).and_then(|r| r.expiration_timeout) else {
        return false;
    };
    chrono::DateTime::parse_from_rfc3339(&d.created_at)
        .map(|created| (chrono::Utc::now() - created.with_timezone(&chrono::Utc)).as_seconds_f64() > timeout)
        .unwrap_or(false)
}

/// Why a delivery failed.
struct Failed {
    status: &'static str,
    error: String,
    retryable: bool,
}

/// The object as stored, or (`store_strategy: reference`) its current version; `None` when it
/// is gone (deleted since).
async fn stored(rt: &Arc<Runtime>, d: &Delivery) -> Result<Option<Value>, Failed> {
    let (Some(reference), Some(type_name)) = (d.reference.clone(), d.type_name.clone()) else {
        return Ok(Some(d.object.clone()));
    };
    let rt = rt.clone();
    let read = blocking(move || {
        let index = reference["index"].as_str().unwrap_or_default().to_string();
        rt.repository.get(&type_name, &index, &reference["key"], &json!({}))
    })
    .await;
    match read {
        Some(Ok(Some(current))) if !current.deleted => Ok(Some(current.object)),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => {
            Err(Failed { status: PREPROCESSING_ERROR, error: format!("reading the object: {e}"), retryable: true })
        }
        None => Err(Failed { status: PREPROCESSING_ERROR, error: "reading the object failed".into(), retryable: true }),
    }
}

/// The object to send: the stored one, or what the preprocessing pipeline made of it (with the
/// message key its result set); `None` when a referenced object is gone. With the runtime
/// (configuration version) that prepared it, whose output sends it.
async fn prepared(engine: &Processor, d: &Delivery) -> Result<(Arc<Runtime>, Option<Outgoing>), Failed> {
    let rt = engine.runtime_arc();
    let Some(object) = stored(&rt, d).await? else { return Ok((rt, None)) };
    let Some(pipeline) = d.pipeline.clone() else {
        return Ok((rt, Some(Outgoing::new(object, d.routing_key.clone()))));
    };
    let param = json!({"obj": object, "routing_key": d.routing_key});
    let ctx = CallContext { request_id: d.id.clone(), cancel: None, jobs: None, scope: None };
    let result = engine
        .on_worker(move |rt, se| {
            // Test builds: `pipeline-step/<name>` makes the step fail (panic) as a bug would.
            fail::fail_point!(&format!("pipeline-step/{pipeline}"));
            (rt.clone(), rt.pipelines.run(se, &pipeline, param, &ctx))
        })
        .await;
    let fail = |error: String| Failed { status: PREPROCESSING_ERROR, error, retryable: false };
    match result {
        Err(e @ ferrogrid_pipelines::PoolError::Panicked(_)) => {
            Err(Failed { status: PREPROCESSING_ERROR, error: e.to_string(), retryable: false })
        }
        Err(ferrogrid_pipelines::PoolError::Closed) => {
            Err(Failed { status: PREPROCESSING_ERROR, error: "the engine is stopping".into(), retryable: true })
        }
        Ok((_, Err(e))) => Err(fail(e.to_string())),
        Ok((rt, Ok(Value::Object(mut map)))) if map.contains_key("obj") => {
            let key = message_key_of(&map);
            let object = map.remove("obj").unwrap_or_default();
            Ok((rt, Some(Outgoing { object, routing_key: d.routing_key.clone(), key })))
        }
        Ok((rt, Ok(value))) => Ok((rt, Some(Outgoing::new(value, d.routing_key.clone())))),
    }
}

/// Prepare and send `d`: `Ok(true)` sent, `Ok(false)` not to be sent (a referenced object is gone).
async fn attempt(engine: &Processor, d: &Delivery) -> Result<bool, Failed> {
    let (rt, message) = prepared(engine, d).await?;
    let Some(message) = message else {
        tracing::info!(output = %d.output, id = %d.id, "not sent: the referenced object is gone");
        return Ok(false);
    };
    match rt.outputs.get(&d.output) {
        Some(Some(output)) => output.send(message).await.map(|()| true).map_err(|e| Failed {
            status: SENDING_ERROR,
            retryable: matches!(e, SendError::Unavailable(_)),
            error: e.to_string(),
        }),
        _ => Err(Failed { status: SENDING_ERROR, error: format!("no output \"{}\"", d.output), retryable: false }),
    }
}

/// The journal's event of an attempt of `d`, for the object it came from.
fn journal(rt: &Runtime, d: &Delivery, result: &str, error: Option<&str>) {
    let Some(source) = &d.source else { return };
    let mut event = serde_json::Map::new();
    event.insert("delivery".into(), json!(d.id));
    event.insert("output".into(), json!(d.output));
    event.insert("attempt".into(), json!(d.attempts + 1));
    event.insert("result".into(), json!(result));
    if let Some(error) = error {
        event.insert("error".into(), json!(error));
    }
    rt.journal.note(&rt.config.logger, source, "delivery", event);
}

/// Deliver `d`; `Some(d)` when it is done with (sent, or its referenced object gone) and waits
/// for its removal, `None` when it failed and was rescheduled or parked.
async fn deliver(engine: Arc<Processor>, d: Delivery, sync: Option<SyncMode>) -> Option<Delivery> {
    // The attempt runs as a task of its own: a panic in it (a bug in a connector or in the
    // engine) fails this delivery only, and parks it with the panic text.
    let d = Arc::new(d);
    let result = {
        let (engine, d) = (engine.clone(), d.clone());
        tokio::spawn(async move { attempt(&engine, &d).await }).await
    };
    let d = Arc::try_unwrap(d).unwrap_or_else(|shared| (*shared).clone());
    let failed = match result {
        Ok(Ok(sent)) => {
            if sent {
                metrics().output_sent.with_label_values(&[&d.output]).inc();
            }
            journal(&engine.runtime(), &d, if sent { "sent" } else { "not sent: the object is gone" }, None);
            return Some(d);
        }
        Ok(Err(failed)) => failed,
        Err(e) => Failed {
            status: SENDING_ERROR,
            error: match e.try_into_panic() {
                Ok(panic) => format!("internal error (a bug): sending panicked: {}", panic_text(&*panic)),
                Err(e) => format!("internal error (a bug): sending was cancelled: {e}"),
            },
            retryable: false,
        },
    };
    let rt = engine.runtime_arc();
    let policy = rt.config.output_processor.get(&d.routing_key).map(|r| r.retry.clone()).unwrap_or_default();
    let output = d.output.clone();
    let recorded = blocking(move || {
        metrics().output_failures.with_label_values(&[&d.output]).inc();
        tracing::debug!(output = %d.output, id = %d.id, error = %failed.error, "a delivery failed");
        let again = match sync {
            Some(sync) => sync.threshold.is_none_or(|n| d.attempts + 1 < n).then_some(sync.retry_after),
            None => (d.attempts + 1 < policy.max_attempts).then(|| backoff(&policy, d.attempts)),
        };
        if let (true, Some(wait)) = (failed.retryable, again) {
            metrics().output_retries.with_label_values(&[&d.output]).inc();
            journal(&rt, &d, "failed, to be tried again", Some(&failed.error));
            let due = now_ms() + wait.as_millis() as i64;
            rt.output_queue.reschedule(d, failed.error, due)
        } else {
            metrics().output_parked.with_label_values(&[&d.output]).inc();
            tracing::warn!(output = %d.output, id = %d.id, error = %failed.error, "delivery parked in the output repair queue");
            journal(&rt, &d, "failed, parked in the output repair queue", Some(&failed.error));
            rt.output_queue.park(d, failed.status, failed.error)
        }
    })
    .await;
    if let Some(Err(e)) = recorded {
        tracing::error!(output, error = %e, "recording a delivery failed");
    }
    None
}
