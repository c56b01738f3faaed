//! `json::encode(value)` and `json::decode(text)`: JSON text <-> script values, with the same
//! conversions as everywhere else (INT stays integer, `()` is `null`) and nesting bounded by
//! `sandbox.max_value_depth`. Decode errors give the line and column.

use rhai::{Dynamic, EvalAltResult, ImmutableString, Module};

use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::error::api_error;

/// Build the `json` module.
pub(crate) fn module(max_depth: usize) -> Module {
    let mut m = Module::new();
    m.set_native_fn("encode", move |value: Dynamic| {
        let json = dynamic_to_json(&value, max_depth).map_err(|msg| api_error(format!("json::encode: {msg}")))?;
        Ok(ImmutableString::from(json.to_string()))
    });
    m.set_native_fn("decode", move |text: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| api_error(format!("json::decode: {e}")))?;
        json_to_dynamic(&json, max_depth).map_err(|msg| api_error(format!("json::decode: {msg}")))
    });
    m
}
