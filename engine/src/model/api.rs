//! `Model`: the domain model loaded from the `types` section (an Avro schema with TDG's
//! extensions), with look-ups, validation of objects for storage and a text rendering.

use super::error::{ModelErrors, Violation, ViolationKind, Violations};
use super::schema::{self, push};
use super::types::{FieldType, TypeDef, TypeKind};
use super::validate::{Checker, ValidationHooks};
use super::{extensions, relations, text};
use indexmap::IndexMap;
use serde_json::{json, Value};

/// The domain model: record types by full name, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    types: IndexMap<String, TypeDef>,
    source: Value,
}

impl Model {
    /// Parses a schema: a JSON array of Avro named types (a single record is accepted too).
    /// `function_exists` tells whether a `default_function` names a defined function.
    /// Every problem is reported, each with the type and field it is about.
    pub fn parse(schema_json: &Value, function_exists: &dyn Fn(&str) -> bool) -> Result<Model, ModelErrors> {
        let mut errors = Vec::new();
        let items: Vec<&Value> = match schema_json {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![schema_json],
            _ => {
                push(&mut errors, "types", "expected a JSON array of record types");
                return Err(ModelErrors(errors));
            }
        };
        let named = schema::collect(&items, &mut errors);
        let drafts = schema::build(&named, &mut errors);
        let mut types: IndexMap<String, TypeDef> = drafts.iter().map(|(k, d)| (k.clone(), d.def.clone())).collect();
        extensions::field_attributes(&mut types, &drafts, function_exists, &mut errors);
        extensions::indexes(&mut types, &drafts, &mut errors);
        relations::relations(&mut types, &drafts, &mut errors);
        if errors.is_empty() {
            if let Err(e) = schema::check_with_avro(&items) {
                push(&mut errors, "types", format!("Avro: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(Model { types, source: schema_json.clone() })
        } else {
            Err(ModelErrors(errors))
        }
    }

    /// A model without types (no `types` section).
    pub fn empty() -> Model {
        Model { types: IndexMap::new(), source: Value::Array(Vec::new()) }
    }

    /// Every record type, in declaration order (nested records after the type that defines them).
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }

    /// The record type with this full name.
    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The Aggregate types (the ones that are stored).
    pub fn aggregates(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values().filter(|t| t.kind == TypeKind::Aggregate)
    }

    /// The schema as loaded.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Validates and normalises an object for storage as `type_name` (an Aggregate): fields not
    /// in the model are dropped, defaults applied, `default_function` and `auto_increment`
    /// filled through `hooks`, Date/Time/DateTime normalised. Every violation is reported with
    /// its full path (`Order.items[2].qty: expected int, got string "23a"`).
    pub fn validate(&self, type_name: &str, obj: &Value, hooks: &mut dyn ValidationHooks) -> Result<Value, Violations> {
        let not_stored = |message: String| {
            Violations(vec![Violation { path: type_name.to_string(), message, kind: ViolationKind::Type }])
        };
        match self.types.get(type_name) {
            None => return Err(not_stored("unknown type (not in the model)".into())),
            Some(t) if t.kind != TypeKind::Aggregate => {
                return Err(not_stored(format!("{} types are not stored; only Aggregates are", t.kind.as_str())));
            }
            Some(_) => {}
        }
        Checker::new(&self.types, hooks)
            .check(&FieldType::Record(type_name.to_string()), obj, type_name)
            .map_err(Violations)
    }

    /// The model as readable text: types, fields, indexes, relations.
    pub fn to_text(&self) -> String {
        text::render(self.types.values())
    }

    /// The model as the admin UI draws it: each type with its kind, fields (name, type as
    /// text, optional), indexes (name, primary, parts), relations (name, target, many, fields)
    /// and the record types its fields hold (`contains`: field name and type).
    pub fn outline(&self) -> Value {
        let types: Vec<Value> = self
            .types
            .values()
            .map(|t| {
                let fields: Vec<Value> = t
                    .fields
                    .iter()
                    .map(|f| json!({"name": f.name, "type": f.ty.to_string(), "optional": f.optional}))
                    .collect();
                let indexes: Vec<Value> = t
                    .indexes
                    .iter()
                    .map(|i| {
                        let parts: Vec<String> = i.parts.iter().map(|p| p.dotted()).collect();
                        json!({"name": i.name, "primary": i.primary, "parts": parts})
                    })
                    .collect();
                let relations: Vec<Value> = t
                    .relations
                    .iter()
                    .map(|r| json!({"name": r.name, "to": r.to, "many": r.many, "from_fields": r.from_fields, "to_fields": r.to_fields}))
                    .collect();
                let mut contains = Vec::new();
                for f in &t.fields {
                    let mut held = Vec::new();
                    records_in(&f.ty, &mut held);
                    for record in held {
                        contains.push(json!({"field": f.name, "type": record}));
                    }
                }
                json!({"name": t.name, "kind": t.kind.as_str(), "doc": t.doc, "fields": fields,
                       "indexes": indexes, "relations": relations, "contains": contains})
            })
            .collect();
        Value::Array(types)
    }
}

/// The record types a field of type `ty` holds (through arrays, maps and unions).
fn records_in(ty: &FieldType, out: &mut Vec<String>) {
    match ty {
        FieldType::Record(name) if !out.contains(name) => out.push(name.clone()),
        FieldType::Array(inner) | FieldType::Map(inner) => records_in(inner, out),
        FieldType::Union(variants) => variants.iter().for_each(|v| records_in(v, out)),
        _ => {}
    }
}
