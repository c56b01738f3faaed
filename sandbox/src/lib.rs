//! Ferrogrid's script runtime: a hardened Rhai engine, its limits, JSON <-> Rhai conversions,
//! the script API modules and the host traits the engine implements.
//!
//! A function file is a Rhai script; its input is the variable `param`, its result the value of
//! its last expression. Compile once with [`Sandbox::compile`], run on a worker thread with
//! [`ScriptEngine::run`] / [`ScriptEngine::run_json`]. See README.md for the script API.

mod api;
mod convert;
mod engine;
mod error;
mod frame;
mod guard;
mod host;
mod limits;
mod sandbox;
pub mod xmltree;

#[cfg(test)]
mod tests;

pub use api::log::TARGET as LOG_TARGET;
pub use convert::{from_dynamic, to_dynamic, DEFAULT_MAX_DEPTH};
pub use error::{ErrorClass, HostError, LimitKind, ScriptError, ScriptErrorKind};
pub use frame::{CallContext, JobSink};
pub use host::{DataAccess, DataNeed, DataScope, Host, Sequences};
pub use limits::{Limits, MAX_VALUE_DEPTH};
pub use rhai::Dynamic;
pub use sandbox::{spawn_script_thread, CompiledScript, Sandbox, ScriptEngine, SCRIPT_STACK_SIZE};
