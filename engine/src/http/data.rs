//! `GET /data/{Type}?<index>=<value>&filter=&first=&after=&version=&all_versions=`: simple JSON
//! reads (`filter`: TDG's conditions as JSON, `[["year", ">", 2000]]`, ANDed with the equalities);
//! `GET /data`: the aggregate types the caller may read, with their indexes, the operators each
//! takes, their GraphQL names and whether the caller may write them (the data explorer's menu).

use super::{error, AppState};
use crate::model::ScalarKind;
use crate::repository::{RepoError, Repository};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

/// Register the data routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/data", web::get().to(types));
    cfg.route("/data/{type}", web::get().to(read));
}

const OPTIONS: [&str; 6] = ["first", "after", "version", "all_versions", "dont_skip_deleted", "filter"];

/// The aggregate types the caller may read: each with its fields, its indexes (the operators
/// each takes: `like` on a string first part), its GraphQL names, and whether the caller may
/// write it.
async fn types(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(who) = super::access::principal(&req) else { return error(StatusCode::UNAUTHORIZED, "not signed in") };
    let model = state.engine.runtime().repository.model();
    let types: Vec<Value> = model
        .types()
        .filter(|t| t.kind == crate::model::TypeKind::Aggregate && who.data.can_read(&t.name))
        .map(|t| {
            let indexes: Vec<Value> = t
                .indexes
                .iter()
                .map(|i| {
                    let parts: Vec<Value> =
                        i.parts.iter().map(|p| json!({"path": p.dotted(), "kind": p.kind.as_str()})).collect();
                    let mut operators = vec!["==", "!=", ">", ">=", "<", "<="];
                    // `like` takes a pattern: for an index of one string part.
                    if i.parts.len() == 1 && i.parts[0].kind == ScalarKind::String {
                        operators.push("like");
                    }
                    json!({"name": i.name, "graphql": crate::graphql::gql_name(&i.name), "primary": i.primary,
                           "multikey": i.multikey, "parts": parts, "operators": operators})
                })
                .collect();
            let fields: Vec<Value> =
                t.fields.iter().map(|f| json!({"name": f.name, "type": f.ty.to_string()})).collect();
            json!({
                "name": t.name,
                "doc": t.doc,
                "graphql": crate::graphql::gql_name(&t.name),
                "insert_type": crate::graphql::insert_type_name(&t.name),
                "write": who.data.can_write(&t.name),
                "fields": fields,
                "indexes": indexes,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({"types": types}))
}

/// The value of a query parameter for `name`: raw text for single string-like index parts,
/// JSON otherwise (numbers, booleans, arrays for composite indexes), text as a fallback.
pub(crate) fn key_value(repository: &Repository, type_name: &str, name: &str, raw: &str) -> Value {
    let model = repository.model();
    let string_like = |k: ScalarKind| {
        matches!(
            k,
            ScalarKind::String | ScalarKind::Date | ScalarKind::Time | ScalarKind::DateTime | ScalarKind::Decimal
        )
    };
    let single_string = model.get(type_name).is_some_and(|t| match t.index(name) {
        Some(index) => index.parts.len() == 1 && string_like(index.parts[0].kind),
        None => {
            t.field(name).and_then(|f| f.ty.nullable_inner().unwrap_or(&f.ty).scalar_kind()).is_some_and(string_like)
        }
    });
    if single_string {
        return Value::String(raw.to_string());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn option_value(name: &str, raw: &str) -> Result<Value, String> {
    match name {
        "after" => Ok(Value::String(raw.to_string())),
        "filter" => {
            let filter: Value = serde_json::from_str(raw)
                .map_err(|e| format!("filter: not JSON ({e}); write [[\"index\", \"op\", value]]"))?;
            crate::storage::Condition::parse_filter(&filter).map_err(|e| format!("filter: {e}"))?;
            Ok(if filter.is_null() { json!([]) } else { filter })
        }
        "first" => raw.parse::<i64>().map(Value::from).map_err(|_| format!("first: \"{raw}\" is not an integer")),
        "version" => raw.parse::<u64>().map(Value::from).map_err(|_| format!("version: \"{raw}\" is not a version")),
        _ => match raw {
            "true" | "1" | "" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{name}: \"{raw}\" is not true or false")),
        },
    }
}

async fn read(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let type_name = path.into_inner();
    let repository = &state.engine.runtime().repository;
    // Rights first: a caller without them learns nothing about which types exist.
    match super::access::principal(&req) {
        Some(who) if who.data.can_read(&type_name) => {}
        Some(who) => return super::access::forbidden(&who, &format!("read {type_name}")),
        None => return error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
    if repository.model().get(&type_name).is_none_or(|t| t.kind != crate::model::TypeKind::Aggregate) {
        return error(StatusCode::NOT_FOUND, format!("type \"{type_name}\" is not an aggregate of the model"));
    }
    let Ok(query) = web::Query::<Vec<(String, String)>>::from_query(req.query_string()) else {
        return error(StatusCode::BAD_REQUEST, "the query string is not valid");
    };
    let mut filter = Vec::new();
    let mut options = Map::new();
    for (name, raw) in query.into_inner() {
        if OPTIONS.contains(&name.as_str()) {
            match option_value(&name, &raw) {
                Ok(Value::Array(conditions)) if name == "filter" => filter.extend(conditions),
                Ok(v) => {
                    options.insert(name, v);
                }
                Err(message) => return error(StatusCode::BAD_REQUEST, message),
            }
        } else {
            let known = repository
                .model()
                .get(&type_name)
                .is_some_and(|t| t.index(&name).is_some() || t.field(&name).is_some());
            if !known {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "\"{name}\" is neither an index nor a field of {type_name} (options: {})",
                        OPTIONS.join(", ")
                    ),
                );
            }
            let value = key_value(repository, &type_name, &name, &raw);
            filter.push(json!([name, "==", value]));
        }
    }
    let primary = repository.model().get(&type_name).cloned();
    let state = state.clone();
    let result = crate::reads::read(move || {
        state.engine.runtime().repository.find(&type_name, &Value::Array(filter), &Value::Object(options))
    })
    .await;
    match result {
        // `version_text` and `key_text` (the primary key as JSON) carry the exact values to
        // JavaScript, whose numbers lose integers past 2^53 (versions are nanosecond times).
        Ok(Ok(page)) => HttpResponse::Ok().json(
            page.items
                .into_iter()
                .map(|s| {
                    let key = primary.as_ref().and_then(|t| t.primary_key_value(&s.object));
                    json!({"object": s.object, "version": s.version, "version_text": s.version.to_string(),
                           "key_text": key.map(|k| k.to_string()), "cursor": s.cursor, "deleted": s.deleted,
                           "config_version": s.config_version})
                })
                .collect::<Vec<_>>(),
        ),
        Ok(Err(e @ RepoError::Storage(_))) if e.class() == ferrogrid_sandbox::ErrorClass::Internal => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Ok(Err(RepoError::Storage(e @ crate::storage::StorageError::IndexBuilding { .. }))) => {
            let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            answer
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("5"));
            answer
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
