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
use serde_json::Value;
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

/// The journal's `processed` event of one object, serialised as it stands (no `Map` built).
#[derive(serde::Serialize)]
struct Processed<'a> {
    input: &'a str,
    source: &'a str,
    received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    attempt: u32,
    ms: f64,
    steps: Steps<'a>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_key: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_name: Option<&'a str>,
    /// `Some(None)`: a stored object without a key, recorded as `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<&'a Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<std::borrow::Cow<'a, str>>,
}

/// The steps' names and times: `[{"step": name, "ms": ms}]`.
struct Steps<'a>(&'a [(String, f64)]);

impl serde::Serialize for Steps<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Step<'a> {
            step: &'a str,
            ms: f64,
        }
        serializer.collect_seq(self.0.iter().map(|(step, t)| Step { step, ms: millis(*t) }))
    }
}

/// Milliseconds rounded to microseconds (a non-finite value is recorded as `null`).
fn millis(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The journal's event of how processing `entry` ended: where it came from, its steps with
/// their time, and the outcome.
fn journal(rt: &Runtime, entry: &Entry, result: &Result<Done, Failure>, started: Instant, steps: Vec<(String, f64)>) {
    let settings = &rt.config.logger;
    if settings.max_msg_in_log == 0 {
        return;
    }
    let event = processed(entry, result, started.elapsed().as_secs_f64() * 1000.0, &steps);
    rt.journal.record(settings, &entry.id, "processed", &event);
}

/// The `processed` event of `entry`, which ended in `result` after `ms` milliseconds.
fn processed<'a>(
    entry: &'a Entry,
    result: &'a Result<Done, Failure>,
    ms: f64,
    steps: &'a [(String, f64)],
) -> Processed<'a> {
    let mut event = Processed {
        input: &entry.input,
        source: &entry.source,
        received_at: &entry.created_at,
        size: entry.size,
        attempt: entry.attempts.saturating_add(1),
        ms: millis(ms),
        steps: Steps(steps),
        status: "",
        routing_key: None,
        type_name: None,
        key: None,
        version: None,
        output: None,
        stage: None,
        function: None,
        error: None,
    };
    match result {
        Ok(Done::Stored { routing_key, type_name, version, key }) => {
            event.status = "stored";
            event.routing_key = Some(routing_key);
            event.type_name = Some(type_name);
            event.key = Some(key.as_ref());
            event.version = Some(*version);
        }
        Ok(Done::Routed { routing_key, output }) => {
            event.status = "routed";
            event.routing_key = Some(routing_key);
            event.output = Some(output);
        }
        Err(failure) => {
            event.status = "repair";
            event.routing_key = failure.routing_key.as_deref();
            event.stage = Some(failure.stage);
            event.function = failure.function.as_deref();
            event.error = Some(crate::journal::clip(&failure.error));
            if let Some((type_name, key)) = failure.object.as_deref() {
                event.type_name = Some(type_name);
                event.key = Some(Some(key));
            }
        }
    }
    event
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The event has the fields (and values) the journal recorded when it was built as a `Map`.
    #[test]
    fn a_processed_event_is_recorded_with_the_fields_of_its_outcome() {
        let mut entry = Entry::new("0190".into(), "http", "http", json!({}));
        entry.size = Some(42);
        entry.attempts = 1;
        let steps = vec![("classifier".to_string(), 0.123_456_7), ("validation".to_string(), f64::NAN)];
        let base = json!({"input": "http", "source": "http", "received_at": entry.created_at, "size": 42,
                          "attempt": 2, "ms": 1.235,
                          "steps": [{"step": "classifier", "ms": 0.123}, {"step": "validation", "ms": null}]});
        let with = |extra: Value| {
            let mut all = base.clone();
            all.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            all
        };
        let event =
            |result: &Result<Done, Failure>| serde_json::to_value(processed(&entry, result, 1.2345, &steps)).unwrap();

        let stored = Ok(Done::Stored { routing_key: "User".into(), type_name: "User".into(), version: 7, key: None });
        let want = with(json!({"status": "stored", "routing_key": "User", "type": "User", "key": null, "version": 7}));
        assert_eq!(event(&stored), want);
        let routed = Ok(Done::Routed { routing_key: "Bumped".into(), output: "out".into() });
        assert_eq!(event(&routed), with(json!({"status": "routed", "routing_key": "Bumped", "output": "out"})));

        let mut failure = Failure {
            stage: "validation",
            function: None,
            routing_key: Some("User".into()),
            error: "é".repeat(3_000),
            object: Some(Box::new(("User".into(), json!([1, "a"])))),
        };
        let failed = event(&Err(failure.clone()));
        let error = failed["error"].as_str().unwrap();
        assert!(error.ends_with('…') && error.len() < 3_000 * 2, "{}", error.len());
        let mut want = with(json!({"status": "repair", "routing_key": "User", "stage": "validation",
                                   "type": "User", "key": [1, "a"]}));
        want["error"] = json!(error);
        assert_eq!(failed, want);
        failure.error = "no such function".into();
        failure.function = Some("classify".into());
        failure.object = None;
        failure.routing_key = None;
        let want = with(json!({"status": "repair", "stage": "validation", "function": "classify",
                               "error": "no such function"}));
        assert_eq!(event(&Err(failure)), want);
    }
}
