//! The parsed domain model: record types, their fields, indexes and relations.
//!
//! These are plain data; `schema.rs` and `extensions.rs` build them from the Avro JSON, and
//! `validate.rs`, `keys.rs` and `text.rs` read them.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// What a record type is in TDG's domain model (its record-level `logicalType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeKind {
    /// A root object, stored on its own with a primary key.
    Aggregate,
    /// An object with identity that lives inside an aggregate.
    Entity,
    /// A value without identity (the default).
    ValueObject,
}

impl TypeKind {
    /// The name used in the schema (`Aggregate`, `Entity`, `ValueObject`).
    pub fn as_str(self) -> &'static str {
        match self {
            TypeKind::Aggregate => "Aggregate",
            TypeKind::Entity => "Entity",
            TypeKind::ValueObject => "ValueObject",
        }
    }
}

/// One record type of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeDef {
    /// Full Avro name (`namespace.Name`, or `Name` without a namespace).
    pub name: String,
    /// Aggregate, Entity or ValueObject.
    pub kind: TypeKind,
    /// Fields in declaration order.
    pub fields: Vec<FieldDef>,
    /// Indexes; the first one is the primary key.
    pub indexes: Vec<IndexDef>,
    /// Relations to aggregates.
    pub relations: Vec<RelationDef>,
    /// Primary-key fields the data is distributed by (empty: the whole primary key).
    pub affinity: Vec<String>,
    /// The record's `doc`.
    pub doc: Option<String>,
}

impl TypeDef {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The primary index (the first one), if the type has indexes.
    pub fn primary_index(&self) -> Option<&IndexDef> {
        self.indexes.first()
    }

    /// The index called `name`.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The relation called `name`.
    pub fn relation(&self, name: &str) -> Option<&RelationDef> {
        self.relations.iter().find(|r| r.name == name)
    }
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDef {
    /// Field name.
    pub name: String,
    /// The field's type. For an optional field (`["null", T]`) this is `T` (or the union of the
    /// non-null variants) and `optional` is set.
    pub ty: FieldType,
    /// The field may be null or missing (its Avro type is a union with `null`).
    pub optional: bool,
    /// The Avro `default`, already normalised (Date/DateTime in canonical form).
    pub default: Option<Value>,
    /// A function that computes the value when it is missing.
    pub default_function: Option<String>,
    /// The value comes from a per-field counter when it is missing (long fields only).
    pub auto_increment: bool,
    /// The field's `doc`.
    pub doc: Option<String>,
}

/// The type of a field or of a nested value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Avro `null`.
    Null,
    /// Avro `boolean`.
    Boolean,
    /// Avro `int` (32 bits).
    Int,
    /// Avro `long` (64 bits).
    Long,
    /// Avro `float`.
    Float,
    /// Avro `double`.
    Double,
    /// Avro `string`.
    String,
    /// Avro `bytes` (a JSON string).
    Bytes,
    /// ISO 8601 date, `{"type": "string", "logicalType": "Date"}`.
    Date,
    /// ISO 8601 time of day, `{"type": "string", "logicalType": "Time"}`.
    Time,
    /// ISO 8601 date and time, `{"type": "string", "logicalType": "DateTime"}`.
    DateTime,
    /// Exact decimal number as a string, `{"type": "string", "logicalType": "Decimal"}`.
    Decimal,
    /// Avro `enum`.
    Enum {
        /// Full name of the enum.
        name: String,
        /// Allowed symbols.
        symbols: Vec<String>,
    },
    /// Avro `fixed` (a JSON string of `size` characters).
    Fixed {
        /// Full name of the fixed type.
        name: String,
        /// Length in bytes.
        size: usize,
    },
    /// Avro `array` of the element type.
    Array(Box<FieldType>),
    /// Avro `map` (string keys) of the value type.
    Map(Box<FieldType>),
    /// A record type of the model, by full name.
    Record(String),
    /// Avro union: the variants in declaration order.
    Union(Vec<FieldType>),
}

impl FieldType {
    /// The scalar kind an index part of this type has, if it can be indexed.
    pub fn scalar_kind(&self) -> Option<ScalarKind> {
        Some(match self {
            FieldType::Long => ScalarKind::Long,
            FieldType::Int => ScalarKind::Int,
            FieldType::Float | FieldType::Double => ScalarKind::Double,
            FieldType::String | FieldType::Enum { .. } => ScalarKind::String,
            FieldType::Boolean => ScalarKind::Boolean,
            FieldType::Date => ScalarKind::Date,
            FieldType::Time => ScalarKind::Time,
            FieldType::DateTime => ScalarKind::DateTime,
            FieldType::Decimal => ScalarKind::Decimal,
            _ => return None,
        })
    }

    /// For a union with `null` and exactly one other variant, that variant.
    pub fn nullable_inner(&self) -> Option<&FieldType> {
        match self {
            FieldType::Union(variants) => {
                let mut non_null = variants.iter().filter(|v| **v != FieldType::Null);
                let first = non_null.next()?;
                let has_null = variants.contains(&FieldType::Null);
                (has_null && non_null.next().is_none()).then_some(first)
            }
            _ => None,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Null => f.write_str("null"),
            FieldType::Boolean => f.write_str("boolean"),
            FieldType::Int => f.write_str("int"),
            FieldType::Long => f.write_str("long"),
            FieldType::Float => f.write_str("float"),
            FieldType::Double => f.write_str("double"),
            FieldType::String => f.write_str("string"),
            FieldType::Bytes => f.write_str("bytes"),
            FieldType::Date => f.write_str("Date"),
            FieldType::Time => f.write_str("Time"),
            FieldType::DateTime => f.write_str("DateTime"),
            FieldType::Decimal => f.write_str("Decimal"),
            FieldType::Enum { name, .. } => write!(f, "enum {name}"),
            FieldType::Fixed { name, size } => write!(f, "fixed {name}({size})"),
            FieldType::Array(items) => write!(f, "array<{items}>"),
            FieldType::Map(values) => write!(f, "map<{values}>"),
            FieldType::Record(name) => write!(f, "record {name}"),
            FieldType::Union(variants) => {
                f.write_str("union[")?;
                for (i, v) in variants.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// The type of one index part, as the storage encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarKind {
    /// 64-bit integer.
    Long,
    /// 32-bit integer.
    Int,
    /// Floating point (Avro `double` and `float`).
    Double,
    /// String (also enums).
    String,
    /// Boolean.
    Boolean,
    /// Date string (`1980-01-01Z`).
    Date,
    /// Time string (`10:20:48Z`).
    Time,
    /// DateTime string (`2018-03-24T10:20:48Z`).
    DateTime,
    /// Decimal string (`12.50`).
    Decimal,
}

impl ScalarKind {
    /// Lower-case name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarKind::Long => "long",
            ScalarKind::Int => "int",
            ScalarKind::Double => "double",
            ScalarKind::String => "string",
            ScalarKind::Boolean => "boolean",
            ScalarKind::Date => "Date",
            ScalarKind::Time => "Time",
            ScalarKind::DateTime => "DateTime",
            ScalarKind::Decimal => "Decimal",
        }
    }

    /// Two kinds can be joined by a relation (same kind, or both integers, or both floats).
    pub fn compatible(self, other: ScalarKind) -> bool {
        let integral = |k| matches!(k, ScalarKind::Long | ScalarKind::Int);
        self == other || (integral(self) && integral(other))
    }
}

/// String comparison used by an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collation {
    /// Byte-wise comparison (`binary`, the default).
    Binary,
    /// Unicode, case-sensitive (`case_sensitivity`).
    CaseSensitive,
    /// Unicode, case-insensitive (`case_insensitivity`).
    CaseInsensitive,
}

impl Collation {
    /// The name used in the schema.
    pub fn as_str(self) -> &'static str {
        match self {
            Collation::Binary => "binary",
            Collation::CaseSensitive => "case_sensitivity",
            Collation::CaseInsensitive => "case_insensitivity",
        }
    }
}

/// One index of an aggregate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexDef {
    /// Index name (for the string form, the field path).
    pub name: String,
    /// Key parts in order.
    pub parts: Vec<IndexPart>,
    /// String comparison.
    pub collation: Collation,
    /// One entry per array element (a part goes through an array).
    pub multikey: bool,
    /// The first index of the type: unique, the object's identity.
    pub primary: bool,
}

/// One part of an index key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexPart {
    /// Field path from the aggregate, e.g. `["header", "id"]`.
    pub path: Vec<String>,
    /// The scalar type of the value.
    pub kind: ScalarKind,
    /// The value may be null (an optional field on the way).
    pub nullable: bool,
    /// The path goes through an array (the index is multikey).
    pub through_array: bool,
    /// Position in `path` of the array field, when `through_array`.
    pub array_at: Option<usize>,
}

impl IndexPart {
    /// The path joined with dots (`header.id`).
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// A relation from one type to an aggregate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationDef {
    /// Relation name (becomes a field in GraphQL).
    pub name: String,
    /// Target aggregate (full name).
    pub to: String,
    /// `count: many` (a list) rather than `one`.
    pub many: bool,
    /// Field paths on this type (dotted).
    pub from_fields: Vec<String>,
    /// Field paths on the target type (dotted), matched part by part.
    pub to_fields: Vec<String>,
    /// An index of the target whose leading parts are `to_fields`, usable for the lookup.
    pub to_index: Option<String>,
}
