//! The REST admin API of tasks: `GET /admin/api/tasks` (every task with its kind, schedule,
//! state, next run and recorded runs), `POST /admin/api/tasks/{name}/start`,
//! `POST /admin/api/tasks/{name}/stop`, `DELETE /admin/api/tasks/runs/{id}` (forget a run).

use super::{error, AppState};
use crate::scheduler::TaskError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/api/tasks")
            .route("", web::get().to(list))
            .route("/runs/{id}", web::delete().to(forget))
            .route("/{name}/start", web::post().to(start))
            .route("/{name}/stop", web::post().to(stop)),
    );
}

fn task_error(e: TaskError) -> HttpResponse {
    let status = match &e {
        TaskError::NotFound(_) => StatusCode::NOT_FOUND,
        TaskError::Running(_) | TaskError::NotEnded(_) => StatusCode::CONFLICT,
        TaskError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        TaskError::Storage(_) | TaskError::Thread(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// Scheduler calls wait on its thread: off the reactor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(f).await {
        Ok(result) => result.map_err(task_error),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn list(state: web::Data<AppState>) -> HttpResponse {
    let scheduler = state.scheduler.clone();
    match blocking(move || scheduler.list()).await {
        Ok(tasks) => HttpResponse::Ok().json(json!({"tasks": tasks})),
        Err(response) => response,
    }
}

async fn start(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let (name, scheduler) = (path.into_inner(), state.scheduler.clone());
    match blocking(move || scheduler.start_task(&name)).await {
        Ok(run) => HttpResponse::Ok().json(json!({"started": run})),
        Err(response) => response,
    }
}

async fn stop(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let (name, scheduler) = (path.into_inner(), state.scheduler.clone());
    match blocking(move || scheduler.stop_task(&name)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"stopped": true})),
        Err(response) => response,
    }
}

async fn forget(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let (id, scheduler) = (path.into_inner(), state.scheduler.clone());
    match blocking(move || scheduler.forget(&id)).await {
        Ok(true) => HttpResponse::Ok().json(json!({"forgotten": 1})),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such task run"),
        Err(response) => response,
    }
}
