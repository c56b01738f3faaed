//! The HTTP server: inputs (`/http`, `/soap`), data reads (`/data`), the admin API, `/metrics` and
//! `/health`. Every endpoint but `/health` and the UI's files (and `/metrics` when the
//! configuration leaves it open) requires a bearer token whose role allows the route's action
//! (`access::ROUTES`).

pub mod access;
mod accounts;
mod admin;
mod config;
pub(crate) mod data;
mod graphql;
mod jobs;
mod journal;
mod notifier;
mod output_repair;
mod parked;
mod security;
mod tasks;
mod ui;

use crate::live::{Inputs, Live};
use crate::metrics::metrics;
use crate::processor::{Processor, State};
use crate::scheduler::Scheduler;
use crate::security::Security;
use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest admin request body (an edited repair-queue payload).
const ADMIN_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Processor>,
    /// What a new configuration version changes (GraphQL schemas, inputs), and the apply.
    pub live: Arc<Live>,
    /// The task scheduler.
    pub scheduler: Arc<Scheduler>,
}

/// A JSON error answer.
pub fn error(status: actix_web::http::StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    // Ready but refusing every object (its intake log cannot write): not healthy, so that a
    // load balancer sends elsewhere and an orchestrator restarts it.
    if let Some(error) = state.engine.intake_failure() {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "failed", "error": error}));
    }
    match state.engine.state() {
        State::Ready => HttpResponse::Ok().json(json!({"status": "ready"})),
        State::Starting => HttpResponse::ServiceUnavailable().json(json!({"status": "starting"})),
        State::Draining => HttpResponse::ServiceUnavailable().json(json!({"status": "draining"})),
    }
}

async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    // The output queues' gauges change with time (the oldest entry's age): set when read.
    let rt = state.engine.runtime_arc();
    let _ = web::block(move || rt.output_queue.set_gauges(&rt.config.replicated_outputs())).await;
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics().render())
}

async fn not_found() -> HttpResponse {
    error(actix_web::http::StatusCode::NOT_FOUND, "no such endpoint")
}

/// Count requests by route pattern and status.
async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    metrics().http_requests.with_label_values(&[route.as_str(), response.status().as_str()]).inc();
    Ok(response)
}

pub use graphql::GraphqlSchemas;

/// The GraphQL schemas of the engine's active configuration version.
pub fn graphql_schemas(engine: &Arc<Processor>, scheduler: &Arc<Scheduler>) -> Result<GraphqlSchemas, String> {
    let rt = engine.runtime();
    let data = crate::graphql::data_schema(&rt.repository.model(), &rt.config)
        .map_err(|e| e.join("\n"))?
        .data(engine.clone())
        .data(crate::graphql::relation_loader(rt.repository.clone()))
        .extension(crate::graphql::Timing::new("default"))
        .finish()
        .map_err(|e| format!("graphql: {e}"))?;
    let admin = crate::graphql::admin_schema()
        .data(engine.clone())
        .data(scheduler.clone())
        .extension(crate::graphql::Timing::new("admin"))
        .finish()
        .map_err(|e| format!("graphql admin schema: {e}"))?;
    Ok(GraphqlSchemas { data, admin })
}

/// Start serving on `listen`; returns the server's handle and the future that runs it.
pub fn serve(
    live: Arc<Live>,
    scheduler: Arc<Scheduler>,
    security: Arc<Security>,
    audit: Arc<crate::security::audit::AuditLog>,
    listen: SocketAddr,
) -> std::io::Result<(ServerHandle, actix_web::dev::Server)> {
    let state = AppState { engine: live.engine().clone(), live: live.clone(), scheduler };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(live.clone()))
            .app_data(web::Data::new(security.clone()))
            .app_data(web::Data::new(audit.clone()))
            .app_data(web::PayloadConfig::new(ADMIN_BODY_LIMIT))
            .wrap(from_fn(access::authorize))
            .wrap(from_fn(count_requests))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics_text))
            .configure(data::configure)
            .configure(graphql::configure)
            .configure(admin::configure)
            .configure(journal::configure)
            .configure(tasks::configure)
            .configure(jobs::configure)
            .configure(output_repair::configure)
            .configure(config::configure)
            .configure(notifier::configure)
            .configure(security::configure)
            .configure(accounts::configure)
            .configure(ui::configure)
            .configure(Inputs::routes)
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .shutdown_timeout(10)
    .bind(listen)?
    .run();
    Ok((server.handle(), server))
}
