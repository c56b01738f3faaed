//! The storage actor: the one writer of objects. Script workers (and the intake's send tasks)
//! hand it each prepared object as a [`StoreJob`]; it commits as many as are waiting in one atomic
//! commit (the new versions, their index entries and output deliveries, the end of their
//! repair-queue entries), since sled writes its log buffer out for every batch and one batch for
//! many objects is far cheaper than a batch each.
//!
//! It runs on an arbiter (thread) of its own, so its commits block nothing else, under a
//! [`Supervisor`]: a panic while storing (a bug) fails that batch's objects with the panic text
//! (they stay in the repair queue) and restarts the actor with its mailbox intact. Batching: a
//! job only joins the batch; the batch is committed by a [`Flush`] queued to the actor itself,
//! which runs once the jobs already in the mailbox have joined (or at once at [`MAX_BATCH`]).

use super::stages::{store, Done, Finish};
use crate::metrics::metrics;
use crate::repair::{Entry, Failure};
use crate::runtime::Runtime;
use actix::prelude::*;
use std::sync::Arc;

/// Most objects in one commit.
const MAX_BATCH: usize = 256;
/// Mailbox capacity: jobs come from threads that must not wait (script workers), and the
/// engine's permits (objects in flight) bound them far below this, not actix's default of 16.
const MAILBOX: usize = 1 << 24;

/// What to do with an object's result once its commit is decided.
pub type Then = Box<dyn FnOnce(Result<Done, Failure>) + Send>;

/// One object on its way to its final commit.
pub struct StoreJob {
    /// Its repair-queue entry (finished in the same commit).
    pub entry: Entry,
    /// The object to store, or the sent object to finish.
    pub item: Finish,
    /// Called with the outcome, on the storage actor's thread.
    pub then: Then,
}

/// Store one object (with whatever else is waiting).
#[derive(Message)]
#[rtype(result = "()")]
struct Store(StoreJob);

/// Commit the batch.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

/// Commit what is waiting and take no more jobs (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
struct Close;

/// The actor.
struct StorageActor {
    rt: Arc<Runtime>,
    batch: Vec<StoreJob>,
    flush_queued: bool,
    closed: bool,
}

impl Actor for StorageActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for StorageActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("storage actor restarting");
        self.flush_queued = false;
    }
}

impl StorageActor {
    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_queued = false;
        let jobs = std::mem::take(&mut self.batch);
        if jobs.is_empty() {
            return;
        }
        let items: Vec<(&Entry, &Finish)> = jobs.iter().map(|j| (&j.entry, &j.item)).collect();
        let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store(&self.rt, &items)));
        let results = match stored {
            Ok(results) => results,
            Err(panic) => {
                let text = super::panic_text(&*panic);
                let error = format!("internal error (a bug): storing panicked: {text}");
                metrics().actor_restarts.with_label_values(&["storage", "storage"]).inc();
                tracing::error!(actor = "storage", panic = %text, "storage actor panicked (a bug); its batch stays in the repair queue and it restarts");
                ctx.stop();
                items.iter().map(|(_, item)| Err(item.failure(error.clone()))).collect()
            }
        };
        drop(items);
        for (job, result) in jobs.into_iter().zip(results) {
            (job.then)(result);
        }
    }
}

impl Handler<Store> for StorageActor {
    type Result = ();

    fn handle(&mut self, Store(job): Store, ctx: &mut Self::Context) {
        if self.closed {
            // Only after a shutdown's last commit: the entry stays and resumes at the next start.
            tracing::warn!(id = %job.entry.id, "not stored: the engine is stopping");
            return;
        }
        self.batch.push(job);
        if self.batch.len() >= MAX_BATCH {
            self.flush(ctx);
        } else if !self.flush_queued {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
    }
}

impl Handler<Flush> for StorageActor {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Self::Context) {
        self.flush(ctx);
    }
}

impl Handler<Close> for StorageActor {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) {
        self.flush(ctx);
        self.closed = true;
    }
}

/// The storage actor's address and its arbiter.
pub struct StorageHandle {
    addr: Addr<StorageActor>,
    arbiter: Arbiter,
}

/// Hands jobs to the storage actor from any thread.
#[derive(Clone)]
pub struct StoreSender(Addr<StorageActor>);

impl StoreSender {
    /// Queue `job`; false (and the job dropped) once the actor is gone (shutdown).
    pub fn store(&self, job: StoreJob) -> bool {
        self.0.try_send(Store(job)).is_ok()
    }
}

impl StorageHandle {
    /// Start the actor for `rt` on an arbiter of its own.
    pub fn start(rt: Arc<Runtime>) -> StorageHandle {
        let arbiter = Arbiter::new();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| StorageActor {
            rt,
            batch: Vec::new(),
            flush_queued: false,
            closed: false,
        });
        StorageHandle { addr, arbiter }
    }

    /// A sender of jobs.
    pub fn sender(&self) -> StoreSender {
        StoreSender(self.addr.clone())
    }

    /// Commit what is queued, then stop the actor and its arbiter.
    pub async fn close(&self) {
        if let Err(e) = self.addr.send(Close).await {
            tracing::error!(error = %e, "the storage actor was gone before its last commit");
        }
        self.arbiter.stop();
    }
}
