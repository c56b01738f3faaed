//! The storage actor: the one writer of objects. Script workers (and the intake's send tasks)
//! hand it each prepared object as a [`StoreJob`]; it commits as many as are waiting in one atomic
//! commit (the new versions, their index entries and output deliveries, the end of their
//! repair-queue entries), since sled writes its log buffer out for every batch and one batch for
//! many objects is far cheaper than a batch each.
//!
//! It runs on a thread of its own (`ferrogrid-store`), so its commits block nothing else, under a
//! [`Supervisor`]: a panic while storing (a bug) fails that batch's objects with the panic text
//! (they go to the repair queue) and restarts the actor with its mailbox intact. Batching: a
//! job only joins the batch; the batch is committed by a [`Flush`] queued to the actor itself,
//! which runs once the jobs already in the mailbox have joined (or at once at [`MAX_BATCH`]).
//! While more objects are on their way (a script worker is preparing them: [`Coming`]) the
//! batch waits for them, up to [`LINGER`] after its first job. And after a commit of more than
//! one object (objects come faster than commits), the next commit starts no sooner than
//! [`SPACING`] after that one started: under load commits grow instead of following each other
//! (each costs sled two log-buffer writes, each handed to sled's I/O threads, whatever its
//! size), while an object alone after a quiet moment — an input that takes its messages one at a
//! time and waits for each — is committed at once. Neither is a batch held back that holds an
//! object someone waits for (a `sync` answer, an operator's retry: [`StoreJob::awaited`]), nor a
//! full batch ([`MAX_BATCH`]), nor the last one at shutdown.

use super::stages::{store, Done, Finish};
use crate::actors::NamedArbiter;
use crate::metrics::metrics;
use crate::repair::{Entry, Failure};
use crate::runtime::Runtime;
use actix::prelude::*;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most objects in one commit.
const MAX_BATCH: usize = 256;
/// Longest a batch waits for objects still being prepared.
const LINGER: Duration = Duration::from_millis(1);
/// After a commit of several objects, the least time from its start to the next one's (tokio's
/// timer rounds a wait up to the next millisecond). Measured (docs/performance.md, 2026-12-05,
/// late morning): against committing whenever the mailbox is empty, the bench's p99 at half the
/// sustained rate went from 13-14 ms to 6-9 ms (medians), throughput unchanged; the ~1,400
/// commits a second at 8,000 objects/s had each woken all of sled's seven I/O threads twice.
const SPACING: Duration = Duration::from_millis(2);
/// Mailbox capacity: jobs come from threads that must not wait (script workers), and the
/// engine's permits (objects in flight) bound them far below this, not actix's default of 16.
const MAILBOX: usize = 1 << 24;

/// What to do with an object's result (and its entry) once its commit is decided.
pub type Then = Box<dyn FnOnce(Entry, Result<Done, Failure>) + Send>;

/// One object on its way to its final commit.
pub struct StoreJob {
    /// Its repair-queue entry (finished in the same commit).
    pub entry: Entry,
    /// The object to store, or the sent object to finish.
    pub item: Finish,
    /// Called with the outcome, on the storage actor's thread.
    pub then: Then,
    /// Someone waits for this object's outcome (a `sync` answer, an input that takes messages
    /// one at a time, an operator's retry): its batch is not held back by [`SPACING`].
    pub awaited: bool,
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
    /// The active version's runtime (one version at a time is in flight: see `Processor::switch`).
    rt: Arc<ArcSwap<Runtime>>,
    batch: Vec<StoreJob>,
    /// When the batch's first job came.
    first_at: Instant,
    /// Objects a script worker is preparing for this actor.
    coming: Arc<AtomicUsize>,
    flush_queued: bool,
    /// A timer will look at the batch again ([`StorageActor::commit_when_due`]).
    timer_set: bool,
    /// Set by a commit of several objects: a batch that is not full waits until then (see
    /// [`SPACING`]); a full one, one with an awaited object, and the last one at shutdown, do not.
    next_commit: Option<Instant>,
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
        self.timer_set = false;
        self.next_commit = None;
    }
}

impl StorageActor {
    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_queued = false;
        let jobs = std::mem::take(&mut self.batch);
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        metrics().storage_batch_objects.observe(jobs.len() as f64);
        let items: Vec<(&Entry, &Finish)> = jobs.iter().map(|j| (&j.entry, &j.item)).collect();
        let rt = self.rt.load();
        let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store(&rt, &items)));
        let results = match stored {
            Ok(results) => results,
            Err(panic) => {
                let text = super::panic_text(&*panic);
                let error = format!("internal error (a bug): storing panicked: {text}");
                metrics().actor_restarts.with_label_values(&["storage", "storage"]).inc();
                tracing::error!(actor = "storage", panic = %text, "storage actor panicked (a bug); its batch goes to the repair queue and it restarts");
                ctx.stop();
                items.iter().map(|(_, item)| Err(item.failure(&rt, error.clone()))).collect()
            }
        };
        drop(items);
        let several = jobs.len() > 1;
        for (job, result) in jobs.into_iter().zip(results) {
            (job.then)(job.entry, result);
        }
        self.next_commit = several.then(|| started + SPACING);
    }

    /// Commit the batch if it is due ([`commit_due`]), or else have a timer try again then.
    fn commit_when_due(&mut self, ctx: &mut Context<Self>) {
        if self.batch.is_empty() {
            return;
        }
        let awaited = self.batch.iter().any(|j| j.awaited);
        let due = commit_due(self.first_at, self.coming.load(Ordering::Acquire) > 0, self.next_commit, awaited);
        let now = Instant::now();
        if due <= now {
            self.flush(ctx);
        } else if !self.timer_set {
            self.timer_set = true;
            ctx.run_later(due - now, |act, ctx| {
                act.timer_set = false;
                act.commit_when_due(ctx);
            });
        }
    }
}

/// When a batch whose first job came at `first_at` is to be committed: at once, or [`LINGER`]
/// after its first job while objects are still being prepared (`coming`), and not before
/// `next_commit` unless someone waits for an object of the batch (`awaited`).
fn commit_due(first_at: Instant, coming: bool, next_commit: Option<Instant>, awaited: bool) -> Instant {
    let wait_for_coming = if coming { first_at + LINGER } else { first_at };
    match next_commit {
        Some(next) if !awaited => next.max(wait_for_coming),
        _ => wait_for_coming,
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
        if self.batch.is_empty() {
            self.first_at = Instant::now();
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
        self.flush_queued = false;
        self.commit_when_due(ctx);
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
    coming: Arc<AtomicUsize>,
    arbiter: NamedArbiter,
}

/// Hands jobs to the storage actor from any thread.
#[derive(Clone)]
pub struct StoreSender {
    addr: Addr<StorageActor>,
    coming: Arc<AtomicUsize>,
}

/// An object on its way to the storage actor (a script worker prepares it); dropped once it is
/// handed over, or ends elsewhere (failed, sent to an output).
pub struct Coming(Arc<AtomicUsize>);

impl Drop for Coming {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StoreSender {
    /// Queue `job`; false (and the job dropped) once the actor is gone (shutdown).
    pub fn store(&self, job: StoreJob) -> bool {
        self.addr.try_send(Store(job)).is_ok()
    }

    /// Tell the actor an object is being prepared for it, until the [`Coming`] is dropped.
    pub fn coming(&self) -> Coming {
        self.coming.fetch_add(1, Ordering::AcqRel);
        Coming(self.coming.clone())
    }
}

impl StorageHandle {
    /// Start the actor for `rt` on a thread of its own (`ferrogrid-store`).
    pub fn start(rt: Arc<ArcSwap<Runtime>>) -> std::io::Result<StorageHandle> {
        let arbiter = NamedArbiter::start("ferrogrid-store")?;
        let coming = Arc::new(AtomicUsize::new(0));
        let actor_coming = coming.clone();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| StorageActor {
            rt,
            batch: Vec::new(),
            first_at: Instant::now(),
            coming: actor_coming,
            flush_queued: false,
            timer_set: false,
            next_commit: None,
            closed: false,
        });
        Ok(StorageHandle { addr, coming, arbiter })
    }

    /// A sender of jobs.
    pub fn sender(&self) -> StoreSender {
        StoreSender { addr: self.addr.clone(), coming: self.coming.clone() }
    }

    /// Commit what is queued, then stop the actor and its arbiter.
    pub async fn close(&self) {
        if let Err(e) = self.addr.send(Close).await {
            tracing::error!(error = %e, "the storage actor was gone before its last commit");
        }
        self.arbiter.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_due_at_once_or_after_linger_or_spacing_whichever_is_latest() {
        let first = Instant::now();
        // Nothing coming, no commit of several just before: at once.
        assert_eq!(commit_due(first, false, None, false), first);
        // Objects being prepared: wait for them, up to LINGER.
        assert_eq!(commit_due(first, true, None, false), first + LINGER);
        // After a commit of several: not before its spacing ends, whichever is later.
        let next = first + SPACING;
        assert_eq!(commit_due(first, false, Some(next), false), next);
        assert_eq!(commit_due(first, true, Some(next), false), next);
        let past = first.checked_sub(SPACING).unwrap_or(first);
        assert_eq!(commit_due(first, true, Some(past), false), first + LINGER);
        assert_eq!(commit_due(first, false, Some(past), false), first);
        // Someone waits for an object of the batch: the spacing does not hold it back.
        assert_eq!(commit_due(first, false, Some(next), true), first);
        assert_eq!(commit_due(first, true, Some(next), true), first + LINGER);
    }
}
