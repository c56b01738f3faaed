//! The REST admin API of the failed-jobs queue (filters as every parked queue: `filter=`, `from=`,
//! `to=`): `GET /admin/api/jobs/failed?filter=` (newest first: every one with their `total`, or
//! a page with `first=`/`after=`), `GET /admin/api/jobs/failed/{id}`,
//! `POST /admin/api/jobs/failed/{id}/retry`, `POST /admin/api/jobs/failed/retry-all?filter=`,
//! `DELETE /admin/api/jobs/failed/{id}`, `DELETE /admin/api/jobs/failed?filter=`; and
//! `GET /admin/api/jobs` (how many are pending).

use super::parked::{all, get, listing, on_queue, one, Action};
use super::AppState;
use crate::jobs::Jobs;
use crate::processor::Queue;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/jobs", web::get().to(summary)).service(
        web::scope("/admin/api/jobs/failed")
            .route("", web::get().to(list))
            .route("", web::delete().to(delete_all))
            .route("/retry-all", web::post().to(retry_all))
            .route("/{id}", web::get().to(get_one))
            .route("/{id}", web::delete().to(delete_one))
            .route("/{id}/retry", web::post().to(retry_one)),
    );
}

fn queue(state: &AppState) -> Arc<Jobs> {
    state.engine.runtime().jobs.clone()
}

async fn summary(state: web::Data<AppState>) -> HttpResponse {
    match on_queue(queue(&state), |jobs| Ok((jobs.pending_count()?, jobs.failed_count()?))).await {
        Ok((pending, failed)) => HttpResponse::Ok().json(json!({"pending": pending, "failed": failed})),
        Err(r) => r,
    }
}

const QUEUE: Queue = Queue::FailedJobs;

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    listing(&req, &state, QUEUE).await
}

async fn get_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    get(&state, QUEUE, path.into_inner()).await
}

async fn retry_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(&state, QUEUE, path.into_inner(), Action::Retry).await
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Retry).await
}

async fn delete_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(&state, QUEUE, path.into_inner(), Action::Delete).await
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Delete).await
}
