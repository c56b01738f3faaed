//! `POST /graphql` (JSON `{"query", "variables", "operationName"}`), `GET /graphql?query=...`
//! (queries only) and `GET /graphql/schema.graphql` (the SDL).

use super::{error, AppState};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::dynamic::Schema;
use async_graphql::parser::types::OperationType;
use serde::Deserialize;

/// The schemas the endpoint serves.
pub struct GraphqlSchemas {
    /// The data schema (model + services).
    pub data: Schema,
}

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphql", web::post().to(post))
        .route("/graphql", web::get().to(get))
        .route("/graphql/schema.graphql", web::get().to(sdl));
}

fn schemas(state: &AppState) -> Option<&GraphqlSchemas> {
    state.graphql.as_deref()
}

async fn execute(state: &AppState, request: async_graphql::Request) -> HttpResponse {
    let Some(schemas) = schemas(state) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the GraphQL schema is not available");
    };
    HttpResponse::Ok().json(schemas.data.execute(request).await)
}

async fn post(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => execute(&state, request).await,
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid GraphQL request: {e}")),
    }
}

#[derive(Deserialize)]
struct GetQuery {
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
}

async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let q = match web::Query::<GetQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("GET /graphql needs ?query=...: {e}")),
    };
    // GET must not change anything: mutations only over POST.
    if let Ok(document) = async_graphql::parser::parse_query(&q.query) {
        let mutates = document.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query);
        if mutates {
            return error(StatusCode::METHOD_NOT_ALLOWED, "mutations need POST /graphql");
        }
    }
    let mut request = async_graphql::Request::new(q.query);
    if let Some(name) = q.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = q.variables.filter(|v| !v.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(&variables) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("variables: {e}")),
        }
    }
    execute(&state, request).await
}

async fn sdl(state: web::Data<AppState>) -> HttpResponse {
    match schemas(&state) {
        Some(s) => HttpResponse::Ok().content_type("application/graphql; charset=utf-8").body(s.data.sdl()),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the GraphQL schema is not available"),
    }
}
