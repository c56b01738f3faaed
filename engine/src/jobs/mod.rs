//! Jobs (TDG 2.13): `repository::push_job(name, args)` queues a run of a pipeline or function
//! durably. A job pushed while an object is processed is committed with that object's outcome
//! (stored or routed: the job exists; kept in the repair queue: it does not, so retries of the
//! object never duplicate jobs); pushed elsewhere (tasks, services, jobs), it is committed at
//! once. The runner executes pending jobs on the script workers, at most
//! `jobs.max_jobs_in_parallel` at a time; a job that fails moves to the failed-jobs queue for
//! an operator. Jobs pending or running when the engine stops run again at the next start
//! (at-least-once).

mod queue;

pub use queue::{Job, Jobs};

use crate::engine::Engine;
use crate::metrics::metrics;
use ferrogrid_sandbox::CallContext;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the runner sleeps without a ring before it looks again.
const IDLE: Duration = Duration::from_millis(500);

/// The job runner of one engine.
pub struct JobRunner {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    jobs: Arc<Jobs>,
}

struct Running {
    keys: Mutex<HashSet<Vec<u8>>>,
}

impl JobRunner {
    /// Start running the engine's pending jobs (those left by the last stop first).
    pub fn start(engine: Arc<Engine>) -> std::io::Result<Arc<JobRunner>> {
        let jobs = engine.runtime().jobs.clone();
        let max = engine.runtime().config.jobs.max_jobs_in_parallel.max(1);
        if let Ok(n) = jobs.pending_count() {
            if n > 0 {
                tracing::info!(pending = n, "running the jobs left pending by the last stop");
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(Running { keys: Mutex::new(HashSet::new()) });
        let (loop_stop, loop_jobs) = (stop.clone(), jobs.clone());
        let thread = std::thread::Builder::new()
            .name("ferrogrid-jobs".into())
            .spawn(move || run(&engine, &loop_jobs, &running, max, &loop_stop))?;
        Ok(Arc::new(JobRunner { stop, thread: Mutex::new(Some(thread)), jobs }))
    }

    /// Stop dispatching (running jobs finish on the workers; pending ones wait for the next start).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.jobs.ring();
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = thread.join();
        }
    }
}

fn run(engine: &Arc<Engine>, jobs: &Arc<Jobs>, running: &Arc<Running>, max: usize, stop: &AtomicBool) {
    let mut rings = 0;
    while !stop.load(Ordering::Acquire) {
        let slots = {
            let keys = running.keys.lock().unwrap_or_else(PoisonError::into_inner);
            max.saturating_sub(keys.len())
        };
        let batch = if slots == 0 {
            Vec::new()
        } else {
            let keys = running.keys.lock().unwrap_or_else(PoisonError::into_inner).clone();
            jobs.pending(&keys, slots).unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading pending jobs failed");
                Vec::new()
            })
        };
        if batch.is_empty() {
            rings = jobs.wait(rings, IDLE);
            continue;
        }
        for (key, job) in batch {
            dispatch(engine, jobs, running, key, job);
        }
    }
}

fn dispatch(engine: &Arc<Engine>, jobs: &Arc<Jobs>, running: &Arc<Running>, key: Vec<u8>, job: Job) {
    running.keys.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone());
    let labels = [job.name.clone()];
    metrics().jobs_started.with_label_values(&labels).inc();
    metrics().jobs_running.with_label_values(&labels).inc();
    let (jobs, running, rt) = (jobs.clone(), running.clone(), engine.runtime_arc());
    drop(engine.on_worker(move |script_engine| {
        let started = Instant::now();
        let ctx = CallContext::new(job.id.clone());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.pipelines.run(script_engine, &job.name, job.args.clone(), &ctx)
        }))
        .unwrap_or_else(|_| {
            Err(ferrogrid_pipelines::PipelineError::Contract {
                function: job.name.clone(),
                message: "the job panicked (a bug)".into(),
            })
        });
        metrics().jobs_execution_seconds.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
        metrics().jobs_running.with_label_values(&labels).dec();
        let recorded = match result {
            Ok(_) => {
                metrics().jobs_succeeded.with_label_values(&labels).inc();
                jobs.done(&key)
            }
            Err(e) => {
                metrics().jobs_failed.with_label_values(&labels).inc();
                tracing::warn!(job = %job.id, name = %job.name, error = %e, "job failed; kept in the failed jobs");
                jobs.failed(&key, job, e.to_string())
            }
        };
        match recorded {
            Ok(()) => {
                running.keys.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
                jobs.ring();
            }
            // Left marked as running, so it is not dispatched again in a loop while storage fails.
            Err(e) => tracing::error!(error = %e, "recording the end of a job failed; it runs again at the next start"),
        }
    }));
}
