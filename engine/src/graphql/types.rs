//! GraphQL types generated from the model: an object type per record (aggregates get `cursor`,
//! `version` and their relations), an input type per record for inserts, the scalars `Long`
//! (64-bit integers, never rounded) and `JSON` (maps, unions, composite keys).

use super::names::gql_name;
use super::node::{field_value, Node};
use super::query::{filter_args, relation_field};
use crate::model::{FieldType, Model, ScalarKind, TypeDef, TypeKind};
use async_graphql::dynamic::{Field, FieldFuture, InputObject, InputValue, Object, Scalar, TypeRef};
use async_graphql::Value as GqlValue;

/// 64-bit integers (Avro `long`, versions): JSON numbers, exact.
pub const LONG: &str = "Long";
/// Any JSON value (Avro maps and unions, composite index keys, updaters).
pub const JSON: &str = "JSON";

/// The scalars this schema adds.
pub fn scalars() -> [Scalar; 2] {
    [
        Scalar::new(LONG)
            .description("A 64-bit integer (Avro long, versions), exact beyond 2^53")
            .validator(|v| matches!(v, GqlValue::Number(n) if n.is_i64() || n.is_u64())),
        Scalar::new(JSON).description("Any JSON value"),
    ]
}

/// Name of the GraphQL type of a scalar or record field type (not arrays).
fn named(ty: &FieldType) -> String {
    match ty {
        FieldType::Boolean => TypeRef::BOOLEAN.into(),
        FieldType::Int => TypeRef::INT.into(),
        FieldType::Long => LONG.into(),
        FieldType::Float | FieldType::Double => TypeRef::FLOAT.into(),
        FieldType::String
        | FieldType::Bytes
        | FieldType::Date
        | FieldType::Time
        | FieldType::DateTime
        | FieldType::Decimal
        | FieldType::Enum { .. }
        | FieldType::Fixed { .. } => TypeRef::STRING.into(),
        FieldType::Record(name) => gql_name(name),
        FieldType::Null | FieldType::Map(_) | FieldType::Union(_) | FieldType::Array(_) => JSON.into(),
    }
}

/// Whether a value of `ty` may be null.
fn nullable(ty: &FieldType) -> bool {
    match ty {
        FieldType::Null => true,
        FieldType::Union(variants) => variants.contains(&FieldType::Null),
        _ => false,
    }
}

/// The (nullable) output type of `ty`; `input`: the insert input type instead.
fn type_of(ty: &FieldType, input: bool) -> TypeRef {
    match ty {
        FieldType::Array(items) => {
            let item = type_of(items, input);
            TypeRef::List(Box::new(if nullable(items) { item } else { TypeRef::NonNull(Box::new(item)) }))
        }
        FieldType::Union(_) => match ty.nullable_inner() {
            Some(inner) => type_of(inner, input),
            None => TypeRef::named(JSON),
        },
        FieldType::Record(name) if input => TypeRef::named(insert_type_name(name)),
        other => TypeRef::named(named(other)),
    }
}

/// The GraphQL type of the value of one index part (filter arguments).
pub fn part_type(kind: ScalarKind) -> TypeRef {
    TypeRef::named(match kind {
        ScalarKind::Long => LONG,
        ScalarKind::Int => TypeRef::INT,
        ScalarKind::Double => TypeRef::FLOAT,
        ScalarKind::Boolean => TypeRef::BOOLEAN,
        ScalarKind::String | ScalarKind::Date | ScalarKind::Time | ScalarKind::DateTime | ScalarKind::Decimal => {
            TypeRef::STRING
        }
    })
}

/// The input type used to insert a record of type `name`.
pub fn insert_type_name(name: &str) -> String {
    format!("{}_insert", gql_name(name))
}

/// The object type of record `t`.
pub fn object_type(model: &Model, t: &TypeDef) -> Object {
    let mut object = Object::new(gql_name(&t.name));
    if let Some(doc) = &t.doc {
        object = object.description(doc.clone());
    }
    for f in &t.fields {
        let ty = f.ty.clone();
        let name = f.name.clone();
        let out = if f.optional { type_of(&f.ty, false) } else { TypeRef::NonNull(Box::new(type_of(&f.ty, false))) };
        let mut field = Field::new(gql_name(&f.name), out, move |ctx| {
            let value = ctx
                .parent_value
                .downcast_ref::<Node>()
                .and_then(|node| node.value.get(&name))
                .and_then(|v| field_value(&ty, v));
            FieldFuture::Value(value)
        });
        if let Some(doc) = &f.doc {
            field = field.description(doc.clone());
        }
        object = object.field(field);
    }
    if t.kind != TypeKind::Aggregate {
        return object;
    }
    if t.field("cursor").is_none() {
        object = object.field(
            Field::new("cursor", TypeRef::named(TypeRef::STRING), |ctx| {
                let cursor = ctx.parent_value.downcast_ref::<Node>().and_then(|n| n.cursor.clone());
                FieldFuture::from_value(cursor.map(GqlValue::from))
            })
            .description("Opaque position of this object, for `after`"),
        );
    }
    if t.field("version").is_none() {
        object = object.field(
            Field::new("version", TypeRef::named(LONG), |ctx| {
                let version = ctx.parent_value.downcast_ref::<Node>().and_then(|n| n.version);
                FieldFuture::from_value(version.map(GqlValue::from))
            })
            .description("The version of this object (nanosecond-time based)"),
        );
    }
    for relation in &t.relations {
        if let Some(target) = model.get(&relation.to) {
            object = object.field(relation_field(relation, target));
        }
    }
    object
}

/// The insert input type of record `t` (every field optional: the model checks and reports
/// missing ones with their paths).
pub fn input_type(t: &TypeDef) -> InputObject {
    let mut input = InputObject::new(insert_type_name(&t.name));
    for f in &t.fields {
        input = input.field(InputValue::new(gql_name(&f.name), type_of(&f.ty, true)));
    }
    input
}

/// Every object and input type of the model's records.
pub fn model_types(model: &Model) -> (Vec<Object>, Vec<InputObject>) {
    let records: Vec<&TypeDef> = model.types().filter(|t| !t.fields.is_empty()).collect();
    (records.iter().map(|t| object_type(model, t)).collect(), records.iter().map(|t| input_type(t)).collect())
}

/// Arguments of a root field or a `many` relation: the filters of `t` and pagination.
pub fn with_filter_args(mut field: Field, t: &TypeDef) -> Field {
    for arg in filter_args(t) {
        field = field.argument(InputValue::new(arg.arg, arg.ty));
    }
    field
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
}
