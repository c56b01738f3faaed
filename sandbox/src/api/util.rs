//! `log::info/warn/error`, `uuid::v4`, `json::encode/decode`.

use super::{bad_argument, ApiResult};
use crate::convert::{from_dynamic, to_dynamic};
use crate::engine::{current, CallState};
use rhai::{Dynamic, Module};

/// A value as log text: strings as they are, anything else as JSON.
fn text(value: &Dynamic) -> String {
    if value.is_string() {
        return value.clone().into_string().unwrap_or_default();
    }
    from_dynamic(value).map(|v| v.to_string()).unwrap_or_else(|_| value.to_string())
}

/// `log::info/warn/error(message)`. (`debug` is a Rhai keyword: scripts log at debug level with
/// the built-in `debug(message)`, which the engine routes to the same log with the same fields.)
pub(crate) fn log_module(state: &CallState) -> Module {
    let mut m = Module::new();
    let s = state.clone();
    m.set_native_fn("info", move |v: Dynamic| {
        let (function, request_id) = current(&s);
        tracing::info!(target: "ferrogrid::script", function, request_id, "{}", text(&v));
        Ok(())
    });
    let s = state.clone();
    m.set_native_fn("warn", move |v: Dynamic| {
        let (function, request_id) = current(&s);
        tracing::warn!(target: "ferrogrid::script", function, request_id, "{}", text(&v));
        Ok(())
    });
    let s = state.clone();
    m.set_native_fn("error", move |v: Dynamic| {
        let (function, request_id) = current(&s);
        tracing::error!(target: "ferrogrid::script", function, request_id, "{}", text(&v));
        Ok(())
    });
    m
}

/// `uuid::v4()` (TDG's `uuid.new()`; `new` is a Rhai keyword).
pub(crate) fn uuid_module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("v4", || Ok(uuid::Uuid::new_v4().to_string()));
    m
}

/// `json::encode(value)`, `json::decode(text)`.
pub(crate) fn json_module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("encode", |v: Dynamic| -> ApiResult<String> {
        Ok(from_dynamic(&v).map_err(|e| bad_argument(e.to_string()))?.to_string())
    });
    m.set_native_fn("decode", |text: &str| -> ApiResult<Dynamic> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad_argument(format!("json::decode: invalid JSON: {e}")))?;
        to_dynamic(&value).map_err(|e| bad_argument(e.to_string()))
    });
    m
}
