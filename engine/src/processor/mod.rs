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
    rt: Arc<Runtime>,
    shared: Arc<Finisher>,
    intake_log: IntakeLog,
    pool: WorkerPool,
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
        let rt = Arc::new(rt);
        let storage = StorageHandle::start(rt.clone())?;
        let repair_thread = NamedArbiter::start("ferrogrid-repair")?;
        Ok(Arc::new_cyclic(|me| Processor {
            shared: Arc::new(Finisher { rt: rt.clone(), io }),
            rt,
            intake_log,
            pool,
            storage,
            repairs: Repairs::start(repair_thread, me.clone()),
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
    pub fn on_worker<R, F>(&self, job: F) -> impl Future<Output = Result<R, PoolError>> + Send + 'static
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
                "drain timed out; unfinished objects stay in the repair queue and resume at the next start"
            );
        }
        self.permits.close();
        // Queued objects stay New in the repair queue and run at the next start. The workers are
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
        if let Err(e) = self.rt.db.sync() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}
