//! The standard Avro part of the model: named types (records, enums, fixed) with names and
//! namespaces, references between them, unions, arrays and maps, plus TDG's string logical
//! types (Date, Time, DateTime, Decimal).
//!
//! The walk collects every problem with its location; apache-avro then parses the same schema
//! as a conformance check for anything the walk does not look at.

use super::error::SchemaError;
use super::types::{FieldDef, FieldType, TypeDef, TypeKind};
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Deepest nesting of type definitions accepted.
const MAX_TYPE_DEPTH: usize = 64;

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// A named type found in the schema.
pub(super) enum Named<'a> {
    /// A record: its definition and namespace.
    Record(&'a Map<String, Value>, Option<String>),
    /// An enum with its symbols.
    Enum(Vec<String>),
    /// A fixed type with its size.
    Fixed(usize),
}

/// A record type as built from the standard part, with its JSON for the TDG extensions.
pub(super) struct Draft<'a> {
    /// The type; indexes, relations and affinity are filled in by `extensions.rs`.
    pub def: TypeDef,
    /// The record's definition.
    pub json: &'a Map<String, Value>,
    /// The record's namespace (for resolving type names in relations).
    pub namespace: Option<String>,
    /// Each field's definition, parallel to `def.fields`.
    pub field_json: Vec<&'a Map<String, Value>>,
}

/// Adds a schema error.
pub(super) fn push(errors: &mut Vec<SchemaError>, location: impl Into<String>, message: impl Into<String>) {
    errors.push(SchemaError { location: location.into(), message: message.into() });
}

/// Is `s` an Avro simple name (`[A-Za-z_][A-Za-z0-9_]*`)?
pub(super) fn is_simple_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolves a type name as written inside `namespace` to a full name.
pub(super) fn qualify(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// Full name and namespace of a named definition, or why it has none.
fn full_name(m: &Map<String, Value>, enclosing: Option<&str>) -> Result<(String, Option<String>), String> {
    let name = match m.get("name") {
        Some(Value::String(n)) => n,
        Some(_) => return Err("\"name\" must be a string".into()),
        None => return Err("a named type needs a \"name\"".into()),
    };
    let (ns, simple) = match name.rsplit_once('.') {
        Some((ns, simple)) => (Some(ns.to_string()), simple),
        None => {
            let ns = match m.get("namespace") {
                Some(Value::String(ns)) => Some(ns.clone()),
                Some(Value::Null) | None => enclosing.map(str::to_string),
                Some(_) => return Err("\"namespace\" must be a string".into()),
            };
            (ns, name.as_str())
        }
    };
    let ns = ns.filter(|n| !n.is_empty());
    if !is_simple_name(simple) || PRIMITIVES.contains(&simple) {
        return Err(format!("invalid type name \"{name}\""));
    }
    if let Some(ns) = &ns {
        if !ns.split('.').all(is_simple_name) {
            return Err(format!("invalid namespace \"{ns}\""));
        }
    }
    Ok((qualify(simple, ns.as_deref()), ns))
}

fn location_of(m: &Map<String, Value>, fallback: &str) -> String {
    m.get("name").and_then(Value::as_str).unwrap_or(fallback).to_string()
}

/// Pass 1: finds every named type, top-level or nested in fields, in declaration order.
pub(super) fn collect<'a>(items: &[&'a Value], errors: &mut Vec<SchemaError>) -> IndexMap<String, Named<'a>> {
    let mut named = IndexMap::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Object(m) if matches!(m.get("type").and_then(Value::as_str), Some("record" | "enum" | "fixed")) => {
                collect_in(item, None, &format!("types[{i}]"), 0, &mut named, errors)
            }
            _ => push(errors, format!("types[{i}]"), "expected a named type definition (record, enum or fixed)"),
        }
    }
    named
}

fn collect_in<'a>(
    ty: &'a Value,
    enclosing: Option<&str>,
    loc: &str,
    depth: usize,
    named: &mut IndexMap<String, Named<'a>>,
    errors: &mut Vec<SchemaError>,
) {
    if depth > MAX_TYPE_DEPTH {
        return; // reported by `convert`
    }
    let m = match ty {
        Value::Array(variants) => {
            for v in variants {
                collect_in(v, enclosing, loc, depth + 1, named, errors);
            }
            return;
        }
        Value::Object(m) => m,
        _ => return,
    };
    let kind = m.get("type");
    match kind.and_then(Value::as_str) {
        Some(kind @ ("record" | "enum" | "fixed")) => {
            let (full, ns) = match full_name(m, enclosing) {
                Ok(n) => n,
                Err(e) => return push(errors, location_of(m, loc), e),
            };
            if named.contains_key(&full) {
                return push(errors, full, "type is defined more than once");
            }
            match kind {
                "record" => {
                    named.insert(full.clone(), Named::Record(m, ns.clone()));
                    if let Some(Value::Array(fields)) = m.get("fields") {
                        for f in fields {
                            let fname = f.get("name").and_then(Value::as_str).unwrap_or("?");
                            if let Some(t) = f.get("type") {
                                let floc = format!("{full}.{fname}");
                                collect_in(t, ns.as_deref(), &floc, depth + 1, named, errors);
                            }
                        }
                    }
                }
                "enum" => {
                    let symbols = enum_symbols(m, &full, errors);
                    named.insert(full, Named::Enum(symbols));
                }
                _ => match m.get("size").and_then(Value::as_u64) {
                    Some(size) => {
                        named.insert(full, Named::Fixed(usize::try_from(size).unwrap_or(usize::MAX)));
                    }
                    None => push(errors, full, "fixed type needs a non-negative integer \"size\""),
                },
            }
        }
        Some("array") => {
            if let Some(items) = m.get("items") {
                collect_in(items, enclosing, loc, depth + 1, named, errors);
            }
        }
        Some("map") => {
            if let Some(values) = m.get("values") {
                collect_in(values, enclosing, loc, depth + 1, named, errors);
            }
        }
        _ => {
            if let Some(inner @ (Value::Object(_) | Value::Array(_))) = kind {
                collect_in(inner, enclosing, loc, depth + 1, named, errors);
            }
        }
    }
}

fn enum_symbols(m: &Map<String, Value>, full: &str, errors: &mut Vec<SchemaError>) -> Vec<String> {
    let Some(Value::Array(raw)) = m.get("symbols") else {
        push(errors, full, "enum needs a \"symbols\" list of names");
        return Vec::new();
    };
    let mut symbols: Vec<String> = Vec::with_capacity(raw.len());
    for s in raw {
        match s.as_str() {
            Some(s) if is_simple_name(s) && !symbols.iter().any(|x| x == s) => symbols.push(s.to_string()),
            Some(s) if is_simple_name(s) => push(errors, full, format!("enum symbol {s} is listed twice")),
            _ => push(errors, full, format!("invalid enum symbol {s}")),
        }
    }
    symbols
}

/// Pass 2: builds every record type with its fields.
pub(super) fn build<'a>(
    named: &IndexMap<String, Named<'a>>,
    errors: &mut Vec<SchemaError>,
) -> IndexMap<String, Draft<'a>> {
    let mut drafts = IndexMap::new();
    for (full, def) in named {
        let Named::Record(m, ns) = def else { continue };
        let kind = match m.get("logicalType") {
            None => TypeKind::ValueObject,
            Some(Value::String(s)) => match s.as_str() {
                "Aggregate" => TypeKind::Aggregate,
                "Entity" => TypeKind::Entity,
                "ValueObject" => TypeKind::ValueObject,
                other => {
                    push(
                        errors,
                        full,
                        format!("unknown logicalType \"{other}\" (expected Aggregate, Entity or ValueObject)"),
                    );
                    TypeKind::ValueObject
                }
            },
            Some(_) => {
                push(errors, full, "logicalType must be a string");
                TypeKind::ValueObject
            }
        };
        let mut fields = Vec::new();
        let mut field_json = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        match m.get("fields") {
            Some(Value::Array(list)) => {
                for (i, f) in list.iter().enumerate() {
                    let Some(fm) = f.as_object() else {
                        push(
                            errors,
                            format!("{full}.fields[{i}]"),
                            "a field must be an object with \"name\" and \"type\"",
                        );
                        continue;
                    };
                    let name = match fm.get("name").and_then(Value::as_str) {
                        Some(n) if is_simple_name(n) => n,
                        Some(n) => {
                            push(errors, format!("{full}.{n}"), "invalid field name");
                            continue;
                        }
                        None => {
                            push(errors, format!("{full}.fields[{i}]"), "a field needs a \"name\"");
                            continue;
                        }
                    };
                    let loc = format!("{full}.{name}");
                    if seen.contains(&name) {
                        push(errors, loc, "field is defined more than once");
                        continue;
                    }
                    seen.push(name);
                    let plain_type = fm
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !matches!(t, "record" | "enum" | "fixed" | "array" | "map"));
                    let ty = if fm.get("logicalType").is_some() && plain_type {
                        convert_object(fm, ns.as_deref(), &loc, 0, named, errors)
                    } else if let Some(t) = fm.get("type") {
                        convert(t, ns.as_deref(), &loc, 0, named, errors)
                    } else {
                        push(errors, &loc, "a field needs a \"type\"");
                        None
                    };
                    let Some(ty) = ty else { continue };
                    let (ty, optional) = split_optional(ty);
                    fields.push(FieldDef {
                        name: name.to_string(),
                        ty,
                        optional,
                        default: fm.get("default").cloned(),
                        default_function: None,
                        auto_increment: false,
                        doc: fm.get("doc").and_then(Value::as_str).map(str::to_string),
                    });
                    field_json.push(fm);
                }
            }
            _ => push(errors, full, "a record needs a \"fields\" list"),
        }
        let def = TypeDef {
            name: full.clone(),
            kind,
            fields,
            indexes: Vec::new(),
            relations: Vec::new(),
            affinity: Vec::new(),
            doc: m.get("doc").and_then(Value::as_str).map(str::to_string),
        };
        drafts.insert(full.clone(), Draft { def, json: m, namespace: ns.clone(), field_json });
    }
    drafts
}

/// `["null", T]` becomes `(T, true)`; other unions with null lose the null variant.
fn split_optional(ty: FieldType) -> (FieldType, bool) {
    match ty {
        FieldType::Union(variants) if variants.contains(&FieldType::Null) => {
            let mut rest: Vec<FieldType> = variants.into_iter().filter(|v| *v != FieldType::Null).collect();
            let ty = match rest.len() {
                0 => FieldType::Null,
                1 => rest.remove(0),
                _ => FieldType::Union(rest),
            };
            (ty, true)
        }
        other => (other, false),
    }
}

fn convert(
    ty: &Value,
    ns: Option<&str>,
    loc: &str,
    depth: usize,
    named: &IndexMap<String, Named<'_>>,
    errors: &mut Vec<SchemaError>,
) -> Option<FieldType> {
    if depth > MAX_TYPE_DEPTH {
        push(errors, loc, format!("type definition nested deeper than {MAX_TYPE_DEPTH} levels"));
        return None;
    }
    match ty {
        Value::String(s) => convert_name(s, ns, loc, named, errors),
        Value::Array(variants) => {
            if variants.is_empty() {
                push(errors, loc, "a union needs at least one type");
                return None;
            }
            let mut out: Vec<FieldType> = Vec::with_capacity(variants.len());
            let mut ok = true;
            for v in variants {
                if v.is_array() {
                    push(errors, loc, "a union cannot directly contain another union");
                    ok = false;
                    continue;
                }
                match convert(v, ns, loc, depth + 1, named, errors) {
                    Some(t) if out.contains(&t) => {
                        push(errors, loc, format!("union lists {t} more than once"));
                        ok = false;
                    }
                    Some(t) => out.push(t),
                    None => ok = false,
                }
            }
            ok.then_some(FieldType::Union(out))
        }
        Value::Object(m) => convert_object(m, ns, loc, depth, named, errors),
        other => {
            push(errors, loc, format!("invalid type {other}"));
            None
        }
    }
}

fn convert_name(
    s: &str,
    ns: Option<&str>,
    loc: &str,
    named: &IndexMap<String, Named<'_>>,
    errors: &mut Vec<SchemaError>,
) -> Option<FieldType> {
    Some(match s {
        "null" => FieldType::Null,
        "boolean" => FieldType::Boolean,
        "int" => FieldType::Int,
        "long" => FieldType::Long,
        "float" => FieldType::Float,
        "double" => FieldType::Double,
        "bytes" => FieldType::Bytes,
        "string" => FieldType::String,
        _ => {
            let full = qualify(s, ns);
            match named.get(&full) {
                Some(Named::Record(..)) => FieldType::Record(full),
                Some(Named::Enum(symbols)) => FieldType::Enum { name: full, symbols: symbols.clone() },
                Some(Named::Fixed(size)) => FieldType::Fixed { name: full, size: *size },
                None => {
                    push(errors, loc, format!("unknown type \"{s}\""));
                    return None;
                }
            }
        }
    })
}

fn convert_object(
    m: &Map<String, Value>,
    ns: Option<&str>,
    loc: &str,
    depth: usize,
    named: &IndexMap<String, Named<'_>>,
    errors: &mut Vec<SchemaError>,
) -> Option<FieldType> {
    let Some(ty) = m.get("type") else {
        push(errors, loc, "missing \"type\"");
        return None;
    };
    match ty.as_str() {
        Some("record" | "enum" | "fixed") => {
            // Defined in pass 1 (errors reported there); refer to it by its full name.
            let (full, _) = full_name(m, ns).ok()?;
            return convert_name(&full, None, loc, named, errors);
        }
        Some("array") => {
            let Some(items) = m.get("items") else {
                push(errors, loc, "an array needs \"items\"");
                return None;
            };
            return convert(items, ns, loc, depth + 1, named, errors).map(|t| FieldType::Array(Box::new(t)));
        }
        Some("map") => {
            let Some(values) = m.get("values") else {
                push(errors, loc, "a map needs \"values\"");
                return None;
            };
            return convert(values, ns, loc, depth + 1, named, errors).map(|t| FieldType::Map(Box::new(t)));
        }
        _ => {}
    }
    let logical = match m.get("logicalType") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            push(errors, loc, "logicalType must be a string");
            return None;
        }
    };
    let tdg = match logical {
        Some("Date") => Some(FieldType::Date),
        Some("Time") => Some(FieldType::Time),
        Some("DateTime") => Some(FieldType::DateTime),
        Some("Decimal") => Some(FieldType::Decimal),
        _ => None,
    };
    match tdg {
        Some(t) if ty.as_str() == Some("string") => Some(t),
        Some(t) => {
            push(errors, loc, format!("logicalType {t} needs \"type\": \"string\""));
            None
        }
        // Standard Avro logical types (date, timestamp-millis, uuid, ...) keep their base type.
        None => convert(ty, ns, loc, depth + 1, named, errors),
    }
}

/// Parses the schema with apache-avro; `Err` carries its message.
pub(super) fn check_with_avro(items: &[&Value]) -> Result<(), String> {
    let texts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
    // apache-avro unwraps in a few places; a panic there must not take the engine down.
    match std::panic::catch_unwind(|| apache_avro::Schema::parse_list(&texts).map(|_| ())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the Avro parser rejected the schema".to_string()),
    }
}
