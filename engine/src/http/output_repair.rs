//! The REST admin API of the output repair queue (deliveries the output processor parked):
//! `GET /admin/api/output-repair?filter=`, `GET /admin/api/output-repair/{id}`,
//! `POST /admin/api/output-repair/{id}/retry`, `POST /admin/api/output-repair/retry-all?filter=`,
//! `DELETE /admin/api/output-repair/{id}`, `DELETE /admin/api/output-repair?filter=`.

use super::parked::{all, on_queue, one, text};
use super::{error, AppState};
use crate::output::OutputQueue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

const WHAT: &str = "output repair entry";

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/api/output-repair")
            .route("", web::get().to(list))
            .route("", web::delete().to(delete_all))
            .route("/retry-all", web::post().to(retry_all))
            .route("/{id}", web::get().to(get_one))
            .route("/{id}", web::delete().to(delete_one))
            .route("/{id}/retry", web::post().to(retry_one)),
    );
}

fn queue(state: &AppState) -> Arc<OutputQueue> {
    state.engine.runtime().output_queue.clone()
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = text(&req);
    match on_queue(queue(&state), move |q| q.parked(filter.as_deref())).await {
        // Newest first, as the repair queue.
        Ok(mut items) => {
            items.reverse();
            HttpResponse::Ok().json(json!({"total": items.len(), "items": items}))
        }
        Err(r) => r,
    }
}

async fn get_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let wanted = id.clone();
    match on_queue(queue(&state), move |q| q.get_parked(&wanted)).await {
        Ok(Some(d)) => HttpResponse::Ok().json(d),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("{WHAT} \"{id}\" not found")),
        Err(r) => r,
    }
}

async fn retry_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(queue(&state), path.into_inner(), WHAT, "retried", OutputQueue::retry).await
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, queue(&state), "retried", OutputQueue::retry_all).await
}

async fn delete_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(queue(&state), path.into_inner(), WHAT, "deleted", OutputQueue::delete).await
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, queue(&state), "deleted", OutputQueue::delete_all).await
}
