//! `GET /admin/api/journal?id=&routing_key=&type=&key=&from=&to=&first=`: objects' paths from the
//! object journal, newest first; `GET /admin/api/journal/{id}`: one object's timeline.

use super::{error, AppState};
use crate::journal::JournalQuery;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// Register the journal routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/journal", web::get().to(search));
    cfg.route("/admin/api/journal/{id}", web::get().to(timeline));
}

async fn search(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query = match web::Query::<JournalQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid journal query: {e}")),
    };
    let journal = state.engine.runtime().journal.clone();
    match crate::reads::read(move || journal.search(&query)).await {
        Ok(Ok(objects)) => HttpResponse::Ok().json(json!({"objects": objects})),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn timeline(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    if uuid::Uuid::parse_str(&id).is_err() {
        return error(StatusCode::BAD_REQUEST, format!("\"{id}\" is not an object id (a UUID)"));
    }
    let journal = state.engine.runtime().journal.clone();
    let lookup = id.clone();
    match crate::reads::read(move || journal.timeline(&lookup)).await {
        Ok(Ok(events)) if events.is_empty() => {
            error(StatusCode::NOT_FOUND, format!("the journal holds nothing of \"{id}\" (unknown, or rotated out)"))
        }
        Ok(Ok(events)) => HttpResponse::Ok().json(json!({"id": id, "events": events})),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
