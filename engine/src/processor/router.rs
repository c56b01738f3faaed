//! The router: an accepted (or retried, or resumed) object goes to a script worker for its
//! stages, then to the storage actor, or to its connector output and then the storage actor;
//! how it ended is recorded (a failure in its repair-queue entry) and answered.

use super::stages::{prepare, send_failed, Done, Finish, Prepared, ToSend};
use super::storage_actor::{StoreJob, StoreSender, Then};
use super::{panic_text, Processor, RetryError};
use crate::metrics::metrics;
use crate::output::Content;
use crate::repair::{Entry, Failure, RepairError};
use crate::runtime::Runtime;
use ferrogrid_connectors::{Outcome, OutcomeStatus, Outgoing};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;

/// What finishing an object needs, on whichever thread it ends (script worker or storage actor).
pub(super) struct Finisher {
    /// The async runtime that sends to connector outputs.
    pub(super) io: tokio::runtime::Handle,
}

impl Finisher {
    /// Record how processing `id` ended (a failure in its repair-queue entry), release it and
    /// count it; the outcome for a waiting client.
    fn finish(
        rt: &Runtime,
        entry: &Entry,
        result: Result<Done, Failure>,
        started: Instant,
        steps: Vec<(String, f64)>,
    ) -> Outcome {
        let id = entry.id.as_str();
        journal(rt, entry, &result, started, steps);
        if let Err(failure) = &result {
            metrics().repair_added.with_label_values(&[failure.stage]).inc();
            tracing::warn!(id, stage = failure.stage, function = ?failure.function, error = %failure.error, "object kept in the repair queue");
            // repair_queue.on_object_added: the first failure also hands the object to the
            // output processor under another key, in the same commit.
            let postprocess = failure
                .routing_key
                .as_deref()
                .and_then(|key| rt.config.repair_queue.on_object_added.get(key))
                .map(|added| added.postprocess_with_routing_key.as_str());
            let mut handed = false;
            let recorded = rt.repair.fail(entry, failure, |tx, entry| {
                let (Some(key), 1) = (postprocess, entry.attempts) else { return Ok(()) };
                if let Some(route) = rt.config.output_processor.get(key) {
                    rt.output_queue.stage_in(
                        tx,
                        route,
                        (key, Some(&entry.id)),
                        None,
                        Content::Copy(entry.payload.clone()),
                    )?;
                    handed = true;
                }
                Ok(())
            });
            match recorded {
                Ok(_) if handed => rt.output_queue.ring(),
                Ok(_) => {}
                Err(e) => tracing::error!(id, error = %e, "recording the failure in the repair queue failed"),
            }
        }
        let outcome = outcome_of(id, &result);
        metrics().in_flight.dec();
        let status = match outcome.status {
            OutcomeStatus::Stored => "stored",
            OutcomeStatus::Routed => "routed",
            OutcomeStatus::Repair | OutcomeStatus::Pending => "repair",
        };
        metrics().processing_seconds.with_label_values(&[status]).observe(started.elapsed().as_secs_f64());
        outcome
    }
}

/// The journal's event of how processing `entry` ended: where it came from, its steps with
/// their time, and the outcome.
fn journal(rt: &Runtime, entry: &Entry, result: &Result<Done, Failure>, started: Instant, steps: Vec<(String, f64)>) {
    let settings = &rt.config.logger;
    if settings.max_msg_in_log == 0 {
        return;
    }
    let ms = |v: f64| serde_json::Number::from_f64((v * 1000.0).round() / 1000.0).map_or(Value::Null, Value::Number);
    let mut d = Map::new();
    d.insert("input".into(), json!(entry.input));
    d.insert("source".into(), json!(entry.source));
    d.insert("received_at".into(), json!(entry.created_at));
    if let Some(size) = entry.size {
        d.insert("size".into(), json!(size));
    }
    d.insert("attempt".into(), json!(entry.attempts + 1));
    d.insert("ms".into(), ms(started.elapsed().as_secs_f64() * 1000.0));
    let steps: Vec<Value> = steps.into_iter().map(|(name, t)| json!({"step": name, "ms": ms(t)})).collect();
    d.insert("steps".into(), Value::Array(steps));
    match result {
        Ok(Done::Stored { routing_key, type_name, version, key }) => {
            d.insert("status".into(), json!("stored"));
            d.insert("routing_key".into(), json!(routing_key));
            d.insert("type".into(), json!(type_name));
            d.insert("key".into(), key.clone().unwrap_or(Value::Null));
            d.insert("version".into(), json!(version));
        }
        Ok(Done::Routed { routing_key, output }) => {
            d.insert("status".into(), json!("routed"));
            d.insert("routing_key".into(), json!(routing_key));
            d.insert("output".into(), json!(output));
        }
        Err(failure) => {
            d.insert("status".into(), json!("repair"));
            if let Some(key) = &failure.routing_key {
                d.insert("routing_key".into(), json!(key));
            }
            d.insert("stage".into(), json!(failure.stage));
            if let Some(function) = &failure.function {
                d.insert("function".into(), json!(function));
            }
            d.insert("error".into(), json!(failure.error));
            if let Some((type_name, key)) = failure.object.as_deref() {
                d.insert("type".into(), json!(type_name));
                d.insert("key".into(), key.clone());
            }
        }
    }
    rt.journal.note(settings, &entry.id, "processed", d);
}

fn outcome_of(id: &str, result: &Result<Done, Failure>) -> Outcome {
    match result {
        Ok(Done::Stored { routing_key, type_name, version, .. }) => Outcome {
            id: id.to_string(),
            status: OutcomeStatus::Stored,
            routing_key: Some(routing_key.clone()),
            type_name: Some(type_name.clone()),
            version: Some(*version),
            error: None,
        },
        Ok(Done::Routed { routing_key, .. }) => Outcome {
            id: id.to_string(),
            status: OutcomeStatus::Routed,
            routing_key: Some(routing_key.clone()),
            type_name: None,
            version: None,
            error: None,
        },
        Err(failure) => Outcome {
            id: id.to_string(),
            status: OutcomeStatus::Repair,
            routing_key: failure.routing_key.clone(),
            type_name: None,
            version: None,
            error: Some(failure.error.clone()),
        },
    }
}

/// Send `item` to its output; then the storage actor finishes `entry` (with other objects in
/// one commit), or the failure is recorded on the blocking pool of `io`. Called on a script
/// worker; what follows the send runs where the output learns how it ended.
fn send(
    rt: &Runtime,
    storage: StoreSender,
    entry: Entry,
    mut item: ToSend,
    then: Then,
    awaited: bool,
    io: &tokio::runtime::Handle,
) {
    let output =
        rt.outputs.get(&item.output).cloned().flatten().ok_or_else(|| format!("no output named \"{}\"", item.output));
    // The object goes to the output; what finishes the entry afterwards needs only the rest.
    let message =
        Outgoing { object: std::mem::take(&mut item.obj), routing_key: item.routing_key.clone(), key: item.key.take() };
    let blocking = io.clone();
    let sent: ferrogrid_connectors::Sent = Box::new(move |result| match result {
        Ok(()) => {
            let id = entry.id.clone();
            let queued = storage.store(StoreJob { entry, item: Finish::Sent(item), then, awaited });
            if !queued {
                // Only after the storage actor closed (shutdown): the entry stays and is sent again at
                // the next start.
                tracing::warn!(id, "sent, but not finished: the engine is stopping");
            }
        }
        Err(e) => {
            drop(blocking.spawn_blocking(move || {
                let failure = Err(send_failed(&item, e.to_string()));
                let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| then(entry, failure)));
                if let Err(panic) = recorded {
                    tracing::error!(panic = panic_text(&*panic), "recording a failed send failed (a bug)");
                }
            }));
        }
    });
    match output {
        Ok(output) => output.send_then(message, io, sent),
        Err(unknown) => sent(Err(ferrogrid_connectors::SendError::Rejected(unknown))),
    }
}

impl Processor {
    /// Process `entry` (already claimed): stages 1-6 on a script worker, storage on the storage
    /// actor. The permit is held until it ends. `awaited`: the caller waits for the outcome (its
    /// commit is not held back, see `storage_actor::SPACING`).
    pub(super) fn submit(
        self: &Arc<Self>,
        entry: Entry,
        permit: OwnedSemaphorePermit,
        awaited: bool,
    ) -> impl Future<Output = Option<Outcome>> + Send + 'static {
        let shared = self.shared.clone();
        // The version this object runs on, from its first stage to its commit.
        let rt = self.runtime();
        let storage = self.storage.sender();
        let started = Instant::now();
        let (reply, outcome) = tokio::sync::oneshot::channel();
        metrics().in_flight.inc();
        // The job is queued now; what `run` returns is not needed (the reply carries the outcome).
        let coming = storage.coming();
        let sandbox = rt.sandbox.clone();
        drop(self.pool.run(sandbox, move |script_engine| {
            let prepared =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(&rt, script_engine, &entry)));
            let steps = super::stages::take_steps();
            let finishing = rt.clone();
            let then: Then = Box::new(move |entry, result| {
                let _ = reply.send(Finisher::finish(&finishing, &entry, result, started, steps));
                drop(permit);
            });
            let prepared = match prepared {
                Ok(prepared) => prepared,
                Err(panic) => {
                    then(
                        entry,
                        Err(Failure {
                            stage: "internal",
                            function: None,
                            routing_key: None,
                            error: format!("internal error (a bug): processing panicked: {}", panic_text(&*panic)),
                            object: None,
                        }),
                    );
                    // Recorded; now the worker hears of it too and starts over.
                    std::panic::resume_unwind(panic);
                }
            };
            // Handed on now (or ended): the storage actor waits for it no longer.
            drop(coming);
            match prepared {
                Err(failure) => then(entry, Err(failure)),
                Ok(Prepared::Send(item)) => send(&rt, storage, entry, item, then, awaited, &shared.io),
                Ok(Prepared::Store(item)) => {
                    let id = entry.id.clone();
                    let sent = storage.store(StoreJob { entry, item: Finish::Store(item), then, awaited });
                    if !sent {
                        // Only after the storage actor closed (shutdown): the object stays unsettled
                        // in the intake log (a retry: In Progress) and resumes at the next start.
                        tracing::warn!(id, "not stored: the engine is stopping");
                    }
                }
            }
        }));
        async move { outcome.await.ok() }
    }

    /// Process `entry` — claimed by its stored status: an operator's retry made it `In
    /// Progress`, or it was unfinished at start — once a permit is free; how it ended. A shutdown
    /// meanwhile leaves it claimed in storage, and it resumes at the next start.
    pub(super) async fn submit_claimed(self: &Arc<Self>, entry: Entry) -> Result<Outcome, RetryError> {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Err(RetryError::Draining);
        };
        self.submit(entry, permit, true).await.ok_or(RetryError::Draining)
    }

    /// Process again everything unfinished when the engine last stopped. Returns how many. They
    /// are claimed by their status (no operator action touches an unfinished entry), so they are
    /// submitted as they were listed.
    pub fn resume(self: &Arc<Self>) -> Result<usize, RepairError> {
        let entries = self.repair().unfinished()?;
        let count = entries.len();
        if count > 0 {
            tracing::info!(count, "resuming objects whose processing had not finished");
        }
        let engine = self.clone();
        actix_rt::spawn(async move {
            for entry in entries {
                let Ok(permit) = engine.permits.clone().acquire_owned().await else { return };
                actix_rt::spawn(engine.submit(entry, permit, false));
            }
        });
        Ok(count)
    }
}
