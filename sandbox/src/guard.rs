//! Depth guards for deeply nested values.
//!
//! Rhai's size limits count nested elements together, so a script may still build an array
//! nested tens of thousands of levels deep (`a = [a]` in a loop). Rhai prints and compares
//! arrays and maps by calling `to_debug` / `==` once per level through its full function
//! dispatch, which costs kilobytes of stack per level and aborts the process long before the
//! size limits stop the script. Every such recursion goes through the functions below (the
//! package versions of `contains`, `index_of`, `dedup`, string building and interpolation
//! call `==` / `to_string` / `to_debug` for each element), which the engine's own namespace
//! resolves before the packages:
//!
//! - printing never fails (Rhai would fall back to an unguarded formatter): levels deeper than
//!   `sandbox.max_value_depth` are shown as `...`;
//! - comparing values deeper than that is a `max_value_depth` limit error.
//!
//! What remains recursive inside Rhai (clone, drop, size accounting) needs far less stack per
//! level; `SCRIPT_STACK_SIZE` covers it for values at the configured size limits.

use std::fmt::Write;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext};

use crate::error::VALUE_DEPTH_MESSAGE;

const PRINT_NAMES: [&str; 4] = ["print", "to_string", "debug", "to_debug"];

/// Register the guarded printing and comparison functions on `engine`.
pub(crate) fn register(engine: &mut Engine, max_depth: usize) {
    for name in PRINT_NAMES {
        engine.register_fn(name, move |ctx: NativeCallContext, a: &mut Array| {
            let mut out = String::new();
            format_array(&ctx, a, max_depth, 1, &mut out);
            ImmutableString::from(out)
        });
        engine.register_fn(name, move |ctx: NativeCallContext, m: &mut Map| {
            let mut out = String::new();
            format_map(&ctx, m, max_depth, 1, &mut out);
            ImmutableString::from(out)
        });
    }
    engine.register_fn("==", move |ctx: NativeCallContext, a: &mut Array, b: Array| {
        arrays_equal(&ctx, a, &b, max_depth, 1)
    });
    engine.register_fn("!=", move |ctx: NativeCallContext, a: &mut Array, b: Array| {
        arrays_equal(&ctx, a, &b, max_depth, 1).map(|eq| !eq)
    });
    engine.register_fn("==", move |ctx: NativeCallContext, a: &mut Map, b: Map| maps_equal(&ctx, a, &b, max_depth, 1));
    engine.register_fn("!=", move |ctx: NativeCallContext, a: &mut Map, b: Map| {
        maps_equal(&ctx, a, &b, max_depth, 1).map(|eq| !eq)
    });
}

fn format_value(ctx: &NativeCallContext, v: &Dynamic, max: usize, depth: usize, out: &mut String) {
    if let Some(a) = v.read_lock::<Array>() {
        return format_array(ctx, &a, max, depth + 1, out);
    }
    if let Some(m) = v.read_lock::<Map>() {
        return format_map(ctx, &m, max, depth + 1, out);
    }
    // A leaf: let Rhai format it exactly as it would (strings quoted, floats, custom types).
    let mut leaf = v.clone();
    match ctx.call_native_fn_raw("to_debug", true, &mut [&mut leaf]) {
        Ok(text) if text.is_string() => out.push_str(&text.to_string()),
        _ => out.push_str(v.type_name()),
    }
}

fn format_array(ctx: &NativeCallContext, a: &Array, max: usize, depth: usize, out: &mut String) {
    if depth > max {
        out.push_str("[...]");
        return;
    }
    out.push('[');
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        format_value(ctx, item, max, depth, out);
    }
    out.push(']');
}

fn format_map(ctx: &NativeCallContext, m: &Map, max: usize, depth: usize, out: &mut String) {
    if depth > max {
        out.push_str("#{...}");
        return;
    }
    out.push_str("#{");
    for (i, (k, item)) in m.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{:?}: ", k.as_str());
        format_value(ctx, item, max, depth, out);
    }
    out.push('}');
}

type EqResult = Result<bool, Box<EvalAltResult>>;

fn too_deep(ctx: &NativeCallContext) -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge(VALUE_DEPTH_MESSAGE.to_string(), ctx.call_position()).into()
}

fn values_equal(ctx: &NativeCallContext, a: &Dynamic, b: &Dynamic, max: usize, depth: usize) -> EqResult {
    if let (Some(x), Some(y)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        return arrays_equal(ctx, &x, &y, max, depth + 1);
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return maps_equal(ctx, &x, &y, max, depth + 1);
    }
    // Same rule as Rhai's own array comparison: no `==` between different types means false.
    let (mut x, mut y) = (a.clone(), b.clone());
    let same_type = x.type_id() == y.type_id();
    match ctx.call_native_fn_raw("==", true, &mut [&mut x, &mut y]) {
        Ok(r) => Ok(r.as_bool().unwrap_or(false)),
        Err(err) => match *err {
            EvalAltResult::ErrorFunctionNotFound(ref sig, ..) if sig.starts_with("==") && !same_type => Ok(false),
            _ => Err(err),
        },
    }
}

fn arrays_equal(ctx: &NativeCallContext, a: &Array, b: &Array, max: usize, depth: usize) -> EqResult {
    if depth > max {
        return Err(too_deep(ctx));
    }
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter().zip(b.iter()) {
        if !values_equal(ctx, x, y, max, depth)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn maps_equal(ctx: &NativeCallContext, a: &Map, b: &Map, max: usize, depth: usize) -> EqResult {
    if depth > max {
        return Err(too_deep(ctx));
    }
    if a.len() != b.len() {
        return Ok(false);
    }
    for (k, x) in a.iter() {
        match b.get(k) {
            Some(y) => {
                if !values_equal(ctx, x, y, max, depth)? {
                    return Ok(false);
                }
            }
            None => return Ok(false),
        }
    }
    Ok(true)
}
