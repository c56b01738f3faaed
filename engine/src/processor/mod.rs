//! The input processor: one object's way from its input to storage (or an output). TDG's
//! stages: input pipeline -> connector routing -> classifiers -> routing pipeline -> validation
//! against the model run on a script worker ([`prepare`]); storage runs on the storage actor
//! ([`StorageHandle`]), many objects a commit. Storing an object and removing its repair-queue
//! entry is one atomic commit; any failure leaves the entry with the stage, the function and the
//! error.
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`Processor`]: the parts below started together, their state (`/health`), the drain |
//! | `intake.rs` | durable acceptance: the [`Intake`](ferrogrid_connectors::Intake) of every input |
//! | `router.rs` | an accepted object to a script worker, then to the storage actor or its output; how it ended |
//! | `repairs.rs` | the repair-queue actor: operators' actions on the three queues of parked work |
//! | `stages.rs` | the stages themselves |
//! | `storage_actor.rs` | the storage actor |

use crate::actors::NamedArbiter;
use crate::metrics::metrics;
use crate::repair::RepairQueue;
use crate::runtime::Runtime;
use crate::storage::IntakeLog;
use arc_swap::ArcSwap;
use ferrogrid_pipelines::{OnPanic, PoolError, WorkerPool};
use ferrogrid_sandbox::ScriptEngine;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

mod intake;
mod repairs;
mod router;
mod stages;
mod storage_actor;

pub use intake::ProcessorIntake;
pub use repairs::{ParkedItem, Queue, Repairs, RetryError, Which};
use router::Finisher;
pub use stages::{prepare, send_failed, store, Done, Finish, Prepared, ToSend, ToStore};
pub use storage_actor::{StorageHandle, StoreJob, StoreSender, Then};

pub(crate) use ferrogrid_pipelines::panic_text;

#[cfg(test)]
mod tests;

/// Why [`Processor::switch`] did not switch.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError<E> {
    /// The objects in flight did not finish in time.
    #[error("the objects in flight did not finish within {0:?}; nothing changed, try again")]
    Busy(Duration),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Draining,
    /// What had to happen before the switch failed.
    #[error(transparent)]
    During(E),
}

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

/// The processor: what accepts objects, runs them through the stages and finishes them.
pub struct Processor {
    /// The runtime of the active configuration version; an apply replaces it while no object is
    /// in flight ([`Processor::switch`]), so each object runs on one version from end to end.
    rt: Arc<ArcSwap<Runtime>>,
    shared: Arc<Finisher>,
    intake_log: IntakeLog,
    pool: Arc<WorkerPool>,
    /// Script work outside the intake (jobs, GraphQL mutations and services, output pipelines)
    /// holds a read lease while it runs; a switch takes the write lease, so such work runs on
    /// one version from end to end too.
    leases: Arc<tokio::sync::RwLock<()>>,
    storage: StorageHandle,
    repairs: Repairs,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    state: AtomicU8,
}

impl Processor {
    /// Start the script workers for `rt`; acknowledgements are made durable by `intake_log`. Called
    /// on the async runtime that will send to the connector outputs.
    pub fn start(rt: Runtime, intake_log: IntakeLog) -> std::io::Result<Arc<Processor>> {
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
        let rt = Arc::new(ArcSwap::from_pointee(rt));
        let storage = StorageHandle::start(rt.clone())?;
        let repair_thread = NamedArbiter::start("ferrogrid-repair")?;
        Ok(Arc::new_cyclic(|me| Processor {
            shared: Arc::new(Finisher { io }),
            rt,
            intake_log,
            pool: Arc::new(pool),
            leases: Arc::new(tokio::sync::RwLock::new(())),
            storage,
            repairs: Repairs::start(repair_thread, me.clone()),
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            state: AtomicU8::new(State::Starting as u8),
        }))
    }

    /// The runtime of the active configuration version (configuration, repository, repair
    /// queue): hold it for one piece of work, so that the whole of it runs on one version.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.rt.load_full()
    }

    /// The same as [`Processor::runtime`] (for work handed to other threads).
    pub fn runtime_arc(&self) -> Arc<Runtime> {
        self.rt.load_full()
    }

    /// Run `job` on a script worker (scripts never run on the HTTP reactor threads), with the
    /// runtime of the active version and a script engine of that version; a switch waits for it
    /// (it holds a lease), so all of it runs on one version. For short work: jobs, GraphQL,
    /// output pipelines.
    pub fn on_worker<R, F>(&self, job: F) -> impl Future<Output = Result<R, PoolError>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&Arc<Runtime>, &ScriptEngine) -> R + Send + 'static,
    {
        let (leases, cell, pool) = (self.leases.clone(), self.rt.clone(), self.pool.clone());
        async move {
            let lease = leases.read_owned().await;
            let rt = cell.load_full();
            // The lease ends with the work on the worker, not with this future (its caller may
            // go away meanwhile).
            pool.run(rt.sandbox.clone(), move |engine| {
                let result = job(&rt, engine);
                drop(lease);
                result
            })
            .await
        }
    }

    /// [`Processor::on_worker`] without a lease, for work that may run long (task runs): a
    /// switch does not wait for it. It runs the scripts of the version it started on; what it
    /// writes is validated by the model active when it writes.
    pub fn on_worker_unleased<R, F>(&self, job: F) -> impl Future<Output = Result<R, PoolError>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&Arc<Runtime>, &ScriptEngine) -> R + Send + 'static,
    {
        let rt = self.runtime();
        self.pool.run(rt.sandbox.clone(), move |engine| job(&rt, engine))
    }

    /// The repair queue.
    pub fn repair(&self) -> RepairQueue {
        self.rt.load().repair.clone()
    }

    /// Make `next` the runtime of every object from now on, once no work is in flight: the
    /// write lease first (leased script work — jobs, GraphQL, output pipelines — ends, new such
    /// work waits), then every intake permit (new objects meanwhile are answered as busy: 503
    /// with Retry-After, Kafka pauses), so work in flight finishes on the version it started
    /// with and the next takes the new one. `during` runs with the engine quiet, before the switch (the
    /// migration of the stored indexes); an error there leaves the old runtime in place.
    pub async fn switch<E>(
        &self,
        next: Arc<Runtime>,
        wait: Duration,
        during: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), SwitchError<E>> {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        let deadline = tokio::time::Instant::now() + wait;
        // The leases first: waiting for a long job must not hold the intake's permits (that
        // would refuse every new object meanwhile).
        let Ok(leases) = tokio::time::timeout_at(deadline, self.leases.clone().write_owned()).await else {
            return Err(SwitchError::Busy(wait));
        };
        let quiet = match tokio::time::timeout_at(deadline, self.permits.clone().acquire_many_owned(all)).await {
            Ok(Ok(permits)) => permits,
            Ok(Err(_)) => return Err(SwitchError::Draining),
            Err(_) => return Err(SwitchError::Busy(wait)),
        };
        // The storage actor has committed everything by now (each permit ends after its commit).
        during().map_err(SwitchError::During)?;
        self.rt.store(next);
        drop(leases);
        drop(quiet);
        Ok(())
    }

    /// Why objects cannot be accepted until a restart (the intake log failed), if so.
    pub fn intake_failure(&self) -> Option<String> {
        self.intake_log.failed().map(|e| e.to_string())
    }

    /// Current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Starting,
            1 => State::Ready,
            _ => State::Draining,
        }
    }

    pub(super) fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// The repair-queue actor: operators' actions on parked work.
    pub fn repairs(&self) -> &Repairs {
        &self.repairs
    }

    /// Refuse new objects from now on (a shutdown began); `/health` says `draining`.
    pub fn stop_accepting(&self) {
        self.set_state(State::Draining);
    }

    /// Ready to accept objects.
    pub fn set_ready(&self) {
        self.set_state(State::Ready);
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
                "drain timed out; unfinished objects stay in the intake log (retries in the repair queue) and resume at the next start"
            );
        }
        self.permits.close();
        // Queued objects stay in the intake log (an operator's retry: In Progress in the repair
        // queue) and run at the next start. The workers are
        // joined on the blocking pool, not on this reactor.
        let workers = self.pool.close(left > 0);
        let joined = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        });
        if joined.await.is_err() {
            tracing::error!("waiting for the script workers failed");
        }
        self.storage.close().await;
        self.repairs.stop();
        self.intake_log.close();
        if let Err(e) = self.rt.load().db.sync() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}
