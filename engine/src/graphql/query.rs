//! Queries: one root field per aggregate (`User(id: 1) { ... }`) and relation fields, with TDG's
//! arguments: every index by name (a composite one as a list), `_gt _ge _lt _le` on every index,
//! `_like` on string indexes, `first`/`after`, `version`, `all_versions`. Every argument becomes
//! one condition of a repository filter, so the storage plans it as a range scan.

use super::loader::{RelationKey, RelationLoader};
use super::names::gql_name;
use super::node::{at_path, list, Node};
use super::types::{part_type, with_filter_args, JSON, LONG};
use super::{coded, engine_of, repo_error, require_read};
use crate::model::{RelationDef, ScalarKind, TypeDef};
use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, ObjectAccessor, TypeRef};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// One filter argument: `arg` compares index `index` with `op`.
pub struct FilterArg {
    /// Argument name (`pkey`, `year_gt`, `username_like`).
    pub arg: String,
    /// Index name, as the repository knows it.
    pub index: String,
    /// TDG filter operator.
    pub op: &'static str,
    /// Argument type.
    pub ty: TypeRef,
}

/// The filter arguments of aggregate `t`.
pub fn filter_args(t: &TypeDef) -> Vec<FilterArg> {
    let mut out = Vec::new();
    for index in &t.indexes {
        let Some(first) = index.parts.first() else { continue };
        let base = gql_name(&index.name);
        let ty = if index.parts.len() == 1 { part_type(first.kind) } else { TypeRef::named_list(JSON) };
        for (suffix, op) in [("", "=="), ("_gt", ">"), ("_ge", ">="), ("_lt", "<"), ("_le", "<=")] {
            out.push(FilterArg { arg: format!("{base}{suffix}"), index: index.name.clone(), op, ty: ty.clone() });
        }
        if first.kind == ScalarKind::String {
            out.push(FilterArg {
                arg: format!("{base}_like"),
                index: index.name.clone(),
                op: "like",
                ty: TypeRef::named(TypeRef::STRING),
            });
        }
    }
    out
}

/// The repository filter that the filter arguments in `args` ask for (`filters`: the type's
/// [`filter_args`], worked out once per schema rather than per request).
pub fn filter_of(filters: &[FilterArg], args: &ObjectAccessor<'_>) -> async_graphql::Result<Vec<Value>> {
    let mut filter = Vec::new();
    for arg in filters {
        if let Some(v) = args.get(&arg.arg).filter(|v| !v.is_null()) {
            filter.push(json!([arg.index, arg.op, v.as_value().clone().into_json()?]));
        }
    }
    Ok(filter)
}

/// `first` and `after` from `args`, into repository options.
pub fn page_options(args: &ObjectAccessor<'_>, options: &mut Map<String, Value>) -> async_graphql::Result<()> {
    if let Some(first) = args.get("first").filter(|v| !v.is_null()) {
        options.insert("first".into(), json!(first.i64()?));
    }
    if let Some(after) = args.get("after").filter(|v| !v.is_null()) {
        options.insert("after".into(), json!(after.string()?));
    }
    Ok(())
}

/// The root query field of aggregate `t`.
pub fn root_field(t: &TypeDef) -> Field {
    let type_def = Arc::new(t.clone());
    let filters = Arc::new(filter_args(t));
    let field = Field::new(gql_name(&t.name), TypeRef::named_nn_list(gql_name(&t.name)), move |ctx| {
        let (t, filters) = (type_def.clone(), filters.clone());
        FieldFuture::new(async move {
            require_read(&ctx, &t.name)?;
            let engine = engine_of(&ctx)?;
            let filter = filter_of(&filters, &ctx.args)?;
            let mut options = Map::new();
            page_options(&ctx.args, &mut options)?;
            if let Some(version) = super::mutation::version_arg(&ctx.args, "version")? {
                options.insert("version".into(), json!(version));
            }
            if let Some(all) = ctx.args.get("all_versions").filter(|v| !v.is_null()) {
                options.insert("all_versions".into(), json!(all.boolean()?));
            }
            // A storage read: on the blocking pool, never on the reactor.
            let repository = engine.runtime().repository.clone();
            let (name, filter, options) = (t.name.clone(), Value::Array(filter), Value::Object(options));
            let page = crate::reads::read(move || repository.find(&name, &filter, &options))
                .await
                .map_err(|e| coded(e.to_string(), "INTERNAL"))?
                .map_err(repo_error)?;
            Ok(Some(list(page.items)))
        })
    });
    with_filter_args(field, t)
        .argument(InputValue::new("version", TypeRef::named(LONG)))
        .argument(InputValue::new("all_versions", TypeRef::named(TypeRef::BOOLEAN)))
        .description(t.doc.clone().unwrap_or_else(|| format!("{} objects", t.name)))
}

/// The conditions that select the targets of `relation` from the object `from`; `None` when a
/// field the relation starts from is null (no targets).
fn relation_filter(relation: &RelationDef, from: &Value) -> Option<Vec<Value>> {
    let values: Vec<Value> = relation
        .from_fields
        .iter()
        .map(|f| at_path(from, f).filter(|v| !v.is_null()).cloned())
        .collect::<Option<_>>()?;
    Some(match &relation.to_index {
        Some(index) if values.len() == 1 => vec![json!([index, "==", values[0]])],
        Some(index) => vec![json!([index, "==", values])],
        None => relation.to_fields.iter().zip(values).map(|(field, v)| json!([field, "==", v])).collect(),
    })
}

/// The field of `relation` (to aggregate `target`) on its source type.
pub fn relation_field(relation: &RelationDef, target: &TypeDef) -> Field {
    let rel = Arc::new(relation.clone());
    let t = Arc::new(target.clone());
    let filters = Arc::new(filter_args(target));
    let ty = if relation.many {
        TypeRef::named_nn_list_nn(gql_name(&target.name))
    } else {
        TypeRef::named(gql_name(&target.name))
    };
    let field = Field::new(gql_name(&relation.name), ty, move |ctx| {
        let (rel, t, filters) = (rel.clone(), t.clone(), filters.clone());
        FieldFuture::new(async move {
            // A relation to a type the caller may not read answers an error for this field.
            require_read(&ctx, &t.name)?;
            let from = ctx.parent_value.try_downcast_ref::<Node>()?;
            let Some(mut filter) = relation_filter(&rel, &from.value) else {
                return Ok(if rel.many { Some(FieldValue::list(Vec::<FieldValue>::new())) } else { None });
            };
            let mut options = Map::new();
            if rel.many {
                filter.extend(filter_of(&filters, &ctx.args)?);
                page_options(&ctx.args, &mut options)?;
            } else {
                options.insert("first".into(), json!(1));
            }
            let key = RelationKey {
                type_name: Arc::from(t.name.as_str()),
                filter: Value::Array(filter).to_string(),
                options: Value::Object(options).to_string(),
            };
            let found = ctx
                .data::<DataLoader<RelationLoader>>()?
                .load_one(key)
                .await
                .map_err(|e| coded(e.to_string(), "INTERNAL"))?
                .ok_or_else(|| coded("relation lookup lost".into(), "INTERNAL"))?;
            let items = match found.as_ref() {
                Ok(items) => items.clone(),
                Err((message, code)) => return Err(coded(message.clone(), code)),
            };
            if rel.many {
                return Ok(Some(list(items)));
            }
            Ok(items.into_iter().next().map(|s| FieldValue::owned_any(Node::stored(s))))
        })
    });
    if relation.many {
        with_filter_args(field, target)
    } else {
        field
    }
}
