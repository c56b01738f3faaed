//! The REST admin API of the output repair queue (deliveries the output processor parked);
//! lists and all-matching actions take `?filter=` (text) and `from=`/`to=` (ISO times, when the
//! object was queued): `GET /admin/api/output-repair?filter=`, `GET /admin/api/output-repair/{id}`,
//! `POST /admin/api/output-repair/{id}/retry`, `POST /admin/api/output-repair/retry-all?filter=`,
//! `DELETE /admin/api/output-repair/{id}`, `DELETE /admin/api/output-repair?filter=`; and
//! `GET /admin/api/output-queues`: each replicated output's mode, deliveries waiting, the oldest
//! of them and the parked ones.

use super::parked::{all, filter_of, on_queue, one};
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
    )
    .route("/admin/api/output-queues", web::get().to(queues));
}

/// `{"items": [{output, mode, waiting, oldest_queued_at, parked}]}` for every output that
/// `output_processor` delivers to.
async fn queues(state: web::Data<AppState>) -> HttpResponse {
    let rt = state.engine.runtime_arc();
    let summary = on_queue(rt.output_queue.clone(), move |q| {
        let parked = q.parked(None)?;
        rt.config
            .replicated_outputs()
            .into_iter()
            .map(|output| {
                let oldest = q.oldest(&output)?.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                Ok(json!({
                    "output": output,
                    "mode": if rt.config.sync_route_of(&output).is_some() { "sync" } else { "async" },
                    "waiting": q.depth(&output),
                    "oldest_queued_at": oldest,
                    "parked": parked.iter().filter(|d| d.output == output).count(),
                }))
            })
            .collect::<Result<Vec<_>, crate::storage::StorageError>>()
    })
    .await;
    match summary {
        Ok(items) => HttpResponse::Ok().json(json!({ "items": items })),
        Err(r) => r,
    }
}

fn queue(state: &AppState) -> Arc<OutputQueue> {
    state.engine.runtime().output_queue.clone()
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let filter = match filter_of(&req) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match on_queue(queue(&state), move |q| q.parked_matching(&filter)).await {
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
    all(&req, queue(&state), "retried", OutputQueue::retry_matching).await
}

async fn delete_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    one(queue(&state), path.into_inner(), WHAT, "deleted", OutputQueue::delete).await
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, queue(&state), "deleted", OutputQueue::delete_matching).await
}
