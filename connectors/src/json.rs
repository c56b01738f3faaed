//! Parsing JSON objects from inputs with a nesting limit and errors a sender can act on.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a body is not an acceptable JSON object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonInputError {
    /// Not valid JSON (the message carries line and column).
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// Valid JSON, but not an object.
    #[error("expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// Deeper than allowed.
    #[error("JSON nesting deeper than {0} levels")]
    TooDeep(usize),
}

/// Depth of the deepest array/object nesting in `bytes`, stopping early once it passes `limit`.
/// Strings (with escapes) are skipped, so brackets inside them do not count.
fn nesting_exceeds(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The JSON type name of a value, for error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parse `bytes` as one JSON object nested at most `max_depth` levels.
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonInputError> {
    if nesting_exceeds(bytes, max_depth) {
        return Err(JsonInputError::TooDeep(max_depth));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The scan above bounds the depth; serde_json's own limit (127) would be lower than ours.
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de).map_err(|e| JsonInputError::Syntax(e.to_string()))?;
    de.end().map_err(|e| JsonInputError::Syntax(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(JsonInputError::NotAnObject(kind_of(&other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        let mut s = String::new();
        for _ in 0..depth - 1 {
            s.push_str("{\"a\":");
        }
        s.push_str("{}");
        for _ in 0..depth - 1 {
            s.push('}');
        }
        s
    }

    #[test]
    fn accepts_objects_up_to_the_limit() {
        let map = parse_object(nested(128).as_bytes(), 128).unwrap();
        assert!(map.contains_key("a"));
    }

    #[test]
    fn refuses_one_level_more() {
        assert_eq!(parse_object(nested(129).as_bytes(), 128), Err(JsonInputError::TooDeep(128)));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let body = format!("{{\"s\": \"{}\"}}", "[".repeat(500));
        assert!(parse_object(body.as_bytes(), 4).is_ok());
        let escaped = r#"{"s": "a\"[[[[[[", "t": 1}"#;
        assert!(parse_object(escaped.as_bytes(), 2).is_ok());
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse_object(b"{\n  \"a\": 1,\n  \"b\": }", 128).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3 column 8"), "{text}");
    }

    #[test]
    fn non_objects_are_named() {
        assert_eq!(parse_object(b"[1,2]", 128), Err(JsonInputError::NotAnObject("an array")));
        assert_eq!(parse_object(b"42", 128), Err(JsonInputError::NotAnObject("a number")));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(matches!(parse_object(b"{} x", 128), Err(JsonInputError::Syntax(_))));
    }
}
