//! The REST admin API of the output repair queue (deliveries the output processor parked);
//! lists and all-matching actions take `?filter=` (text) and `from=`/`to=` (ISO times, when the
//! object was queued): `GET /admin/api/output-repair?filter=`, `GET /admin/api/output-repair/{id}`,
//! `POST /admin/api/output-repair/{id}/retry`, `POST /admin/api/output-repair/retry-all?filter=`,
//! `DELETE /admin/api/output-repair/{id}`, `DELETE /admin/api/output-repair?filter=`; and
//! `GET /admin/api/output-queues`: each replicated output's mode, deliveries waiting, the oldest
//! of them and the parked ones.

use super::parked::{all, get, listing, on_queue, one_refused, Action};
use super::AppState;
use crate::journal::Target;
use crate::processor::Queue;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

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

const QUEUE: Queue = Queue::OutputRepair;

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    listing(&req, &state, QUEUE).await
}

async fn get_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    get(&state, QUEUE, path.into_inner()).await
}

async fn retry_one(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let target = Target::of(state.engine.repairs(), QUEUE, &id).await;
    let by = super::access::principal(&req).map_or_else(|| "-".to_string(), |p| p.subject);
    let rt = state.engine.runtime();
    // Before the retry, so that the timeline shows it before the delivery's next attempt.
    if let Some(t) = &target {
        t.record(&rt, "retried the delivery", &by, None);
    }
    let (answer, refused) = one_refused(&state, QUEUE, id, Action::Retry).await;
    if let (Some(t), Some(why)) = (&target, refused) {
        t.record(&rt, "the delivery's retry was refused", &by, Some(&why));
    }
    answer
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Retry).await
}

async fn delete_one(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let target = Target::of(state.engine.repairs(), QUEUE, &id).await;
    let (answer, refused) = one_refused(&state, QUEUE, id, Action::Delete).await;
    if let (Some(t), None) = (&target, refused) {
        let by = super::access::principal(&req).map_or_else(|| "-".to_string(), |p| p.subject);
        t.record(&state.engine.runtime(), "deleted the delivery", &by, None);
    }
    answer
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Delete).await
}
