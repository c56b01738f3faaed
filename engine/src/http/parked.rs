//! What the REST APIs of the three queues of parked work (the repair queue, the output repair
//! queue, failed jobs) share: one filter (`?filter=` text, `from=`/`to=` times, `first=`,
//! `after=`), queue calls off the reactor, one-id and all-matching actions.

use super::error;
use crate::parked::{parse_time, ParkedFilter};
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The query of listings and all-matching actions.
#[derive(Debug, Deserialize)]
struct FilterQuery {
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    first: Option<usize>,
    after: Option<String>,
}

/// The filter a request's query names, or what is wrong with it.
pub(super) fn filter_of(req: &HttpRequest) -> Result<ParkedFilter, String> {
    let q = web::Query::<FilterQuery>::from_query(req.query_string()).map_err(|e| e.to_string())?.into_inner();
    let time = |name: &str, t: Option<String>| {
        t.filter(|s| !s.is_empty()).map(|s| parse_time(&s).map_err(|e| format!("{name}: {e}"))).transpose()
    };
    Ok(ParkedFilter {
        text: q.filter.filter(|f| !f.is_empty()),
        from: time("from", q.from)?,
        to: time("to", q.to)?,
        first: q.first.unwrap_or(100).clamp(1, 1000),
        after: q.after.filter(|s| !s.is_empty()),
    })
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

/// Retry or delete every entry matching the filter: `{"<done>": n}`.
pub(super) async fn all<Q: Send + Sync + 'static>(
    req: &HttpRequest,
    queue: Arc<Q>,
    done: &'static str,
    op: fn(&Q, &ParkedFilter) -> Result<usize, StorageError>,
) -> HttpResponse {
    let filter = match filter_of(req) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match on_queue(queue, move |q| op(q, &filter)).await {
        Ok(n) => HttpResponse::Ok().json(json!({ done: n })),
        Err(r) => r,
    }
}
