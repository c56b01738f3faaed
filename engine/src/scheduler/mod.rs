//! Tasks (TDG 2.13): periodical tasks fire on their cron schedule, continuous ones again
//! `pause_sec` after each run, single-shot ones when an operator starts them. One scheduler
//! actor decides (on an arbiter of its own, under a [`Supervisor`]; it owns the live state of
//! every task); the runs execute on the script workers and report back to it. A task never runs
//! twice at once. Runs are recorded (the last `keep` finished ones per task); a stopped task
//! stays stopped across restarts; a periodical slot missed while the engine was down runs once
//! at start.

mod runs;

pub use runs::{RunStatus, RunStore, TaskRun, TaskState};

use crate::actors::{guarded, ActorName, NamedArbiter};
use crate::config::{TaskConfig, TaskKind};
use crate::metrics::metrics;
use crate::processor::Processor;
use actix::prelude::*;
use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::Sender;
use ferrogrid_pipelines::PipelineError;
use ferrogrid_sandbox::{CallContext, ScriptErrorKind};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest the scheduler sleeps without looking at the clock again.
const TICK: Duration = Duration::from_millis(500);
/// Longest an operator's request waits for the scheduler's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// The scheduler's mailbox.
const MAILBOX: usize = 1 << 16;
/// Longest result text kept in a run.
const RESULT_CHARS: usize = 1000;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task.
    #[error("task \"{0}\" is not defined")]
    NotFound(String),
    /// It is running already.
    #[error("task \"{0}\" is running already")]
    Running(String),
    /// A run that has not ended.
    #[error("{0}")]
    NotEnded(String),
    /// The scheduler is stopped (shutdown).
    #[error("the scheduler is stopped")]
    Stopped,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The scheduler's thread could not start.
    #[error("starting the scheduler's thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A task as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    /// Task name.
    pub name: String,
    /// `single_shot`, `continuous`, `periodical`.
    pub kind: &'static str,
    /// Its pipeline.
    pub pipeline: String,
    /// Cron schedule (periodical).
    pub schedule: Option<String>,
    /// Pause between runs (continuous).
    pub pause_sec: Option<f64>,
    /// `running`, `stopped`, `scheduled` or `idle` (a single-shot task waiting to be started).
    pub state: &'static str,
    /// When it runs next (ISO 8601 UTC).
    pub next_run_at: Option<String>,
    /// Its recorded runs, newest first.
    pub runs: Vec<TaskRun>,
}

/// An operator's request, answered on `reply` (the caller waits off the reactor).
#[derive(Message)]
#[rtype(result = "()")]
enum Command {
    Start(String, Sender<Result<String, TaskError>>),
    Stop(String, Sender<Result<(), TaskError>>),
    List(Sender<Result<Vec<TaskInfo>, TaskError>>),
    Shutdown(Sender<()>),
    Reconfigure(IndexMap<String, TaskConfig>, usize, Sender<Result<(), TaskError>>),
}

/// A run of the task ended (its cancel flag tells which run).
#[derive(Message)]
#[rtype(result = "()")]
struct Finished(String, Arc<AtomicBool>);

/// The live state of one task.
#[derive(Default)]
struct Live {
    /// The cancel flag of the run in progress.
    running: Option<Arc<AtomicBool>>,
    /// When it fires next (periodical, continuous).
    next: Option<DateTime<Utc>>,
    /// An operator stopped it.
    stopped: bool,
}

/// The scheduler actor: the tasks, their schedules and their live state.
struct SchedulerActor {
    who: ActorName,
    engine: Arc<Processor>,
    store: RunStore,
    tasks: IndexMap<String, TaskConfig>,
    schedules: HashMap<String, cron::Schedule>,
    live: HashMap<String, Live>,
    /// Runs a configuration cancelled (their task removed or changed) that have not ended yet,
    /// by task: a task of that name does not run again until they end.
    lingering: HashMap<String, Arc<AtomicBool>>,
    running_threshold: usize,
    /// The next look at the clock.
    tick: Option<SpawnHandle>,
    shut_down: bool,
    /// Restarts since the clock was last looked at without a panic.
    restarts: u32,
}

/// The scheduler of one engine: a handle to its actor.
pub struct Scheduler {
    addr: Addr<SchedulerActor>,
    store: RunStore,
    arbiter: NamedArbiter,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn cut(text: String) -> String {
    match text.char_indices().nth(RESULT_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

impl Scheduler {
    /// Start scheduling the tasks of the engine's configuration.
    pub fn start(engine: Arc<Processor>) -> Result<Arc<Scheduler>, TaskError> {
        let config = &engine.runtime().config;
        let tasks = config.tasks.clone();
        let running_threshold = config.task_runner.running_count_threshold;
        let store = RunStore::new(engine.runtime().db.clone());
        let failed = store.fail_unfinished(&now_text())?;
        if failed > 0 {
            tracing::warn!(failed, "task runs interrupted by the last stop are marked failed");
        }
        let mut schedules = HashMap::new();
        let mut live = HashMap::new();
        let now = Utc::now();
        for (name, task) in &tasks {
            let Some((entry, schedule)) = plan_task(&store, name, task, now)? else { continue };
            if let Some(schedule) = schedule {
                schedules.insert(name.clone(), schedule);
            }
            live.insert(name.clone(), entry);
        }
        let actor_store = store.clone();
        let arbiter = NamedArbiter::start("ferrogrid-sched")?;
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| SchedulerActor {
            who: ActorName { kind: "scheduler", name: "tasks".into() },
            engine,
            store: actor_store,
            tasks,
            schedules,
            live,
            lingering: HashMap::new(),
            running_threshold,
            tick: None,
            shut_down: false,
            restarts: 0,
        });
        Ok(Arc::new(Scheduler { addr, store, arbiter }))
    }

    /// Send `command` (made with a reply channel) and wait for the answer: call off the reactor.
    fn ask<T>(&self, command: impl FnOnce(Sender<T>) -> Command) -> Result<T, TaskError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.addr.try_send(command(reply)).map_err(|_| TaskError::Stopped)?;
        answer.recv_timeout(ASK_TIMEOUT).map_err(|_| TaskError::Stopped)
    }

    /// Run `task` now (a single-shot task, or an extra run of any other); clears a stop.
    /// Returns the run id.
    pub fn start_task(&self, task: &str) -> Result<String, TaskError> {
        self.ask(|reply| Command::Start(task.to_string(), reply))?
    }

    /// Stop `task`: a running run is cancelled at its next sandbox check, and the task is not
    /// scheduled again until it is started.
    pub fn stop_task(&self, task: &str) -> Result<(), TaskError> {
        self.ask(|reply| Command::Stop(task.to_string(), reply))?
    }

    /// Forget a finished run.
    pub fn forget(&self, run_id: &str) -> Result<bool, TaskError> {
        self.store.forget(run_id)?.map_err(TaskError::NotEnded)
    }

    /// Every task with its state, next run and recorded runs.
    pub fn list(&self) -> Result<Vec<TaskInfo>, TaskError> {
        self.ask(Command::List)?
    }

    /// Take the tasks of a new configuration version (see `SchedulerActor::reconfigure`).
    pub async fn reconfigure(
        &self,
        tasks: IndexMap<String, TaskConfig>,
        running_threshold: usize,
    ) -> Result<(), TaskError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.addr.send(Command::Reconfigure(tasks, running_threshold, reply)).await.map_err(|_| TaskError::Stopped)?;
        answer.try_recv().map_err(|_| TaskError::Stopped)?
    }

    /// Stop scheduling and cancel the runs in progress (they end as `stopped`... or finish).
    pub async fn shutdown(&self) {
        let (reply, _answer) = crossbeam_channel::bounded(1);
        if self.addr.send(Command::Shutdown(reply)).await.is_err() {
            tracing::error!("the scheduler was gone before it stopped");
        }
        self.arbiter.stop();
    }
}

/// The live state of `task` when it is (re)scheduled at `now`, and its schedule (periodical);
/// `None` for a periodical task whose schedule does not parse (checked at load already: it never
/// fires).
fn plan_task(
    store: &RunStore,
    name: &str,
    task: &TaskConfig,
    now: DateTime<Utc>,
) -> Result<Option<(Live, Option<cron::Schedule>)>, TaskError> {
    let state = store.state(name)?;
    let mut entry = Live { stopped: state.stopped, ..Live::default() };
    let mut schedule = None;
    match task.kind {
        TaskKind::Periodical => {
            let Some(parsed) = task.schedule.as_deref().and_then(|s| crate::config::schedule::parse(s).ok()) else {
                return Ok(None);
            };
            // Fired last on another schedule (the configuration changed it): its slots since are
            // no missed slots of this one.
            let same_schedule = state.fired_on.as_deref().is_none_or(|s| s == parsed.to_string());
            let last = state
                .last_fired_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .filter(|_| same_schedule);
            let (next, missed) = first_fire(&parsed, last.map(|l| l.with_timezone(&Utc)), now);
            entry.next = next;
            if missed && !entry.stopped {
                tracing::info!(task = %name, "running a periodical task whose slot passed while the engine was down");
            }
            schedule = Some(parsed);
        }
        TaskKind::Continuous => entry.next = Some(now),
        TaskKind::SingleShot => {}
    }
    Ok(Some((entry, schedule)))
}

impl SchedulerActor {
    /// Take the tasks of a new configuration version: a removed task is cancelled (its run ends
    /// at its next sandbox check) and forgotten, a new or changed one is scheduled afresh, an
    /// unchanged one goes on as it was.
    fn reconfigure(&mut self, tasks: IndexMap<String, TaskConfig>, running_threshold: usize) -> Result<(), TaskError> {
        let now = Utc::now();
        let unchanged = |name: &str, task: &TaskConfig, old: &IndexMap<String, TaskConfig>| {
            old.get(name).is_some_and(|o| serde_json::to_value(o).ok() == serde_json::to_value(task).ok())
        };
        // Runs of removed or changed tasks are cancelled; a changed task starts again only once
        // its run has ended (the run's `Finished` clears `running`).
        for name in self.tasks.keys() {
            let kept = tasks.get(name).is_some_and(|task| unchanged(name, task, &self.tasks));
            if kept {
                continue;
            }
            self.schedules.remove(name);
            if let Some(live) = self.live.remove(name) {
                if let Some(cancel) = live.running {
                    tracing::info!(task = %name, "a new configuration removed or changed the task: its run is cancelled");
                    cancel.store(true, Ordering::Release);
                    self.lingering.insert(name.clone(), cancel);
                }
            }
        }
        for (name, task) in &tasks {
            if unchanged(name, task, &self.tasks) {
                continue;
            }
            if let Some((mut entry, schedule)) = plan_task(&self.store, name, task, now)? {
                if let Some(schedule) = schedule {
                    self.schedules.insert(name.clone(), schedule);
                }
                entry.running = self.lingering.get(name).cloned();
                self.live.insert(name.clone(), entry);
            }
        }
        self.tasks = tasks;
        self.running_threshold = running_threshold;
        Ok(())
    }

    /// Look at the clock again when the next task is due (at most [`TICK`] from now).
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if self.shut_down {
            return;
        }
        if let Some(handle) = self.tick.take() {
            ctx.cancel_future(handle);
        }
        let now = Utc::now();
        let wait = self
            .live
            .values()
            .filter(|l| !l.stopped && l.running.is_none())
            .filter_map(|l| l.next)
            .min()
            .map_or(TICK, |next| (next - now).to_std().unwrap_or(Duration::ZERO).min(TICK));
        self.tick = Some(ctx.run_later(wait, |act, ctx| {
            act.tick = None;
            let who = act.who.clone();
            guarded(&who, act, ctx, |act, ctx| {
                act.fire_due(ctx);
                act.schedule_tick(ctx);
            });
        }));
    }

    /// Every task with its state, next run and recorded runs.
    fn list(&self) -> Result<Vec<TaskInfo>, TaskError> {
        let mut out = Vec::new();
        for (name, task) in &self.tasks {
            let entry = self.live.get(name);
            let state = match entry {
                Some(l) if l.running.is_some() => "running",
                Some(l) if l.stopped => "stopped",
                Some(l) if l.next.is_some() => "scheduled",
                _ => "idle",
            };
            out.push(TaskInfo {
                name: name.clone(),
                kind: task.kind.as_str(),
                pipeline: task.pipeline.clone(),
                schedule: task.schedule.clone(),
                pause_sec: task.pause_sec,
                state,
                next_run_at: entry
                    .filter(|l| !l.stopped)
                    .and_then(|l| l.next)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                runs: self.store.list(name)?,
            });
        }
        Ok(out)
    }

    /// Launch every task whose time has come.
    fn fire_due(&mut self, ctx: &mut Context<Self>) {
        let now = Utc::now();
        let due: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| !l.stopped && l.running.is_none() && l.next.is_some_and(|n| n <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            if let Some(schedule) = self.schedules.get(&name) {
                // A state that cannot be read is not written back (it would clear a stop).
                match self.store.state(&name) {
                    Ok(mut state) => {
                        state.last_fired_at = Some(now.to_rfc3339_opts(SecondsFormat::Millis, true));
                        state.fired_on = Some(schedule.to_string());
                        if let Err(e) = self.store.set_state(&name, &state) {
                            tracing::error!(task = %name, error = %e, "recording when the task fired failed");
                        }
                    }
                    Err(e) => tracing::error!(task = %name, error = %e, "reading the task's state failed"),
                }
                if let Some(l) = self.live.get_mut(&name) {
                    l.next = schedule.after(&now).next();
                }
            }
            if let Err(e) = self.launch(&name, ctx) {
                tracing::error!(task = %name, error = %e, "starting the task failed");
            }
        }
    }

    fn start(&mut self, name: &str, ctx: &mut Context<Self>) -> Result<String, TaskError> {
        self.set_stopped(name, false)?;
        self.launch(name, ctx)
    }

    fn stop(&mut self, name: &str) -> Result<(), TaskError> {
        self.set_stopped(name, true)
    }

    /// Record (on disk and live) whether an operator stopped `name`; a stop also cancels the
    /// run in progress.
    fn set_stopped(&mut self, name: &str, stopped: bool) -> Result<(), TaskError> {
        if !self.tasks.contains_key(name) {
            return Err(TaskError::NotFound(name.to_string()));
        }
        let mut state = self.store.state(name)?;
        if state.stopped != stopped {
            state.stopped = stopped;
            self.store.set_state(name, &state)?;
        }
        let l = self.live.entry(name.to_string()).or_default();
        l.stopped = stopped;
        if let (true, Some(cancel)) = (stopped, &l.running) {
            cancel.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn finished(&mut self, name: &str, run: &Arc<AtomicBool>) {
        if self.lingering.get(name).is_some_and(|l| Arc::ptr_eq(l, run)) {
            self.lingering.remove(name);
        }
        let Some(task) = self.tasks.get(name) else { return };
        // Only the end of the run it is waiting for (a cancelled run of an earlier version of
        // the task ends without touching the state of the current one's run).
        if let Some(l) = self.live.get_mut(name).filter(|l| l.running.as_ref().is_some_and(|r| Arc::ptr_eq(r, run))) {
            l.running = None;
            let now = Utc::now();
            match task.kind {
                TaskKind::Continuous if !l.stopped => {
                    let pause =
                        Duration::try_from_secs_f64(task.pause_sec.unwrap_or(0.0).max(0.0)).unwrap_or(Duration::ZERO);
                    l.next = Some(chrono::Duration::from_std(pause).map_or(now, |p| now + p));
                }
                // Slots that came while the run was going are skipped, not run late.
                TaskKind::Periodical if l.next.is_some_and(|n| n <= now) => {
                    l.next = self.schedules.get(name).and_then(|s| s.after(&now).next());
                }
                _ => {}
            }
        }
        if let Err(e) = self.store.trim(name, task.keep) {
            tracing::error!(task = %name, error = %e, "trimming the task history failed");
        }
    }

    /// Record a new run of `name` and hand it to a script worker; the id of the run.
    fn launch(&mut self, name: &str, ctx: &mut Context<Self>) -> Result<String, TaskError> {
        let task = self.tasks.get(name).ok_or_else(|| TaskError::NotFound(name.to_string()))?;
        let cancel = Arc::new(AtomicBool::new(false));
        let id = uuid::Uuid::now_v7().to_string();
        {
            let running_now = self.live.values().filter(|l| l.running.is_some()).count() + 1;
            let l = self.live.entry(name.to_string()).or_default();
            if l.running.is_some() {
                return Err(TaskError::Running(name.to_string()));
            }
            l.running = Some(cancel.clone());
            if running_now > self.running_threshold {
                tracing::warn!("Too many running pipelines. Now running {running_now} pipelines");
            }
        }
        let mut run = TaskRun {
            id: id.clone(),
            task: name.to_string(),
            kind: task.kind.as_str().to_string(),
            status: RunStatus::Running,
            started_at: now_text(),
            finished_at: None,
            result: None,
            error: None,
        };
        if let Err(e) = self.store.put(&run) {
            if let Some(l) = self.live.get_mut(name) {
                l.running = None;
            }
            return Err(e.into());
        }
        let labels = [name, task.kind.as_str()];
        metrics().tasks_started.with_label_values(&labels).inc();
        metrics().tasks_running.with_label_values(&labels).inc();
        tracing::info!(task = %name, run = %id, "task started");
        let (store, addr) = (self.store.clone(), ctx.address());
        let pipeline = task.pipeline.clone();
        let param = json!({"task": name, "run_id": id, "kind": task.kind.as_str()});
        let task_name = name.to_string();
        drop(self.engine.on_worker_unleased(move |rt, script_engine| {
            let started = Instant::now();
            let run_cancel = cancel.clone();
            let ctx = CallContext { request_id: run.id.clone(), cancel: Some(cancel), jobs: None, scope: None };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.pipelines.run(script_engine, &pipeline, param, &ctx)
            }))
            .unwrap_or_else(|_| {
                Err(PipelineError::Contract { function: pipeline.clone(), message: "the run panicked (a bug)".into() })
            });
            // What the run wrote (objects, jobs) is on disk before it is reported completed.
            if let Err(e) = rt.db.sync() {
                tracing::error!(task = %run.task, error = %e, "flushing the writes of a task run failed");
            }
            let labels = [task_name.as_str(), run.kind.as_str()];
            metrics().tasks_execution_seconds.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
            metrics().tasks_running.with_label_values(&labels).dec();
            run.finished_at = Some(now_text());
            match result {
                Ok(value) => {
                    run.status = RunStatus::Completed;
                    run.result = Some(cut(value_text(&value)));
                    metrics().tasks_succeeded.with_label_values(&labels).inc();
                }
                Err(e) => {
                    let cancelled =
                        matches!(&e, PipelineError::Script(s) if matches!(s.kind, ScriptErrorKind::Cancelled));
                    run.status = if cancelled { RunStatus::Stopped } else { RunStatus::Failed };
                    run.error = Some(if cancelled { "stopped by an operator".to_string() } else { e.to_string() });
                    let counter = if cancelled { &metrics().tasks_stopped } else { &metrics().tasks_failed };
                    counter.with_label_values(&labels).inc();
                }
            }
            tracing::info!(task = %run.task, run = %run.id, status = ?run.status, "task ended");
            if let Err(e) = store.put(&run) {
                tracing::error!(task = %run.task, error = %e, "recording the end of a task run failed");
            }
            addr.do_send(Finished(run.task.clone(), run_cancel));
        }));
        Ok(id)
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Callers share one address: room for every request they may have queued at once.
        ctx.set_mailbox_capacity(MAILBOX);
        if self.restarts > 0 {
            // After a panic, wait (longer each time in a row) before looking at the clock.
            let delay = crate::actors::restart_delay(self.restarts);
            self.tick = Some(ctx.run_later(delay, |act, ctx| {
                act.tick = None;
                let who = act.who.clone();
                guarded(&who, act, ctx, |act, ctx| {
                    act.fire_due(ctx);
                    act.restarts = 0;
                    act.schedule_tick(ctx);
                });
            }));
            return;
        }
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| {
            act.fire_due(ctx);
            act.schedule_tick(ctx);
        });
    }
}

impl Supervised for SchedulerActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // The live state stays: the runs in progress report to this same mailbox, and whether a
        // task is stopped is on disk as well. The clock is looked at again at once.
        tracing::warn!("scheduler restarting");
        self.restarts += 1;
        self.tick = None;
    }
}

impl Handler<Command> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, command: Command, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| {
            match command {
                Command::Start(name, reply) => {
                    let _ = reply.send(act.start(&name, ctx));
                }
                Command::Stop(name, reply) => {
                    let _ = reply.send(act.stop(&name));
                }
                Command::List(reply) => {
                    let _ = reply.send(act.list());
                }
                Command::Reconfigure(tasks, threshold, reply) => {
                    let _ = reply.send(act.reconfigure(tasks, threshold));
                    act.schedule_tick(ctx);
                }
                Command::Shutdown(reply) => {
                    act.shut_down = true;
                    if let Some(handle) = act.tick.take() {
                        ctx.cancel_future(handle);
                    }
                    for cancel in act.live.values().filter_map(|l| l.running.as_ref()) {
                        cancel.store(true, Ordering::Release);
                    }
                    let _ = reply.send(());
                    return;
                }
            }
            act.schedule_tick(ctx);
        });
    }
}

impl Handler<Finished> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, Finished(name, run): Finished, ctx: &mut Self::Context) {
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| {
            act.finished(&name, &run);
            act.schedule_tick(ctx);
        });
    }
}

/// When a periodical task fires first after a start: at once when a slot passed since it last
/// fired (one run, however many slots were missed), else at its next slot. The flag says whether
/// a slot was missed.
fn first_fire(
    schedule: &cron::Schedule,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, bool) {
    match last.and_then(|l| schedule.after(&l).next()).filter(|slot| *slot <= now) {
        Some(missed) => (Some(missed), true),
        None => (schedule.after(&now).next(), false),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    /// A task fired at 03:00 on "0 0 * * * *" (hourly); at 14:00 its schedule becomes
    /// "0 30 * * * *": the slots at half past since are no slots it missed, it fires at 14:30.
    /// Unchanged, its missed slots (04:00 on) bring one run at once.
    #[test]
    fn a_changed_schedule_catches_up_no_slot_of_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(crate::storage::Db::open(dir.path().join("db")).unwrap());
        let state = runs::TaskState {
            last_fired_at: Some("2026-01-01T03:00:00.000Z".into()),
            fired_on: Some(crate::config::schedule::parse("0 0 * * * *").unwrap().to_string()),
            stopped: false,
        };
        store.set_state("stats", &state).unwrap();
        let task = |schedule: &str| TaskConfig {
            kind: TaskKind::Periodical,
            pipeline: "p".into(),
            keep: 10,
            pause_sec: None,
            schedule: Some(schedule.into()),
        };
        let now = at("2026-01-01T14:00:00Z");
        let (live, _) = plan_task(&store, "stats", &task("0 30 * * * *"), now).unwrap().unwrap();
        assert_eq!(live.next, Some(at("2026-01-01T14:30:00Z")));
        let (live, _) = plan_task(&store, "stats", &task("0 0 * * * *"), now).unwrap().unwrap();
        assert!(live.next.is_some_and(|n| n <= now), "a missed slot of the same schedule: at once");
    }

    #[test]
    fn a_missed_slot_fires_once_at_start_and_then_the_schedule_resumes() {
        let every_minute = crate::config::schedule::parse("0 * * * * *").unwrap();
        // Last fired 10:00, down until 10:05:30: five slots missed, one run at once.
        let (next, missed) = first_fire(&every_minute, Some(at("2026-01-01T10:00:00Z")), at("2026-01-01T10:05:30Z"));
        assert!(missed);
        assert!(next.is_some_and(|n| n <= at("2026-01-01T10:05:30Z")), "{next:?}");
        // After that run the next slot is computed from now: 10:06, not 10:02.
        assert_eq!(every_minute.after(&at("2026-01-01T10:05:30Z")).next(), Some(at("2026-01-01T10:06:00Z")));
        // Nothing missed: the next slot.
        let (next, missed) = first_fire(&every_minute, Some(at("2026-01-01T10:05:00Z")), at("2026-01-01T10:05:30Z"));
        assert_eq!((next, missed), (Some(at("2026-01-01T10:06:00Z")), false));
        // Never fired before (a new task): no catch-up.
        let (next, missed) = first_fire(&every_minute, None, at("2026-01-01T10:05:30Z"));
        assert_eq!((next, missed), (Some(at("2026-01-01T10:06:00Z")), false));
    }
}
