//! The repair-queue actor: every operator action on parked work goes through it — the repair
//! queue (objects that failed), the output repair queue (deliveries that could not be sent) and
//! the failed jobs — with one implementation of list, filter, get, retry and delete behind the
//! three ([`ParkedQueue`], [`Shelf`](crate::parked::Shelf)).
//!
//! Claims are kept in storage, not in memory: an item is being worked on when its stored status
//! says so (a repair-queue entry `New` without an error or `In Progress`; a delivery or job that
//! is off its shelf), and every action checks and changes that status in the commit that decides
//! it. So two operators (or two instances sharing a store) never retry or delete the same item
//! twice, and a restart resumes what was claimed.
//!
//! The actor owns the retries of the repair queue: one entry's retry answers with its outcome;
//! an all-matching retry is worked through by the actor one entry at a time (the backlog is its
//! state), at the engine's pace and stopped by a shutdown between two entries. It runs on a
//! thread of its own (`ferrogrid-repair`), so its storage work never blocks a reactor, under a
//! [`Supervisor`]: a panic fails that request and restarts the actor with its backlog.

use super::{Processor, State};
use crate::actors::{guarded, ActorName, NamedArbiter};
use crate::jobs::Job;
use crate::output::Delivery;
use crate::parked::{ParkedFilter, ParkedQueue};
use crate::repair::{Entry, RepairError};
use actix::prelude::*;
use ferrogrid_connectors::Outcome;
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// Why an action did not run.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such item.
    #[error("{0} not found")]
    NotFound(String),
    /// The item is being worked on right now.
    #[error("{0} is being processed right now")]
    Busy(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Draining,
    /// It cannot be tried again as things are (its output is not configured).
    #[error("{0}")]
    Refused(String),
    /// The queue failed, or the request was bad (a cursor, an id).
    #[error(transparent)]
    Repair(#[from] RepairError),
    /// A bug: the work panicked or the actor is gone.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

impl From<crate::storage::StorageError> for RetryError {
    fn from(e: crate::storage::StorageError) -> Self {
        RetryError::Repair(e.into())
    }
}

/// The three queues of parked work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Objects that failed.
    Repair,
    /// Deliveries the output processor parked.
    OutputRepair,
    /// Jobs that failed.
    FailedJobs,
}

impl Queue {
    /// What its items are called.
    pub fn what(self) -> &'static str {
        match self {
            Queue::Repair => "repair-queue entry",
            Queue::OutputRepair => "output repair entry",
            Queue::FailedJobs => "failed job",
        }
    }
}

/// An item of one of the queues, serialised as itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ParkedItem {
    /// A repair-queue entry.
    Entry(Entry),
    /// A parked delivery.
    Delivery(Delivery),
    /// A failed job.
    Job(Job),
}

/// Which items an action means.
#[derive(Debug, Clone)]
pub enum Which {
    /// The item with this id.
    One(String),
    /// Every item matching the filter (its page and cursor aside).
    Matching(ParkedFilter),
}

type Answer<T> = Result<T, RetryError>;

#[derive(Message)]
#[rtype(result = "Answer<(Vec<ParkedItem>, Option<String>)>")]
struct Page(Queue, ParkedFilter);

#[derive(Message)]
#[rtype(result = "Answer<Vec<ParkedItem>>")]
struct All(Queue, ParkedFilter);

#[derive(Message)]
#[rtype(result = "Answer<Option<ParkedItem>>")]
struct Get(Queue, String);

#[derive(Message)]
#[rtype(result = "Answer<usize>")]
struct Retry(Queue, Which);

#[derive(Message)]
#[rtype(result = "Answer<usize>")]
struct Delete(Queue, Which);

#[derive(Message)]
#[rtype(result = "Answer<Outcome>")]
struct RetryNow {
    id: String,
    edited: Option<(Value, String)>,
}

/// The actor.
struct RepairActor {
    who: ActorName,
    processor: Weak<Processor>,
    /// Entries an all-matching retry still has to try, oldest first.
    backlog: VecDeque<String>,
    /// One of them is being processed now.
    working: bool,
}

impl Actor for RepairActor {
    type Context = Context<Self>;
}

impl Supervised for RepairActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("repair-queue actor restarting");
        // A retry in flight was dropped with the context; its entry stays `In Progress` (claimed
        // in storage) and resumes at the next start. The backlog goes on.
        self.working = false;
    }
}

fn page_of<Q: ParkedQueue>(
    queue: &Q,
    filter: &ParkedFilter,
    wrap: fn(Q::Item) -> ParkedItem,
) -> Answer<(Vec<ParkedItem>, Option<String>)> {
    let (db, shelf) = queue.shelf();
    let (items, cursor) = shelf.page::<Q::Item>(db, filter).map_err(RepairError::BadRequest)?;
    Ok((items.into_iter().map(wrap).collect(), cursor))
}

fn all_of<Q: ParkedQueue>(
    queue: &Q,
    filter: &ParkedFilter,
    wrap: fn(Q::Item) -> ParkedItem,
) -> Answer<Vec<ParkedItem>> {
    let (db, shelf) = queue.shelf();
    Ok(shelf.all::<Q::Item>(db, filter)?.into_iter().map(wrap).collect())
}

fn get_of<Q: ParkedQueue>(queue: &Q, id: &str, wrap: fn(Q::Item) -> ParkedItem) -> Answer<Option<ParkedItem>> {
    let (db, shelf) = queue.shelf();
    Ok(shelf.get::<Q::Item, _>(db, id)?.map(wrap))
}

/// The ids `which` means, oldest first.
fn ids_of<Q: ParkedQueue>(queue: &Q, which: &Which) -> Answer<Vec<String>> {
    match which {
        Which::One(id) => Ok(vec![id.clone()]),
        Which::Matching(filter) => {
            let (db, shelf) = queue.shelf();
            Ok(shelf
                .all::<Q::Item>(db, filter)?
                .iter()
                .map(|item| crate::parked::Parked::id(item).to_string())
                .collect())
        }
    }
}

fn delete_of<Q: ParkedQueue>(queue: &Q, which: &Which, what: &str) -> Answer<usize> {
    let ids = ids_of(queue, which)?;
    let taken = queue.delete_ids(&ids.iter().map(String::as_str).collect::<Vec<_>>())?;
    if let Which::One(id) = which {
        if taken.left > 0 {
            return Err(RetryError::Busy(format!("{what} \"{id}\"")));
        }
    }
    Ok(taken.taken)
}

/// `Busy` and `NotFound` of the repair queue, named.
fn named(e: RepairError) -> RetryError {
    match e {
        RepairError::Busy(id) => RetryError::Busy(format!("repair-queue entry \"{id}\"")),
        e => e.into(),
    }
}

impl RepairActor {
    fn processor(&self) -> Answer<Arc<Processor>> {
        self.processor.upgrade().ok_or(RetryError::Draining)
    }

    /// Claim repair-queue entry `id` for a retry (in storage: `In Progress`).
    fn claim(&self, id: &str, edited: Option<(Value, String)>) -> Answer<(Arc<Processor>, Entry)> {
        let processor = self.processor()?;
        if processor.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        match processor.repair().start_retry(id, edited).map_err(named)? {
            Some(entry) => Ok((processor, entry)),
            None => Err(RetryError::NotFound(format!("repair-queue entry \"{id}\""))),
        }
    }

    fn page(&self, queue: Queue, filter: &ParkedFilter) -> Answer<(Vec<ParkedItem>, Option<String>)> {
        let rt = self.processor()?.runtime_arc();
        match queue {
            Queue::Repair => page_of(&rt.repair, filter, ParkedItem::Entry),
            Queue::OutputRepair => page_of(&*rt.output_queue, filter, ParkedItem::Delivery),
            Queue::FailedJobs => page_of(&*rt.jobs, filter, ParkedItem::Job),
        }
    }

    fn all(&self, queue: Queue, filter: &ParkedFilter) -> Answer<Vec<ParkedItem>> {
        let rt = self.processor()?.runtime_arc();
        match queue {
            Queue::Repair => all_of(&rt.repair, filter, ParkedItem::Entry),
            Queue::OutputRepair => all_of(&*rt.output_queue, filter, ParkedItem::Delivery),
            Queue::FailedJobs => all_of(&*rt.jobs, filter, ParkedItem::Job),
        }
    }

    fn get(&self, queue: Queue, id: &str) -> Answer<Option<ParkedItem>> {
        let rt = self.processor()?.runtime_arc();
        match queue {
            Queue::Repair => {
                // A malformed id is a bad request here, as it always was.
                rt.repair.get(id)?;
                get_of(&rt.repair, id, ParkedItem::Entry)
            }
            Queue::OutputRepair => get_of(&*rt.output_queue, id, ParkedItem::Delivery),
            Queue::FailedJobs => get_of(&*rt.jobs, id, ParkedItem::Job),
        }
    }

    fn delete(&self, queue: Queue, which: &Which) -> Answer<usize> {
        let rt = self.processor()?.runtime_arc();
        match queue {
            Queue::Repair => {
                if let Which::One(id) = which {
                    rt.repair.get(id)?;
                }
                delete_of(&rt.repair, which, queue.what())
            }
            Queue::OutputRepair => delete_of(&*rt.output_queue, which, queue.what()),
            Queue::FailedJobs => delete_of(&*rt.jobs, which, queue.what()),
        }
    }

    fn retry(&mut self, queue: Queue, which: &Which, ctx: &mut Context<Self>) -> Answer<usize> {
        let rt = self.processor()?.runtime_arc();
        match queue {
            Queue::OutputRepair => {
                // Only to outputs the configuration has (an actor sends to them).
                let outputs = rt.config.replicated_outputs();
                let ids = match which {
                    Which::One(id) => match rt.output_queue.get_parked(id)? {
                        Some(d) if !outputs.contains(&d.output) => {
                            return Err(RetryError::Refused(format!(
                                "output repair entry \"{id}\" is for the output {}, which the configuration's output_processor does not have",
                                d.output
                            )))
                        }
                        _ => vec![id.clone()],
                    },
                    Which::Matching(filter) => {
                        let (db, shelf) = rt.output_queue.shelf();
                        shelf
                            .all::<crate::output::Delivery>(db, filter)?
                            .into_iter()
                            .filter(|d| outputs.contains(&d.output))
                            .map(|d| d.id)
                            .collect()
                    }
                };
                Ok(rt.output_queue.retry_ids(&ids.iter().map(String::as_str).collect::<Vec<_>>())?)
            }
            Queue::FailedJobs => {
                let ids = ids_of(&*rt.jobs, which)?;
                Ok(rt.jobs.retry_ids(&ids.iter().map(String::as_str).collect::<Vec<_>>())?)
            }
            Queue::Repair => {
                if self.processor()?.state() == State::Draining {
                    return Err(RetryError::Draining);
                }
                let ids = match which {
                    Which::One(id) => {
                        rt.repair.get(id)?;
                        vec![id.clone()]
                    }
                    // Entries being processed are not retried (their claim is their status).
                    Which::Matching(filter) => rt
                        .repair
                        .all_matching(filter)?
                        .into_iter()
                        .filter(|e| !e.is_unfinished())
                        .map(|e| e.id)
                        .collect(),
                };
                let count = ids.len();
                self.backlog.extend(ids);
                self.work(ctx);
                Ok(count)
            }
        }
    }

    /// Retry the next entry of the backlog, unless one is being processed; the next one follows
    /// when it ends.
    fn work(&mut self, ctx: &mut Context<Self>) {
        if self.working {
            return;
        }
        while let Some(id) = self.backlog.pop_front() {
            match self.claim(&id, None) {
                Ok((processor, entry)) => {
                    self.working = true;
                    let retried = async move { processor.submit_claimed(entry).await };
                    ctx.spawn(retried.into_actor(self).map(move |result, act, ctx| {
                        if let Err(e) = result {
                            tracing::debug!(id, error = %e, "background retry did not end");
                        }
                        act.working = false;
                        act.work(ctx);
                    }));
                    return;
                }
                Err(RetryError::Draining) => {
                    tracing::info!(left = self.backlog.len() + 1, "a shutdown stops the background retries");
                    self.backlog.clear();
                    return;
                }
                Err(e) => tracing::debug!(id, error = %e, "retry skipped"),
            }
        }
    }
}

/// A handler's body through [`guarded`]: a panic answers an internal error.
fn answer<T>(
    act: &mut RepairActor,
    ctx: &mut Context<RepairActor>,
    body: impl FnOnce(&mut RepairActor, &mut Context<RepairActor>) -> Answer<T>,
) -> Answer<T> {
    let who = act.who.clone();
    guarded(&who, act, ctx, body).unwrap_or_else(|| Err(RetryError::Internal("the repair-queue actor panicked".into())))
}

impl Handler<Page> for RepairActor {
    type Result = Answer<(Vec<ParkedItem>, Option<String>)>;

    fn handle(&mut self, Page(queue, filter): Page, ctx: &mut Self::Context) -> Self::Result {
        answer(self, ctx, |act, _| act.page(queue, &filter))
    }
}

impl Handler<All> for RepairActor {
    type Result = Answer<Vec<ParkedItem>>;

    fn handle(&mut self, All(queue, filter): All, ctx: &mut Self::Context) -> Self::Result {
        answer(self, ctx, |act, _| act.all(queue, &filter))
    }
}

impl Handler<Get> for RepairActor {
    type Result = Answer<Option<ParkedItem>>;

    fn handle(&mut self, Get(queue, id): Get, ctx: &mut Self::Context) -> Self::Result {
        answer(self, ctx, |act, _| act.get(queue, &id))
    }
}

impl Handler<Retry> for RepairActor {
    type Result = Answer<usize>;

    fn handle(&mut self, Retry(queue, which): Retry, ctx: &mut Self::Context) -> Self::Result {
        answer(self, ctx, |act, ctx| act.retry(queue, &which, ctx))
    }
}

impl Handler<Delete> for RepairActor {
    type Result = Answer<usize>;

    fn handle(&mut self, Delete(queue, which): Delete, ctx: &mut Self::Context) -> Self::Result {
        answer(self, ctx, |act, _| act.delete(queue, &which))
    }
}

impl Handler<RetryNow> for RepairActor {
    type Result = ResponseFuture<Answer<Outcome>>;

    fn handle(&mut self, RetryNow { id, edited }: RetryNow, ctx: &mut Self::Context) -> Self::Result {
        // Claimed here, in order with every other action; processed (and answered) by a task of
        // its own, so the actor goes on meanwhile.
        let claimed = answer(self, ctx, |act, _| act.claim(&id, edited));
        Box::pin(async move {
            let (processor, entry) = claimed?;
            processor.submit_claimed(entry).await
        })
    }
}

/// The repair-queue actor's address, and its thread.
pub struct Repairs {
    addr: Addr<RepairActor>,
    arbiter: NamedArbiter,
}

fn mailbox<T>(result: Result<Answer<T>, MailboxError>) -> Answer<T> {
    result.unwrap_or_else(|e| Err(RetryError::Internal(format!("the repair-queue actor: {e}"))))
}

impl Repairs {
    /// Start the actor for `processor` on `arbiter`, a thread of its own (`ferrogrid-repair`).
    pub(super) fn start(arbiter: NamedArbiter, processor: Weak<Processor>) -> Repairs {
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| RepairActor {
            who: ActorName { kind: "repair_queue", name: "parked".into() },
            processor,
            backlog: VecDeque::new(),
            working: false,
        });
        Repairs { addr, arbiter }
    }

    /// One page of `queue` matching `filter`, newest first, and the cursor of the next page.
    pub async fn page(&self, queue: Queue, filter: ParkedFilter) -> Answer<(Vec<ParkedItem>, Option<String>)> {
        mailbox(self.addr.send(Page(queue, filter)).await)
    }

    /// Every item of `queue` matching `filter`, oldest first.
    pub async fn all(&self, queue: Queue, filter: ParkedFilter) -> Answer<Vec<ParkedItem>> {
        mailbox(self.addr.send(All(queue, filter)).await)
    }

    /// Item `id` of `queue`.
    pub async fn get(&self, queue: Queue, id: &str) -> Answer<Option<ParkedItem>> {
        mailbox(self.addr.send(Get(queue, id.to_string())).await)
    }

    /// Put the items `which` of `queue` back to work; how many. Deliveries and jobs are moved at
    /// once; repair-queue entries are retried by the actor one at a time in the background.
    pub async fn retry(&self, queue: Queue, which: Which) -> Answer<usize> {
        mailbox(self.addr.send(Retry(queue, which)).await)
    }

    /// Retry repair-queue entry `id` now (optionally with an edited payload and who edited it)
    /// and answer how it ended.
    pub async fn retry_now(&self, id: &str, edited: Option<(Value, String)>) -> Answer<Outcome> {
        mailbox(self.addr.send(RetryNow { id: id.to_string(), edited }).await)
    }

    /// Delete the items `which` of `queue` (those being worked on stay); how many. One item
    /// being worked on is `Busy`.
    pub async fn delete(&self, queue: Queue, which: Which) -> Answer<usize> {
        mailbox(self.addr.send(Delete(queue, which)).await)
    }

    /// Stop the actor's thread (after the engine drained).
    pub(super) fn stop(&self) {
        self.arbiter.stop();
    }
}
