//! The senders: one task per output named in `output_processor`, delivering its queued objects
//! (at most [`CONCURRENCY`] at once, each on its own), retrying failures with exponential
//! backoff and jitter, and parking what cannot be delivered in the output repair queue.

use super::queue::{now_ms, Delivery, PREPROCESSING_ERROR, SENDING_ERROR};
use crate::config::RetryPolicy;
use crate::engine::Engine;
use crate::metrics::metrics;
use crate::runtime::Runtime;
use ferrogrid_connectors::SendError;
use ferrogrid_sandbox::CallContext;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;

/// Deliveries in flight per output.
const CONCURRENCY: usize = 64;
/// Deliveries read from the queue per scan, at least (more when many senders are free).
const SCAN: usize = 64;
/// How long an async sender lets commits and finished sends gather before the next scan: each
/// scan and each removal of sent deliveries is a storage read and commit, so fewer and larger
/// ones leave more of the machine to ingest (at the price of this much delivery latency).
const GATHER: Duration = Duration::from_millis(10);
/// Longest wait between two scans.
const IDLE: Duration = Duration::from_secs(1);
/// How long a stop waits for the sends in flight.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The running senders.
pub struct OutputProcessor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl OutputProcessor {
    /// Start a sender for every output that `output_processor` names.
    pub fn start(engine: Arc<Engine>) -> OutputProcessor {
        let (stop, stop_rx) = watch::channel(false);
        let tasks = engine
            .runtime()
            .config
            .replicated_outputs()
            .into_iter()
            .map(|output| tokio::spawn(run(engine.clone(), output, stop_rx.clone())))
            .collect();
        OutputProcessor { stop, tasks }
    }

    /// Stop scanning and wait (a while) for the sends in flight; what is left stays queued.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "an output sender failed");
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

fn expired(rt: &Runtime, d: &Delivery) -> bool {
    let Some(timeout) = rt.config.output_processor.get(&d.routing_key).and_then(|r| r.expiration_timeout) else {
        return false;
    };
    chrono::DateTime::parse_from_rfc3339(&d.created_at)
        .map(|created| (chrono::Utc::now() - created.with_timezone(&chrono::Utc)).as_seconds_f64() > timeout)
        .unwrap_or(false)
}

/// Run a blocking queue operation off the reactor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Sync mode of an output (TDG's `is_async: false`): one delivery at a time, in order.
#[derive(Debug, Clone, Copy)]
struct Sync {
    retry_after: Duration,
    threshold: Option<u32>,
}

/// The sync mode of `output`, when a key delivers to it with `is_async: false`.
fn sync_mode(rt: &Runtime, output: &str) -> Option<Sync> {
    rt.config.sync_route_of(output).map(|route| Sync {
        retry_after: Duration::from_secs_f64(route.sync_retry_timeout.max(0.001)),
        threshold: route.sync_failed_attempt_count_threshold,
    })
}

async fn run(engine: Arc<Engine>, output: String, mut stop: watch::Receiver<bool>) {
    let rt = engine.runtime_arc();
    let mut bell = rt.output_queue.bell();
    let in_flight: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    let sync = sync_mode(&rt, &output);
    // In sync mode one delivery at a time, and only the oldest is looked at: a failing one
    // holds the output back until it is sent or parked.
    let concurrency = if sync.is_some() { 1 } else { CONCURRENCY };
    let permits = Arc::new(Semaphore::new(concurrency));
    let finished = Arc::new(Notify::new());
    // Sent deliveries, removed from the queue together once per turn (each send is confirmed
    // by its peer before; a crash before the removal sends them again: at least once).
    let sent: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    tracing::info!(output, "output sender started");
    loop {
        bell.borrow_and_update();
        remove_sent(&rt, &sent, &in_flight).await;
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = stop.changed() => break,
                _ = finished.notified() => continue,
            }
        }
        let skip = in_flight.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (queue, name) = (rt.clone(), output.clone());
        let wanted = if sync.is_some() { 1 } else { SCAN.max(free * 2) };
        let batch = match blocking(move || queue.output_queue.pending(&name, &skip, wanted)).await {
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                tracing::error!(output, error = %e, "reading the output queue failed");
                Vec::new()
            }
            None => Vec::new(),
        };
        tracing::trace!(output, batch = batch.len(), "output queue scanned");
        let now = now_ms();
        let mut next_due: Option<i64> = None;
        for delivery in batch {
            if expired(&rt, &delivery) {
                tracing::warn!(output, id = %delivery.id, routing_key = %delivery.routing_key, "delivery expired: dropped from the queue");
                metrics().output_expired.with_label_values(&[&output]).inc();
                // Removed with the sent ones, at the start of the next turn.
                sent.lock().unwrap_or_else(PoisonError::into_inner).push(delivery);
                continue;
            }
            if delivery.next_at_ms > now {
                next_due = Some(next_due.map_or(delivery.next_at_ms, |t| t.min(delivery.next_at_ms)));
                continue;
            }
            let permit = tokio::select! {
                _ = stop.changed() => break,
                permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            };
            let Ok(id) = delivery.uuid() else {
                tracing::error!(output, id = %delivery.id, "skipping a delivery with a malformed id");
                continue;
            };
            in_flight.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
            let (engine, in_flight, finished, sent) =
                (engine.clone(), in_flight.clone(), finished.clone(), sent.clone());
            tokio::spawn(async move {
                // A sent delivery stays "in flight" until its removal is committed, so that no
                // scan in between picks it up again.
                if !deliver(&engine, delivery, &sent, sync).await {
                    in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                }
                drop(permit);
                finished.notify_one();
            });
        }
        if *stop.borrow() {
            break;
        }
        let wait =
            next_due.map_or(IDLE, |t| Duration::from_millis((t - now_ms()).clamp(1, IDLE.as_millis() as i64) as u64));
        tokio::select! {
            _ = stop.changed() => break,
            _ = bell.changed() => {}
            _ = finished.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        // Let a burst of commits or finished sends gather before the next scan (in sync mode the
        // next one goes at once: there is only ever one).
        if sync.is_none() {
            tokio::time::sleep(GATHER).await;
        }
    }
    if tokio::time::timeout(STOP_WAIT, permits.acquire_many(concurrency as u32)).await.is_err() {
        tracing::warn!(output, "stopping with sends in flight; they are sent again at the next start");
    }
    remove_sent(&rt, &sent, &in_flight).await;
    tracing::info!(output, "output sender stopped");
}

/// Remove the deliveries sent (or expired) since the last turn, in one commit; then they are no
/// longer in flight.
async fn remove_sent(rt: &Arc<Runtime>, sent: &Arc<Mutex<Vec<Delivery>>>, in_flight: &Mutex<HashSet<uuid::Uuid>>) {
    let done = std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    if done.is_empty() {
        return;
    }
    let ids: Vec<uuid::Uuid> = done.iter().filter_map(|d| d.uuid().ok()).collect();
    let queue = rt.clone();
    match blocking(move || queue.output_queue.done_all(&done)).await {
        Some(Ok(())) => {
            let mut in_flight = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            for id in &ids {
                in_flight.remove(id);
            }
        }
        // Left in flight: not sent twice by this run; the next start sends them again.
        _ => {
            tracing::error!(count = ids.len(), "removing sent deliveries failed; they are sent again at the next start")
        }
    }
}

/// Why a delivery failed.
struct Failed {
    status: &'static str,
    error: String,
    retryable: bool,
}

/// The object as stored, or (`store_strategy: reference`) its current version; `None` when it
/// is gone (deleted since).
async fn stored(engine: &Engine, d: &Delivery) -> Result<Option<Value>, Failed> {
    let (Some(reference), Some(type_name)) = (d.reference.clone(), d.type_name.clone()) else {
        return Ok(Some(d.object.clone()));
    };
    let rt = engine.runtime_arc();
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

/// The object to send: the stored one, or what the preprocessing pipeline made of it; `None`
/// when a referenced object is gone.
async fn prepared(engine: &Engine, d: &Delivery) -> Result<Option<Value>, Failed> {
    let Some(object) = stored(engine, d).await? else { return Ok(None) };
    let Some(pipeline) = d.pipeline.clone() else { return Ok(Some(object)) };
    let rt = engine.runtime_arc();
    let param = json!({"obj": object, "routing_key": d.routing_key});
    let ctx = CallContext { request_id: d.id.clone(), cancel: None, jobs: None };
    let result = engine.on_worker(move |se| rt.pipelines.run(se, &pipeline, param, &ctx)).await;
    let fail = |error: String| Failed { status: PREPROCESSING_ERROR, error, retryable: false };
    match result {
        Err(_) => Err(Failed { status: PREPROCESSING_ERROR, error: "the engine is stopping".into(), retryable: true }),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(Value::Object(mut map))) if map.contains_key("obj") => Ok(Some(map.remove("obj").unwrap_or_default())),
        Ok(Ok(value)) => Ok(Some(value)),
    }
}

/// Deliver `d`; true when it was sent (and waits in `sent` for its removal).
async fn deliver(engine: &Engine, d: Delivery, sent: &Mutex<Vec<Delivery>>, sync: Option<Sync>) -> bool {
    let rt = engine.runtime_arc();
    let result = match prepared(engine, &d).await {
        Err(failed) => Err(failed),
        Ok(None) => {
            tracing::info!(output = %d.output, id = %d.id, "not sent: the referenced object is gone");
            sent.lock().unwrap_or_else(PoisonError::into_inner).push(d);
            return true;
        }
        Ok(Some(object)) => match rt.outputs.get(&d.output) {
            Some(Some(output)) => output.send(object, d.routing_key.clone()).await.map_err(|e| Failed {
                status: SENDING_ERROR,
                retryable: matches!(e, SendError::Unavailable(_)),
                error: e.to_string(),
            }),
            _ => Err(Failed { status: SENDING_ERROR, error: format!("no output \"{}\"", d.output), retryable: false }),
        },
    };
    let output = d.output.clone();
    let failed = match result {
        Ok(()) => {
            metrics().output_sent.with_label_values(&[&d.output]).inc();
            sent.lock().unwrap_or_else(PoisonError::into_inner).push(d);
            return true;
        }
        Err(failed) => failed,
    };
    let policy = rt.config.output_processor.get(&d.routing_key).map(|r| r.retry.clone()).unwrap_or_default();
    let queue = rt.clone();
    let recorded = blocking(move || {
        metrics().output_failures.with_label_values(&[&d.output]).inc();
        tracing::debug!(output = %d.output, id = %d.id, error = %failed.error, "a delivery failed");
        let again = match sync {
            Some(sync) => sync.threshold.is_none_or(|n| d.attempts + 1 < n).then_some(sync.retry_after),
            None => (d.attempts + 1 < policy.max_attempts).then(|| backoff(&policy, d.attempts)),
        };
        if let (true, Some(wait)) = (failed.retryable, again) {
            metrics().output_retries.with_label_values(&[&d.output]).inc();
            let due = now_ms() + wait.as_millis() as i64;
            queue.output_queue.reschedule(d, failed.error, due)
        } else {
            metrics().output_parked.with_label_values(&[&d.output]).inc();
            tracing::warn!(output = %d.output, id = %d.id, error = %failed.error, "delivery parked in the output repair queue");
            queue.output_queue.park(d, failed.status, failed.error)
        }
    })
    .await;
    if let Some(Err(e)) = recorded {
        tracing::error!(output, error = %e, "recording a delivery failed");
    }
    false
}
