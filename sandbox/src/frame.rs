//! Per-call state: which function runs for which request, its deadline and cancel flag.
//!
//! A thread-local stack of frames is pushed at the start of each call and popped when it ends
//! (also on unwinding). The engine callbacks (`on_progress`, `print`, `debug`) and the API
//! modules read the top frame, so one set of modules serves every engine and nested calls on
//! one thread each see their own frame.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rhai::Dynamic;
use serde_json::Value;

use crate::error::{tagged, HostError, TAG_CANCELLED, TAG_OPERATIONS, TAG_TIMEOUT};
use crate::host::{DataNeed, DataScope};

/// Jobs pushed by a call (`repository::push_job(name, args)`), kept for its caller.
pub type JobSink = Arc<Mutex<Vec<(String, Value)>>>;

/// Who a call runs for, and how an admin can stop it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Id of the object being processed; appears as `request_id` on every log line.
    pub request_id: String,
    /// When set to `true`, the script stops with `ScriptErrorKind::Cancelled` (checked like
    /// the deadline, every few thousand operations).
    pub cancel: Option<Arc<AtomicBool>>,
    /// When set, `repository::push_job` puts its jobs here instead of handing them to the host:
    /// the caller commits them with the outcome of the call (an object's store), or drops them.
    pub jobs: Option<JobSink>,
    /// When set, the call runs on a caller's behalf: its `repository` calls (and those of calls
    /// it makes) are checked against the caller's data rights.
    pub scope: Option<Arc<dyn DataScope>>,
}

impl CallContext {
    /// A context with a request id, no cancel flag and no job sink.
    pub fn new(request_id: impl Into<String>) -> CallContext {
        CallContext { request_id: request_id.into(), ..CallContext::default() }
    }
}

/// How often (in operations) the clock and the cancel flag are checked.
pub(crate) const CHECK_INTERVAL: u64 = 2048;

struct Frame {
    function: Arc<str>,
    request_id: Arc<str>,
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    jobs: Option<JobSink>,
    scope: Option<Arc<dyn DataScope>>,
    /// The enclosing call's operation counts ([`OPS`], [`SPENT`]), given back when this ends.
    outer_ops: (u64, u64),
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// Operations of the evaluation running now (Rhai counts each evaluation from 0).
    static OPS: Cell<u64> = const { Cell::new(0) };
    /// Operations of the current call's other evaluations: the configuration functions it ran
    /// (`repository::call_on_storage`, a named `map_reduce` step) and the evaluations they
    /// interrupted.
    static SPENT: Cell<u64> = const { Cell::new(0) };
}

/// Pops its frame when dropped. Not `Send`: it must end on the thread that pushed it.
pub(crate) struct FrameGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        FRAMES.with(|f| {
            if let Some(frame) = f.borrow_mut().pop() {
                OPS.with(|o| o.set(frame.outer_ops.0));
                SPENT.with(|s| s.set(frame.outer_ops.1));
            }
        });
    }
}

/// Start a call of `function`; the deadline is `timeout_ms` from now.
/// A call made inside another keeps the outer call's data scope when it has none of its own.
pub(crate) fn enter(function: &Arc<str>, ctx: &CallContext, timeout_ms: u64) -> FrameGuard {
    FRAMES.with(|f| {
        let mut frames = f.borrow_mut();
        let scope = ctx.scope.clone().or_else(|| frames.last().and_then(|outer| outer.scope.clone()));
        frames.push(Frame {
            function: function.clone(),
            request_id: Arc::from(ctx.request_id.as_str()),
            deadline: Instant::now().checked_add(Duration::from_millis(timeout_ms)),
            cancel: ctx.cancel.clone(),
            jobs: ctx.jobs.clone(),
            scope,
            outer_ops: (OPS.with(|o| o.replace(0)), SPENT.with(|s| s.replace(0))),
        });
    });
    FrameGuard { _not_send: PhantomData }
}

/// The engine's `on_progress`: notes the running evaluation's count, and every
/// [`CHECK_INTERVAL`] operations checks the call's whole count against `max_operations` (Rhai
/// checks each evaluation's own), then the deadline and the cancel flag.
pub(crate) fn progress(ops: u64, max_operations: u64) -> Option<Dynamic> {
    OPS.with(|o| o.set(ops));
    if ops % CHECK_INTERVAL != 0 {
        return None;
    }
    if SPENT.with(Cell::get).saturating_add(ops) > max_operations {
        return Some(tagged(TAG_OPERATIONS, "too many operations"));
    }
    check_stop()
}

/// Run `evaluate` (an evaluation of its own, inside the running one: a configuration function
/// a script calls) on the running call's operation budget.
pub(crate) fn nested<T>(evaluate: impl FnOnce() -> T) -> T {
    let outer = OPS.with(|o| o.replace(0));
    SPENT.with(|s| s.set(s.get().saturating_add(outer)));
    let out = evaluate();
    let inner = OPS.with(|o| o.replace(outer));
    SPENT.with(|s| s.set(s.get().saturating_sub(outer).saturating_add(inner)));
    out
}

/// Called from `on_progress` (and by host loops such as `map_reduce`): the value to terminate
/// the script with, if it must stop.
pub(crate) fn check_stop() -> Option<Dynamic> {
    FRAMES.with(|f| {
        let frames = f.borrow();
        let frame = frames.last()?;
        if frame.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Some(tagged(TAG_CANCELLED, "cancelled"));
        }
        match frame.deadline {
            Some(deadline) if Instant::now() >= deadline => Some(tagged(TAG_TIMEOUT, "timeout")),
            _ => None,
        }
    })
}

/// Is the current call already cancelled (checked before a call starts)?
pub(crate) fn is_cancelled(ctx: &CallContext) -> bool {
    ctx.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Run `f` with the function name and request id of the current call (empty outside calls).
pub(crate) fn with_current<R>(f: impl FnOnce(&str, &str) -> R) -> R {
    FRAMES.with(|frames| {
        let frames = frames.borrow();
        match frames.last() {
            Some(frame) => f(&frame.function, &frame.request_id),
            None => f("", ""),
        }
    })
}

/// Check `need` against the current call's data scope (`Ok` when the call has none).
pub(crate) fn check_data(function: &str, need: DataNeed<'_>) -> Result<(), HostError> {
    let scope = FRAMES.with(|frames| frames.borrow().last().and_then(|f| f.scope.clone()));
    match scope {
        Some(scope) => scope.check(function, need),
        None => Ok(()),
    }
}

/// Keep a pushed job in the current call's sink; gives it back when the call has none.
pub(crate) fn sink_job(name: String, args: Value) -> Option<(String, Value)> {
    FRAMES.with(|frames| {
        let frames = frames.borrow();
        match frames.last().and_then(|f| f.jobs.as_ref()) {
            Some(sink) => {
                sink.lock().unwrap_or_else(PoisonError::into_inner).push((name, args));
                None
            }
            None => Some((name, args)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;

    impl DataScope for Nothing {
        fn check(&self, function: &str, _: DataNeed<'_>) -> Result<(), HostError> {
            Err(HostError::UserData(format!("{function}: refused")))
        }
    }

    #[test]
    fn a_call_inside_a_scoped_call_keeps_its_scope_and_the_scope_ends_with_it() {
        let f: Arc<str> = Arc::from("f");
        assert!(check_data("repository::find", DataNeed::Read("T")).is_ok(), "no call: nothing to check");
        {
            let _outer = enter(&f, &CallContext { scope: Some(Arc::new(Nothing)), ..CallContext::new("r") }, 1000);
            assert!(check_data("repository::find", DataNeed::Read("T")).is_err());
            {
                // A call made inside (a default_function run by a put): no scope of its own.
                let _inner = enter(&f, &CallContext::new("r"), 1000);
                assert!(check_data("repository::find", DataNeed::Read("T")).is_err(), "inherited");
            }
            assert!(check_data("repository::find", DataNeed::Read("T")).is_err());
        }
        assert!(check_data("repository::find", DataNeed::Read("T")).is_ok(), "ended with the call");
    }
}
