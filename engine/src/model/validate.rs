//! Validation and normalisation of an object against a record type: unknown fields dropped,
//! defaults applied, `default_function` / `auto_increment` filled through hooks, Date/Time/
//! DateTime normalised, integers kept exact; every violation reported with its full path.

use super::error::{Violation, ViolationKind};
use super::temporal;
use super::types::{FieldDef, FieldType, TypeDef};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::fmt::Write;

/// Deepest nesting of values accepted.
const MAX_VALUE_DEPTH: usize = 128;

/// Most values visited while trying union variants (guards against exponential work on
/// recursive unions).
const MAX_TRIAL_STEPS: usize = 100_000;

/// Services the validation needs from the engine.
pub trait ValidationHooks {
    /// Computes a missing field's value with the named function.
    fn default_function(&mut self, function: &str, type_name: &str, field: &str) -> Result<Value, String>;
    /// The next value of the field's auto-increment counter.
    fn auto_increment(&mut self, type_name: &str, field: &str) -> Result<i64, String>;
}

/// Hooks that provide nothing (used for checking schema defaults).
pub struct NoHooks;

impl ValidationHooks for NoHooks {
    fn default_function(&mut self, function: &str, _: &str, _: &str) -> Result<Value, String> {
        Err(format!("function {function} cannot be called here"))
    }

    fn auto_increment(&mut self, _: &str, _: &str) -> Result<i64, String> {
        Err("no counter available here".into())
    }
}

/// Walks a value against a type, collecting violations.
pub(super) struct Checker<'a> {
    types: &'a IndexMap<String, TypeDef>,
    hooks: &'a mut dyn ValidationHooks,
    out: Vec<Violation>,
    /// How deep in union trials (values tried against several variants) the walk is.
    in_trial: usize,
    /// Values visited during union trials, bounded by `MAX_TRIAL_STEPS`.
    trial_steps: usize,
}

impl<'a> Checker<'a> {
    pub(super) fn new(types: &'a IndexMap<String, TypeDef>, hooks: &'a mut dyn ValidationHooks) -> Self {
        Checker { types, hooks, out: Vec::new(), in_trial: 0, trial_steps: 0 }
    }

    /// Checks `v` as a value of `ty` at `path`; the normalised value, or every violation.
    pub(super) fn check(mut self, ty: &FieldType, v: &Value, path: &str) -> Result<Value, Vec<Violation>> {
        let mut p = path.to_string();
        let out = self.value(ty, v, &mut p, 0);
        if self.trial_steps > MAX_TRIAL_STEPS {
            return Err(vec![Violation {
                path: path.to_string(),
                message: "value too complex to match against the model's unions".into(),
                kind: ViolationKind::Data,
            }]);
        }
        if self.out.is_empty() {
            Ok(out)
        } else {
            Err(self.out)
        }
    }

    fn violation(&mut self, path: &str, message: String, kind: ViolationKind) {
        self.out.push(Violation { path: path.to_string(), message, kind });
    }

    fn mismatch(&mut self, path: &str, expected: &dyn std::fmt::Display, got: &Value) -> Value {
        self.violation(path, format!("expected {expected}, got {}", describe(got)), ViolationKind::Data);
        Value::Null
    }

    fn record(&mut self, name: &str, v: &Value, path: &mut String, depth: usize) -> Value {
        let types = self.types;
        let Some(td) = types.get(name) else {
            self.violation(path, format!("unknown record type {name}"), ViolationKind::Type);
            return Value::Null;
        };
        let Value::Object(obj) = v else {
            return self.mismatch(path, &format_args!("record {name}"), v);
        };
        if depth >= MAX_VALUE_DEPTH {
            let msg = format!("value nested deeper than {MAX_VALUE_DEPTH} levels");
            self.violation(path, msg, ViolationKind::Data);
            return Value::Null;
        }
        let mut out = Map::new();
        for f in &td.fields {
            let len = path.len();
            path.push('.');
            path.push_str(&f.name);
            let value = match obj.get(&f.name) {
                Some(x) if !x.is_null() => self.value(&f.ty, x, path, depth + 1),
                present => self.fill(td, f, present.is_some(), path, depth),
            };
            path.truncate(len);
            out.insert(f.name.clone(), value);
        }
        Value::Object(out)
    }

    /// The value of a field that is missing (`present == false`) or null.
    fn fill(&mut self, td: &TypeDef, f: &FieldDef, present: bool, path: &mut String, depth: usize) -> Value {
        if let Some(function) = &f.default_function {
            return match self.hooks.default_function(function, &td.name, &f.name) {
                Ok(Value::Null) if f.optional => Value::Null,
                Ok(v) => self.value(&f.ty, &v, path, depth + 1),
                Err(e) => {
                    let msg = format!("default_function {function} failed: {e}");
                    self.violation(path, msg, ViolationKind::Hook);
                    Value::Null
                }
            };
        }
        if f.auto_increment {
            return match self.hooks.auto_increment(&td.name, &f.name) {
                Ok(n) => Value::from(n),
                Err(e) => {
                    self.violation(path, format!("auto_increment failed: {e}"), ViolationKind::Hook);
                    Value::Null
                }
            };
        }
        match (&f.default, present) {
            (Some(d), false) => d.clone(),
            _ if f.optional || f.ty == FieldType::Null => Value::Null,
            (_, true) => self.mismatch(path, &f.ty, &Value::Null),
            (None, false) => {
                self.violation(path, "missing required field".into(), ViolationKind::Data);
                Value::Null
            }
        }
    }

    fn value(&mut self, ty: &FieldType, v: &Value, path: &mut String, depth: usize) -> Value {
        if self.in_trial > 0 {
            self.trial_steps += 1;
            if self.trial_steps > MAX_TRIAL_STEPS {
                // Fail the trial; `check` reports the whole object.
                self.violation(path, String::new(), ViolationKind::Data);
                return Value::Null;
            }
        }
        if depth > MAX_VALUE_DEPTH {
            let msg = format!("value nested deeper than {MAX_VALUE_DEPTH} levels");
            self.violation(path, msg, ViolationKind::Data);
            return Value::Null;
        }
        match ty {
            FieldType::Null if v.is_null() => Value::Null,
            FieldType::Boolean if v.is_boolean() => v.clone(),
            FieldType::Int | FieldType::Long => self.integer(ty, v, path),
            FieldType::Float | FieldType::Double => match v.as_f64() {
                Some(x) if *ty == FieldType::Float && x.abs() > f64::from(f32::MAX) => {
                    self.violation(path, format!("value {v} is out of float range"), ViolationKind::Data);
                    Value::Null
                }
                Some(x) => Value::from(x),
                None => self.mismatch(path, ty, v),
            },
            FieldType::String | FieldType::Bytes if v.is_string() => v.clone(),
            FieldType::Date | FieldType::Time | FieldType::DateTime | FieldType::Decimal => self.logical(ty, v, path),
            FieldType::Enum { name, symbols } => match v.as_str() {
                Some(s) if symbols.iter().any(|x| x == s) => v.clone(),
                _ => {
                    let expected = format!("one of {} (enum {name})", symbols.join(", "));
                    self.mismatch(path, &expected, v)
                }
            },
            // Avro's JSON form of bytes: one character (U+0000..U+00FF) a byte.
            FieldType::Fixed { name, size } => match v.as_str() {
                Some(s) if s.chars().count() == *size && s.chars().all(|c| u32::from(c) <= 0xFF) => v.clone(),
                _ => self.mismatch(
                    path,
                    &format_args!("a string of {size} characters U+0000..U+00FF, one a byte (fixed {name})"),
                    v,
                ),
            },
            FieldType::Array(items) => match v {
                Value::Array(list) => {
                    let mut out = Vec::with_capacity(list.len());
                    for (i, x) in list.iter().enumerate() {
                        let len = path.len();
                        let _ = write!(path, "[{i}]");
                        out.push(self.value(items, x, path, depth + 1));
                        path.truncate(len);
                    }
                    Value::Array(out)
                }
                _ => self.mismatch(path, ty, v),
            },
            FieldType::Map(values) => match v {
                Value::Object(m) => {
                    let mut out = Map::new();
                    for (k, x) in m {
                        let len = path.len();
                        path.push('.');
                        path.push_str(k);
                        out.insert(k.clone(), self.value(values, x, path, depth + 1));
                        path.truncate(len);
                    }
                    Value::Object(out)
                }
                _ => self.mismatch(path, ty, v),
            },
            FieldType::Record(name) => self.record(name, v, path, depth),
            FieldType::Union(variants) => self.union(variants, v, path, depth),
            _ => self.mismatch(path, ty, v),
        }
    }

    fn integer(&mut self, ty: &FieldType, v: &Value, path: &str) -> Value {
        let Value::Number(n) = v else {
            return self.mismatch(path, ty, v);
        };
        let exact = if let Some(i) = n.as_i64() {
            Some(i)
        } else if n.is_u64() {
            None
        } else {
            match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x >= -(2f64.powi(63)) && x < 2f64.powi(63) => Some(x as i64),
                Some(x) if x.fract() != 0.0 => return self.mismatch(path, ty, v),
                _ => None,
            }
        };
        match (ty, exact) {
            (FieldType::Int, Some(i)) if i32::try_from(i).is_ok() => Value::from(i),
            (FieldType::Long, Some(_)) if n.is_i64() => v.clone(),
            (FieldType::Long, Some(i)) => Value::from(i),
            _ => {
                let range = if *ty == FieldType::Int {
                    "int range (-2147483648..2147483647)"
                } else {
                    "long range (64-bit signed)"
                };
                self.violation(path, format!("value {n} is out of {range}"), ViolationKind::Data);
                Value::Null
            }
        }
    }

    fn logical(&mut self, ty: &FieldType, v: &Value, path: &str) -> Value {
        let normalised = match (ty, v) {
            (FieldType::Date, Value::String(s)) => temporal::normalize_date(s),
            (FieldType::Time, Value::String(s)) => temporal::normalize_time(s),
            (FieldType::DateTime, Value::String(s)) => temporal::normalize_datetime(s),
            (FieldType::Decimal, Value::String(s)) => temporal::normalize_decimal(s),
            (FieldType::Decimal, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        };
        match normalised {
            Some(s) => Value::String(s),
            None => {
                let example = match ty {
                    FieldType::Date => "Date (ISO 8601, e.g. 1980-01-01Z)",
                    FieldType::Time => "Time (ISO 8601, e.g. 10:20:48Z)",
                    FieldType::DateTime => "DateTime (ISO 8601, e.g. 2018-03-24T10:20:48Z)",
                    _ => "Decimal (a string such as \"12.50\")",
                };
                self.mismatch(path, &example, v)
            }
        }
    }

    fn union(&mut self, variants: &[FieldType], v: &Value, path: &mut String, depth: usize) -> Value {
        // Avro's JSON encoding wraps a union value as {"branch": value}.
        if let Value::Object(m) = v {
            if let Some((k, inner)) = m.iter().next().filter(|_| m.len() == 1) {
                let named = variants.iter().find(|t| branch_name(t) == *k);
                if let Some(variant) = named.filter(|t| accepts_kind(t, inner)) {
                    return self.value(variant, inner, path, depth + 1);
                }
            }
        }
        let candidates: Vec<&FieldType> = variants.iter().filter(|t| accepts_kind(t, v)).collect();
        let non_null: Vec<&FieldType> = variants.iter().filter(|t| **t != FieldType::Null).collect();
        match (candidates.as_slice(), non_null.as_slice()) {
            ([only], _) | ([], [only]) => return self.value(only, v, path, depth + 1),
            _ => {}
        }
        // The record the value came closest to (fewest violations): its violations name the
        // field that is wrong, which "one of A | B" alone does not.
        let mut closest: Option<Vec<Violation>> = None;
        for variant in candidates {
            let saved = std::mem::take(&mut self.out);
            self.in_trial += 1;
            let out = self.value(variant, v, path, depth + 1);
            self.in_trial -= 1;
            let failures = std::mem::replace(&mut self.out, saved);
            if failures.is_empty() {
                return out;
            }
            let named = failures.iter().all(|f| !f.message.is_empty());
            if matches!(variant, FieldType::Record(_))
                && named
                && closest.as_ref().is_none_or(|c| failures.len() < c.len())
            {
                closest = Some(failures);
            }
        }
        let names: Vec<String> = variants.iter().map(ToString::to_string).collect();
        let out = self.mismatch(path, &format_args!("one of {}", names.join(" | ")), v);
        self.out.extend(closest.unwrap_or_default());
        out
    }
}

/// Can a value of this JSON kind be a `t` at all (before looking at the value)?
fn accepts_kind(t: &FieldType, v: &Value) -> bool {
    match (t, v) {
        (FieldType::Null, Value::Null) | (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Int | FieldType::Long | FieldType::Float | FieldType::Double, Value::Number(_)) => true,
        (FieldType::Decimal, Value::Number(_) | Value::String(_)) => true,
        (
            FieldType::String
            | FieldType::Bytes
            | FieldType::Date
            | FieldType::Time
            | FieldType::DateTime
            | FieldType::Enum { .. }
            | FieldType::Fixed { .. },
            Value::String(_),
        ) => true,
        (FieldType::Array(_), Value::Array(_)) => true,
        (FieldType::Record(_) | FieldType::Map(_), Value::Object(_)) => true,
        (FieldType::Union(inner), _) => inner.iter().any(|i| accepts_kind(i, v)),
        _ => false,
    }
}

/// The name Avro's JSON encoding uses for a union branch.
fn branch_name(t: &FieldType) -> String {
    match t {
        FieldType::Date | FieldType::Time | FieldType::DateTime | FieldType::Decimal => "string".into(),
        FieldType::Enum { name, .. } | FieldType::Fixed { name, .. } | FieldType::Record(name) => name.clone(),
        FieldType::Array(_) => "array".into(),
        FieldType::Map(_) => "map".into(),
        other => other.to_string(),
    }
}

/// How a value is shown in a message: `string "23a"`, `number 1.5`, `null`, `object`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("string \"{head}...\"")
        }
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}
