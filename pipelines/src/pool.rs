//! A fixed pool of worker threads, each with its own script engine. Scripts never run on the
//! async reactor threads: async code sends a job here and awaits its result.
//!
//! Each worker is supervised: a job that panics (a bug) fails alone, and the worker starts over
//! with a new script engine, since the panic may have left the old one half-changed; the pool's
//! `on_panic` hears of it (the engine logs and counts the restart).
//!
//! Each job names the [`Sandbox`] it runs in: a worker keeps the engine of the last sandbox it
//! ran and builds a new one when a job comes with another (a new configuration version).

use ferrogrid_sandbox::{Sandbox, ScriptEngine};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

/// A job and the sandbox (the configuration version) whose engine it runs on.
type Job = (Arc<Sandbox>, Box<dyn FnOnce(&ScriptEngine) + Send + 'static>);

/// Told, after a job panicked on a worker, the worker's name and the panic's text (the worker
/// runs on with a new engine).
pub type OnPanic = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The message of a caught panic.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the script worker pool is shut down")]
    Closed,
    /// The job panicked (a bug); its worker started over with a new engine.
    #[error("internal error (a bug): the job panicked: {0}")]
    Panicked(String),
}

/// Worker threads that run jobs with a [`ScriptEngine`].
pub struct WorkerPool {
    sender: RwLock<Option<crossbeam_channel::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set by [`WorkerPool::abandon`]: queued jobs are dropped instead of run.
    discard: Arc<AtomicBool>,
}

impl WorkerPool {
    /// Start `size` workers (at least one), each building its engine from `sandbox` (and from
    /// the sandbox of a job that names another).
    pub fn start(size: usize, sandbox: Arc<Sandbox>, on_panic: OnPanic) -> std::io::Result<WorkerPool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let mut threads = Vec::new();
        let discard = Arc::new(AtomicBool::new(false));
        for i in 0..size.max(1) {
            let receiver = receiver.clone();
            let sandbox = sandbox.clone();
            let discard = discard.clone();
            let on_panic = on_panic.clone();
            let name = format!("script-{i}");
            let thread = ferrogrid_sandbox::spawn_script_thread(name.clone(), move || {
                let mut sandbox = sandbox;
                let mut engine = sandbox.engine();
                while let Ok((wanted, job)) = receiver.recv() {
                    if discard.load(Ordering::Acquire) {
                        continue; // dropped: its caller sees the pool closed
                    }
                    if !Arc::ptr_eq(&wanted, &sandbox) {
                        sandbox = wanted;
                        engine = sandbox.engine();
                    }
                    // A panic is a bug; it fails that job (its caller sees the pool closed, or
                    // was answered by the job before it re-raised the panic) and the worker
                    // starts over with a new engine.
                    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&engine))) {
                        engine = sandbox.engine();
                        on_panic(&name, &panic_text(&*panic));
                    }
                }
            })?;
            threads.push(thread);
        }
        Ok(WorkerPool { sender: RwLock::new(Some(sender)), threads: Mutex::new(threads), discard })
    }

    /// Queue `job` and return a future of its result. Bounding the number of jobs in flight is
    /// the caller's business (the engine holds a permit per object).
    pub fn run<R, F>(
        &self,
        sandbox: Arc<Sandbox>,
        job: F,
    ) -> impl Future<Output = Result<R, PoolError>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&ScriptEngine) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let guard = self.sender.read().unwrap_or_else(PoisonError::into_inner);
        let queued = match guard.as_ref() {
            Some(sender) => sender
                .send((
                    sandbox,
                    Box::new(move |engine: &ScriptEngine| {
                        // A panic is answered as such, then re-raised so that the worker starts over.
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(engine))) {
                            Ok(result) => {
                                let _ = tx.send(Ok(result));
                            }
                            Err(panic) => {
                                let _ = tx.send(Err(PoolError::Panicked(panic_text(&*panic))));
                                std::panic::resume_unwind(panic);
                            }
                        }
                    }),
                ))
                .is_ok(),
            None => false,
        };
        drop(guard);
        async move {
            if !queued {
                return Err(PoolError::Closed);
            }
            rx.await.unwrap_or(Err(PoolError::Closed))
        }
    }

    /// Run `job` on a worker and block the calling (non-async) thread until it is done.
    pub fn run_blocking<R, F>(&self, sandbox: Arc<Sandbox>, job: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&ScriptEngine) -> R + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(1);
        {
            let guard = self.sender.read().unwrap_or_else(PoisonError::into_inner);
            let sender = guard.as_ref().ok_or(PoolError::Closed)?;
            sender
                .send((
                    sandbox,
                    Box::new(move |engine: &ScriptEngine| {
                        let _ = tx.send(job(engine));
                    }),
                ))
                .map_err(|_| PoolError::Closed)?;
        }
        rx.recv().map_err(|_| PoolError::Closed)
    }

    /// Number of jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.sender.read().unwrap_or_else(PoisonError::into_inner).as_ref().map_or(0, |s| s.len())
    }

    /// Stop the workers without running the jobs still queued (the running ones finish); for a
    /// shutdown whose time is up.
    pub fn abandon(&self) {
        self.discard.store(true, Ordering::Release);
        self.shutdown();
    }

    /// Let queued jobs finish, then stop the workers (blocks until they have).
    pub fn shutdown(&self) {
        for thread in self.close(false) {
            let _ = thread.join();
        }
    }

    /// Take no more jobs; the workers stop once the queued jobs ran (`discard`: once the running
    /// ones ended, the queued ones dropped). Returns their threads, to join where blocking is
    /// allowed.
    pub fn close(&self, discard: bool) -> Vec<JoinHandle<()>> {
        if discard {
            self.discard.store(true, Ordering::Release);
        }
        *self.sender.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect()
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
