//! TDG's extensions to Avro records, read from the schema JSON: field attributes (`default`,
//! `default_function`, `auto_increment`), `indexes` (dotted paths into ValueObjects, collation,
//! multikey over arrays, the first one primary) and `affinity`.

use super::error::SchemaError;
use super::schema::{push, Draft};
use super::types::{Collation, FieldType, IndexDef, IndexPart, ScalarKind, TypeDef, TypeKind};
use super::validate::{Checker, NoHooks};
use indexmap::IndexMap;
use serde_json::Value;

/// Reads and checks `default`, `default_function` and `auto_increment` of every field.
pub(super) fn field_attributes(
    types: &mut IndexMap<String, TypeDef>,
    drafts: &IndexMap<String, Draft<'_>>,
    function_exists: &dyn Fn(&str) -> bool,
    errors: &mut Vec<SchemaError>,
) {
    let mut updates = Vec::new();
    for (tname, draft) in drafts {
        let Some(td) = types.get(tname) else { continue };
        for (fi, (f, fm)) in td.fields.iter().zip(&draft.field_json).enumerate() {
            let loc = format!("{tname}.{}", f.name);
            let default_function = match fm.get("default_function") {
                None | Some(Value::Null) => None,
                Some(Value::String(name)) => {
                    if !function_exists(name) {
                        push(errors, &loc, format!("default_function \"{name}\" is not a defined function"));
                    }
                    Some(name.clone())
                }
                Some(_) => {
                    push(errors, &loc, "default_function must be a function name");
                    None
                }
            };
            let auto_increment = match fm.get("auto_increment") {
                None | Some(Value::Bool(false)) => false,
                Some(Value::Bool(true)) => true,
                Some(_) => {
                    push(errors, &loc, "auto_increment must be true or false");
                    false
                }
            };
            if auto_increment {
                if f.ty != FieldType::Long {
                    push(errors, &loc, format!("auto_increment needs type long, got {}", f.ty));
                }
                if f.default.is_some() {
                    push(errors, &loc, "auto_increment cannot be combined with default");
                }
                if default_function.is_some() {
                    push(errors, &loc, "auto_increment cannot be combined with default_function");
                }
            } else if f.default.is_some() && default_function.is_some() {
                push(errors, &loc, "default and default_function cannot be combined");
            }
            let default = match &f.default {
                None => None,
                Some(Value::Null) if f.optional => Some(Value::Null),
                Some(d) => match Checker::new(types, &mut NoHooks).check(&f.ty, d, &loc) {
                    Ok(v) => Some(v),
                    Err(violations) => {
                        for v in violations {
                            push(errors, v.path, format!("invalid default: {}", v.message));
                        }
                        None
                    }
                },
            };
            updates.push((tname.clone(), fi, default, default_function, auto_increment));
        }
    }
    for (tname, fi, default, default_function, auto_increment) in updates {
        if let Some(f) = types.get_mut(&tname).and_then(|t| t.fields.get_mut(fi)) {
            f.default = default;
            f.default_function = default_function;
            f.auto_increment = auto_increment;
        }
    }
}

/// Reads and checks `indexes` and `affinity` of every record type.
pub(super) fn indexes(
    types: &mut IndexMap<String, TypeDef>,
    drafts: &IndexMap<String, Draft<'_>>,
    errors: &mut Vec<SchemaError>,
) {
    let mut updates = Vec::new();
    for (tname, draft) in drafts {
        let Some(td) = types.get(tname) else { continue };
        let mut list: Vec<IndexDef> = Vec::new();
        match draft.json.get("indexes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let Some(index) = parse_index(types, tname, item, i, errors) else {
                        continue;
                    };
                    if list.iter().any(|x| x.name == index.name) {
                        push(errors, format!("{tname}.indexes.{}", index.name), "index name is used more than once");
                        continue;
                    }
                    list.push(index);
                }
            }
            Some(_) => push(errors, tname, "indexes must be a list"),
        }
        let declared = draft.json.get("indexes").and_then(Value::as_array).map_or(0, Vec::len);
        if td.kind == TypeKind::Aggregate && declared == 0 {
            push(errors, tname, "an Aggregate needs at least one index (the first one is the primary key)");
        }
        let affinity = affinity(tname, draft, list.first(), errors);
        updates.push((tname.clone(), list, affinity));
    }
    for (tname, list, affinity) in updates {
        if let Some(t) = types.get_mut(&tname) {
            t.indexes = list;
            t.affinity = affinity;
        }
    }
}

fn parse_index(
    types: &IndexMap<String, TypeDef>,
    tname: &str,
    item: &Value,
    i: usize,
    errors: &mut Vec<SchemaError>,
) -> Option<IndexDef> {
    let (name, paths, collation) = match item {
        Value::String(s) => (s.clone(), vec![s.clone()], Collation::Binary),
        Value::Object(m) => {
            let loc = format!("{tname}.indexes[{i}]");
            if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "name" | "parts" | "collation")) {
                push(errors, &loc, format!("unknown key \"{k}\" (expected name, parts, collation)"));
                return None;
            }
            let Some(name) = m.get("name").and_then(Value::as_str) else {
                push(errors, &loc, "an index needs a \"name\"");
                return None;
            };
            let loc = format!("{tname}.indexes.{name}");
            let paths: Option<Vec<String>> = match m.get("parts") {
                Some(Value::String(s)) => Some(vec![s.clone()]),
                Some(Value::Array(a)) if !a.is_empty() => a.iter().map(|p| p.as_str().map(str::to_string)).collect(),
                _ => None,
            };
            let Some(paths) = paths else {
                push(errors, &loc, "\"parts\" must be a non-empty list of field paths");
                return None;
            };
            let collation = match m.get("collation").and_then(|c| c.as_str().or(Some("?"))) {
                None | Some("binary") => Collation::Binary,
                Some("case_sensitivity") => Collation::CaseSensitive,
                Some("case_insensitivity") => Collation::CaseInsensitive,
                Some(_) => {
                    push(errors, &loc, "collation must be binary, case_sensitivity or case_insensitivity");
                    return None;
                }
            };
            (name.to_string(), paths, collation)
        }
        _ => {
            let msg = "an index is a field name or {\"name\": ..., \"parts\": [...]}";
            push(errors, format!("{tname}.indexes[{i}]"), msg);
            return None;
        }
    };
    let mut parts = Vec::with_capacity(paths.len());
    for p in &paths {
        match resolve_path(types, tname, p) {
            Ok(part) => parts.push(part),
            Err(e) => push(errors, e.location, format!("{} (index \"{name}\")", e.message)),
        }
    }
    if parts.len() != paths.len() {
        return None;
    }
    let primary = i == 0;
    let multikey = parts.iter().any(|p| p.through_array);
    let before = errors.len();
    let at = |p: &IndexPart| format!("{tname}.{}", p.dotted());
    let array_path = |p: &IndexPart| p.array_at.map(|a| p.path[..=a].to_vec());
    for p in &parts {
        if primary && p.through_array {
            let loc = format!("{tname}.{}", array_path(p).unwrap_or_default().join("."));
            push(
                errors,
                loc,
                format!("the primary index cannot be multikey: it goes through an array (index \"{name}\")"),
            );
        } else if primary && p.nullable {
            push(errors, at(p), format!("a primary index part cannot be nullable (index \"{name}\")"));
        }
        if p.through_array && matches!(p.kind, ScalarKind::Date | ScalarKind::DateTime | ScalarKind::Decimal) {
            let msg = format!("a multikey index part cannot be {} (index \"{name}\")", p.kind.as_str());
            push(errors, at(p), msg);
        }
    }
    let arrays: Vec<Vec<String>> = parts.iter().filter_map(array_path).collect();
    if arrays.windows(2).any(|w| w[0] != w[1]) {
        push(
            errors,
            format!("{tname}.indexes.{name}"),
            "all multikey parts of an index must go through the same array",
        );
    }
    (errors.len() == before).then_some(IndexDef { name, parts, collation, multikey, primary })
}

/// Resolves a dotted field path from a record type to an index part. Paths may go into
/// ValueObject records and through one array; they end on a scalar.
pub(super) fn resolve_path(
    types: &IndexMap<String, TypeDef>,
    tname: &str,
    dotted: &str,
) -> Result<IndexPart, SchemaError> {
    let fail = |location: String, message: String| SchemaError { location, message };
    let segments: Vec<String> = dotted.split('.').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(fail(format!("{tname}.{dotted}"), "invalid field path".into()));
    }
    let mut rec = types.get(tname).ok_or_else(|| fail(tname.to_string(), "unknown type".into()))?;
    let (mut nullable, mut array_at) = (false, None);
    let mut loc = tname.to_string();
    for (i, seg) in segments.iter().enumerate() {
        loc.push('.');
        loc.push_str(seg);
        let field = rec
            .field(seg)
            .ok_or_else(|| fail(loc.clone(), format!("unknown field (type {} has no field {seg})", rec.name)))?;
        nullable |= field.optional;
        let mut ty = &field.ty;
        loop {
            match ty {
                FieldType::Array(inner) => {
                    if array_at.is_some() {
                        return Err(fail(loc, "an index path can go through only one array".into()));
                    }
                    array_at = Some(i);
                    ty = inner;
                }
                FieldType::Union(_) => match ty.nullable_inner() {
                    Some(inner) => {
                        nullable = true;
                        ty = inner;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        if i + 1 == segments.len() {
            let kind =
                ty.scalar_kind().ok_or_else(|| fail(loc.clone(), format!("index part must be a scalar, got {ty}")))?;
            return Ok(IndexPart { path: segments, kind, nullable, through_array: array_at.is_some(), array_at });
        }
        let FieldType::Record(next) = ty else {
            return Err(fail(loc, format!("{ty} has no fields to go into")));
        };
        rec = types.get(next).ok_or_else(|| fail(loc.clone(), format!("unknown type {next}")))?;
        if rec.kind != TypeKind::ValueObject {
            let msg =
                format!("an index path cannot go into {} record {next} (only into ValueObjects)", rec.kind.as_str());
            return Err(fail(loc, msg));
        }
    }
    Err(fail(format!("{tname}.{dotted}"), "empty field path".into()))
}

fn affinity(tname: &str, draft: &Draft<'_>, primary: Option<&IndexDef>, errors: &mut Vec<SchemaError>) -> Vec<String> {
    let names: Vec<String> = match draft.json.get("affinity") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(_) => {
            push(errors, tname, "affinity must be a field name or a list of field names");
            return Vec::new();
        }
    };
    let Some(pk) = primary else {
        push(errors, format!("{tname}.affinity"), "affinity needs a primary index");
        return Vec::new();
    };
    let pk_parts: Vec<String> = pk.parts.iter().map(IndexPart::dotted).collect();
    let mut out = Vec::new();
    for a in names {
        if pk_parts.contains(&a) {
            out.push(a);
        } else {
            let msg = format!("affinity field is not part of the primary key ({})", pk_parts.join(", "));
            push(errors, format!("{tname}.{a}"), msg);
        }
    }
    out
}
