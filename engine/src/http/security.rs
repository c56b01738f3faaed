//! REST for application tokens, roles and data actions (`/admin/api/tokens`, `/roles`,
//! `/data-actions`, `/actions`) and `/admin/api/whoami`. Which role may call which is in
//! `access::ROUTES`.

use super::access::principal;
use super::{error, AppState};
use crate::security::audit::{AuditLog, AuditQuery, AuditSettings};
use crate::security::roles::Action;
use crate::security::store::ImportedToken;
use crate::security::{DataAction, Role, Security, SecurityError, TokenState};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/whoami", web::get().to(whoami))
        .route("/admin/api/actions", web::get().to(actions))
        .service(
            web::scope("/admin/api/tokens")
                .route("", web::get().to(list_tokens))
                .route("", web::post().to(create_token))
                .route("/export", web::get().to(export_tokens))
                .route("/import", web::post().to(import_tokens))
                .route("/{name}", web::get().to(get_token))
                .route("/{name}", web::patch().to(edit_token))
                .route("/{name}", web::delete().to(delete_token))
                .route("/{name}/block", web::post().to(block_token))
                .route("/{name}/unblock", web::post().to(unblock_token)),
        )
        .service(
            web::scope("/admin/api/roles")
                .route("", web::get().to(list_roles))
                .route("", web::post().to(create_role))
                .route("/{name}", web::put().to(replace_role))
                .route("/{name}", web::delete().to(delete_role)),
        )
        .service(
            web::scope("/admin/api/audit")
                .route("", web::get().to(list_audit))
                .route("", web::delete().to(clear_audit))
                .route("/settings", web::get().to(audit_settings))
                .route("/settings", web::put().to(set_audit_settings))
                .route("/settings", web::delete().to(reset_audit_settings)),
        )
        .service(
            web::scope("/admin/api/data-actions")
                .route("", web::get().to(list_data_actions))
                .route("", web::post().to(create_data_action))
                .route("/{name}", web::put().to(replace_data_action))
                .route("/{name}", web::delete().to(delete_data_action)),
        );
}

pub(super) fn failed(e: SecurityError) -> HttpResponse {
    if e.status() == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "a security operation failed");
    }
    error(e.status(), e.to_string())
}

/// Run a security-store call (it writes storage and syncs) on the blocking pool.
pub(super) async fn run<T: Send + 'static>(
    security: &web::Data<Arc<Security>>,
    f: impl FnOnce(&Security) -> Result<T, SecurityError> + Send + 'static,
) -> Result<T, HttpResponse> {
    let security = security.get_ref().clone();
    match web::block(move || f(&security)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// The body as `T`, or the reason it is not one (for a 400).
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("{what}: {e}"))
}

async fn whoami(req: HttpRequest) -> HttpResponse {
    use actix_web::HttpMessage;
    let session = req.extensions().get::<super::access::SessionCookie>().cloned();
    match principal(&req) {
        Some(who) => HttpResponse::Ok().json(json!({
            "subject": who.subject,
            "role": who.role,
            "actions": who.actions.iter().map(|a| a.name()).collect::<Vec<_>>(),
            "session": session.as_ref().is_some(),
            "csrf_token": session.as_ref().map(|s| s.csrf.clone()),
            "one_time_password": session.as_ref().is_some_and(|s| s.one_time_password),
        })),
        None => error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

async fn actions() -> HttpResponse {
    HttpResponse::Ok()
        .json(Action::ALL.iter().map(|a| json!({"name": a.name(), "description": a.description()})).collect::<Vec<_>>())
}

async fn list_tokens(security: web::Data<Arc<Security>>) -> HttpResponse {
    let now = chrono::Utc::now();
    HttpResponse::Ok().json(security.tokens().iter().map(|t| t.public(now)).collect::<Vec<_>>())
}

async fn export_tokens(security: web::Data<Arc<Security>>) -> HttpResponse {
    list_tokens(security).await
}

async fn get_token(path: web::Path<String>, security: web::Data<Arc<Security>>) -> HttpResponse {
    match security.token(&path) {
        Some(token) => HttpResponse::Ok().json(token.public(chrono::Utc::now())),
        None => error(StatusCode::NOT_FOUND, format!("no token named \"{path}\"")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
    /// Seconds; 0 or left out: never expires.
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn create_token(req: HttpRequest, body: web::Bytes, security: web::Data<Arc<Security>>) -> HttpResponse {
    let new: NewToken = match parse(&body, "a token needs {name, role, expires_in}") {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let by = who.subject.clone();
    match run(&security, move |s| s.create_token_by(&who, &new.name, &new.role, new.expires_in)).await {
        Ok((token, secret)) => {
            tracing::info!(token = %token.name, role = %token.role, by = %by, "created a token");
            let mut answer = token.public(chrono::Utc::now());
            answer["token"] = secret.into();
            HttpResponse::Created().json(answer)
        }
        Err(e) => e,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEdit {
    #[serde(default)]
    role: Option<String>,
    /// Seconds from now; 0: never.
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn edit_token(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    let edit: TokenEdit = match parse(&body, "a token edit is {role, expires_in}") {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let name = path.into_inner();
    match run(&security, move |s| s.edit_token_by(&who, &name, edit.role.as_deref(), edit.expires_in)).await {
        Ok(token) => HttpResponse::Ok().json(token.public(chrono::Utc::now())),
        Err(e) => e,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

/// The reason of a block or unblock (an empty body: none), or what is wrong with the body.
pub(super) fn block_reason(body: &[u8]) -> Result<Option<String>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    parse::<Reason>(body, "a block or unblock takes {reason}").map(|r| r.reason)
}

async fn set_state(
    req: HttpRequest,
    name: String,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
    state: TokenState,
) -> HttpResponse {
    let reason = match block_reason(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let by = who.subject.clone();
    match run(&security, move |s| s.set_token_state_by(&who, &name, state, reason)).await {
        Ok(token) => {
            tracing::info!(token = %token.name, state = ?state, by = %by, "changed a token's state");
            HttpResponse::Ok().json(token.public(chrono::Utc::now()))
        }
        Err(e) => e,
    }
}

async fn block_token(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    set_state(req, path.into_inner(), body, security, TokenState::Blocked).await
}

async fn unblock_token(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    set_state(req, path.into_inner(), body, security, TokenState::Active).await
}

async fn delete_token(req: HttpRequest, path: web::Path<String>, security: web::Data<Arc<Security>>) -> HttpResponse {
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let name = path.into_inner();
    match run(&security, move |s| s.delete_token_by(&who, &name)).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e,
    }
}

async fn import_tokens(req: HttpRequest, body: web::Bytes, security: web::Data<Arc<Security>>) -> HttpResponse {
    let tokens: Vec<ImportedToken> = match parse(&body, "an import is a token export (a JSON array)") {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    match run(&security, move |s| s.import_tokens_by(&who, tokens)).await {
        Ok(imported) => {
            let now = chrono::Utc::now();
            HttpResponse::Ok().json(
                imported
                    .into_iter()
                    .map(|(token, secret)| {
                        let mut answer = token.public(now);
                        answer["token"] = secret.into();
                        answer
                    })
                    .collect::<Vec<_>>(),
            )
        }
        Err(e) => e,
    }
}

async fn list_roles(security: web::Data<Arc<Security>>) -> HttpResponse {
    HttpResponse::Ok().json(
        security
            .roles()
            .into_iter()
            .map(|(role, built_in)| {
                let mut value = serde_json::to_value(&role).unwrap_or_default();
                value["built_in"] = built_in.into();
                value
            })
            .collect::<Vec<_>>(),
    )
}

async fn put_role(
    req: HttpRequest,
    name: Option<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    let role: Role = match parse(&body, "a role is {name, description, actions, data_actions}") {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(name) = name.as_ref().filter(|n| **n != role.name) {
        return error(StatusCode::BAD_REQUEST, format!("the body names role \"{}\", the path \"{name}\"", role.name));
    }
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let create = name.is_none();
    match run(&security, move |s| s.put_role_by(&who, role, create)).await {
        Ok(role) => HttpResponse::build(if create { StatusCode::CREATED } else { StatusCode::OK }).json(role),
        Err(e) => e,
    }
}

async fn create_role(req: HttpRequest, body: web::Bytes, security: web::Data<Arc<Security>>) -> HttpResponse {
    put_role(req, None, body, security).await
}

async fn replace_role(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    put_role(req, Some(path.into_inner()), body, security).await
}

async fn delete_role(req: HttpRequest, path: web::Path<String>, security: web::Data<Arc<Security>>) -> HttpResponse {
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let name = path.into_inner();
    match run(&security, move |s| s.delete_role_by(&who, &name)).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e,
    }
}

async fn list_data_actions(security: web::Data<Arc<Security>>) -> HttpResponse {
    HttpResponse::Ok().json(security.data_actions())
}

async fn put_data_action(
    req: HttpRequest,
    name: Option<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let action: DataAction = match parse(&body, "a data action is {name, aggregates: {Type: {read, write}}}") {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(name) = name.as_ref().filter(|n| **n != action.name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the body names data action \"{}\", the path \"{name}\"", action.name),
        );
    }
    let known: Vec<String> = state.engine.runtime().repository.model().aggregates().map(|t| t.name.clone()).collect();
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let create = name.is_none();
    match run(&security, move |s| s.put_data_action_by(&who, action, create, &known)).await {
        Ok(action) => HttpResponse::build(if create { StatusCode::CREATED } else { StatusCode::OK }).json(action),
        Err(e) => e,
    }
}

async fn create_data_action(
    req: HttpRequest,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    put_data_action(req, None, body, security, state).await
}

async fn replace_data_action(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    put_data_action(req, Some(path.into_inner()), body, security, state).await
}

async fn delete_data_action(
    req: HttpRequest,
    path: web::Path<String>,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let name = path.into_inner();
    match run(&security, move |s| s.delete_data_action_by(&who, &name)).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e,
    }
}

async fn list_audit(req: HttpRequest, audit: web::Data<Arc<AuditLog>>) -> HttpResponse {
    let query = match web::Query::<AuditQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the audit log is filtered by from, to (RFC 3339), subject, severity, text, first, after: {e}"),
            )
        }
    };
    let audit = audit.get_ref().clone();
    match web::block(move || audit.list(&query)).await {
        Ok(Ok(events)) => HttpResponse::Ok().json(events),
        Ok(Err(e)) => failed(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn clear_audit(req: HttpRequest, audit: web::Data<Arc<AuditLog>>) -> HttpResponse {
    let log = audit.get_ref().clone();
    let subject = principal(&req).map(|p| p.subject).unwrap_or_default();
    let source = super::access::source_of(&req);
    match web::block(move || log.clear_by(&subject, source)).await {
        Ok(Ok(removed)) => HttpResponse::Ok().json(json!({"removed": removed})),
        Ok(Err(e)) => failed(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn settings_answer(audit: &AuditLog) -> HttpResponse {
    HttpResponse::Ok().json(json!({"settings": audit.settings(), "overridden": audit.is_overridden()}))
}

async fn audit_settings(audit: web::Data<Arc<AuditLog>>) -> HttpResponse {
    settings_answer(&audit)
}

/// Override the audit settings (`None`: back to the configuration's), recorded.
async fn override_audit(
    req: HttpRequest,
    audit: web::Data<Arc<AuditLog>>,
    settings: Option<AuditSettings>,
) -> HttpResponse {
    let log = audit.get_ref().clone();
    let subject = principal(&req).map(|p| p.subject).unwrap_or_default();
    let source = super::access::source_of(&req);
    match web::block(move || log.set_override_by(settings, &subject, source)).await {
        Ok(Ok(())) => settings_answer(&audit),
        Ok(Err(e)) => failed(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn set_audit_settings(req: HttpRequest, body: web::Bytes, audit: web::Data<Arc<AuditLog>>) -> HttpResponse {
    match parse::<AuditSettings>(&body, "audit settings are {enabled, severity, remove_older_than_n_hours}") {
        Ok(settings) => override_audit(req, audit, Some(settings)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn reset_audit_settings(req: HttpRequest, audit: web::Data<Arc<AuditLog>>) -> HttpResponse {
    override_audit(req, audit, None).await
}
