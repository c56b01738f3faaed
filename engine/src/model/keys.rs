//! Index keys of a validated object, as the storage needs them: one key per object for a plain
//! index, one per array element for a multikey index.

use super::types::{IndexDef, TypeDef};
use serde_json::Value;

static NULL: Value = Value::Null;

/// The value at `path` (objects only); null when anything on the way is missing or null.
fn at<'v>(v: &'v Value, path: &[String]) -> &'v Value {
    path.iter().fold(v, |cur, seg| cur.get(seg).unwrap_or(&NULL))
}

impl IndexDef {
    /// The keys `obj` has in this index. A plain index gives exactly one key (missing values
    /// are null); a multikey index gives one key per array element, duplicates removed, and
    /// none when the array is empty or missing.
    pub fn keys(&self, obj: &Value) -> Vec<Vec<Value>> {
        let Some((array, pos)) = self.parts.iter().find_map(|p| Some((p.path.get(..=p.array_at?)?, p.array_at?)))
        else {
            return vec![self.parts.iter().map(|p| at(obj, &p.path).clone()).collect()];
        };
        let Some(elements) = at(obj, array).as_array() else {
            return Vec::new();
        };
        let mut keys: Vec<Vec<Value>> = Vec::with_capacity(elements.len());
        for element in elements {
            let key: Vec<Value> = self
                .parts
                .iter()
                .map(|p| match p.array_at {
                    Some(_) => at(element, p.path.get(pos + 1..).unwrap_or_default()).clone(),
                    None => at(obj, &p.path).clone(),
                })
                .collect();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

impl TypeDef {
    /// The primary key of a validated object (`None` when the type has no indexes).
    pub fn primary_key(&self, obj: &Value) -> Option<Vec<Value>> {
        self.primary_index()?.keys(obj).into_iter().next()
    }

    /// The primary key as one value: the value of a one-part key, an array for a composite one
    /// (as the journal, GraphQL arguments and `/data` links write it).
    pub fn primary_key_value(&self, obj: &Value) -> Option<Value> {
        let mut key = self.primary_key(obj)?;
        Some(if key.len() == 1 { key.pop()? } else { Value::Array(key) })
    }
}
