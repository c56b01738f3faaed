//! `GET /data/{Type}?<index>=<value>&first=&after=&version=&all_versions=`: simple JSON reads.

use super::{error, AppState};
use crate::model::ScalarKind;
use crate::repository::{RepoError, Repository};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

/// Register the data routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/data/{type}", web::get().to(read));
}

const OPTIONS: [&str; 5] = ["first", "after", "version", "all_versions", "dont_skip_deleted"];

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
    let state = state.clone();
    let result = crate::reads::read(move || {
        state.engine.runtime().repository.find(&type_name, &Value::Array(filter), &Value::Object(options))
    })
    .await;
    match result {
        Ok(Ok(page)) => HttpResponse::Ok().json(
            page.items
                .into_iter()
                .map(|s| json!({"object": s.object, "version": s.version, "cursor": s.cursor, "deleted": s.deleted, "config_version": s.config_version}))
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
