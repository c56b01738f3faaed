//! Supervision of the engine's actors (actix): a panic inside a supervised actor's handler is a
//! bug; it is caught, logged and counted (`ferrogrid_actor_restarts_total{actor, name}`), and the
//! actor is stopped so that its [`actix::Supervisor`] restarts it. The actor's
//! [`actix::Supervised::restarting`] drops what it held in memory about storage and reads it
//! again; its mailbox (and so its address) survives the restart, so no message is lost.
//!
//! actix itself does not catch panics: one that unwinds out of a handler ends the actor's task
//! for good, whatever supervises it. Every handler of a supervised actor therefore runs its body
//! through [`guarded`].

use crate::metrics::metrics;
use crate::processor::panic_text;
use actix::{Actor, ActorContext, Context};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Who an actor is, for its log lines and its restart counter.
#[derive(Debug, Clone)]
pub struct ActorName {
    /// The kind of actor (`output`, `storage`, ...).
    pub kind: &'static str,
    /// Which one of its kind (an output's name).
    pub name: Arc<str>,
}

/// How long an actor that restarted `restarts` times in a row (no turn went well in between)
/// waits before it works again: nothing after no restart, then 100 ms doubling up to 30 s, so a
/// panic that comes back every time does not spin.
pub fn restart_delay(restarts: u32) -> std::time::Duration {
    match restarts {
        0 => std::time::Duration::ZERO,
        n => std::time::Duration::from_millis(100u64.saturating_mul(1 << (n - 1).min(9)).min(30_000)),
    }
}

/// Run `body` with `act` and `ctx`; after a panic, count it, log it and stop the actor so that
/// its supervisor restarts it. `None` when it panicked.
pub fn guarded<A, R>(
    who: &ActorName,
    act: &mut A,
    ctx: &mut Context<A>,
    body: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Option<R>
where
    A: Actor<Context = Context<A>>,
{
    match catch_unwind(AssertUnwindSafe(|| body(act, ctx))) {
        Ok(result) => Some(result),
        Err(panic) => {
            metrics().actor_restarts.with_label_values(&[who.kind, &*who.name]).inc();
            tracing::error!(
                actor = who.kind,
                name = %who.name,
                panic = %panic_text(&*panic),
                "actor panicked (a bug); restarting it from what is in storage"
            );
            ctx.stop();
            None
        }
    }
}

/// An arbiter on a thread of its own that carries `name` (so its actors' CPU time shows under
/// that name in `top -H`, `/proc` and profiles; actix names every arbiter thread alike). The
/// thread runs an actix system of its own; [`NamedArbiter::stop`] ends it.
pub struct NamedArbiter {
    handle: actix::ArbiterHandle,
    system: actix_rt::System,
}

impl NamedArbiter {
    /// Start the thread `name` (at most 15 bytes show on Linux).
    pub fn start(name: &str) -> std::io::Result<NamedArbiter> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name(name.to_string()).spawn(move || {
            let runner = actix_rt::System::new();
            let _ = tx.send((actix_rt::System::current(), actix_rt::Arbiter::current()));
            if let Err(e) = runner.run() {
                tracing::error!(error = %e, "an actor thread ended with an error");
            }
        })?;
        let (system, handle) = rx.recv().map_err(|_| std::io::Error::other("the actor thread did not start"))?;
        Ok(NamedArbiter { handle, system })
    }

    /// Where to start actors.
    pub fn handle(&self) -> actix::ArbiterHandle {
        self.handle.clone()
    }

    /// Stop the thread once what it is doing now ends.
    pub fn stop(&self) {
        self.system.stop();
    }
}
