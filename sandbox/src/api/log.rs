//! `log::debug/info/warn/error(msg)`: log lines from scripts, through `tracing` with target
//! `ferrogrid::script` and the fields `function` and `request_id` of the current call.
//! Strings are logged as they are; other values as compact JSON.

use rhai::{Dynamic, Module};

use crate::convert::display_text;
use crate::frame;

/// The target of all script log lines (`print`, `debug`, `log::*`).
pub const TARGET: &str = "ferrogrid::script";

#[derive(Clone, Copy)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Emit one script log line with the fields of the current call.
pub(crate) fn emit(level: Level, text: &str) {
    frame::with_current(|function, request_id| match level {
        Level::Debug => {
            tracing::debug!(target: "ferrogrid::script", function, request_id, "{text}")
        }
        Level::Info => {
            tracing::info!(target: "ferrogrid::script", function, request_id, "{text}")
        }
        Level::Warn => {
            tracing::warn!(target: "ferrogrid::script", function, request_id, "{text}")
        }
        Level::Error => {
            tracing::error!(target: "ferrogrid::script", function, request_id, "{text}")
        }
    });
}

/// Build the `log` module.
pub(crate) fn module(max_depth: usize) -> Module {
    let mut m = Module::new();
    let levels = [("debug", Level::Debug), ("info", Level::Info), ("warn", Level::Warn), ("error", Level::Error)];
    for (name, level) in levels {
        m.set_native_fn(name, move |msg: Dynamic| {
            emit(level, &display_text(&msg, max_depth));
            Ok(())
        });
    }
    m
}
