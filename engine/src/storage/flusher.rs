//! Group commit: one flusher thread makes sled's data durable (sled `flush()` = write +
//! `sync_file_range`, then `fdatasync` of the data file, fsync of new blob files and of the
//! directories whose entries changed). Callers of `sync()` arriving while a flush runs share the
//! next one: N concurrent callers cause at most two flushes.

use super::error::StorageError;
use super::store::Store;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

type Waiter = (u64, oneshot::Sender<Result<(), String>>);

#[derive(Default)]
struct State {
    /// Flushes started / completed (generation numbers).
    started: u64,
    completed: u64,
    /// Highest generation a caller waits for.
    wanted: u64,
    /// Set by the first failed flush: from then on nothing is known to be durable.
    failed: Option<String>,
    stopping: bool,
    exited: bool,
    waiters: Vec<Waiter>,
}

struct FlushState {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
    flushes: AtomicU64,
    /// Test hook: extra latency of every flush (a slow disk), in milliseconds.
    delay_ms: AtomicU64,
}

impl FlushState {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct Flusher {
    shared: Arc<FlushState>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

fn poisoned_msg(e: &str) -> String {
    format!("an earlier flush to disk failed ({e}); data written since the last successful sync may be lost: restart the process")
}

impl Flusher {
    pub(crate) fn start(store: Arc<dyn Store>) -> Result<Flusher, StorageError> {
        let shared = Arc::new(FlushState {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
            flushes: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let handle = std::thread::Builder::new().name("ferrogrid-flusher".into()).spawn(move || run(&sh, &*store))?;
        Ok(Flusher { shared, handle: Mutex::new(Some(handle)) })
    }

    /// Registers interest in the next flush; returns its generation.
    fn request(&self, st: &mut State) -> Result<u64, StorageError> {
        if let Some(e) = &st.failed {
            return Err(StorageError::Unavailable(poisoned_msg(e)));
        }
        if st.stopping {
            return Err(StorageError::Unavailable("the storage is closed".into()));
        }
        let target = st.started + 1;
        st.wanted = st.wanted.max(target);
        self.shared.wake.notify_one();
        Ok(target)
    }

    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        let mut st = self.shared.lock();
        let target = self.request(&mut st)?;
        while st.completed < target && !st.exited {
            st = self.shared.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        match (&st.failed, st.completed >= target) {
            (Some(e), _) => Err(StorageError::Unavailable(poisoned_msg(e))),
            (None, true) => Ok(()),
            (None, false) => Err(StorageError::Unavailable("the storage is closed".into())),
        }
    }

    pub(crate) fn sync_async(&self) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            match self.request(&mut st) {
                Ok(target) => st.waiters.push((target, tx)),
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        }
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(m)) => Err(StorageError::Unavailable(m)),
                Err(_) => Err(StorageError::Unavailable("the storage is closed".into())),
            }
        }
    }

    pub(crate) fn flush_count(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn set_test_delay_ms(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Stops the thread after it has served every pending request.
    pub(crate) fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        let handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("the storage flusher thread panicked");
            }
        }
    }
}

fn run(shared: &FlushState, store: &dyn Store) {
    loop {
        let generation = {
            let mut st = shared.lock();
            while !st.stopping && st.wanted <= st.started {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.wanted <= st.started {
                break;
            }
            st.started += 1;
            st.started
        };
        let delay = shared.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        // a panic inside sled must not leave callers waiting forever
        let flush_started = std::time::Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.make_durable()))
            .unwrap_or_else(|_| Err(StorageError::Unavailable("the flush to disk panicked".into())));
        if result.is_ok() {
            crate::metrics::metrics().store_flush_seconds.observe(flush_started.elapsed().as_secs_f64());
        }
        let mut st = shared.lock();
        st.completed = generation;
        if let Err(e) = &result {
            tracing::error!(error = %e, "flushing the storage to disk failed");
            st.failed.get_or_insert_with(|| e.to_string());
        }
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        let outcome = match &st.failed {
            None => Ok(()),
            Some(e) => Err(poisoned_msg(e)),
        };
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut st.waiters).into_iter().partition(|(t, _)| *t <= generation);
        st.waiters = waiting;
        drop(st);
        shared.done.notify_all();
        for (_, tx) in ready {
            let _ = tx.send(outcome.clone());
        }
    }
    let mut st = shared.lock();
    st.exited = true;
    for (_, tx) in st.waiters.drain(..) {
        let _ = tx.send(Err("the storage is closed".into()));
    }
    drop(st);
    shared.done.notify_all();
}
