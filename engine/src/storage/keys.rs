//! Index keys of objects: extracting part values along paths, encoding them with the key codec,
//! and building/splitting the storage keys of objects and index entries (see README: key layout).

use super::error::StorageError;
use super::keycodec::{self, TAG_NULL, TAG_VALUE};
use super::spec::{KeyKind, PartSpec, PathSeg, TypeSpec};
use crate::model::temporal;
use serde_json::Value;

/// Upper bound of entries one object may create in one multikey index.
const MAX_MULTIKEY_ENTRIES: usize = 10_000;

/// Appends a string, folding case per character when `fold`; `terminate` adds the terminator.
pub(crate) fn encode_text(out: &mut Vec<u8>, s: &str, fold: bool, terminate: bool) {
    if fold {
        let mut buf = [0u8; 4];
        for c in s.chars().flat_map(char::to_lowercase) {
            keycodec::encode_str_prefix(out, c.encode_utf8(&mut buf));
        }
    } else {
        keycodec::encode_str_prefix(out, s);
    }
    if terminate {
        out.extend_from_slice(&[0x00, 0x01]);
    }
}

/// Per-character lowercase (the case-insensitive collation).
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Appends one key part. `None` and JSON null encode as null (nullability is checked by callers).
pub(crate) fn encode_part(out: &mut Vec<u8>, part: &PartSpec, value: Option<&Value>) -> Result<(), String> {
    let v = match value {
        None | Some(Value::Null) => {
            out.push(TAG_NULL);
            return Ok(());
        }
        Some(v) => v,
    };
    let mismatch = || format!("expected {}, got {}", part.kind, describe(v));
    out.push(TAG_VALUE);
    match part.kind {
        KeyKind::Long | KeyKind::Int => keycodec::encode_i64(out, v.as_i64().ok_or_else(mismatch)?),
        KeyKind::Double => keycodec::encode_f64(out, v.as_f64().ok_or_else(mismatch)?),
        KeyKind::Boolean => keycodec::encode_bool(out, v.as_bool().ok_or_else(mismatch)?),
        KeyKind::String => encode_text(out, v.as_str().ok_or_else(mismatch)?, part.folds_case(), true),
        KeyKind::Date | KeyKind::Time | KeyKind::DateTime => {
            let text = v.as_str().and_then(|s| temporal_key(part.kind, s)).ok_or_else(mismatch)?;
            encode_text(out, &text, false, true)
        }
        KeyKind::Decimal => {
            let text = match v {
                Value::String(s) => temporal::normalize_decimal(s),
                Value::Number(n) => temporal::normalize_decimal(&n.to_string()),
                _ => None,
            };
            keycodec::encode_decimal(out, &text.ok_or_else(mismatch)?);
        }
    }
    Ok(())
}

/// The key text of a Date, Time or DateTime value: UTC, fixed width (`1980-01-01`,
/// `07:20:48.000000000`, `2018-03-24T07:20:48.250000000`), so byte order is time order and every
/// accepted spelling of one instant gives the same key. `None` when `s` is no such value.
pub(crate) fn temporal_key(kind: KeyKind, s: &str) -> Option<String> {
    match kind {
        KeyKind::Date => temporal::parse_date(s).map(|d| d.format("%Y-%m-%d").to_string()),
        KeyKind::Time => temporal::parse_time(s).map(|t| t.format("%H:%M:%S%.9f").to_string()),
        KeyKind::DateTime => temporal::parse_datetime(s).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()),
        _ => None,
    }
}

/// How many leading characters of a value of `kind` are the same in its stored form and its key
/// text (a `like` prefix longer than that cannot be matched against keys).
pub(crate) fn temporal_prefix_len(kind: KeyKind) -> usize {
    match kind {
        KeyKind::Date => 10,
        KeyKind::Time => 8,
        KeyKind::DateTime => 19,
        _ => usize::MAX,
    }
}

/// Values found along `path` (several when it steps into arrays). A missing field gives `None`;
/// an array step over a missing/null value gives nothing; over a non-array it is an error.
pub(crate) fn collect<'a>(
    v: Option<&'a Value>,
    path: &[PathSeg],
    out: &mut Vec<Option<&'a Value>>,
) -> Result<(), String> {
    let Some((seg, rest)) = path.split_first() else {
        out.push(v);
        return Ok(());
    };
    match seg {
        PathSeg::Field(name) => collect(v.and_then(|v| v.get(name.as_str())), rest, out),
        PathSeg::Each => match v {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(items)) => items.iter().try_for_each(|i| collect(Some(i), rest, out)),
            Some(other) => Err(format!("expected an array, got {}", describe(other))),
        },
    }
}

/// The encoded keys of index `idx` of `obj`, limited to the first `nparts` parts, sorted and
/// deduplicated: one for a plain index; for a multikey index one per element of its array, each
/// built from that element's values (`items.*.sku` + `items.*.qty` pair the sku and qty of the
/// same item) and the values outside the array.
/// `strict`: a missing non-nullable part is an error (puts); otherwise it encodes as null.
pub(crate) fn index_keys(
    spec: &TypeSpec,
    idx: usize,
    obj: &Value,
    nparts: usize,
    strict: bool,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let index = &spec.indexes[idx];
    let parts: Vec<&PartSpec> = index.parts.iter().take(nparts).collect();
    let err = |part: &PartSpec, m: String| {
        StorageError::user(format!("{}: field \"{}\" (index \"{}\"): {m}", spec.name, part.path_string(), index.name))
    };
    // The array of a multikey index: the path up to and including its `*`.
    let array = parts.iter().find_map(|p| {
        let at = p.path.iter().position(|seg| *seg == PathSeg::Each)?;
        Some((*p, &p.path[..=at]))
    });
    let elements: Vec<Option<&Value>> = match array {
        None => vec![Some(obj)],
        Some((part, path)) => {
            let mut elements = Vec::new();
            collect(Some(obj), path, &mut elements).map_err(|m| err(part, m))?;
            if elements.len() > MAX_MULTIKEY_ENTRIES {
                return Err(err(part, format!("more than {MAX_MULTIKEY_ENTRIES} index entries")));
            }
            elements
        }
    };
    let mut keys = Vec::with_capacity(elements.len());
    let mut vals = Vec::new();
    for element in elements {
        let mut key = Vec::with_capacity(24);
        for part in &parts {
            vals.clear();
            match array {
                Some((_, prefix)) if part.path.starts_with(prefix) => {
                    collect(element, &part.path[prefix.len()..], &mut vals)
                }
                _ => collect(Some(obj), &part.path, &mut vals),
            }
            .map_err(|m| err(part, m))?;
            let value = vals.first().copied().flatten();
            if strict && !part.nullable && matches!(value, None | Some(Value::Null)) {
                return Err(err(part, "a value is required".into()));
            }
            encode_part(&mut key, part, value).map_err(|m| err(part, m))?;
        }
        keys.push(key);
    }
    if keys.len() > 1 {
        keys.sort_unstable();
        keys.dedup();
    }
    Ok(keys)
}

/// The encoded primary key of `obj`.
pub(crate) fn primary_key(spec: &TypeSpec, obj: &Value) -> Result<Vec<u8>, StorageError> {
    let mut keys = index_keys(spec, 0, obj, usize::MAX, true)?;
    keys.pop().ok_or_else(|| StorageError::user(format!("{}: primary key is missing", spec.name)))
}

/// Encodes a key given as values (filters, `get`): up to all parts of index `idx`.
pub(crate) fn encode_values(spec: &TypeSpec, idx: usize, values: &[Value]) -> Result<Vec<u8>, StorageError> {
    let index = &spec.indexes[idx];
    if values.is_empty() || values.len() > index.parts.len() {
        return Err(StorageError::user(format!(
            "{}: index \"{}\" has {} part(s), got a key of {} value(s)",
            spec.name,
            index.name,
            index.parts.len(),
            values.len()
        )));
    }
    let mut out = Vec::with_capacity(16 * values.len());
    for (n, (part, v)) in index.parts.iter().zip(values).enumerate() {
        encode_part(&mut out, part, Some(v)).map_err(|m| {
            StorageError::user(format!(
                "{}: key for index \"{}\" part {} \"{}\": {m}",
                spec.name,
                index.name,
                n + 1,
                part.path_string()
            ))
        })?;
    }
    Ok(out)
}

/// Length of the encoded key of index `idx` at the start of `bytes`.
pub(crate) fn key_len(spec: &TypeSpec, idx: usize, bytes: &[u8]) -> Result<usize, StorageError> {
    let mut at = 0;
    let corrupt = || StorageError::Corrupt(format!("bad key of {} index {}", spec.name, idx));
    for part in &spec.indexes[idx].parts {
        match bytes.get(at) {
            Some(&TAG_NULL) => at += 1,
            Some(&TAG_VALUE) => {
                at += 1;
                at += match part.kind {
                    KeyKind::Long | KeyKind::Int | KeyKind::Double => 8,
                    KeyKind::Boolean => 1,
                    KeyKind::Decimal => keycodec::decimal_len(&bytes[at..]).ok_or_else(corrupt)?,
                    _ => keycodec::str_len(&bytes[at..]).ok_or_else(corrupt)?,
                };
            }
            _ => return Err(corrupt()),
        }
    }
    if at > bytes.len() {
        return Err(corrupt());
    }
    Ok(at)
}

/// `[type]`: the encoded type name, first component of every object and index key.
pub(crate) fn type_prefix(spec: &TypeSpec) -> Vec<u8> {
    type_prefix_of(&spec.name)
}

/// [`type_prefix`] of a type named `name` (one no longer in the model, too).
pub(crate) fn type_prefix_of(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    keycodec::encode_str(&mut out, name);
    out
}

/// `[type][index id]`: prefix of the current/history entries of one index.
pub(crate) fn index_prefix(tp: &[u8], id: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(tp.len() + 1);
    out.extend_from_slice(tp);
    out.push(id);
    out
}

/// `[type][pk][!version]`: key of one object version (Objects keyspace).
pub(crate) fn object_key(tp: &[u8], pk: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(tp.len() + pk.len() + 8);
    out.extend_from_slice(tp);
    out.extend_from_slice(pk);
    keycodec::encode_u64_desc(&mut out, version);
    out
}

/// `[type][index#][key][pk]` (CurrentIndex; for index 0 the key is the pk and is not repeated).
pub(crate) fn current_key(tp: &[u8], id: u8, key: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tp.len() + 1 + key.len() + pk.len());
    out.extend_from_slice(tp);
    out.push(id);
    out.extend_from_slice(key);
    if id != 0 {
        out.extend_from_slice(pk);
    }
    out
}

/// `[type][index#][key][pk][!version]` (HistoryIndex, secondary indexes only).
pub(crate) fn history_key(tp: &[u8], id: u8, key: &[u8], pk: &[u8], version: u64) -> Vec<u8> {
    let mut out = current_key(tp, id, key, pk);
    keycodec::encode_u64_desc(&mut out, version);
    out
}

#[cfg(test)]
mod tests {
    use super::super::spec::IndexSpec;
    use super::super::test_util::user_spec;
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_of_plain_multikey_and_case_folded_indexes() {
        let spec = user_spec();
        let obj = json!({"id": 7, "username": "Bob", "age": null, "phones": ["222", "111", "222"],
                         "last": "Doe", "first": "John"});
        let by_name = index_keys(&spec, 1, &obj, usize::MAX, true).unwrap();
        let lower = index_keys(&spec, 1, &json!({"username": "bOB"}), usize::MAX, true).unwrap();
        assert_eq!(by_name, lower, "case-insensitive keys are equal");
        let phones = index_keys(&spec, 3, &obj, usize::MAX, true).unwrap();
        assert_eq!(phones.len(), 2, "one entry per distinct element");
        assert!(phones[0] < phones[1]);
        let age = index_keys(&spec, 2, &obj, usize::MAX, true).unwrap();
        assert_eq!(age, vec![vec![TAG_NULL]], "nullable part stores null");
        let full = index_keys(&spec, 4, &obj, usize::MAX, true).unwrap();
        assert_eq!(key_len(&spec, 4, &full[0]).unwrap(), full[0].len());
        let first_part = index_keys(&spec, 4, &obj, 1, true).unwrap();
        assert!(full[0].starts_with(&first_part[0]));
    }

    #[test]
    fn composite_multikey_keys_pair_the_values_of_one_element() {
        let spec = TypeSpec {
            name: "Order".into(),
            indexes: vec![
                IndexSpec::new("id", vec![PartSpec::new("id", KeyKind::Long)]),
                IndexSpec::new(
                    "item",
                    vec![
                        PartSpec::new("items.*.sku", KeyKind::String),
                        PartSpec::new("items.*.qty", KeyKind::Long),
                        PartSpec::new("id", KeyKind::Long),
                    ],
                ),
            ],
            ids: Vec::new(),
            building: Vec::new(),
            config_version: 0,
        };
        let obj = json!({"id": 9, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "a", "qty": 1}]});
        let keys = index_keys(&spec, 1, &obj, usize::MAX, true).unwrap();
        let expected = encode_values(&spec, 1, &[json!("a"), json!(1), json!(9)]).unwrap();
        let other = encode_values(&spec, 1, &[json!("b"), json!(2), json!(9)]).unwrap();
        assert_eq!(keys, vec![expected, other], "(a,1) and (b,2) only: no (a,2) or (b,1)");
        assert!(index_keys(&spec, 1, &json!({"id": 1, "items": []}), usize::MAX, true).unwrap().is_empty());
    }

    #[test]
    fn errors_name_type_field_and_index() {
        let spec = user_spec();
        let e = index_keys(&spec, 1, &json!({"id": 1}), usize::MAX, true).unwrap_err().to_string();
        assert_eq!(e, "User: field \"username\" (index \"username\"): a value is required");
        let e = primary_key(&spec, &json!({"id": "x"})).unwrap_err().to_string();
        assert_eq!(e, "User: field \"id\" (index \"id\"): expected long, got \"x\"");
        let e = index_keys(&spec, 3, &json!({"phones": "111"}), usize::MAX, true).unwrap_err();
        assert!(e.to_string().contains("expected an array"), "{e}");
        let e = encode_values(&spec, 4, &[json!("a"), json!(1)]).unwrap_err().to_string();
        assert!(e.contains("index \"full_name\" part 2 \"first\": expected string, got 1"), "{e}");
        assert!(encode_values(&spec, 0, &[json!(1), json!(2)]).is_err());
    }
}
