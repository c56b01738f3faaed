//! What the REST APIs of the queues of parked work (failed jobs, the output repair queue) share:
//! the `?filter=` text, queue calls off the reactor, one-id and all-matching actions.

use super::error;
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
struct Filter {
    filter: Option<String>,
}

/// The `?filter=` text, if any.
pub(super) fn text(req: &HttpRequest) -> Option<String> {
    web::Query::<Filter>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().filter)
        .filter(|f| !f.is_empty())
}

/// Queue calls read and write storage: off the reactor.
pub(super) async fn on_queue<Q: Send + Sync + 'static, T: Send + 'static>(
    queue: Arc<Q>,
    f: impl FnOnce(&Q) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(move || f(&queue)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Retry or delete one entry: `{"<done>": 1}`, or 404 naming `what`.
pub(super) async fn one<Q: Send + Sync + 'static>(
    queue: Arc<Q>,
    id: String,
    what: &'static str,
    done: &'static str,
    op: fn(&Q, &str) -> Result<bool, StorageError>,
) -> HttpResponse {
    let wanted = id.clone();
    match on_queue(queue, move |q| op(q, &wanted)).await {
        Ok(true) => HttpResponse::Ok().json(json!({ done: 1 })),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("{what} \"{id}\" not found")),
        Err(r) => r,
    }
}

/// Retry or delete every entry matching `?filter=`: `{"<done>": n}`.
pub(super) async fn all<Q: Send + Sync + 'static>(
    req: &HttpRequest,
    queue: Arc<Q>,
    done: &'static str,
    op: fn(&Q, Option<&str>) -> Result<usize, StorageError>,
) -> HttpResponse {
    let filter = text(req);
    match on_queue(queue, move |q| op(q, filter.as_deref())).await {
        Ok(n) => HttpResponse::Ok().json(json!({ done: n })),
        Err(r) => r,
    }
}
