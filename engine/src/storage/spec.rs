//! Type specifications: what the engine tells the storage about a stored type (its indexes).

use super::error::StorageError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stored type: a name and its indexes. Index 0 is the primary key (unique, not multikey, no
/// nullable parts). Each index's entries are stored under its *key id* (`ids`), which the index
/// catalog ([`super::catalog`]) keeps stable across model changes; without ids an index's key id
/// is its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeSpec {
    /// Type name (`User`).
    pub name: String,
    /// Indexes; index 0 is the primary key.
    pub indexes: Vec<IndexSpec>,
    /// The key id of each index, in the order of `indexes` (empty: the positions).
    #[serde(default)]
    pub ids: Vec<u8>,
    /// Indexes still being built from the stored objects, by position, with the versions done:
    /// writes keep them up to date, queries do not use them yet.
    #[serde(default)]
    pub building: Vec<(usize, u64)>,
    /// The configuration version whose model this spec follows: recorded with every object
    /// version written through it.
    #[serde(default)]
    pub config_version: u64,
}

/// One index: named, one or more parts; multikey when a part's path steps into an array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexSpec {
    /// Index name, used in filters (`[["$full_name", "==", ["Doe", "John"]]]`).
    pub name: String,
    /// Key parts, compared in order.
    pub parts: Vec<PartSpec>,
    /// One entry per array element (a part path contains [`PathSeg::Each`]).
    pub multikey: bool,
}

/// One part of an index key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSpec {
    /// Path of the field in the object: field names; [`PathSeg::Each`] steps into every element.
    pub path: Vec<PathSeg>,
    /// Type of the value.
    pub kind: KeyKind,
    /// String comparison rule.
    pub collation: Collation,
    /// Whether null / a missing field is allowed (nulls sort first).
    pub nullable: bool,
}

/// A step of a part path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathSeg {
    /// An object field.
    Field(String),
    /// Every element of an array (multikey); written `*` in dotted paths.
    Each,
}

/// Value type of a key part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// 64-bit integer.
    Long,
    /// 32-bit integer (stored like a long, so both compare with each other).
    Int,
    /// IEEE double; integers in filters are converted.
    Double,
    /// UTF-8 string.
    String,
    /// true / false.
    Boolean,
    /// ISO 8601 date (`2024-01-31`, `2024-01-31Z`), compared as a date.
    Date,
    /// ISO 8601 time of day (`10:20:48.5+03:00`), compared as the UTC time.
    Time,
    /// ISO 8601 date-time (`2018-03-24T10:20:48.250Z`), compared as the instant.
    DateTime,
    /// Exact decimal number as a string (`-12.50`), compared numerically.
    Decimal,
}

impl KeyKind {
    /// Whether values of this kind are strings (`like` works on them).
    pub fn is_string(self) -> bool {
        matches!(self, KeyKind::String | KeyKind::Date | KeyKind::Time | KeyKind::DateTime)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            KeyKind::Long => "long",
            KeyKind::Int => "int",
            KeyKind::Double => "double",
            KeyKind::String => "string",
            KeyKind::Boolean => "boolean",
            KeyKind::Date => "date",
            KeyKind::Time => "time",
            KeyKind::DateTime => "datetime",
            KeyKind::Decimal => "decimal",
        };
        f.write_str(s)
    }
}

/// String comparison of a key part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collation {
    /// Byte order of UTF-8 (= code point order).
    #[default]
    Binary,
    /// Same as `Binary` (case matters; code point order).
    CaseSensitive,
    /// Compared on the per-character Unicode lowercase form (`Bob` == `bob`).
    CaseInsensitive,
}

impl PartSpec {
    /// A part from a dotted path (`address.city`, `phones.*`), binary collation, not nullable.
    pub fn new(path: &str, kind: KeyKind) -> PartSpec {
        let path =
            path.split('.').map(|s| if s == "*" { PathSeg::Each } else { PathSeg::Field(s.to_string()) }).collect();
        PartSpec { path, kind, collation: Collation::Binary, nullable: false }
    }

    /// Sets the collation.
    pub fn collation(mut self, collation: Collation) -> PartSpec {
        self.collation = collation;
        self
    }

    /// Sets nullability.
    pub fn nullable(mut self, nullable: bool) -> PartSpec {
        self.nullable = nullable;
        self
    }

    /// The dotted form of the path (`phones.*`).
    pub fn path_string(&self) -> String {
        let segs: Vec<&str> = self
            .path
            .iter()
            .map(|s| match s {
                PathSeg::Field(f) => f.as_str(),
                PathSeg::Each => "*",
            })
            .collect();
        segs.join(".")
    }

    /// The dotted path without array steps (`phones` for `phones.*`).
    pub(crate) fn field_string(&self) -> String {
        let segs: Vec<&str> = self
            .path
            .iter()
            .filter_map(|s| match s {
                PathSeg::Field(f) => Some(f.as_str()),
                PathSeg::Each => None,
            })
            .collect();
        segs.join(".")
    }

    pub(crate) fn folds_case(&self) -> bool {
        self.collation == Collation::CaseInsensitive
    }
}

impl IndexSpec {
    /// An index; `multikey` is set when a part path contains [`PathSeg::Each`].
    pub fn new(name: &str, parts: Vec<PartSpec>) -> IndexSpec {
        let multikey = parts.iter().any(|p| p.path.contains(&PathSeg::Each));
        IndexSpec { name: name.to_string(), parts, multikey }
    }
}

impl TypeSpec {
    /// A spec whose indexes are stored under their positions (until the catalog gives ids).
    pub fn new(name: &str, indexes: Vec<IndexSpec>) -> TypeSpec {
        TypeSpec { name: name.to_string(), indexes, ids: Vec::new(), building: Vec::new(), config_version: 0 }
    }

    /// How far index `i` is built, while it is being built.
    pub fn building(&self, i: usize) -> Option<u64> {
        self.building.iter().find(|(at, _)| *at == i).map(|(_, done)| *done)
    }

    /// The error for a request that needs index `i` while it is being built.
    pub fn not_ready(&self, i: usize, done: u64) -> StorageError {
        StorageError::IndexBuilding { type_name: self.name.clone(), index: self.indexes[i].name.clone(), done }
    }

    /// The key id of index `i` (its entries are stored under it).
    pub fn key_id(&self, i: usize) -> u8 {
        self.ids.get(i).copied().unwrap_or(i as u8)
    }

    /// Position of the index with this name.
    pub fn index_position(&self, name: &str) -> Option<usize> {
        self.indexes.iter().position(|i| i.name == name)
    }

    /// Checks the rules of the storage; errors name the type and index.
    pub fn validate(&self) -> Result<(), StorageError> {
        let t = &self.name;
        let bad = |m: String| Err(StorageError::user(format!("type {t}: {m}")));
        if t.is_empty() || t.contains('\0') {
            return bad("the type name must be non-empty and contain no NUL".into());
        }
        if !self.ids.is_empty() {
            let mut seen = std::collections::HashSet::new();
            let ok = self.ids.len() == self.indexes.len()
                && self.ids.first() == Some(&0)
                && self.ids[1..].iter().all(|id| *id != 0)
                && self.ids.iter().all(|id| seen.insert(*id));
            if !ok {
                return bad(format!("index key ids {:?} do not fit its {} indexes", self.ids, self.indexes.len()));
            }
        }
        let Some(primary) = self.indexes.first() else {
            return bad("a primary index (index 0) is required".into());
        };
        if self.indexes.len() > 255 {
            return bad(format!("{} indexes (at most 255)", self.indexes.len()));
        }
        if primary.multikey || primary.parts.iter().any(|p| p.nullable) {
            return bad(format!("primary index \"{}\" cannot be multikey or nullable", primary.name));
        }
        for (i, idx) in self.indexes.iter().enumerate() {
            if idx.parts.is_empty() {
                return bad(format!("index \"{}\" has no parts", idx.name));
            }
            if self.indexes[..i].iter().any(|o| o.name == idx.name) {
                return bad(format!("index name \"{}\" is used twice", idx.name));
            }
            let has_each = idx.parts.iter().any(|p| p.path.contains(&PathSeg::Each));
            if has_each != idx.multikey {
                return bad(format!(
                    "index \"{}\": multikey must be set exactly when a part path contains \"*\"",
                    idx.name
                ));
            }
            for p in &idx.parts {
                let empty_field = p.path.iter().any(|s| matches!(s, PathSeg::Field(f) if f.is_empty()));
                if p.path.is_empty() || empty_field || p.path.first() == Some(&PathSeg::Each) {
                    return bad(format!("index \"{}\": invalid path \"{}\"", idx.name, p.path_string()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::user_spec;
    use super::*;

    #[test]
    fn dotted_paths_and_validation() {
        let p = PartSpec::new("phones.*", KeyKind::String);
        assert_eq!(p.path, vec![PathSeg::Field("phones".into()), PathSeg::Each]);
        assert_eq!(p.path_string(), "phones.*");
        assert_eq!(p.field_string(), "phones");
        let spec = user_spec();
        spec.validate().unwrap();
        assert!(spec.indexes[3].multikey);
        assert_eq!(spec.index_position("age"), Some(2));

        let mut bad = spec.clone();
        bad.indexes[0].parts[0].nullable = true;
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("type User: primary index \"id\""), "{e}");
        let mut dup = spec.clone();
        dup.indexes[2].name = "username".into();
        assert!(dup.validate().unwrap_err().to_string().contains("\"username\" is used twice"));
        let none = TypeSpec::new("X", vec![]);
        assert!(none.validate().is_err());
    }
}
