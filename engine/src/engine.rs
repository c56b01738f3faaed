//! The live engine: accepts objects durably (the [`Intake`] of every input), runs their
//! processing on the script workers with a bound on objects in flight, resumes unfinished work
//! at start, serves operator retries, and drains on shutdown.

use crate::metrics::metrics;
use crate::output::Content;
use crate::processor::{
    panic_text, prepare, send_failed, Done, Finish, Prepared, StorageHandle, StoreJob, StoreSender, Then, ToSend,
};
use crate::repair::{Entry, Failure, ListFilter, RepairError, RepairQueue};
use crate::runtime::Runtime;
use crate::storage::{IntakeLog, IntakeLogError};
use ferrogrid_connectors::{Accepted, BoxFuture, Intake, IntakeError, Outcome, OutcomeStatus, Received, Wait};
use ferrogrid_pipelines::{OnPanic, PoolClosed, WorkerPool};
use ferrogrid_sandbox::ScriptEngine;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Lifecycle of the engine, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Building and resuming.
    Starting = 0,
    /// Accepting objects.
    Ready = 1,
    /// Finishing in-flight work before exit; refusing new objects.
    Draining = 2,
}

/// Why a retry did not run.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such entry.
    #[error("repair-queue entry \"{0}\" not found")]
    NotFound(String),
    /// The entry is being processed right now.
    #[error("repair-queue entry \"{0}\" is being processed right now")]
    Busy(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Draining,
    /// The repair queue failed.
    #[error(transparent)]
    Repair(#[from] RepairError),
    /// A bug: the work panicked or was cancelled.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

/// Run storage work on the blocking pool: never on a reactor thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RetryError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RetryError::Internal(e.to_string()))
}

/// The engine.
pub struct Engine {
    rt: Arc<Runtime>,
    shared: Arc<Shared>,
    intake_log: IntakeLog,
    pool: WorkerPool,
    storage: StorageHandle,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    state: AtomicU8,
}

/// What finishing an object needs, on whichever thread it ends (script worker or storage actor).
struct Shared {
    rt: Arc<Runtime>,
    /// The async runtime that sends to connector outputs.
    io: tokio::runtime::Handle,
    /// Ids of the entries being processed right now.
    busy: Mutex<HashSet<String>>,
}

impl Shared {
    /// Record how processing `id` ended (a failure in its repair-queue entry), release it and
    /// count it; the outcome for a waiting client.
    fn finish(&self, id: &str, result: Result<Done, Failure>, started: Instant) -> Outcome {
        if let Err(failure) = &result {
            metrics().repair_added.with_label_values(&[failure.stage]).inc();
            tracing::warn!(id, stage = failure.stage, function = ?failure.function, error = %failure.error, "object kept in the repair queue");
            let rt = &self.rt;
            // repair_queue.on_object_added: the first failure also hands the object to the
            // output processor under another key, in the same commit.
            let postprocess = failure
                .routing_key
                .as_deref()
                .and_then(|key| rt.config.repair_queue.on_object_added.get(key))
                .map(|added| added.postprocess_with_routing_key.as_str());
            let mut handed = false;
            let recorded = rt.repair.fail(id, failure, |tx, entry| {
                let (Some(key), 1) = (postprocess, entry.attempts) else { return Ok(()) };
                if let Some(route) = rt.config.output_processor.get(key) {
                    rt.output_queue.stage_in(tx, route, key, None, Content::Copy(entry.payload.clone()))?;
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
        self.busy.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
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

fn outcome_of(id: &str, result: &Result<Done, Failure>) -> Outcome {
    match result {
        Ok(Done::Stored { routing_key, type_name, version }) => Outcome {
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

/// Send `item` to its output on the async runtime; then the storage actor finishes `entry`
/// (with other objects in one commit), or the failure is recorded off the reactor.
async fn send(shared: Arc<Shared>, storage: StoreSender, entry: Entry, mut item: ToSend, then: Then) {
    // The object goes to the output; what finishes the entry afterwards needs only the rest.
    let obj = std::mem::take(&mut item.obj);
    let result = match shared.rt.outputs.get(&item.output) {
        Some(Some(output)) => output.send(obj, item.routing_key.clone()).await,
        _ => Err(ferrogrid_connectors::SendError::Rejected(format!("no output named \"{}\"", item.output))),
    };
    match result {
        Ok(()) => {
            let id = entry.id.clone();
            let queued = storage.store(StoreJob { entry, item: Finish::Sent(item), then });
            if !queued {
                // Only after the storage actor closed (shutdown): the entry stays and is sent again at
                // the next start.
                tracing::warn!(id, "sent, but not finished: the engine is stopping");
            }
        }
        Err(e) => {
            let failed = tokio::task::spawn_blocking(move || then(Err(send_failed(&item, e.to_string()))));
            if let Err(e) = failed.await {
                tracing::error!(error = %e, "recording a failed send failed");
            }
        }
    }
}

impl Engine {
    /// Start the script workers for `rt`; acknowledgements are made durable by `intake_log`. Called
    /// on the async runtime that will send to the connector outputs.
    pub fn start(rt: Runtime, intake_log: IntakeLog) -> std::io::Result<Arc<Engine>> {
        let io = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let workers = rt.config.input_processor.workers();
        let max_in_flight = rt.config.input_processor.max_in_flight;
        let on_panic: OnPanic = Arc::new(|worker: &str, panic: &str| {
            metrics().actor_restarts.with_label_values(&["pipeline_worker", worker]).inc();
            tracing::error!(
                actor = "pipeline_worker",
                name = worker,
                panic,
                "a script worker panicked (a bug); it starts over with a new script engine"
            );
        });
        let pool = WorkerPool::start(workers, rt.sandbox.clone(), on_panic)?;
        let rt = Arc::new(rt);
        let storage = StorageHandle::start(rt.clone());
        Ok(Arc::new(Engine {
            shared: Arc::new(Shared { rt: rt.clone(), io, busy: Mutex::new(HashSet::new()) }),
            rt,
            intake_log,
            pool,
            storage,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            state: AtomicU8::new(State::Starting as u8),
        }))
    }

    /// The runtime (configuration, repository, repair queue).
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The runtime, shared (for work handed to other threads).
    pub fn runtime_arc(&self) -> Arc<Runtime> {
        self.rt.clone()
    }

    /// Run `job` on a script worker (scripts never run on the HTTP reactor threads).
    pub fn on_worker<R, F>(&self, job: F) -> impl Future<Output = Result<R, PoolClosed>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&ScriptEngine) -> R + Send + 'static,
    {
        self.pool.run(job)
    }

    /// The repair queue.
    pub fn repair(&self) -> &RepairQueue {
        &self.rt.repair
    }

    /// Current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Starting,
            1 => State::Ready,
            _ => State::Draining,
        }
    }

    fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Mark `id` as being processed; false if it already is.
    fn claim(&self, id: &str) -> bool {
        self.shared.busy.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_string())
    }

    fn release(&self, id: &str) {
        self.shared.busy.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Process `entry` (already claimed): stages 1-6 on a script worker, storage on the storage
    /// actor. The permit is held until it ends.
    fn submit(
        self: &Arc<Self>,
        entry: Entry,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = Option<Outcome>> + Send + 'static {
        let shared = self.shared.clone();
        let storage = self.storage.sender();
        let started = Instant::now();
        let (reply, outcome) = tokio::sync::oneshot::channel();
        metrics().in_flight.inc();
        // The job is queued now; what `run` returns is not needed (the reply carries the outcome).
        drop(self.pool.run(move |script_engine| {
            let id = entry.id.clone();
            let finisher = shared.clone();
            let then: Then = Box::new(move |result| {
                let _ = reply.send(finisher.finish(&id, result, started));
                drop(permit);
            });
            let prepared = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                prepare(&shared.rt, script_engine, &entry)
            })) {
                Ok(prepared) => prepared,
                Err(panic) => {
                    then(Err(Failure {
                        stage: "internal",
                        function: None,
                        routing_key: None,
                        error: format!("internal error (a bug): processing panicked: {}", panic_text(&*panic)),
                    }));
                    // Recorded; now the worker hears of it too and starts over.
                    std::panic::resume_unwind(panic);
                }
            };
            match prepared {
                Err(failure) => then(Err(failure)),
                Ok(Prepared::Send(item)) => {
                    let io = shared.io.clone();
                    io.spawn(send(shared, storage, entry, item, then));
                }
                Ok(Prepared::Store(item)) => {
                    let id = entry.id.clone();
                    let sent = storage.store(StoreJob { entry, item: Finish::Store(item), then });
                    if !sent {
                        // Only after the storage actor closed (shutdown): the entry stays New and
                        // resumes at the next start.
                        tracing::warn!(id, "not stored: the engine is stopping");
                    }
                }
            }
        }));
        async move { outcome.await.ok() }
    }

    /// Process again everything unfinished when the engine last stopped. Returns how many.
    pub fn resume(self: &Arc<Self>) -> Result<usize, RepairError> {
        let entries = self.rt.repair.unfinished()?;
        let count = entries.len();
        if count > 0 {
            tracing::info!(count, "resuming objects whose processing had not finished");
        }
        let engine = self.clone();
        actix_rt::spawn(async move {
            for entry in entries {
                let Ok(permit) = engine.permits.clone().acquire_owned().await else { return };
                if !engine.claim(&entry.id) {
                    continue;
                }
                // Read it again now that it is claimed: an operator may have retried or deleted
                // it since the list was taken.
                match engine.rt.repair.get(&entry.id) {
                    Ok(Some(current)) if current.is_unfinished() => {
                        actix_rt::spawn(engine.submit(current, permit));
                    }
                    Ok(_) => engine.release(&entry.id),
                    Err(e) => {
                        tracing::error!(id = %entry.id, error = %e, "reading an unfinished entry failed");
                        engine.release(&entry.id);
                    }
                }
            }
        });
        Ok(count)
    }

    /// Ready to accept objects.
    pub fn set_ready(&self) {
        self.set_state(State::Ready);
    }

    /// Retry one repair-queue entry now (optionally with an edited payload and who edited it)
    /// and return the outcome.
    pub async fn retry(self: &Arc<Self>, id: &str, edited: Option<(Value, String)>) -> Result<Outcome, RetryError> {
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        // The permit first: waiting for it is the only await before the job is queued, so a
        // caller that goes away meanwhile leaves nothing claimed or half-started.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Err(RetryError::Draining);
        };
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        if !self.claim(id) {
            return Err(RetryError::Busy(id.to_string()));
        }
        // Claimed: from here on the retry goes on in a task of its own, whether the caller
        // waits for it or not, so nothing is left claimed or half-started.
        let (engine, id) = (self.clone(), id.to_string());
        let retried = tokio::spawn(async move {
            let (rt, wanted) = (engine.rt.clone(), id.clone());
            let started = blocking(move || rt.repair.start_retry(&wanted, edited)).await;
            let entry = match started {
                Ok(Ok(Some(entry))) => entry,
                Ok(Ok(None)) => {
                    engine.release(&id);
                    return Err(RetryError::NotFound(id));
                }
                Ok(Err(e)) => {
                    engine.release(&id);
                    return Err(e.into());
                }
                Err(e) => {
                    engine.release(&id);
                    return Err(e);
                }
            };
            engine.submit(entry, permit).await.ok_or(RetryError::Draining)
        });
        retried.await.unwrap_or_else(|e| Err(RetryError::Internal(e.to_string())))
    }

    /// Entries matching `filter`, newest first, and the cursor of the next page.
    pub async fn list(&self, filter: ListFilter) -> Result<(Vec<Entry>, Option<String>), RetryError> {
        let rt = self.rt.clone();
        Ok(blocking(move || rt.repair.list(&filter)).await??)
    }

    /// Entry `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Entry>, RetryError> {
        let (rt, id) = (self.rt.clone(), id.to_string());
        Ok(blocking(move || rt.repair.get(&id)).await??)
    }

    /// Retry every failed entry matching `filter` in the background; returns how many.
    pub async fn retry_all(self: &Arc<Self>, filter: ListFilter) -> Result<usize, RetryError> {
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        let rt = self.rt.clone();
        let matching = blocking(move || rt.repair.all_matching(&filter)).await??;
        let ids: Vec<String> = matching.into_iter().filter(|e| !e.is_unfinished()).map(|e| e.id).collect();
        let count = ids.len();
        // One retry at a time, in the background: the queue is worked through at the engine's
        // pace while new objects keep their permits (a waiter per entry would take every permit
        // freed), and a shutdown stops it between two entries.
        let engine = self.clone();
        actix_rt::spawn(async move {
            for id in ids {
                if engine.state() == State::Draining {
                    return;
                }
                if let Err(e) = engine.retry(&id, None).await {
                    tracing::debug!(id, error = %e, "retry skipped");
                }
            }
        });
        Ok(count)
    }

    /// Delete entry `id`; false if there is none. An entry being processed is not deleted.
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<bool, RetryError> {
        if !self.claim(id) {
            return Err(RetryError::Busy(id.to_string()));
        }
        // Claimed: the deletion goes on in a task of its own, which releases the claim.
        let (engine, id) = (self.clone(), id.to_string());
        let deleted = tokio::spawn(async move {
            let (rt, wanted) = (engine.rt.clone(), id.clone());
            let deleted = blocking(move || rt.repair.delete(&wanted)).await;
            engine.release(&id);
            Ok(deleted??)
        });
        deleted.await.unwrap_or_else(|e| Err(RetryError::Internal(e.to_string())))
    }

    /// Delete every entry matching `filter` except those being processed; returns how many.
    pub async fn delete_matching(&self, filter: ListFilter) -> Result<usize, RetryError> {
        let busy = self.shared.busy.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let rt = self.rt.clone();
        Ok(blocking(move || rt.repair.delete_matching(&filter, |id| busy.contains(id))).await??)
    }

    /// Stop accepting, wait (up to `timeout`) for in-flight objects, stop the workers, flush.
    pub async fn drain(&self, timeout: Duration) {
        self.set_state(State::Draining);
        let deadline = Instant::now() + timeout;
        while self.permits.available_permits() < self.max_in_flight && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.max_in_flight - self.permits.available_permits();
        if left > 0 {
            tracing::warn!(
                left,
                "drain timed out; unfinished objects stay in the repair queue and resume at the next start"
            );
        }
        self.permits.close();
        if left > 0 {
            // Queued objects stay New in the repair queue and run at the next start.
            self.pool.abandon();
        } else {
            self.pool.shutdown();
        }
        self.storage.close().await;
        self.intake_log.close();
        if let Err(e) = self.rt.db.sync() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

/// The engine as the intake of its inputs.
#[derive(Clone)]
pub struct EngineIntake(pub Arc<Engine>);

impl Intake for EngineIntake {
    fn accept(&self, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        let engine = &self.0;
        engine.accept(received, wait)
    }
}

impl Engine {
    fn accept(self: &Arc<Self>, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        match self.state() {
            State::Ready => {}
            State::Starting => return Box::pin(async { Err(IntakeError::Starting) }),
            State::Draining => return Box::pin(async { Err(IntakeError::Draining) }),
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Box::pin(async { Err(IntakeError::Busy) });
        };
        let mut entry = RepairQueue::new_entry(&received.input, received.source, received.payload);
        let id = entry.id.clone();
        // Claimed before it becomes visible in the repair queue, so no operator action can
        // retry or delete it while its first processing is on its way.
        self.claim(&id);
        let durable = match self.intake_log.append(&mut entry, |e| self.rt.repair.staged(e)) {
            Ok(durable) => durable,
            Err(e) => {
                self.release(&id);
                return match e {
                    RepairError::IntakeLog(IntakeLogError::Closed) => Box::pin(async { Err(IntakeError::Draining) }),
                    e => Box::pin(async move { Err(IntakeError::Internal(e.to_string())) }),
                };
            }
        };
        metrics().objects_received.with_label_values(&[&received.input]).inc();
        tracing::debug!(id = %id, input = %received.input, "accepted");
        // Processing starts once the record is on disk, in a task of its own, so a client that
        // goes away does not stop it; the answer waits for the parts `wait` asks for.
        let (durable_tx, durable_rx) = tokio::sync::oneshot::channel::<Result<(), IntakeLogError>>();
        let (outcome_tx, outcome_rx) = tokio::sync::oneshot::channel::<Option<Outcome>>();
        let engine = self.clone();
        tokio::spawn(async move {
            let logged = durable.await;
            let failed = logged.is_err();
            let _ = durable_tx.send(logged);
            if failed {
                // Refused to the client (the intake log took its entry out of the repair queue
                // again), so it must not be processed: the client still has it.
                engine.release(&entry.id);
                return;
            }
            metrics().repair_depth.inc();
            let outcome = engine.submit(entry, permit).await;
            let _ = outcome_tx.send(outcome);
        });
        Box::pin(async move {
            match durable_rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(IntakeError::Internal(e.to_string())),
                Err(_) => return Err(IntakeError::Draining),
            }
            match wait {
                Wait::Durable => Ok(Accepted { id, outcome: None }),
                Wait::Outcome => {
                    // Durable already: a shutdown before the end is reported, not refused.
                    let outcome = outcome_rx.await.ok().flatten().unwrap_or_else(|| Outcome {
                        id: id.clone(),
                        status: OutcomeStatus::Pending,
                        routing_key: None,
                        type_name: None,
                        version: None,
                        error: Some(
                            "the engine shut down before processing ended; it resumes at the next start".into(),
                        ),
                    });
                    Ok(Accepted { id, outcome: Some(outcome) })
                }
            }
        })
    }
}
