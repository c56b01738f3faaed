//! Conversions between JSON (`serde_json::Value`, the currency between components) and Rhai
//! values (`Dynamic`).
//!
//! - JSON numbers that fit an i64 become INT, others FLOAT; INT goes back as a JSON integer, so
//!   integers never lose precision.
//! - `null` <-> `()`; strings, booleans, arrays and objects map to their Rhai counterparts.
//!   Rhai object maps are sorted by key, so key order is not kept through a script.
//! - Nesting is bounded (`DEFAULT_MAX_DEPTH`, or `sandbox.max_value_depth` inside calls): a
//!   deeper value is a conversion error, never a stack overflow.
//! - Values with no JSON form (NaN, infinities, function pointers, custom types) are errors.

use rhai::{Array, Blob, Dynamic, FnPtr, ImmutableString, Map};
use serde_json::{Number, Value};

use crate::error::{ScriptError, ScriptErrorKind};

/// Nesting limit of the public conversion functions (serde_json's own parser stops at 128).
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Convert JSON into a Rhai value (nesting up to `DEFAULT_MAX_DEPTH`).
pub fn to_dynamic(v: &Value) -> Result<Dynamic, ScriptError> {
    json_to_dynamic(v, DEFAULT_MAX_DEPTH).map_err(|m| ScriptError::new("", ScriptErrorKind::Conversion(m)))
}

/// Convert a Rhai value into JSON (nesting up to `DEFAULT_MAX_DEPTH`).
pub fn from_dynamic(d: &Dynamic) -> Result<Value, ScriptError> {
    dynamic_to_json(d, DEFAULT_MAX_DEPTH).map_err(|m| ScriptError::new("", ScriptErrorKind::Conversion(m)))
}

/// JSON -> Rhai with an explicit nesting limit; the error is a message.
pub(crate) fn json_to_dynamic(v: &Value, max_depth: usize) -> Result<Dynamic, String> {
    to_dyn(v, max_depth, 0)
}

/// Rhai -> JSON with an explicit nesting limit; the error is a message.
pub(crate) fn dynamic_to_json(d: &Dynamic, max_depth: usize) -> Result<Value, String> {
    to_json(d, max_depth, 0)
}

fn too_deep(max_depth: usize) -> String {
    format!("value nested deeper than {max_depth} levels")
}

fn to_dyn(v: &Value, max_depth: usize, depth: usize) -> Result<Dynamic, String> {
    Ok(match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Dynamic::from_int(i),
            (None, Some(f)) => Dynamic::from_float(f),
            (None, None) => return Err(format!("number {n} cannot be represented")),
        },
        Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        Value::Array(items) => {
            if depth >= max_depth {
                return Err(too_deep(max_depth));
            }
            let arr = items.iter().map(|item| to_dyn(item, max_depth, depth + 1)).collect::<Result<Array, _>>()?;
            Dynamic::from_array(arr)
        }
        Value::Object(obj) => {
            if depth >= max_depth {
                return Err(too_deep(max_depth));
            }
            let mut map = Map::new();
            for (k, item) in obj {
                map.insert(k.as_str().into(), to_dyn(item, max_depth, depth + 1)?);
            }
            Dynamic::from_map(map)
        }
    })
}

fn to_json(d: &Dynamic, max_depth: usize, depth: usize) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = d.as_float() {
        return Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("float {f} has no JSON form"));
    }
    if let Some(s) = d.read_lock::<ImmutableString>() {
        return Ok(Value::String(s.to_string()));
    }
    if let Ok(c) = d.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if let Some(arr) = d.read_lock::<Array>() {
        if depth >= max_depth {
            return Err(too_deep(max_depth));
        }
        return arr
            .iter()
            .map(|item| to_json(item, max_depth, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(map) = d.read_lock::<Map>() {
        if depth >= max_depth {
            return Err(too_deep(max_depth));
        }
        let mut obj = serde_json::Map::with_capacity(map.len());
        for (k, item) in map.iter() {
            obj.insert(k.to_string(), to_json(item, max_depth, depth + 1)?);
        }
        return Ok(Value::Object(obj));
    }
    if let Some(blob) = d.read_lock::<Blob>() {
        return Ok(Value::Array(blob.iter().map(|b| Value::from(*b)).collect()));
    }
    if d.read_lock::<FnPtr>().is_some() {
        return Err("a function pointer has no JSON form".to_string());
    }
    Err(format!("a value of type {} has no JSON form", d.type_name()))
}

/// Text of a value for logs and error messages: strings as they are, other values as compact
/// JSON; what has no JSON form is shown by its type (floats by their Rust form: `NaN`, `inf`).
pub(crate) fn display_text(value: &Dynamic, max_depth: usize) -> String {
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return s.to_string();
    }
    match to_json(value, max_depth, 0) {
        Ok(json) => json.to_string(),
        Err(_) => match value.as_float() {
            Ok(f) => f.to_string(),
            Err(_) => format!("<{}>", value.type_name()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_keeps_types_and_big_integers() {
        let v = json!({"big": 4611686018427387904i64, "neg": -9223372036854775808i64,
                       "f": 1.5, "s": "x", "n": null, "b": true, "a": [1, [2.25, "y"], {}]});
        let d = to_dynamic(&v).unwrap();
        let map = d.read_lock::<Map>().unwrap();
        assert_eq!(map["big"].as_int().unwrap(), 1i64 << 62);
        assert!(map["n"].is_unit());
        assert_eq!(map["f"].as_float().unwrap(), 1.5);
        drop(map);
        let back = from_dynamic(&d).unwrap();
        // Keys come back sorted (Rhai maps are ordered by key); values are identical.
        assert_eq!(back, v);
        assert!(back["big"].is_i64());
    }

    #[test]
    fn u64_above_i64_becomes_float() {
        let d = to_dynamic(&json!(18446744073709551615u64)).unwrap();
        assert!(d.as_float().is_ok());
    }

    #[test]
    fn nan_and_fn_pointers_have_no_json_form() {
        let err = from_dynamic(&Dynamic::from_float(f64::NAN)).unwrap_err();
        assert!(matches!(err.kind, ScriptErrorKind::Conversion(ref m) if m.contains("NaN")));
        let fp = Dynamic::from(FnPtr::new("f").unwrap());
        assert!(from_dynamic(&fp).is_err());
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error_not_a_crash() {
        let mut v = json!(1);
        for _ in 0..5000 {
            v = Value::Array(vec![v]);
        }
        let err = to_dynamic(&v).unwrap_err();
        assert!(err.to_string().contains(&format!("deeper than {DEFAULT_MAX_DEPTH}")), "{err}");
        let mut d = Dynamic::from_int(1);
        for _ in 0..DEFAULT_MAX_DEPTH + 50 {
            d = Dynamic::from_array(vec![d]);
        }
        assert!(from_dynamic(&d).is_err());
        assert!(dynamic_to_json(&d, DEFAULT_MAX_DEPTH + 100).is_ok());
        // serde_json's Value drop is recursive too; unwind the test value iteratively.
        while let Value::Array(mut a) = v {
            v = a.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn display_text_of_strings_and_maps() {
        assert_eq!(display_text(&Dynamic::from("hi"), 8), "hi");
        let d = to_dynamic(&json!({"a": [1, "x"]})).unwrap();
        assert_eq!(display_text(&d, 8), r#"{"a":[1,"x"]}"#);
        assert_eq!(display_text(&Dynamic::from_float(f64::NAN), 8), "NaN");
    }
}
