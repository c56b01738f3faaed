//! Mapping the domain model onto the storage's schema-agnostic type specs.

use crate::model::{Collation as ModelCollation, FieldType, IndexDef, Model, ScalarKind, TypeDef};
use crate::storage::{Collation, IndexSpec, KeyKind, PartSpec, PathSeg, TypeSpec};
use std::collections::HashMap;

fn key_kind(kind: ScalarKind) -> KeyKind {
    match kind {
        ScalarKind::Long => KeyKind::Long,
        ScalarKind::Int => KeyKind::Int,
        ScalarKind::Double => KeyKind::Double,
        ScalarKind::String => KeyKind::String,
        ScalarKind::Decimal => KeyKind::Decimal,
        ScalarKind::Boolean => KeyKind::Boolean,
        ScalarKind::Date => KeyKind::Date,
        ScalarKind::Time => KeyKind::Time,
        ScalarKind::DateTime => KeyKind::DateTime,
    }
}

fn collation(c: ModelCollation) -> Collation {
    match c {
        ModelCollation::Binary => Collation::Binary,
        ModelCollation::CaseSensitive => Collation::CaseSensitive,
        ModelCollation::CaseInsensitive => Collation::CaseInsensitive,
    }
}

/// Strip `["null", T]` to `T`.
fn non_null(ty: &FieldType) -> &FieldType {
    ty.nullable_inner().unwrap_or(ty)
}

/// The storage path of a model path: an `Each` step after every array on the way.
fn storage_path(model: &Model, owner: &TypeDef, path: &[String]) -> Vec<PathSeg> {
    let mut segs = Vec::with_capacity(path.len() + 1);
    let mut current = Some(owner);
    for name in path {
        segs.push(PathSeg::Field(name.clone()));
        let Some(field) = current.and_then(|t| t.field(name)) else {
            current = None;
            continue;
        };
        let mut ty = non_null(&field.ty);
        if let FieldType::Array(items) = ty {
            segs.push(PathSeg::Each);
            ty = non_null(items);
        }
        current = match ty {
            FieldType::Record(r) => model.get(r),
            _ => None,
        };
    }
    segs
}

fn index_spec(model: &Model, owner: &TypeDef, index: &IndexDef) -> IndexSpec {
    let parts = index
        .parts
        .iter()
        .map(|p| PartSpec {
            path: storage_path(model, owner, &p.path),
            kind: key_kind(p.kind),
            collation: collation(index.collation),
            nullable: p.nullable,
        })
        .collect();
    IndexSpec::new(&index.name, parts)
}

/// A storage spec for every aggregate of the model.
pub fn type_specs(model: &Model) -> HashMap<String, TypeSpec> {
    model
        .aggregates()
        .map(|t| {
            let indexes = t.indexes.iter().map(|i| index_spec(model, t, i)).collect();
            (t.name.clone(), TypeSpec::new(&t.name, indexes))
        })
        .collect()
}
