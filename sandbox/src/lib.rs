//! Ferrogrid's script sandbox: a hardened Rhai runtime and the script API.
//!
//! A function file is a Rhai script; its input is the variable `param`, its result the value of
//! its last expression (TDG's contract). Scripts reach nothing outside the engine except through
//! the API modules registered here (`repository`, `log`, `datetime`, `uuid`, `json`, `sequence`,
//! `shared_storage`) and run under [`Limits`] that turn into a [`ScriptError`], never a hang or a crash.
//! The engine provides storage through the host traits in [`host`].

mod api;
mod convert;
mod engine;
mod error;
pub mod host;
mod limits;

pub use convert::{from_dynamic, to_dynamic};
pub use engine::{CallContext, CompiledScript, Sandbox, ScriptEngine};
pub use error::{ErrorKind, ScriptError};
pub use host::{ErrorClass, Host, HostError, Repository, Sequences};
pub use limits::Limits;
pub use rhai::Dynamic;

#[cfg(test)]
mod tests;
