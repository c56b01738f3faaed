//! Objects as the resolvers pass them down: the JSON value of a record, with the version and
//! cursor when it is a stored aggregate; and the conversion of model values to GraphQL values.

use crate::model::FieldType;
use crate::storage::Stored;
use async_graphql::dynamic::FieldValue;
use async_graphql::Value as GqlValue;
use serde_json::Value;

/// A record being resolved.
pub struct Node {
    /// The record's JSON object.
    pub value: Value,
    /// Version of a stored aggregate.
    pub version: Option<u64>,
    /// Cursor of a stored aggregate (for `after`).
    pub cursor: Option<String>,
}

impl Node {
    /// A nested record (no version of its own).
    pub fn nested(value: Value) -> Node {
        Node { value, version: None, cursor: None }
    }

    /// A stored aggregate.
    pub fn stored(stored: Stored) -> Node {
        Node { value: stored.object, version: Some(stored.version), cursor: Some(stored.cursor) }
    }
}

/// Stored aggregates as a GraphQL list.
pub fn list(items: Vec<Stored>) -> FieldValue<'static> {
    FieldValue::list(items.into_iter().map(|s| FieldValue::owned_any(Node::stored(s))))
}

/// Whether values of `ty` resolve as objects (records, or lists of them) rather than as scalars.
fn holds_records(ty: &FieldType) -> bool {
    match ty {
        FieldType::Record(_) => true,
        FieldType::Array(items) => holds_records(items),
        FieldType::Union(_) => ty.nullable_inner().is_some_and(holds_records),
        _ => false,
    }
}

/// A JSON value as a GraphQL value (numbers keep their exact integer value).
pub fn gql_value(v: &Value) -> GqlValue {
    GqlValue::from_json(v.clone()).unwrap_or(GqlValue::Null)
}

/// The GraphQL value of a field of type `ty` holding `v`; `None` for null.
pub fn field_value(ty: &FieldType, v: &Value) -> Option<FieldValue<'static>> {
    if v.is_null() {
        return None;
    }
    if !holds_records(ty) {
        return Some(FieldValue::value(gql_value(v)));
    }
    match ty {
        FieldType::Record(_) => Some(FieldValue::owned_any(Node::nested(v.clone()))),
        FieldType::Array(items) => {
            let values = v.as_array()?;
            Some(FieldValue::list(values.iter().map(|x| field_value(items, x).unwrap_or(FieldValue::NULL))))
        }
        FieldType::Union(_) => ty.nullable_inner().and_then(|inner| field_value(inner, v)),
        _ => None,
    }
}

/// The value at a dotted path of a JSON object.
pub fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| v.get(part))
}
