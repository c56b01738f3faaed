//! The REST admin API of the output repair queue (deliveries the output processor parked);
//! lists and all-matching actions take `?filter=` (text) and `from=`/`to=` (ISO times, when the
//! object was queued): `GET /admin/api/output-repair?filter=`, `GET /admin/api/output-repair/{id}`,
//! `POST /admin/api/output-repair/{id}/retry`, `POST /admin/api/output-repair/retry-all?filter=`,
//! `DELETE /admin/api/output-repair/{id}`, `DELETE /admin/api/output-repair?filter=`; and
//! `GET /admin/api/output-queues`: each replicated output's mode, deliveries waiting, the oldest
//! of them and the parked ones.

use super::parked::{all, get, listed, on_queue, one, Action};
use super::AppState;
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
    match listed(&req, &state, QUEUE).await {
        // Newest first, as the repair queue.
        Ok(mut items) => {
            items.reverse();
            HttpResponse::Ok().json(json!({"total": items.len(), "items": items}))
        }
        Err(r) => r,
    }
}

async fn get_one(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    get(&state, QUEUE, path.into_inner()).await
}

async fn retry_one(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let source = source_of(&state, &id).await;
    let answer = one(&state, QUEUE, id.clone(), Action::Retry).await;
    operator(&req, &state, source, &id, "retried the delivery", answer.status().is_success());
    answer
}

async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Retry).await
}

async fn delete_one(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = path.into_inner();
    let source = source_of(&state, &id).await;
    let answer = one(&state, QUEUE, id.clone(), Action::Delete).await;
    operator(&req, &state, source, &id, "deleted the delivery", answer.status().is_success());
    answer
}

/// The parked delivery `id`'s output and the object it came from (read off the reactor).
async fn source_of(state: &AppState, id: &str) -> Option<(String, String)> {
    let (queue, id) = (state.engine.runtime().output_queue.clone(), id.to_string());
    match crate::reads::read(move || queue.get_parked(&id)).await {
        Ok(Ok(Some(delivery))) => delivery.source.map(|source| (source, delivery.output)),
        _ => None,
    }
}

/// The journal's event of an operator's action on the parked delivery `id`, for the object it
/// came from (a refused action too).
fn operator(req: &HttpRequest, state: &AppState, source: Option<(String, String)>, id: &str, action: &str, done: bool) {
    let Some((source, output)) = source else { return };
    let by = super::access::principal(req).map_or_else(|| "-".to_string(), |p| p.subject);
    let action = if done { format!("{action} to {output}") } else { format!("{action} to {output}: refused") };
    crate::journal::operator(&state.engine.runtime(), &source, &action, &by, Some(id));
}

async fn delete_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    all(&req, &state, QUEUE, Action::Delete).await
}
