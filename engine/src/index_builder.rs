//! The index builder: builds in the background the indexes a model change added or changed
//! (`storage::catalog::migrate` marks them in the specs; until one is built, a query naming it
//! answers `INDEX_BUILDING`, and writes keep it up to date). One batch per message, each batch
//! one commit together with its progress in the catalog, so a shutdown stops it between two
//! batches and the next start goes on from there. It runs on a thread of its own
//! (`ferrogrid-index`) under a [`Supervisor`]: a panic (a bug) is counted and it restarts,
//! waiting longer after each restart in a row. After each batch it pauses as long as the batch
//! took, so ingest keeps the write lock at least half the time.

use crate::actors::{guarded, restart_delay, ActorName, NamedArbiter};
use crate::metrics::metrics;
use crate::repository::Repository;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Stored versions indexed per commit: small enough that ingest waits little for the write lock.
const BATCH: usize = 500;
/// How long after a failed batch (a storage error) the next try comes.
const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Message)]
#[rtype(result = "()")]
struct Next;

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

struct BuilderActor {
    who: ActorName,
    repository: Arc<Repository>,
    stopped: bool,
    /// Restarts in a row without a good batch between them.
    restarts: u32,
}

impl Actor for BuilderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify_later(Next, restart_delay(self.restarts));
    }
}

impl Supervised for BuilderActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.restarts += 1;
        tracing::warn!(restarts = self.restarts, "index builder restarting");
    }
}

impl BuilderActor {
    fn step(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let Some((type_name, at)) = self.repository.indexes_to_build().into_iter().next() else {
            return;
        };
        let index = self.repository.index_name(&type_name, at).unwrap_or_default();
        let started = std::time::Instant::now();
        // Test builds: `index-build-step=sleep(N)` makes each batch N ms slower.
        fail::fail_point!("index-build-step");
        match self.repository.build_index_step(&type_name, at, BATCH) {
            Ok(step) => {
                self.restarts = 0;
                if let Some(step) = step {
                    metrics().index_build_versions.with_label_values(&[&type_name, &index]).set(step.done as i64);
                    if step.finished {
                        tracing::info!(r#type = %type_name, index = %index, versions = step.done, "index built; queries use it from now on");
                    }
                }
                // As long a pause as the batch took: the build holds the write lock at most
                // half the time, and ingest goes on at about half its pace or better.
                ctx.notify_later(Next, started.elapsed());
            }
            Err(e) => {
                tracing::error!(r#type = %type_name, index = %index, error = %e, "an index build step failed; trying again");
                ctx.notify_later(Next, RETRY_AFTER);
            }
        }
    }
}

impl Handler<Next> for BuilderActor {
    type Result = ();

    fn handle(&mut self, _: Next, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| act.step(ctx));
    }
}

impl Handler<Stop> for BuilderActor {
    type Result = ();

    fn handle(&mut self, _: Stop, _: &mut Self::Context) {
        self.stopped = true;
    }
}

/// The index builder's address and thread.
pub struct IndexBuilder {
    addr: Addr<BuilderActor>,
    arbiter: NamedArbiter,
}

impl IndexBuilder {
    /// Start building what `repository`'s specs mark as to build.
    pub fn start(repository: Arc<Repository>) -> std::io::Result<IndexBuilder> {
        let arbiter = NamedArbiter::start("ferrogrid-index")?;
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| BuilderActor {
            who: ActorName { kind: "index_builder", name: "indexes".into() },
            repository,
            stopped: false,
            restarts: 0,
        });
        Ok(IndexBuilder { addr, arbiter })
    }

    /// Stop after the batch in progress (its commit holds its progress) and end the thread.
    pub async fn stop(&self) {
        if let Err(e) = self.addr.send(Stop).await {
            tracing::warn!(error = %e, "the index builder was gone before it stopped");
        }
        self.arbiter.stop();
    }
}
