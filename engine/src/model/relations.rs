//! TDG's `relations` between record types: `{name, to, count: one|many, from_fields, to_fields}`.
//! The target must be an Aggregate; both sides name an index or fields, with the same number of
//! parts and compatible types.

use super::error::SchemaError;
use super::extensions::resolve_path;
use super::schema::{is_simple_name, push, qualify, Draft};
use super::types::{IndexPart, RelationDef, TypeDef, TypeKind};
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Reads and checks `relations` of every record type (indexes must already be resolved).
pub(super) fn relations(
    types: &mut IndexMap<String, TypeDef>,
    drafts: &IndexMap<String, Draft<'_>>,
    errors: &mut Vec<SchemaError>,
) {
    let mut updates = Vec::new();
    for (tname, draft) in drafts {
        let Some(td) = types.get(tname) else { continue };
        let mut list: Vec<RelationDef> = Vec::new();
        match draft.json.get("relations") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let Some(m) = item.as_object() else {
                        push(errors, format!("{tname}.relations[{i}]"), "a relation must be an object");
                        continue;
                    };
                    let Some(rel) = parse_relation(types, td, draft.namespace.as_deref(), m, i, errors) else {
                        continue;
                    };
                    if list.iter().any(|r| r.name == rel.name) {
                        push(errors, format!("{tname}.relations.{}", rel.name), "relation name is used more than once");
                        continue;
                    }
                    list.push(rel);
                }
            }
            Some(_) => push(errors, tname, "relations must be a list"),
        }
        updates.push((tname.clone(), list));
    }
    for (tname, list) in updates {
        if let Some(t) = types.get_mut(&tname) {
            t.relations = list;
        }
    }
}

fn parse_relation(
    types: &IndexMap<String, TypeDef>,
    td: &TypeDef,
    namespace: Option<&str>,
    m: &Map<String, Value>,
    i: usize,
    errors: &mut Vec<SchemaError>,
) -> Option<RelationDef> {
    let tname = &td.name;
    let known = ["name", "to", "count", "from_fields", "to_fields", "doc"];
    let Some(name) = m.get("name").and_then(Value::as_str).filter(|n| is_simple_name(n)) else {
        push(errors, format!("{tname}.relations[{i}]"), "a relation needs a \"name\" (letters, digits, _)");
        return None;
    };
    let loc = format!("{tname}.relations.{name}");
    let before = errors.len();
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        push(errors, &loc, format!("unknown key \"{k}\" (expected {})", known.join(", ")));
    }
    if td.field(name).is_some() {
        push(errors, &loc, format!("relation name collides with field {tname}.{name}"));
    }
    let many = match m.get("count").and_then(Value::as_str) {
        Some("one") => false,
        Some("many") => true,
        _ => {
            push(errors, &loc, "count must be \"one\" or \"many\"");
            false
        }
    };
    let target = match m.get("to").and_then(Value::as_str) {
        None => {
            push(errors, &loc, "a relation needs \"to\" (the target type)");
            None
        }
        Some(to) => match types.get(&qualify(to, namespace)).or_else(|| types.get(to)) {
            None => {
                push(errors, &loc, format!("target type \"{to}\" is not defined"));
                None
            }
            Some(t) if t.kind != TypeKind::Aggregate => {
                push(errors, &loc, format!("target type {to} is {}, not an Aggregate", t.kind.as_str()));
                None
            }
            Some(t) => Some(t),
        },
    };
    let from = resolve_fields(types, td, m.get("from_fields"), "from_fields", name, errors);
    let to = target.and_then(|t| resolve_fields(types, t, m.get("to_fields"), "to_fields", name, errors));
    let (Some(target), Some((from_parts, _)), Some((to_parts, to_index))) = (target, from, to) else {
        return None;
    };
    if from_parts.len() != to_parts.len() {
        let msg = format!(
            "from_fields has {} part(s) but to_fields has {} (relation \"{name}\")",
            from_parts.len(),
            to_parts.len()
        );
        push(errors, format!("{tname}.{}", from_parts.first().map(IndexPart::dotted).unwrap_or_default()), msg);
    }
    for (f, t) in from_parts.iter().zip(&to_parts) {
        if !f.kind.compatible(t.kind) {
            let msg = format!(
                "{} is not compatible with {}.{} of type {} (relation \"{name}\")",
                f.kind.as_str(),
                target.name,
                t.dotted(),
                t.kind.as_str()
            );
            push(errors, format!("{tname}.{}", f.dotted()), msg);
        }
    }
    if errors.len() != before {
        return None;
    }
    let to_fields: Vec<String> = to_parts.iter().map(IndexPart::dotted).collect();
    let to_index = to_index.or_else(|| {
        target
            .indexes
            .iter()
            .find(|ix| {
                ix.parts.len() >= to_fields.len() && ix.parts.iter().zip(&to_fields).all(|(p, f)| p.dotted() == *f)
            })
            .map(|ix| ix.name.clone())
    });
    Some(RelationDef {
        name: name.to_string(),
        to: target.name.clone(),
        many,
        from_fields: from_parts.iter().map(IndexPart::dotted).collect(),
        to_fields,
        to_index,
    })
}

/// Resolves `from_fields`/`to_fields`: an index name of `td`, a field path, or a list of field
/// paths. Returns the parts and the index name when an index was named.
fn resolve_fields(
    types: &IndexMap<String, TypeDef>,
    td: &TypeDef,
    spec: Option<&Value>,
    key: &str,
    rel: &str,
    errors: &mut Vec<SchemaError>,
) -> Option<(Vec<IndexPart>, Option<String>)> {
    let paths: Vec<&str> = match spec {
        Some(Value::String(s)) => {
            if let Some(ix) = td.index(s) {
                return Some((ix.parts.clone(), Some(ix.name.clone())));
            }
            vec![s.as_str()]
        }
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            let msg = format!("{key} must be an index name, a field or a list of fields");
            push(errors, format!("{}.relations.{rel}", td.name), msg);
            return None;
        }
    };
    let mut parts = Vec::with_capacity(paths.len());
    for p in paths {
        match resolve_path(types, &td.name, p) {
            Ok(part) if part.through_array => {
                push(
                    errors,
                    format!("{}.{p}", td.name),
                    format!("relation fields cannot go through an array (relation \"{rel}\")"),
                );
            }
            Ok(part) => parts.push(part),
            Err(e) => push(errors, e.location, format!("{} (relation \"{rel}\")", e.message)),
        }
    }
    let n = parts.len();
    (n == spec.and_then(Value::as_array).map_or(1, Vec::len)).then_some((parts, None))
}
