//! The script API modules: `repository`, `log`, `datetime`, `uuid`, `json`, `sequence`, `shared_storage`.

mod datetime;
mod repository;
mod shared;
mod util;

pub(crate) use shared::SharedStore;

use crate::engine::CallState;
use crate::host::{Host, HostError};
use rhai::{Dynamic, Engine, EvalAltResult, Position};
use std::sync::Arc;

/// The result type of API functions.
pub(crate) type ApiResult<T> = Result<T, Box<EvalAltResult>>;

/// A script-visible error carrying a host error (class and message).
pub(crate) fn host_error(e: HostError) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(e), Position::NONE))
}

/// A plain error message for bad arguments.
pub(crate) fn bad_argument(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), Position::NONE))
}

/// Register every API module on `engine`.
pub(crate) fn register(engine: &mut Engine, host: &Host, shared: &Arc<SharedStore>, state: &CallState) {
    engine
        .register_type_with_name::<HostError>("HostError")
        .register_get("message", |e: &mut HostError| e.message.clone())
        .register_fn("to_string", |e: &mut HostError| e.message.clone());
    engine.register_static_module("repository", repository::module(host).into());
    engine.register_static_module("sequence", repository::sequence_module(host).into());
    engine.register_static_module("log", util::log_module(state).into());
    engine.register_static_module("uuid", util::uuid_module().into());
    engine.register_static_module("json", util::json_module().into());
    engine.register_static_module("datetime", datetime::module().into());
    engine.register_static_module("shared_storage", shared::module(shared).into());
}
