//! JSON <-> script values. JSON integers that fit i64 become script integers (never floats), so
//! long values keep their precision; maps, arrays, strings, booleans and null map one to one.

use crate::error::{ErrorKind, ScriptError};
use rhai::{Array, Dynamic, Map};
use serde_json::{Number, Value};

/// Deepest value converted; deeper structures are refused instead of exhausting the stack.
const MAX_DEPTH: usize = 256;

fn conversion(message: impl Into<String>) -> ScriptError {
    ScriptError::new("(conversion)", None, ErrorKind::Conversion(message.into()))
}

/// A JSON value as a script value.
pub fn to_dynamic(value: &Value) -> Result<Dynamic, ScriptError> {
    to_dynamic_at(value, 0)
}

fn to_dynamic_at(value: &Value, depth: usize) -> Result<Dynamic, ScriptError> {
    if depth > MAX_DEPTH {
        return Err(conversion(format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => {
            let array: Array = items.iter().map(|v| to_dynamic_at(v, depth + 1)).collect::<Result<_, _>>()?;
            Dynamic::from_array(array)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.as_str().into(), to_dynamic_at(v, depth + 1)?);
            }
            Dynamic::from_map(out)
        }
    })
}

/// A script value as JSON.
pub fn from_dynamic(value: &Dynamic) -> Result<Value, ScriptError> {
    from_dynamic_at(value, 0)
}

fn from_dynamic_at(value: &Dynamic, depth: usize) -> Result<Value, ScriptError> {
    if depth > MAX_DEPTH {
        return Err(conversion(format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| conversion(format!("{f} cannot be represented in JSON")));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if value.is_string() {
        return Ok(Value::String(value.clone().into_string().unwrap_or_default()));
    }
    if let Some(array) = value.read_lock::<Array>() {
        return array.iter().map(|v| from_dynamic_at(v, depth + 1)).collect::<Result<Vec<_>, _>>().map(Value::Array);
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut out = serde_json::Map::with_capacity(map.len());
        for (k, v) in map.iter() {
            out.insert(k.to_string(), from_dynamic_at(v, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(Value::Array(blob.iter().map(|b| Value::from(*b)).collect()));
    }
    Err(conversion(format!("a {} cannot be converted to JSON", value.type_name())))
}
