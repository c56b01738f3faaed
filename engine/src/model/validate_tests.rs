//! Tests of object validation as the user sees it: normalised objects and violations with
//! their full paths.

use super::{ErrorClass, Model, NoHooks, ValidationHooks};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Hooks that answer from a table and count calls.
#[derive(Default)]
struct TestHooks {
    counters: HashMap<String, i64>,
    calls: Vec<String>,
    fail: bool,
    label: Option<Value>,
}

impl ValidationHooks for TestHooks {
    fn default_function(&mut self, function: &str, type_name: &str, field: &str) -> Result<Value, String> {
        self.calls.push(format!("{function}({type_name}.{field})"));
        match function {
            _ if self.fail => Err("service unavailable".into()),
            "now" => Ok(json!("2024-05-01T12:00:00+02:00")),
            "label" => Ok(self.label.clone().unwrap_or(Value::Null)),
            _ => Err(format!("no function {function}")),
        }
    }

    fn auto_increment(&mut self, type_name: &str, field: &str) -> Result<i64, String> {
        if self.fail {
            return Err("sequence storage is read-only".into());
        }
        let n = self.counters.entry(format!("{type_name}.{field}")).or_insert(0);
        *n += 1;
        Ok(*n)
    }
}

fn model() -> Model {
    let schema = json!([
        {"name": "Address", "type": "record", "fields": [
            {"name": "city", "type": "string"},
            {"name": "building", "type": "int"}
        ]},
        {"name": "Item", "type": "record", "fields": [
            {"name": "sku", "type": "string"},
            {"name": "qty", "type": "int"}
        ]},
        {"name": "Order", "type": "record", "logicalType": "Aggregate", "fields": [
            {"name": "id", "type": "long"},
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}, "default": "NEW"},
            {"name": "address", "type": ["null", "Address"]},
            {"name": "items", "type": {"type": "array", "items": "Item"}, "default": []},
            {"name": "note", "type": ["null", "string"]},
            {"name": "created", "type": {"type": "string", "logicalType": "DateTime"}},
            {"name": "day", "type": ["null", {"type": "string", "logicalType": "Date"}]},
            {"name": "at", "type": ["null", {"type": "string", "logicalType": "Time"}]},
            {"name": "price", "type": ["null", {"type": "string", "logicalType": "Decimal"}]},
            {"name": "weight", "type": ["null", "double"]},
            {"name": "attrs", "type": ["null", {"type": "map", "values": "long"}]},
            {"name": "scores", "type": ["null", {"type": "array", "items": ["null", "int"]}]}
        ], "indexes": ["id"]},
        {"name": "Event", "type": "record", "logicalType": "Aggregate", "fields": [
            {"name": "seq", "type": "long", "auto_increment": true},
            {"name": "at", "type": {"type": "string", "logicalType": "DateTime"}, "default_function": "now"},
            {"name": "label", "type": ["null", "string"], "default_function": "label"}
        ], "indexes": ["seq"]}
    ]);
    Model::parse(&schema, &|f| f == "now" || f == "label").unwrap()
}

fn order() -> Value {
    json!({"id": 1, "created": "2018-03-24T10:20:48Z", "items": [{"sku": "a", "qty": 1}]})
}

/// The violation messages for an object that must fail.
fn violations(type_name: &str, obj: Value) -> Vec<String> {
    match model().validate(type_name, &obj, &mut NoHooks) {
        Ok(v) => panic!("object accepted but should not: {v}"),
        Err(e) => e.messages(),
    }
}

#[test]
fn valid_object_is_normalised_with_defaults_and_unknown_fields_dropped() {
    let mut obj = order();
    obj["extra"] = json!({"anything": true});
    obj["created"] = json!("2018-03-24T13:20:48.25+03:00");
    obj["day"] = json!("1980-01-01");
    obj["at"] = json!("10:20:48");
    obj["price"] = json!("12.50");
    obj["weight"] = json!(2);
    obj["attrs"] = json!({"a": 1});
    obj["address"] = json!({"city": "Minsk", "building": 5, "floor": 3});
    let out = model().validate("Order", &obj, &mut NoHooks).unwrap();
    assert_eq!(
        out,
        json!({
            "id": 1, "status": "NEW",
            "address": {"city": "Minsk", "building": 5},
            "items": [{"sku": "a", "qty": 1}],
            "note": null, "created": "2018-03-24T10:20:48.250Z", "day": "1980-01-01Z",
            "at": "10:20:48Z", "price": "12.50", "weight": 2.0, "attrs": {"a": 1},
            "scores": null
        })
    );
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys[..3], ["id", "status", "address"]);
}

#[test]
fn missing_required_field_is_reported() {
    let mut obj = order();
    obj.as_object_mut().unwrap().remove("id");
    assert_eq!(violations("Order", obj), ["Order.id: missing required field"]);
}

#[test]
fn wrong_types_are_reported_with_full_path_into_records_and_arrays() {
    let mut obj = order();
    obj["address"] = json!({"city": "Minsk", "building": "23a"});
    obj["items"] = json!([{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": "many"}, 7]);
    obj["attrs"] = json!({"size": "big"});
    obj["scores"] = json!([1, null, "x"]);
    assert_eq!(
        violations("Order", obj),
        [
            "Order.address.building: expected int, got string \"23a\"",
            "Order.items[2].qty: expected int, got string \"many\"",
            "Order.items[3]: expected record Item, got number 7",
            "Order.attrs.size: expected long, got string \"big\"",
            "Order.scores[2]: expected int, got string \"x\""
        ]
    );
}

#[test]
fn optional_fields_accept_null_and_required_ones_do_not() {
    let mut obj = order();
    obj["note"] = Value::Null;
    obj["address"] = Value::Null;
    let out = model().validate("Order", &obj, &mut NoHooks).unwrap();
    assert_eq!(out["note"], Value::Null);
    assert_eq!(out["address"], Value::Null);
    obj["created"] = Value::Null;
    assert_eq!(violations("Order", obj), ["Order.created: expected DateTime, got null"]);
}

#[test]
fn enum_symbols_are_checked() {
    let mut obj = order();
    obj["status"] = json!("SHIPPED");
    assert_eq!(
        violations("Order", obj),
        ["Order.status: expected one of NEW, PAID (enum Status), got string \"SHIPPED\""]
    );
}

#[test]
fn datetime_is_normalised_and_invalid_dates_rejected() {
    let mut obj = order();
    obj["created"] = json!("2018-03-24T10:20:48-01:30");
    let out = model().validate("Order", &obj, &mut NoHooks).unwrap();
    assert_eq!(out["created"], json!("2018-03-24T11:50:48Z"));
    obj["created"] = json!("2018-13-45");
    obj["day"] = json!("1980-02-30");
    obj["price"] = json!("12,5");
    assert_eq!(
        violations("Order", obj),
        [
            "Order.created: expected DateTime (ISO 8601, e.g. 2018-03-24T10:20:48Z), got string \"2018-13-45\"",
            "Order.day: expected Date (ISO 8601, e.g. 1980-01-01Z), got string \"1980-02-30\"",
            "Order.price: expected Decimal (a string such as \"12.50\"), got string \"12,5\""
        ]
    );
}

#[test]
fn fixed_holds_one_byte_a_character() {
    let schema = json!([{"name": "Key", "type": "record", "logicalType": "Aggregate", "fields": [
        {"name": "id", "type": "long"},
        {"name": "mac", "type": {"type": "fixed", "name": "Mac", "size": 4}}
    ], "indexes": ["id"]}]);
    let model = Model::parse(&schema, &|_| false).unwrap();
    assert!(model.validate("Key", &json!({"id": 1, "mac": "\u{00}\u{ff}ab"}), &mut NoHooks).is_ok());
    let e = model.validate("Key", &json!({"id": 1, "mac": "€€€€"}), &mut NoHooks).unwrap_err();
    assert!(e.messages()[0].starts_with("Key.mac: expected a string of 4 characters U+0000..U+00FF"), "{e:?}");
}

#[test]
fn long_beyond_2_pow_53_is_kept_exact() {
    let obj: Value = serde_json::from_str(r#"{"id": 9007199254740993, "created": "2018-03-24T10:20:48Z"}"#).unwrap();
    let out = model().validate("Order", &obj, &mut NoHooks).unwrap();
    assert_eq!(out["id"].as_i64(), Some(9_007_199_254_740_993));
    assert_eq!(serde_json::to_string(&out["id"]).unwrap(), "9007199254740993");
    let too_big: Value =
        serde_json::from_str(r#"{"id": 18446744073709551615, "created": "2018-03-24T10:20:48Z"}"#).unwrap();
    assert_eq!(
        violations("Order", too_big),
        ["Order.id: value 18446744073709551615 is out of long range (64-bit signed)"]
    );
}

#[test]
fn int_out_of_i32_range_and_fractions_are_rejected() {
    let mut obj = order();
    obj["items"] = json!([{"sku": "a", "qty": 3_000_000_000_i64}, {"sku": "b", "qty": 1.5}, {"sku": "c", "qty": 2.0}]);
    assert_eq!(
        violations("Order", obj),
        [
            "Order.items[0].qty: value 3000000000 is out of int range (-2147483648..2147483647)",
            "Order.items[1].qty: expected int, got number 1.5"
        ]
    );
}

#[test]
fn several_violations_are_reported_together() {
    let obj = json!({"status": 5, "created": "now", "note": 1, "weight": "heavy"});
    assert_eq!(
        violations("Order", obj),
        [
            "Order.id: missing required field",
            "Order.status: expected one of NEW, PAID (enum Status), got number 5",
            "Order.note: expected string, got number 1",
            "Order.created: expected DateTime (ISO 8601, e.g. 2018-03-24T10:20:48Z), got string \"now\"",
            "Order.weight: expected double, got string \"heavy\""
        ]
    );
    assert_eq!(violations("Order", json!([1])), ["Order: expected record Order, got array"]);
}

#[test]
fn default_function_and_auto_increment_fill_missing_fields() {
    let m = model();
    let mut hooks = TestHooks::default();
    let first = m.validate("Event", &json!({}), &mut hooks).unwrap();
    assert_eq!(first, json!({"seq": 1, "at": "2024-05-01T10:00:00Z", "label": null}));
    hooks.label = Some(json!("auto"));
    let second = m.validate("Event", &json!({"seq": null, "label": "x"}), &mut hooks).unwrap();
    assert_eq!(second["seq"], json!(2));
    assert_eq!(second["label"], json!("x"));
    let given = m.validate("Event", &json!({"seq": 77, "at": "2020-01-01T00:00:00Z"}), &mut hooks).unwrap();
    assert_eq!(given["seq"], json!(77));
    assert_eq!(given["at"], json!("2020-01-01T00:00:00Z"));
    assert_eq!(given["label"], json!("auto"));
    assert_eq!(hooks.calls, ["now(Event.at)", "label(Event.label)", "now(Event.at)", "label(Event.label)"]);
}

#[test]
fn hook_results_are_checked_and_hook_failures_are_external() {
    let m = model();
    // "label" returns 42 for a string field.
    let mut hooks = TestHooks { label: Some(json!(42)), ..TestHooks::default() };
    let err = m.validate("Event", &json!({"seq": 1, "at": "2020-01-01T00:00:00Z"}), &mut hooks).unwrap_err();
    assert_eq!(err.messages(), ["Event.label: expected string, got number 42"]);
    assert_eq!(err.class(), ErrorClass::UserData);
    let mut failing = TestHooks { fail: true, ..TestHooks::default() };
    let err = m.validate("Event", &json!({"label": "x"}), &mut failing).unwrap_err();
    assert_eq!(
        err.messages(),
        [
            "Event.seq: auto_increment failed: sequence storage is read-only",
            "Event.at: default_function now failed: service unavailable"
        ]
    );
    assert_eq!(err.class(), ErrorClass::External);
}

#[test]
fn only_aggregates_of_the_model_can_be_validated() {
    assert_eq!(violations("Nope", json!({})), ["Nope: unknown type (not in the model)"]);
    let err = model().validate("Address", &json!({}), &mut NoHooks).unwrap_err();
    assert_eq!(err.messages(), ["Address: ValueObject types are not stored; only Aggregates are"]);
    assert_eq!(err.class(), ErrorClass::Config);
}

#[test]
fn unions_accept_plain_and_avro_wrapped_values() {
    let schema = json!([{"name": "U", "type": "record", "logicalType": "Aggregate", "fields": [
        {"name": "id", "type": "string"},
        {"name": "v", "type": ["int", "string", "null"]}
    ], "indexes": ["id"]}]);
    let m = Model::parse(&schema, &|_| false).unwrap();
    let ok = |v: Value| m.validate("U", &json!({"id": "a", "v": v}), &mut NoHooks).map(|o| o["v"].clone());
    assert_eq!(ok(json!(5)).unwrap(), json!(5));
    assert_eq!(ok(json!("x")).unwrap(), json!("x"));
    assert_eq!(ok(json!({"string": "y"})).unwrap(), json!("y"));
    assert_eq!(ok(Value::Null).unwrap(), Value::Null);
    assert_eq!(ok(json!(true)).unwrap_err().messages(), ["U.v: expected one of int | string, got boolean true"]);
}

#[test]
fn a_union_of_records_names_the_field_of_the_closest_one() {
    let schema = json!([
        {"name": "Card", "type": "record", "fields": [{"name": "card_no", "type": "string"}, {"name": "holder", "type": "string"}]},
        {"name": "Cash", "type": "record", "fields": [{"name": "currency", "type": "string"}]},
        {"name": "Order", "type": "record", "logicalType": "Aggregate", "fields": [
            {"name": "id", "type": "long"},
            {"name": "payment", "type": ["Card", "Cash"]}
        ], "indexes": ["id"]}
    ]);
    let m = Model::parse(&schema, &|_| false).unwrap();
    let e =
        m.validate("Order", &json!({"id": 1, "payment": {"card_no": 123, "holder": "Ann"}}), &mut NoHooks).unwrap_err();
    assert_eq!(
        e.messages(),
        [
            "Order.payment: expected one of record Card | record Cash, got object",
            "Order.payment.card_no: expected string, got number 123"
        ]
    );
    assert!(m.validate("Order", &json!({"id": 1, "payment": {"currency": "EUR"}}), &mut NoHooks).is_ok());
}

#[test]
fn deeply_nested_values_are_rejected_not_overflowing() {
    let schema = json!([{"name": "N", "type": "record", "logicalType": "Aggregate", "fields": [
        {"name": "id", "type": "long"},
        {"name": "next", "type": ["null", "N"]}
    ], "indexes": ["id"]}]);
    let m = Model::parse(&schema, &|_| false).unwrap();
    let mut obj = json!({"id": 0});
    for i in 1..300 {
        obj = json!({"id": i, "next": obj});
    }
    let err = m.validate("N", &obj, &mut NoHooks).unwrap_err();
    assert_eq!(err.violations().len(), 1, "{:?}", err.messages());
    assert!(err.messages()[0].ends_with(".next: value nested deeper than 128 levels"), "{:?}", err.messages());
}

#[test]
fn recursive_unions_cannot_make_validation_explode() {
    let schema = json!([
        {"name": "A", "type": "record", "fields": [{"name": "x", "type": ["null", "A", "B"]}, {"name": "a", "type": "long"}]},
        {"name": "B", "type": "record", "fields": [{"name": "x", "type": ["null", "A", "B"]}, {"name": "b", "type": "long"}]},
        {"name": "R", "type": "record", "logicalType": "Aggregate", "fields": [
            {"name": "id", "type": "long"}, {"name": "x", "type": ["null", "A", "B"]}
        ], "indexes": ["id"]}
    ]);
    let m = Model::parse(&schema, &|_| false).unwrap();
    let mut x = json!({"c": 1});
    for _ in 0..60 {
        x = json!({"x": x});
    }
    let err = m.validate("R", &json!({"id": 1, "x": x}), &mut NoHooks).unwrap_err();
    assert_eq!(err.messages(), ["R: value too complex to match against the model's unions"]);
    let ok = m.validate("R", &json!({"id": 1, "x": {"x": {"b": 2}, "a": 1}}), &mut NoHooks).unwrap();
    assert_eq!(ok["x"], json!({"x": {"x": null, "b": 2}, "a": 1}));
}
