//! The storage writer: one thread that stores the objects the script workers have prepared,
//! as many as are waiting in one atomic commit. sled writes its log buffer out for every batch,
//! so one batch for many objects is far cheaper than a batch each.

use super::stages::{store, Done, Finish};
use crate::repair::{Entry, Failure};
use crate::runtime::Runtime;
use crossbeam_channel::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Most objects in one commit.
const MAX_BATCH: usize = 256;

/// What to do with an object's result once its commit is decided.
pub type Then = Box<dyn FnOnce(Result<Done, Failure>) + Send>;

/// One object on its way to its final commit.
pub struct StoreJob {
    /// Its repair-queue entry (finished in the same commit).
    pub entry: Entry,
    /// The object to store, or the sent object to finish.
    pub item: Finish,
    /// Called with the outcome, on the writer thread.
    pub then: Then,
}

/// The writer thread and its queue.
pub struct StoreWriter {
    sender: Mutex<Option<Sender<StoreJob>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StoreWriter {
    /// Start the writer for `rt`.
    pub fn start(rt: Arc<Runtime>) -> std::io::Result<StoreWriter> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new().name("ferrogrid-store".into()).spawn(move || run(&rt, &receiver))?;
        Ok(StoreWriter { sender: Mutex::new(Some(sender)), thread: Mutex::new(Some(thread)) })
    }

    /// A handle to queue jobs with; `None` once closed.
    pub fn sender(&self) -> Option<Sender<StoreJob>> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Store what is queued, then stop (once every other sender is gone too).
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = thread.join();
        }
    }
}

fn run(rt: &Runtime, receiver: &Receiver<StoreJob>) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<(&Entry, &Finish)> = jobs.iter().map(|j| (&j.entry, &j.item)).collect();
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store(rt, &items))).unwrap_or_else(|panic| {
                let error = format!("internal error (a bug): storing panicked: {}", super::panic_text(&*panic));
                items.iter().map(|(_, item)| Err(item.failure(error.clone()))).collect()
            });
        drop(items);
        for (job, result) in jobs.into_iter().zip(results) {
            (job.then)(result);
        }
    }
}
