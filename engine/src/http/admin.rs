//! The REST admin API: the repair queue.

use super::parked::action_error;
use super::{error, AppState};
use crate::journal::Target;
use crate::parked::ParkedFilter;
use crate::processor::{Queue, Which};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

/// Register the admin routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/model", web::get().to(model));
    cfg.route("/admin/api/indexes", web::get().to(indexes));
    cfg.service(
        web::scope("/admin/api/repair")
            .route("", web::get().to(list))
            .route("", web::delete().to(delete_all))
            .route("/retry-all", web::post().to(retry_all))
            .route("/{id}", web::get().to(get_one))
            .route("/{id}", web::delete().to(delete_one))
            .route("/{id}/retry", web::post().to(retry_one)),
    );
}

fn parse_query(req: &HttpRequest) -> Result<ParkedFilter, String> {
    super::parked::filter_of(req)
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = match parse_query(&req) {
        Ok(f) => f,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.engine.repairs().page(Queue::Repair, filter).await {
        Ok((items, cursor)) => HttpResponse::Ok().json(json!({"items": items, "cursor": cursor})),
        Err(e) => action_error(e),
    }
}

async fn get_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    match state.engine.repairs().get(Queue::Repair, &id).await {
        Ok(Some(entry)) => HttpResponse::Ok().json(entry),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("repair-queue entry \"{id}\" not found")),
        Err(e) => action_error(e),
    }
}

/// Body of a retry: optionally an edited payload, and the name of the person the edit is for
/// (the edit is recorded under the caller's identity, with this name beside it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    payload: Option<Value>,
    by: Option<String>,
}

/// Who an edit is recorded for: the caller, and the name typed beside it when it differs
/// (`ui-token (for Ops Olga)`), without control characters, at most 128 of them.
fn editor(subject: &str, typed: Option<&str>) -> String {
    let typed: String = typed.unwrap_or_default().chars().filter(|c| !c.is_control()).take(128).collect();
    let typed = typed.trim();
    if typed.is_empty() || typed == subject {
        subject.to_string()
    } else {
        format!("{subject} (for {typed})")
    }
}

async fn retry_one(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let body: RetryBody = if body.is_empty() {
        RetryBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid retry body: {e}")),
        }
    };
    let subject = super::access::principal(&req).map_or_else(|| "-".to_string(), |p| p.subject);
    let by = editor(&subject, body.by.as_deref());
    let edited = body.payload.map(|p| (p, by.clone()));
    let note = edited.as_ref().map(|(p, by)| format!("payload edited by {by} ({} bytes)", p.to_string().len()));
    let rt = state.engine.runtime();
    let target = Target::of(state.engine.repairs(), Queue::Repair, &id).await;
    let action = if edited.is_some() { "edited and retried" } else { "retried" };
    // Before the retry, so that the timeline shows it before what the retry did.
    if let Some(t) = &target {
        t.record(&rt, action, &by, None);
    }
    let mut response = match state.engine.repairs().retry_now(&id, edited).await {
        Ok(outcome) => HttpResponse::Ok().json(outcome),
        Err(e) => {
            if let Some(t) = &target {
                t.record(&rt, "the retry was refused", &by, Some(&e.to_string()));
            }
            action_error(e)
        }
    };
    if let Some(note) = note {
        response.extensions_mut().insert(super::access::AuditNote(note));
    }
    response
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = match parse_query(&req) {
        Ok(f) => f,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.engine.repairs().retry(Queue::Repair, Which::Matching(filter)).await {
        Ok(n) => HttpResponse::Ok().json(json!({"retried": n})),
        Err(e) => action_error(e),
    }
}

async fn delete_one(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let target = Target::of(state.engine.repairs(), Queue::Repair, &id).await;
    match state.engine.repairs().delete(Queue::Repair, Which::One(id.clone())).await {
        Ok(1) => {
            let by = super::access::principal(&req).map_or_else(|| "-".to_string(), |p| p.subject);
            if let Some(t) = target {
                t.record(&state.engine.runtime(), "deleted from the repair queue", &by, None);
            }
            HttpResponse::Ok().json(json!({"deleted": 1}))
        }
        Ok(_) => error(StatusCode::NOT_FOUND, format!("repair-queue entry \"{id}\" not found")),
        Err(e) => action_error(e),
    }
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = match parse_query(&req) {
        Ok(f) => f,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.engine.repairs().delete(Queue::Repair, Which::Matching(filter)).await {
        Ok(n) => HttpResponse::Ok().json(json!({"deleted": n})),
        Err(e) => action_error(e),
    }
}

/// The loaded model: readable text (types, fields, indexes, relations) and the schema as loaded.
async fn model(state: web::Data<AppState>) -> HttpResponse {
    let model = state.engine.runtime().repository.model();
    HttpResponse::Ok().json(json!({"text": model.to_text(), "source": model.source(), "types": model.outline()}))
}

/// Every index of every aggregate with its state: `ready`, or `building` with the stored versions
/// indexed so far (an index a model change added is built in the background).
async fn indexes(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"items": state.engine.runtime().repository.index_states()}))
}
