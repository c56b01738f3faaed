//! Updaters of `update`: `["set", "a.b", v]`, `["add", "items.*.qty", 1]`, `["sub", ...]` on
//! dotted paths; a numeric step is an array position counted from 1 as in TDG (`items.1` is
//! the first element), `*` applies to every element.

use super::error::StorageError;
use super::spec::{PathSeg, TypeSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// The operation of an updater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdaterOp {
    /// Replace (or create, for the last object field of the path) the value.
    Set,
    /// Add a number to a number.
    Add,
    /// Subtract a number from a number.
    Sub,
}

impl std::fmt::Display for UpdaterOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpdaterOp::Set => "set",
            UpdaterOp::Add => "add",
            UpdaterOp::Sub => "sub",
        })
    }
}

/// One update step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Updater {
    /// The operation.
    pub op: UpdaterOp,
    /// Dotted path: field names, array positions counted from 1 (TDG's), `*` for every element.
    pub path: String,
    /// The operand.
    pub value: Value,
}

impl Updater {
    /// An updater.
    pub fn new(op: UpdaterOp, path: &str, value: Value) -> Updater {
        Updater { op, path: path.to_string(), value }
    }

    /// Parses TDG's form: `[["set", "username", "x"], ["add", "balance", 10]]`.
    pub fn parse_list(list: &Value) -> Result<Vec<Updater>, StorageError> {
        let Some(items) = list.as_array() else {
            return Err(StorageError::user(format!("updaters must be an array, got {list}")));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, u)| match u.as_array().map(Vec::as_slice) {
                Some([Value::String(op), Value::String(path), value]) => {
                    let op = match op.as_str() {
                        "set" | "=" => UpdaterOp::Set,
                        "add" | "+" => UpdaterOp::Add,
                        "sub" | "-" => UpdaterOp::Sub,
                        other => {
                            return Err(StorageError::user(format!("updaters[{i}]: unknown operation \"{other}\"")))
                        }
                    };
                    Ok(Updater::new(op, path, value.clone()))
                }
                _ => Err(StorageError::user(format!(
                    "updaters[{i}]: expected [\"set|add|sub\", \"path\", value], got {u}"
                ))),
            })
            .collect()
    }

    /// Fails when the path is empty or overlaps a primary-key field.
    pub(crate) fn check(&self, spec: &TypeSpec) -> Result<(), StorageError> {
        let segs: Vec<&str> = self.path.split('.').collect();
        if self.path.is_empty() || segs.iter().any(|s| s.is_empty()) {
            return Err(StorageError::user(format!("{}: invalid updater path \"{}\"", spec.name, self.path)));
        }
        for part in &spec.indexes[0].parts {
            let overlaps = segs.iter().zip(&part.path).all(|(s, p)| match p {
                PathSeg::Field(f) => *s == "*" || s == f,
                PathSeg::Each => true,
            });
            if overlaps {
                return Err(StorageError::user(format!(
                    "{}: updater \"{}\" would change primary key field \"{}\"",
                    spec.name,
                    self.path,
                    part.path_string()
                )));
            }
        }
        Ok(())
    }

    /// Applies the updater to `obj`.
    pub(crate) fn apply(&self, obj: &mut Value, type_name: &str) -> Result<(), StorageError> {
        let segs: Vec<&str> = self.path.split('.').collect();
        apply_at(obj, &segs, self)
            .map_err(|m| StorageError::user(format!("{type_name}: updater {} \"{}\": {m}", self.op, self.path)))
    }
}

fn apply_at(v: &mut Value, segs: &[&str], u: &Updater) -> Result<(), String> {
    let Some((seg, rest)) = segs.split_first() else {
        return apply_leaf(v, u);
    };
    if *seg == "*" {
        let Value::Array(items) = v else {
            return Err(format!("\"*\" needs an array, found {}", kind(v)));
        };
        return items.iter_mut().try_for_each(|item| apply_at(item, rest, u));
    }
    let slot = match v {
        Value::Array(items) => {
            let i: usize = seg.parse().map_err(|_| format!("\"{seg}\" is not an array position"))?;
            let len = items.len();
            if i == 0 {
                return Err("array positions count from 1 (as in TDG): 0 is no position".into());
            }
            items.get_mut(i - 1).ok_or_else(|| format!("position {i} is out of range (array of {len})"))?
        }
        Value::Object(map) => {
            if rest.is_empty() && u.op == UpdaterOp::Set {
                map.insert((*seg).to_string(), u.value.clone());
                return Ok(());
            }
            map.get_mut(*seg).ok_or_else(|| format!("field \"{seg}\" does not exist"))?
        }
        other => return Err(format!("cannot step into {} with \"{seg}\"", kind(other))),
    };
    apply_at(slot, rest, u)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn apply_leaf(slot: &mut Value, u: &Updater) -> Result<(), String> {
    if u.op == UpdaterOp::Set {
        *slot = u.value.clone();
        return Ok(());
    }
    let (Value::Number(a), Value::Number(b)) = (&*slot, &u.value) else {
        return Err(format!("needs a number and a number operand, found {} and {}", kind(slot), kind(&u.value)));
    };
    let sub = u.op == UpdaterOp::Sub;
    let result = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => {
            let r = if sub { x.checked_sub(y) } else { x.checked_add(y) };
            Number::from(r.ok_or("integer overflow")?)
        }
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            Number::from_f64(if sub { x - y } else { x + y }).ok_or("the result is not a finite number")?
        }
    };
    *slot = Value::Number(result);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::user_spec;
    use super::*;
    use serde_json::json;

    fn run(updaters: Value, mut obj: Value) -> Result<Value, String> {
        for u in Updater::parse_list(&updaters).map_err(|e| e.to_string())? {
            u.check(&user_spec()).map_err(|e| e.to_string())?;
            u.apply(&mut obj, "User").map_err(|e| e.to_string())?;
        }
        Ok(obj)
    }

    #[test]
    fn set_add_sub_on_paths_and_stars() {
        let obj = json!({"id": 1, "name": "a", "balance": 10, "items": [{"qty": 1}, {"qty": 2.5}], "m": {}});
        let out = run(
            json!([
                ["set", "name", "b"],
                ["add", "balance", 5],
                ["sub", "items.2.qty", 0.5],
                ["add", "items.*.qty", 1],
                ["set", "m.new", [1]]
            ]),
            obj,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"id": 1, "name": "b", "balance": 15,
                               "items": [{"qty": 2}, {"qty": 3.0}], "m": {"new": [1]}})
        );
    }

    #[test]
    fn bad_updaters_are_user_errors_naming_the_path() {
        let obj = json!({"id": 1, "n": "x", "a": [1], "big": i64::MAX});
        let e = run(json!([["set", "id", 2]]), obj.clone()).unwrap_err();
        assert_eq!(e, "User: updater \"id\" would change primary key field \"id\"");
        let e = run(json!([["add", "n", 1]]), obj.clone()).unwrap_err();
        assert!(e.starts_with("User: updater add \"n\": needs a number"), "{e}");
        let e = run(json!([["set", "a.2", 1]]), obj.clone()).unwrap_err();
        assert!(e.contains("position 2 is out of range (array of 1)"), "{e}");
        let e = run(json!([["set", "a.0", 1]]), obj.clone()).unwrap_err();
        assert!(e.contains("count from 1"), "{e}");
        assert_eq!(run(json!([["set", "a.1", 5]]), obj.clone()).unwrap()["a"], json!([5]));
        let e = run(json!([["set", "x.y", 1]]), obj.clone()).unwrap_err();
        assert!(e.contains("field \"x\" does not exist"), "{e}");
        let e = run(json!([["add", "big", 1]]), obj.clone()).unwrap_err();
        assert!(e.contains("integer overflow"), "{e}");
        assert!(run(json!([["mul", "n", 1]]), obj).unwrap_err().contains("unknown operation \"mul\""));
    }
}
