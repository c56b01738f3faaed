//! Jobs (TDG 2.13): `repository::push_job(name, args)` queues a run of a pipeline or function
//! durably. A job pushed while an object is processed is committed with that object's outcome
//! (stored or routed: the job exists; kept in the repair queue: it does not, so retries of the
//! object never duplicate jobs); pushed elsewhere (tasks, services, jobs), it is committed at
//! once. The runner executes pending jobs on the script workers, at most
//! `jobs.max_jobs_in_parallel` at a time; a job that fails moves to the failed-jobs queue for
//! an operator. Jobs pending or running when the engine stops run again at the next start
//! (at-least-once).
//!
//! The runner is an actix actor under a [`Supervisor`]. It owns the set of jobs running; a turn
//! reads pending jobs (on the blocking pool) when the queue's bell rings, a job ends, or a while
//! has passed, and starts as many as there are free slots on the script workers; each reports
//! [`JobEnded`]. A panic in the actor restarts it with what it knows of the running jobs kept
//! (they still report to the same mailbox).

mod queue;

pub use queue::{Job, Jobs};

use crate::actors::{guarded, ActorName};
use crate::metrics::metrics;
use crate::processor::Processor;
use actix::prelude::*;
use ferrogrid_sandbox::CallContext;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait between two turns.
const IDLE: Duration = Duration::from_millis(500);

/// The job runner of one processor.
pub struct JobRunner {
    addr: Addr<JobActor>,
}

impl JobRunner {
    /// Start running the processor's pending jobs (those left by the last stop first), on the
    /// current arbiter.
    pub fn start(processor: Arc<Processor>) -> JobRunner {
        let jobs = processor.runtime().jobs.clone();
        let max = processor.runtime().config.jobs.max_jobs_in_parallel.max(1);
        // At start, before anything is served.
        if let Ok(n) = jobs.pending_count() {
            if n > 0 {
                tracing::info!(pending = n, "running the jobs left pending by the last stop");
            }
        }
        let addr = Supervisor::start(move |_| JobActor {
            who: ActorName { kind: "job_runner", name: "jobs".into() },
            processor,
            jobs,
            max,
            running: HashSet::new(),
            turning: false,
            again: false,
            next: None,
            bell: None,
            stopping: false,
            restarts: 0,
        });
        JobRunner { addr }
    }

    /// Stop starting jobs (running ones finish on the workers; pending ones wait for the next
    /// start).
    pub async fn shutdown(&self) {
        if let Err(e) = self.addr.send(Stop).await {
            tracing::error!(error = %e, "the job runner was gone before it stopped");
        }
    }
}

/// The queue's bell rang: there may be new jobs.
#[derive(Message)]
#[rtype(result = "()")]
struct Bell;

/// A job ended; `recorded` when its end is committed (else it stays marked running, so that it
/// is not started again in a loop while storage fails; it runs again at the next start).
#[derive(Message)]
#[rtype(result = "()")]
struct JobEnded {
    key: Vec<u8>,
    recorded: bool,
}

/// Start no more jobs.
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

struct JobActor {
    who: ActorName,
    processor: Arc<Processor>,
    jobs: Arc<Jobs>,
    max: usize,
    /// Keys of the jobs running on the script workers.
    running: HashSet<Vec<u8>>,
    turning: bool,
    again: bool,
    next: Option<SpawnHandle>,
    bell: Option<SpawnHandle>,
    stopping: bool,
    /// Restarts since the last turn that went well.
    restarts: u32,
}

impl JobActor {
    fn schedule(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        if self.turning {
            self.again = true;
            return;
        }
        if let Some(handle) = self.next.take() {
            ctx.cancel_future(handle);
        }
        self.next = Some(ctx.run_later(delay, |act, ctx| {
            let who = act.who.clone();
            guarded(&who, act, ctx, |act, ctx| act.turn(ctx));
        }));
    }

    /// Read pending jobs off the reactor, then start them.
    fn turn(&mut self, ctx: &mut Context<Self>) {
        self.next = None;
        let slots = self.max.saturating_sub(self.running.len());
        if self.turning || self.stopping || slots == 0 {
            return;
        }
        self.turning = true;
        self.again = false;
        let (jobs, running) = (self.jobs.clone(), self.running.clone());
        let read = async move { tokio::task::spawn_blocking(move || jobs.pending(&running, slots)).await };
        ctx.spawn(read.into_actor(self).map(|read, act, ctx| {
            let who = act.who.clone();
            guarded(&who, act, ctx, |act, ctx| {
                act.turning = false;
                let batch = match read {
                    Ok(Ok(batch)) => batch,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "reading pending jobs failed");
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading pending jobs failed");
                        Vec::new()
                    }
                };
                let started = !batch.is_empty();
                for (key, job) in batch {
                    if act.stopping {
                        break;
                    }
                    act.start(key, job, ctx);
                }
                act.restarts = 0;
                // A full batch may have left more behind; a ring during the turn asks again.
                let wait = if act.again || started { Duration::ZERO } else { IDLE };
                act.schedule(wait, ctx);
            });
        }));
    }

    /// Run `job` on a script worker; it reports [`JobEnded`].
    fn start(&mut self, key: Vec<u8>, job: Job, ctx: &mut Context<Self>) {
        self.running.insert(key.clone());
        let labels = [job.name.clone()];
        metrics().jobs_started.with_label_values(&labels).inc();
        metrics().jobs_running.with_label_values(&labels).inc();
        let (jobs, addr) = (self.jobs.clone(), ctx.address());
        let ran = self.processor.on_worker(move |rt, script_engine| {
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
            if let Err(e) = &recorded {
                tracing::error!(error = %e, "recording the end of a job failed; it runs again at the next start");
            }
            addr.do_send(JobEnded { key, recorded: recorded.is_ok() });
        });
        // The job is queued on the workers once its lease is taken (at once, unless a new
        // configuration is being switched to); its end comes as a message (a pool that closed
        // meanwhile drops it: it runs again at the next start).
        actix_rt::spawn(async move {
            let _ = ran.await;
        });
    }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let mut bell = self.jobs.bell();
        let me = ctx.address().downgrade();
        let forward = async move {
            while bell.changed().await.is_ok() {
                match me.upgrade() {
                    Some(addr) => addr.do_send(Bell),
                    None => break,
                }
            }
        };
        self.bell = Some(ctx.spawn(forward.into_actor(self)));
        self.schedule(crate::actors::restart_delay(self.restarts), ctx);
    }
}

impl Supervised for JobActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // The jobs running report to this same mailbox: the set of them stays.
        tracing::warn!(running = self.running.len(), "job runner restarting");
        self.restarts += 1;
        self.turning = false;
        self.next = None;
        self.bell = None;
    }
}

impl Handler<Bell> for JobActor {
    type Result = ();

    fn handle(&mut self, _: Bell, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| act.schedule(Duration::ZERO, ctx));
    }
}

impl Handler<JobEnded> for JobActor {
    type Result = ();

    fn handle(&mut self, ended: JobEnded, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| {
            if ended.recorded {
                act.running.remove(&ended.key);
            }
            act.schedule(Duration::ZERO, ctx);
        });
    }
}

impl Handler<Stop> for JobActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        self.stopping = true;
        for handle in [self.next.take(), self.bell.take()].into_iter().flatten() {
            ctx.cancel_future(handle);
        }
    }
}
