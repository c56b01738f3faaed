//! The REST admin API of the failed-jobs queue: `GET /admin/api/jobs/failed?filter=`,
//! `POST /admin/api/jobs/failed/{id}/retry`, `POST /admin/api/jobs/failed/retry-all?filter=`,
//! `DELETE /admin/api/jobs/failed/{id}`, `DELETE /admin/api/jobs/failed?filter=`; and
//! `GET /admin/api/jobs` (how many are pending).

use super::{error, AppState};
use crate::jobs::Jobs;
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/jobs", web::get().to(summary)).service(
        web::scope("/admin/api/jobs/failed")
            .route("", web::get().to(list))
            .route("", web::delete().to(delete_all))
            .route("/retry-all", web::post().to(retry_all))
            .route("/{id}", web::delete().to(delete_one))
            .route("/{id}/retry", web::post().to(retry_one)),
    );
}

#[derive(Deserialize)]
struct Filter {
    filter: Option<String>,
}

fn text(req: &HttpRequest) -> Option<String> {
    web::Query::<Filter>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().filter)
        .filter(|f| !f.is_empty())
}

/// Queue calls read and write storage: off the reactor.
async fn on_queue<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Jobs) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, HttpResponse> {
    let jobs: Arc<Jobs> = state.engine.runtime().jobs.clone();
    match web::block(move || f(&jobs)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn summary(state: web::Data<AppState>) -> HttpResponse {
    match on_queue(&state, |jobs| Ok((jobs.pending_count()?, jobs.failed_count()?))).await {
        Ok((pending, failed)) => HttpResponse::Ok().json(json!({"pending": pending, "failed": failed})),
        Err(r) => r,
    }
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = text(&req);
    match on_queue(&state, move |jobs| jobs.failed_list(filter.as_deref())).await {
        Ok(items) => HttpResponse::Ok().json(json!({"items": items})),
        Err(r) => r,
    }
}

/// Retry or delete one failed job: `{"<done>": 1}`, or 404.
async fn one(
    state: &AppState,
    id: String,
    done: &'static str,
    op: fn(&Jobs, &str) -> Result<bool, StorageError>,
) -> HttpResponse {
    let wanted = id.clone();
    match on_queue(state, move |jobs| op(jobs, &wanted)).await {
        Ok(true) => HttpResponse::Ok().json(json!({ done: 1 })),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("failed job \"{id}\" not found")),
        Err(r) => r,
    }
}

/// Retry or delete every failed job matching `?filter=`: `{"<done>": n}`.
async fn all(
    req: &HttpRequest,
    state: &AppState,
    done: &'static str,
    op: fn(&Jobs, Option<&str>) -> Result<usize, StorageError>,
) -> HttpResponse {
    let filter = text(req);
    match on_queue(state, move |jobs| op(jobs, filter.as_deref())).await {
        Ok(n) => HttpResponse::Ok().json(json!({ done: n })),
        Err(r) => r,
    }
}

async fn retry_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(&state, path.into_inner(), "retried", Jobs::retry).await
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, "retried", Jobs::retry_all).await
}

async fn delete_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(&state, path.into_inner(), "deleted", Jobs::delete).await
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, "deleted", Jobs::delete_all).await
}
