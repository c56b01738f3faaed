//! What the REST APIs of the three queues of parked work (the repair queue, the output repair
//! queue, failed jobs) share: one filter (`?filter=` text, `from=`/`to=` times, `first=`,
//! `after=`), queue reads off the reactor, and the actions, which go to the repair-queue actor.

use super::{error, AppState};
use crate::parked::{parse_time, ParkedFilter};
use crate::processor::{ParkedItem, Queue, RetryError, Which};
use crate::repair::RepairError;
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

/// What an operator does to parked items.
#[derive(Clone, Copy)]
pub(super) enum Action {
    /// Put them back to work.
    Retry,
    /// Delete them.
    Delete,
}

impl Action {
    fn done(self) -> &'static str {
        match self {
            Action::Retry => "retried",
            Action::Delete => "deleted",
        }
    }
}

async fn act(state: &AppState, queue: Queue, action: Action, which: Which) -> Result<usize, RetryError> {
    let repairs = state.engine.repairs();
    match action {
        Action::Retry => repairs.retry(queue, which).await,
        Action::Delete => repairs.delete(queue, which).await,
    }
}

/// The answer to a failed action on parked work.
pub(super) fn action_error(e: RetryError) -> HttpResponse {
    let status = match &e {
        RetryError::NotFound(_) => StatusCode::NOT_FOUND,
        RetryError::Busy(_) | RetryError::Refused(_) => StatusCode::CONFLICT,
        RetryError::Draining => StatusCode::SERVICE_UNAVAILABLE,
        RetryError::Repair(RepairError::BadId(_) | RepairError::BadRequest(_)) => StatusCode::BAD_REQUEST,
        RetryError::Repair(_) | RetryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// Retry or delete one item of `queue`: `{"<done>": 1}`, or 404 naming it.
pub(super) async fn one(state: &AppState, queue: Queue, id: String, action: Action) -> HttpResponse {
    one_refused(state, queue, id, action).await.0
}

/// [`one`], with why the action was refused (`None`: it was done).
pub(super) async fn one_refused(
    state: &AppState,
    queue: Queue,
    id: String,
    action: Action,
) -> (HttpResponse, Option<String>) {
    match act(state, queue, action, Which::One(id.clone())).await {
        Ok(0) => {
            let message = format!("{} \"{id}\" not found", queue.what());
            (error(StatusCode::NOT_FOUND, message.clone()), Some(message))
        }
        Ok(_) => (HttpResponse::Ok().json(json!({ action.done(): 1 })), None),
        Err(e) => {
            let message = e.to_string();
            (action_error(e), Some(message))
        }
    }
}

/// Retry or delete every item of `queue` matching the request's filter: `{"<done>": n}`.
pub(super) async fn all(req: &HttpRequest, state: &AppState, queue: Queue, action: Action) -> HttpResponse {
    let filter = match filter_of(req) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match act(state, queue, action, Which::Matching(filter)).await {
        Ok(n) => HttpResponse::Ok().json(json!({ action.done(): n })),
        Err(e) => action_error(e),
    }
}

/// Every item of `queue` matching the request's filter, oldest first.
pub(super) async fn listed(req: &HttpRequest, state: &AppState, queue: Queue) -> Result<Vec<ParkedItem>, HttpResponse> {
    let filter = filter_of(req).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    state.engine.repairs().all(queue, filter).await.map_err(action_error)
}

/// The listing of `queue` a request asks for, newest first: with `first` or `after`, one page and
/// the cursor of the next (`{"items", "cursor"}`); without, every matching item and how many
/// (`{"total", "items"}`).
pub(super) async fn listing(req: &HttpRequest, state: &AppState, queue: Queue) -> HttpResponse {
    let paged = web::Query::<FilterQuery>::from_query(req.query_string())
        .is_ok_and(|q| q.first.is_some() || q.after.as_deref().is_some_and(|a| !a.is_empty()));
    if !paged {
        return match listed(req, state, queue).await {
            Ok(mut items) => {
                items.reverse();
                HttpResponse::Ok().json(json!({"total": items.len(), "items": items}))
            }
            Err(r) => r,
        };
    }
    let filter = match filter_of(req) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match state.engine.repairs().page(queue, filter).await {
        Ok((items, cursor)) => HttpResponse::Ok().json(json!({"items": items, "cursor": cursor})),
        Err(e) => action_error(e),
    }
}

/// Item `id` of `queue`, or 404 naming it.
pub(super) async fn get(state: &AppState, queue: Queue, id: String) -> HttpResponse {
    match state.engine.repairs().get(queue, &id).await {
        Ok(Some(item)) => HttpResponse::Ok().json(item),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("{} \"{id}\" not found", queue.what())),
        Err(e) => action_error(e),
    }
}
