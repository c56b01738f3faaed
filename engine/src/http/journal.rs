//! `GET /admin/api/journal?id=&routing_key=&type=&key=&from=&to=&first=`: objects' paths from the
//! object journal, newest first; `GET /admin/api/journal/{id}`: one object's timeline.

use super::{error, AppState};
use crate::journal::JournalQuery;
use crate::security::{Action, Principal};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// What of `events` the caller may see: deliveries (and actions on them) with the output repair
/// queue's read right, an object's primary key with the right to read its type.
fn visible(who: &Principal, events: Vec<Value>) -> Vec<Value> {
    let deliveries = who.may(Action::OutputRepairRead);
    events
        .into_iter()
        .filter(|e| deliveries || (e["kind"] != "delivery" && e.get("delivery").is_none()))
        .map(|mut e| {
            let readable = e.get("type").and_then(Value::as_str).is_none_or(|t| who.data.can_read(t));
            if let (false, Some(map)) = (readable, e.as_object_mut()) {
                map.remove("key");
            }
            e
        })
        .collect()
}

/// Register the journal routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/journal", web::get().to(search));
    cfg.route("/admin/api/journal/{id}", web::get().to(timeline));
}

async fn search(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(who) = super::access::principal(&req) else { return error(StatusCode::UNAUTHORIZED, "not signed in") };
    let query = match web::Query::<JournalQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid journal query: {e}")),
    };
    // A primary key means something within a type only, and only to who may read the type.
    if query.key.is_some() && query.type_name.is_none() {
        return error(StatusCode::BAD_REQUEST, "a primary key is looked for within a type: give `type` too");
    }
    if let Some(t) = query.type_name.as_deref().filter(|t| !who.data.can_read(t)) {
        return super::access::forbidden(&who, &format!("read {t}"));
    }
    let journal = state.engine.runtime().journal.clone();
    // As the journal counts them: a search that came back full may have more (`more`), even
    // when objects the caller may not see are left out of this answer.
    let asked = query.limit();
    match crate::reads::read(move || journal.search(&query)).await {
        Ok(Ok(objects)) => {
            let more = objects.len() >= asked;
            // An object none of whose events the caller may see is not listed.
            let objects: Vec<Value> = objects
                .into_iter()
                .filter_map(|mut o| {
                    let events = visible(&who, o["events"].as_array().cloned().unwrap_or_default());
                    (!events.is_empty()).then(|| {
                        o["events"] = Value::Array(events);
                        o
                    })
                })
                .collect();
            HttpResponse::Ok().json(json!({"objects": objects, "more": more}))
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn timeline(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Some(who) = super::access::principal(&req) else { return error(StatusCode::UNAUTHORIZED, "not signed in") };
    let id = path.into_inner();
    if uuid::Uuid::parse_str(&id).is_err() {
        return error(StatusCode::BAD_REQUEST, format!("\"{id}\" is not an object id (a UUID)"));
    }
    let journal = state.engine.runtime().journal.clone();
    let lookup = id.clone();
    match crate::reads::read(move || journal.timeline(&lookup)).await {
        // Nothing the caller may see is answered as nothing at all.
        Ok(Ok(events)) => match visible(&who, events) {
            events if events.is_empty() => {
                error(StatusCode::NOT_FOUND, format!("the journal holds nothing of \"{id}\" (unknown, or rotated out)"))
            }
            events => HttpResponse::Ok().json(json!({"id": id, "events": events})),
        },
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
