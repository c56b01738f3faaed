//! TDG's step contracts: what the default input step does, what a routing step returns, what a
//! classifier sets.

use crate::envelope::Routed;
use crate::error::PipelineError;
use serde_json::{json, Map, Value};

/// The routing key of objects no classifier recognised.
pub const UNCLASSIFIED: &str = "__unclassified__";

/// The default input step: `{"User": {...}}` becomes the object `{...}` with routing key `User`.
/// Anything else passes unchanged, without a routing key.
pub fn default_input_step(payload: Value) -> Routed {
    if let Value::Object(map) = &payload {
        if map.len() == 1 {
            if let Some((key, Value::Object(inner))) = map.iter().next() {
                return Routed {
                    obj: Value::Object(inner.clone()),
                    routing_key: Some(key.clone()),
                    priority: 1,
                    key: None,
                };
            }
        }
    }
    Routed { obj: payload, routing_key: None, priority: 1, key: None }
}

/// The value handed to a routing or classifier step: `{obj, routing_key, priority}`, and `key`
/// once a step set one.
pub fn to_param(routed: &Routed) -> Value {
    let mut param = json!({
        "obj": routed.obj,
        "routing_key": routed.routing_key,
        "priority": routed.priority,
    });
    if let (Some(key), Value::Object(map)) = (&routed.key, &mut param) {
        map.insert("key".into(), key.clone());
    }
    param
}

fn contract(function: &str, message: impl Into<String>) -> PipelineError {
    PipelineError::Contract { function: function.to_string(), message: message.into() }
}

fn routing_key_of(function: &str, map: &Map<String, Value>) -> Result<Option<String>, PipelineError> {
    match map.get("routing_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(contract(function, "routing_key is an empty string")),
        Some(other) => Err(contract(function, format!("routing_key must be a string, got {other}"))),
    }
}

/// The message key of a step's result, as it is (`null`: none). Only an output whose messages
/// have keys reads it (and refuses a key it cannot use), so a `key` field never fails a step.
pub fn message_key_of(map: &Map<String, Value>) -> Option<Value> {
    map.get("key").filter(|k| !k.is_null()).cloned()
}

/// Read a routing step's result `#{obj: ..., routing_key: "...", priority: 1}`.
pub fn parse_routed(function: &str, result: Value) -> Result<Routed, PipelineError> {
    let Value::Object(mut map) = result else {
        return Err(contract(
            function,
            format!("must return #{{obj: ..., routing_key: \"...\"}}, got {}", crate_kind(&result)),
        ));
    };
    let routing_key = routing_key_of(function, &map)?;
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_i64().ok_or_else(|| contract(function, format!("priority must be an integer, got {v}")))?,
    };
    let key = message_key_of(&map);
    let Some(obj) = map.remove("obj") else {
        return Err(contract(function, "the result has no `obj` field (expected #{obj: ..., routing_key: \"...\"})"));
    };
    Ok(Routed { obj, routing_key, priority, key })
}

/// Read a classifier's result: the param it was given, with `routing_key` set or left unset.
pub fn parse_classified(function: &str, before: &Routed, result: Value) -> Result<Routed, PipelineError> {
    let Value::Object(map) = &result else {
        return Err(contract(function, format!("a classifier must return param, got {}", crate_kind(&result))));
    };
    let routing_key = routing_key_of(function, map)?;
    let obj = map.get("obj").cloned().unwrap_or_else(|| before.obj.clone());
    // A classifier that sets `key` (to null too) replaces the one before.
    let key = if map.contains_key("key") { message_key_of(map) } else { before.key.clone() };
    Ok(Routed { obj, routing_key, priority: before.priority, key })
}

fn crate_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_step_unwraps_a_single_typed_object() {
        let r = default_input_step(json!({"User": {"id": 1, "username": "Alex"}}));
        assert_eq!(r.routing_key.as_deref(), Some("User"));
        assert_eq!(r.obj, json!({"id": 1, "username": "Alex"}));
    }

    #[test]
    fn default_step_leaves_other_objects_without_key() {
        let r = default_input_step(json!({"id": 1, "username": "Alex"}));
        assert_eq!(r.routing_key, None);
        assert_eq!(r.obj, json!({"id": 1, "username": "Alex"}));
        let r = default_input_step(json!({"User": 5}));
        assert_eq!(r.routing_key, None);
    }

    #[test]
    fn routed_results_follow_tdg_shape() {
        let r = parse_routed("router", json!({"obj": {"a": 1}, "routing_key": "k", "priority": 3})).unwrap();
        assert_eq!(r, Routed { obj: json!({"a": 1}), routing_key: Some("k".into()), priority: 3, key: None });
        let err = parse_routed("router", json!({"a": 1})).unwrap_err().to_string();
        assert!(err.contains("router") && err.contains("no `obj` field"), "{err}");
        let err = parse_routed("router", json!(5)).unwrap_err().to_string();
        assert!(err.contains("got a number"), "{err}");
        let err = parse_routed("router", json!({"obj": {}, "routing_key": 5})).unwrap_err().to_string();
        assert!(err.contains("routing_key must be a string"), "{err}");
    }

    #[test]
    fn a_step_may_set_the_message_key() {
        let r = parse_routed("router", json!({"obj": {}, "routing_key": "k", "key": "abc"})).unwrap();
        assert_eq!(r.key, Some(json!("abc")));
        let r = parse_routed("router", json!({"obj": {}, "routing_key": "k", "key": 42})).unwrap();
        assert_eq!(r.key, Some(json!(42)));
        assert_eq!(to_param(&r)["key"], 42, "the next step sees it");
        let r = parse_routed("router", json!({"obj": {}, "routing_key": "k", "key": null})).unwrap();
        assert_eq!(r.key, None);
        assert!(to_param(&r).get("key").is_none(), "no key, no field");
        let r = parse_routed("router", json!({"obj": {}, "key": [1]})).unwrap();
        assert_eq!(r.key, Some(json!([1])), "kept as it is: only an output that uses keys checks them");
        let before = Routed { obj: json!({}), routing_key: None, priority: 1, key: Some(json!("kept")) };
        let r = parse_classified("c", &before, json!({"obj": {}, "routing_key": "x"})).unwrap();
        assert_eq!(r.key, Some(json!("kept")), "a classifier that sets none keeps the key");
        let r = parse_classified("c", &before, json!({"obj": {}, "key": "new"})).unwrap();
        assert_eq!(r.key, Some(json!("new")));
        let r = parse_classified("c", &before, json!({"obj": {}, "key": null})).unwrap();
        assert_eq!(r.key, None, "null clears it");
    }

    #[test]
    fn classifier_sets_or_leaves_the_key() {
        let before = Routed { obj: json!({"x": 1}), routing_key: None, priority: 1, key: None };
        let r = parse_classified("c", &before, json!({"obj": {"x": 1}, "routing_key": "add_user"})).unwrap();
        assert_eq!(r.routing_key.as_deref(), Some("add_user"));
        let r = parse_classified("c", &before, json!({"obj": {"x": 1}})).unwrap();
        assert_eq!(r.routing_key, None);
    }
}
