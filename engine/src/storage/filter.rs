//! Filter conditions: parsing TDG's `[["$field", ">", 10]]` form, resolving names to indexes or
//! fields, and evaluating a condition on an object (`like` with `%` and `_`).

use super::error::StorageError;
use super::keycodec::{TAG_NULL, TAG_VALUE};
use super::keys::{self, encode_text};
use super::spec::TypeSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `==` (also `=`).
    Eq,
    /// `!=` (also `~=`, `<>`).
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `like`: `%` matches any run of characters, `_` exactly one.
    Like,
}

impl Op {
    /// Parses the TDG spelling.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" | "=" => Op::Eq,
            "!=" | "~=" | "<>" => Op::Ne,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "like" | "LIKE" => Op::Like,
            _ => return None,
        })
    }

    /// `>`, `>=`, `<`, `<=`.
    pub(crate) fn is_range(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }

    pub(crate) fn accepts(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Like => false,
        }
    }
}

/// One condition; the conditions of a filter are ANDed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// An index name (value: a key, an array for a composite index) or a dotted field path;
    /// a leading `$` is ignored.
    pub field_or_index: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with.
    pub value: Value,
}

impl Condition {
    /// A condition.
    pub fn new(field_or_index: &str, op: Op, value: Value) -> Condition {
        Condition { field_or_index: field_or_index.to_string(), op, value }
    }

    /// Parses TDG's filter form: `[["$id", ">", 10], ["name", "like", "a%"]]`.
    pub fn parse_filter(filter: &Value) -> Result<Vec<Condition>, StorageError> {
        let list = match filter {
            Value::Null => return Ok(Vec::new()),
            Value::Array(a) => a,
            other => return Err(StorageError::user(format!("filter must be an array of conditions, got {other}"))),
        };
        list.iter()
            .enumerate()
            .map(|(i, c)| match c.as_array().map(Vec::as_slice) {
                Some([Value::String(name), Value::String(op), value]) => Op::parse(op)
                    .map(|op| Condition::new(name, op, value.clone()))
                    .ok_or_else(|| StorageError::user(format!("filter[{i}]: unknown operator \"{op}\""))),
                _ => Err(StorageError::user(format!(
                    "filter[{i}]: expected [\"field or index\", \"operator\", value], got {c}"
                ))),
            })
            .collect()
    }

    fn name(&self) -> &str {
        self.field_or_index.strip_prefix('$').unwrap_or(&self.field_or_index)
    }
}

/// What a condition compares.
#[derive(Debug)]
pub(crate) enum Target {
    /// The first `nparts` parts of index `idx` against the encoded `key` (for `like`: the encoded
    /// literal prefix, without terminator).
    Index { idx: usize, nparts: usize, key: Vec<u8> },
    /// A field value (dotted path; numeric steps index arrays).
    Field { path: Vec<String> },
}

/// A condition resolved against a type.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) op: Op,
    pub(crate) target: Target,
    value: Value,
    like: Vec<char>,
    fold: bool,
}

/// Resolves names: an index name, else the path of the first part of an index (the index is
/// used for it, with the part's collation), else a plain field.
pub(crate) fn resolve(spec: &TypeSpec, conds: &[Condition]) -> Result<Vec<Resolved>, StorageError> {
    conds.iter().map(|c| resolve_one(spec, c)).collect()
}

fn resolve_one(spec: &TypeSpec, c: &Condition) -> Result<Resolved, StorageError> {
    let name = c.name();
    let by_index = spec.index_position(name).map(|i| (i, true));
    if let Some(done) = by_index.and_then(|(i, _)| spec.building(i).map(|done| (i, done))) {
        // Named, and not built yet: a clear error, never a partial answer.
        return Err(spec.not_ready(done.0, done.1));
    }
    // A path is served by a built index whose first part it is (else it is a plain field).
    let by_field = || {
        (0..spec.indexes.len())
            .find(|&i| {
                let part = &spec.indexes[i].parts[0];
                spec.building(i).is_none() && (part.path_string() == name || part.field_string() == name)
            })
            .map(|i| (i, false))
    };
    let Some((idx, named)) = by_index.or_else(by_field) else {
        if c.op == Op::Like && !c.value.is_string() {
            return Err(StorageError::user(format!("{}: like on \"{name}\" needs a string pattern", spec.name)));
        }
        let path = name.split('.').map(str::to_string).collect();
        let like = c.value.as_str().map(|s| s.chars().collect()).unwrap_or_default();
        return Ok(Resolved { op: c.op, target: Target::Field { path }, value: c.value.clone(), like, fold: false });
    };
    let index = &spec.indexes[idx];
    if c.op == Op::Like {
        let part = &index.parts[0];
        let Some(pattern) = c.value.as_str().filter(|_| part.kind.is_string()) else {
            return Err(StorageError::user(format!(
                "{}: like on index \"{}\" needs a string pattern and a string first part",
                spec.name, index.name
            )));
        };
        let fold = part.folds_case();
        let pattern = if fold { keys::fold(pattern) } else { pattern.to_string() };
        // The key range covers what the stored strings and the keys spell alike; the rest of the
        // pattern is checked on each object.
        let literal: String = pattern
            .chars()
            .take_while(|&ch| ch != '%' && ch != '_')
            .take(keys::temporal_prefix_len(part.kind))
            .collect();
        let mut key = vec![TAG_VALUE];
        encode_text(&mut key, &literal, false, false);
        let target = Target::Index { idx, nparts: 1, key };
        return Ok(Resolved { op: c.op, target, value: Value::Null, like: pattern.chars().collect(), fold });
    }
    let values = match &c.value {
        Value::Array(a) if named => a.as_slice(),
        v => std::slice::from_ref(v),
    };
    let key = keys::encode_values(spec, idx, values)?;
    let target = Target::Index { idx, nparts: values.len(), key };
    Ok(Resolved { op: c.op, target, value: Value::Null, like: Vec::new(), fold: false })
}

/// Whether `obj` satisfies the condition (any entry of a multikey index may satisfy it).
pub(crate) fn matches(spec: &TypeSpec, r: &Resolved, obj: &Value) -> bool {
    match &r.target {
        Target::Index { idx, nparts, key } => {
            if r.op == Op::Like {
                let mut vals = Vec::new();
                if keys::collect(Some(obj), &spec.indexes[*idx].parts[0].path, &mut vals).is_err() {
                    return false;
                }
                return vals.iter().filter_map(|v| v.and_then(Value::as_str)).any(|s| {
                    if r.fold {
                        like_match(&r.like, &keys::fold(s))
                    } else {
                        like_match(&r.like, s)
                    }
                });
            }
            match keys::index_keys(spec, *idx, obj, *nparts, false) {
                // a range against a value never matches null (nulls only sort first)
                Ok(ks) => ks.iter().any(|k| {
                    let null_vs_value = k.first() == Some(&TAG_NULL) && key.first() == Some(&TAG_VALUE);
                    !(null_vs_value && r.op.is_range()) && r.op.accepts(k.as_slice().cmp(key))
                }),
                Err(_) => false,
            }
        }
        Target::Field { path } => {
            let mut v = Some(obj);
            for seg in path {
                v = v.and_then(|v| match v {
                    Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => v.get(seg.as_str()),
                });
            }
            let v = v.unwrap_or(&Value::Null);
            match r.op {
                Op::Like => v.as_str().is_some_and(|s| like_match(&r.like, s)),
                Op::Eq => json_cmp(v, &r.value) == Some(Ordering::Equal) || v == &r.value,
                Op::Ne => !(json_cmp(v, &r.value) == Some(Ordering::Equal) || v == &r.value),
                op => json_cmp(v, &r.value).is_some_and(|o| op.accepts(o)),
            }
        }
    }
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
    }
}

/// Order of two JSON scalars of the same type (numbers compare numerically); `None` otherwise.
fn json_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// SQL-like matching: `%` any run (also empty), `_` exactly one character.
pub(crate) fn like_match(pattern: &[char], s: &str) -> bool {
    let text: Vec<char> = s.chars().collect();
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || (pattern[p] != '%' && pattern[p] == text[i])) {
            p += 1;
            i += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use super::super::test_util::user_spec;
    use super::*;
    use serde_json::json;

    fn like(p: &str, s: &str) -> bool {
        like_match(&p.chars().collect::<Vec<_>>(), s)
    }

    #[test]
    fn like_patterns() {
        assert!(like("ab%", "abc") && like("ab%", "ab") && !like("ab%", "a"));
        assert!(like("%c", "abc") && like("a_c", "abc") && !like("a_c", "abbc"));
        assert!(like("%b%", "abc") && like("%", "") && !like("_", ""));
        assert!(like("a%c%e", "abcde") && !like("a%c%e", "abcd"));
        assert!(like("é_", "éx") && like("100%", "100%"));
    }

    #[test]
    fn parse_and_resolve() {
        let conds = Condition::parse_filter(&json!([["$id", ">", 10], ["username", "like", "Bo%"]])).unwrap();
        assert_eq!(conds[0], Condition::new("$id", Op::Gt, json!(10)));
        let spec = user_spec();
        let r = resolve(&spec, &conds).unwrap();
        assert!(matches!(r[0].target, Target::Index { idx: 0, nparts: 1, .. }));
        assert!(matches!(r[1].target, Target::Index { idx: 1, .. }));
        assert!(matches(&spec, &r[1], &json!({"username": "BOB"})), "case-insensitive like");
        let e = Condition::parse_filter(&json!([["id", "=~", 1]])).unwrap_err().to_string();
        assert!(e.contains("unknown operator \"=~\""), "{e}");
        let e = resolve(&spec, &[Condition::new("id", Op::Eq, json!("x"))]).unwrap_err().to_string();
        assert!(e.contains("User: key for index \"id\" part 1 \"id\": expected long"), "{e}");
        let e = resolve(&spec, &[Condition::new("age", Op::Like, json!("1%"))]).unwrap_err().to_string();
        assert!(e.contains("like on index \"age\""), "{e}");
    }

    #[test]
    fn field_conditions_compare_json_values() {
        let spec = user_spec();
        let obj = json!({"score": 7, "ratio": 0.5, "city": "Oslo", "tags": ["x", "y"], "ok": true});
        let check = |f: &str, op: Op, v: Value| {
            let r = resolve(&spec, &[Condition::new(f, op, v)]).unwrap();
            matches(&spec, &r[0], &obj)
        };
        assert!(check("score", Op::Eq, json!(7.0)));
        assert!(check("score", Op::Gt, json!(6)) && !check("score", Op::Gt, json!(7)));
        assert!(check("ratio", Op::Lt, json!(1)) && check("ratio", Op::Le, json!(0.5)));
        assert!(check("city", Op::Ge, json!("Oslo")) && check("city", Op::Like, json!("O_lo")));
        assert!(check("tags.1", Op::Eq, json!("y")) && check("ok", Op::Ne, json!(false)));
        assert!(check("missing", Op::Eq, json!(null)) && !check("missing", Op::Gt, json!(1)));
        assert!(!check("city", Op::Gt, json!(1)), "different types never compare");
    }
}
