//! `POST /graphql` (JSON `{"query", "variables", "operationName"}`), `GET /graphql?query=...`
//! (queries only) and `GET /graphql/schema.graphql` (the SDL).

use super::{error, AppState};
use crate::security::audit::{AuditLog, RequestSource};
use crate::security::Action;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::dynamic::Schema;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The schemas the endpoint serves.
pub struct GraphqlSchemas {
    /// The data schema (model + services).
    pub data: Schema,
    /// The admin schema, selected by the header `schema: admin`.
    pub admin: Schema,
}

/// Whether a request asks for the admin schema (header `schema: admin`).
fn is_admin(req: &HttpRequest) -> bool {
    req.headers().get("schema").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("admin"))
}

/// The schema a request asks for: `schema: admin` selects the admin one.
fn select<'a>(schemas: &'a GraphqlSchemas, req: &HttpRequest) -> &'a Schema {
    if is_admin(req) {
        &schemas.admin
    } else {
        &schemas.data
    }
}

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphql", web::post().to(post))
        .route("/graphql", web::get().to(get))
        .route("/graphql/schema.graphql", web::get().to(sdl));
}

/// Parsed query documents by query text: clients send the same few queries again and again
/// (with other variables), and parsing was an eighth of a get-by-primary-key request's CPU. Only
/// documents that parsed are kept, and only texts up to [`CACHED_QUERY_MAX`] bytes; the cache is
/// emptied when it reaches [`CACHED_QUERIES`] entries. Parsing does not depend on the schema,
/// so the cache outlives configuration versions.
fn parsed_queries() -> &'static Mutex<HashMap<String, ExecutableDocument>> {
    static CACHE: OnceLock<Mutex<HashMap<String, ExecutableDocument>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Most documents in the parse cache.
const CACHED_QUERIES: usize = 512;
/// Longest query text the parse cache keeps.
const CACHED_QUERY_MAX: usize = 16 * 1024;

/// Give `request` its parsed document from the cache (parsing and caching it on a miss). A query
/// that does not parse is left to the schema, which reports the error as usual.
fn with_parsed_query(mut request: async_graphql::Request) -> async_graphql::Request {
    if request.query.len() > CACHED_QUERY_MAX {
        return request;
    }
    let cached = parsed_queries().lock().unwrap_or_else(PoisonError::into_inner).get(&request.query).cloned();
    let doc = match cached {
        Some(doc) => doc,
        None => {
            let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return request };
            let mut cache = parsed_queries().lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= CACHED_QUERIES {
                cache.clear();
            }
            cache.insert(request.query.clone(), doc.clone());
            doc
        }
    };
    request.set_parsed_query(doc);
    request
}

/// Whether a request's document has a mutation (a document that does not parse has none: it
/// runs nothing).
fn mutates(request: &mut async_graphql::Request) -> bool {
    request.parsed_query().is_ok_and(|doc| doc.operations.iter().any(|(_, op)| op.node.ty == OperationType::Mutation))
}

async fn execute(state: &AppState, req: &HttpRequest, request: async_graphql::Request) -> HttpResponse {
    let Some(who) = super::access::principal(req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    // The schemas of the version active when the request came.
    let schemas = state.live.graphql.load_full();
    let mut request = with_parsed_query(request);
    if is_admin(req) {
        // The admin schema: its queries and its mutations are one action each.
        let action = if mutates(&mut request) { Action::AdminGraphqlWrite } else { Action::AdminGraphqlRead };
        if !who.may(action) {
            return super::access::forbidden(&who, action.description());
        }
    }
    // The data schema's resolvers check the caller's data rights per type (and record refusals).
    if !is_admin(req) && !sees_data_schema(&who) {
        request = request.disable_introspection();
    }
    let mut request = request
        .data(who)
        .data(RequestSource(super::access::source_of(req)))
        .data(crate::security::audit::Refusals::default());
    if let Some(audit) = req.app_data::<web::Data<Arc<AuditLog>>>() {
        request = request.data(audit.get_ref().clone());
    }
    if let Some(security) = req.app_data::<web::Data<Arc<crate::security::Security>>>() {
        request = request.data(security.get_ref().clone());
    }
    let session = {
        use actix_web::HttpMessage;
        req.extensions().get::<super::access::SessionCookie>().map(|s| s.secret.clone())
    };
    request = request.data(crate::graphql::RequestSession(session));
    HttpResponse::Ok().json(select(&schemas, req).execute(request).await)
}

async fn post(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => execute(&state, &req, request).await,
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
    execute(&state, &req, request).await
}

/// Whether `who` may see the data schema (SDL, introspection): a caller with data rights on some
/// type, or one who may read the model anyway. An input-only token learns nothing of the model.
fn sees_data_schema(who: &crate::security::Principal) -> bool {
    who.data.any() || who.may(Action::ModelRead)
}

async fn sdl(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match super::access::principal(&req) {
        Some(who) if is_admin(&req) && !who.may(Action::AdminGraphqlRead) => {
            return super::access::forbidden(&who, Action::AdminGraphqlRead.description())
        }
        Some(who) if !is_admin(&req) && !sees_data_schema(&who) => {
            return super::access::forbidden(&who, "read the data schema (data rights on some type, or model_read)")
        }
        Some(_) => {}
        None => return error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
    HttpResponse::Ok()
        .content_type("application/graphql; charset=utf-8")
        .body(select(&state.live.graphql.load_full(), &req).sdl())
}
