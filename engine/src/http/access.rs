//! Who may call what: every route of the HTTP API with the action it needs, and the middleware
//! that authenticates the bearer token and checks that action. The table is the documentation
//! (docs/security.md shows it, kept equal by a test) and the permission tests walk it.

use crate::security::accounts::{CSRF_HEADER, SESSION_COOKIE};
use crate::security::audit::{AuditLog, Event, Severity};
use crate::security::{Action, Principal, Refusal, Security};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: anyone may call it.
    Open,
    /// A valid token whose role allows the action.
    Action(Action),
    /// A valid token; the handler checks the caller's data rights on the type it reads or writes
    /// (`/data/{type}`, `/graphql` data schema), or the admin schema's action per operation.
    Data,
    /// Any valid token or session, whatever its role (who am I, sign out, one's own password).
    Identity,
}

/// One route.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path; `{name}` matches one segment.
    pub path: &'static str,
    /// What it needs.
    pub need: Need,
}

const fn route(method: &'static str, path: &'static str, need: Need) -> Route {
    Route { method, path, need }
}

use Action as A;
use Need::{Action as Act, Data, Identity, Open};

/// Every route of the HTTP API. A request for a route not listed here answers 404 (after the
/// token is checked) without reaching any handler.
pub const ROUTES: &[Route] = &[
    route("GET", "/health", Open),
    route("GET", "/admin", Open),
    route("GET", "/admin/", Open),
    route("GET", "/admin/app.js", Open),
    route("GET", "/admin/app.css", Open),
    route("GET", "/admin/favicon.svg", Open),
    // Open when the configuration says `metrics: {require_token: false}`.
    route("GET", "/metrics", Act(A::MetricsRead)),
    route("POST", "/http", Act(A::InputPost)),
    route("POST", "/soap", Act(A::InputPost)),
    route("GET", "/soap", Act(A::InputPost)),
    route("GET", "/data", Data),
    route("GET", "/data/{type}", Data),
    route("POST", "/graphql", Data),
    route("GET", "/graphql", Data),
    route("GET", "/graphql/schema.graphql", Data),
    route("GET", "/admin/api/model", Act(A::ModelRead)),
    route("GET", "/admin/api/indexes", Act(A::ModelRead)),
    route("GET", "/admin/api/repair", Act(A::RepairRead)),
    route("DELETE", "/admin/api/repair", Act(A::RepairOperate)),
    route("POST", "/admin/api/repair/retry-all", Act(A::RepairOperate)),
    route("GET", "/admin/api/repair/{id}", Act(A::RepairRead)),
    route("DELETE", "/admin/api/repair/{id}", Act(A::RepairOperate)),
    route("POST", "/admin/api/repair/{id}/retry", Act(A::RepairOperate)),
    route("GET", "/admin/api/journal", Act(A::RepairRead)),
    route("GET", "/admin/api/journal/{id}", Act(A::RepairRead)),
    route("GET", "/admin/api/output-repair", Act(A::OutputRepairRead)),
    route("DELETE", "/admin/api/output-repair", Act(A::OutputRepairOperate)),
    route("POST", "/admin/api/output-repair/retry-all", Act(A::OutputRepairOperate)),
    route("GET", "/admin/api/output-repair/{id}", Act(A::OutputRepairRead)),
    route("DELETE", "/admin/api/output-repair/{id}", Act(A::OutputRepairOperate)),
    route("POST", "/admin/api/output-repair/{id}/retry", Act(A::OutputRepairOperate)),
    route("GET", "/admin/api/output-queues", Act(A::OutputRepairRead)),
    route("GET", "/admin/api/jobs", Act(A::JobsRead)),
    route("GET", "/admin/api/jobs/failed", Act(A::JobsRead)),
    route("DELETE", "/admin/api/jobs/failed", Act(A::JobsOperate)),
    route("POST", "/admin/api/jobs/failed/retry-all", Act(A::JobsOperate)),
    route("GET", "/admin/api/jobs/failed/{id}", Act(A::JobsRead)),
    route("DELETE", "/admin/api/jobs/failed/{id}", Act(A::JobsOperate)),
    route("POST", "/admin/api/jobs/failed/{id}/retry", Act(A::JobsOperate)),
    route("GET", "/admin/api/tasks", Act(A::TasksRead)),
    route("DELETE", "/admin/api/tasks/runs/{id}", Act(A::TasksOperate)),
    route("POST", "/admin/api/tasks/{name}/start", Act(A::TasksOperate)),
    route("POST", "/admin/api/tasks/{name}/stop", Act(A::TasksOperate)),
    route("GET", "/admin/api/config", Act(A::ConfigRead)),
    route("PUT", "/admin/api/config", Act(A::ConfigApply)),
    route("POST", "/admin/api/config/rollback/{version}", Act(A::ConfigApply)),
    route("GET", "/admin/api/config/{version}", Act(A::ConfigRead)),
    route("GET", "/admin/api/config/{version}/archive", Act(A::ConfigRead)),
    route("GET", "/admin/api/notifier", Act(A::ConfigRead)),
    route("PUT", "/admin/api/notifier", Act(A::ConfigApply)),
    route("DELETE", "/admin/api/notifier", Act(A::ConfigApply)),
    route("GET", "/admin/api/expiration", Act(A::ConfigRead)),
    route("PUT", "/admin/api/expiration/{type}", Act(A::ConfigApply)),
    route("DELETE", "/admin/api/expiration/{type}", Act(A::ConfigApply)),
    route("GET", "/admin/api/unlinked", Act(A::ConfigRead)),
    route("POST", "/admin/api/unlinked/{type}/truncate", Act(A::ConfigApply)),
    route("DELETE", "/admin/api/unlinked/{type}", Act(A::ConfigApply)),
    route("GET", "/admin/api/tokens", Act(A::TokensRead)),
    route("POST", "/admin/api/tokens", Act(A::TokensAdmin)),
    route("GET", "/admin/api/tokens/export", Act(A::TokensRead)),
    route("POST", "/admin/api/tokens/import", Act(A::TokensAdmin)),
    route("GET", "/admin/api/tokens/{name}", Act(A::TokensRead)),
    route("PATCH", "/admin/api/tokens/{name}", Act(A::TokensAdmin)),
    route("DELETE", "/admin/api/tokens/{name}", Act(A::TokensAdmin)),
    route("POST", "/admin/api/tokens/{name}/block", Act(A::TokensAdmin)),
    route("POST", "/admin/api/tokens/{name}/unblock", Act(A::TokensAdmin)),
    route("GET", "/admin/api/actions", Act(A::RolesRead)),
    route("GET", "/admin/api/roles", Act(A::RolesRead)),
    route("POST", "/admin/api/roles", Act(A::RolesAdmin)),
    route("PUT", "/admin/api/roles/{name}", Act(A::RolesAdmin)),
    route("DELETE", "/admin/api/roles/{name}", Act(A::RolesAdmin)),
    route("GET", "/admin/api/data-actions", Act(A::RolesRead)),
    route("POST", "/admin/api/data-actions", Act(A::RolesAdmin)),
    route("PUT", "/admin/api/data-actions/{name}", Act(A::RolesAdmin)),
    route("DELETE", "/admin/api/data-actions/{name}", Act(A::RolesAdmin)),
    route("GET", "/admin/api/whoami", Identity),
    route("POST", "/admin/api/login", Open),
    route("POST", "/admin/api/logout", Identity),
    route("PUT", "/admin/api/password", Identity),
    route("GET", "/admin/api/password-policy", Identity),
    route("PUT", "/admin/api/password-policy", Act(A::UsersAdmin)),
    route("DELETE", "/admin/api/password-policy", Act(A::UsersAdmin)),
    route("GET", "/admin/api/users", Act(A::UsersRead)),
    route("POST", "/admin/api/users", Act(A::UsersAdmin)),
    route("GET", "/admin/api/users/{login}", Act(A::UsersRead)),
    route("PATCH", "/admin/api/users/{login}", Act(A::UsersAdmin)),
    route("DELETE", "/admin/api/users/{login}", Act(A::UsersAdmin)),
    route("POST", "/admin/api/users/{login}/block", Act(A::UsersAdmin)),
    route("POST", "/admin/api/users/{login}/unblock", Act(A::UsersAdmin)),
    route("POST", "/admin/api/users/{login}/reset-password", Act(A::UsersAdmin)),
    route("GET", "/admin/api/audit", Act(A::AuditLogRead)),
    route("DELETE", "/admin/api/audit", Act(A::AuditLogAdmin)),
    route("GET", "/admin/api/audit/settings", Act(A::AuditLogRead)),
    route("PUT", "/admin/api/audit/settings", Act(A::AuditLogAdmin)),
    route("DELETE", "/admin/api/audit/settings", Act(A::AuditLogAdmin)),
];

fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) if want.starts_with('{') && want.ends_with('}') => {
                if got.is_empty() {
                    return false;
                }
            }
            (Some(want), Some(got)) if want == got => {}
            _ => return false,
        }
    }
}

/// What `method path` needs; `None` for a route not in [`ROUTES`].
pub fn need(method: &Method, path: &str) -> Option<Need> {
    // HEAD is GET without the body.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTES.iter().find(|r| r.method == method && matches(r.path, path)).map(|r| r.need)
}

/// The session of a request authenticated by a session cookie (not by a token).
#[derive(Clone)]
pub struct SessionCookie {
    /// The cookie's secret.
    pub secret: String,
    /// The session's anti-CSRF token.
    pub csrf: String,
    /// Whether the user's password is one-time (it must change it before anything else).
    pub one_time_password: bool,
}

/// Authenticate a request: its bearer token, else its session cookie (then a request that may
/// change something must carry the session's anti-CSRF token in `X-CSRF-Token`). An
/// `Authorization` header of another scheme (a proxy's Basic credentials) is not ours: the
/// cookie still counts.
fn authenticate(
    security: &Security,
    req: &ServiceRequest,
) -> Result<(Principal, Option<SessionCookie>), (Refusal, Option<String>)> {
    let now = chrono::Utc::now();
    let header_value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let bearer = header_value.filter(|v| v.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("bearer ")));
    if bearer.is_some() {
        return security.authenticate(bearer, now).map(|p| (p, None));
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE).filter(|c| !c.value().is_empty()) else {
        return Err((Refusal::Missing, None));
    };
    let secret = cookie.value().to_string();
    let (who, session, one_time_password) = security.session(&secret, now)?;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let presented = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !Security::csrf_matches(&session, presented) {
            return Err((Refusal::Csrf, Some(who.subject)));
        }
    }
    Ok((who, Some(SessionCookie { secret, csrf: session.csrf, one_time_password })))
}

/// The caller of a request that passed [`authorize`] (none for open routes).
pub fn principal(req: &HttpRequest) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}

/// A 403 for `who`, who may not do `what`.
pub fn forbidden(who: &Principal, what: &str) -> HttpResponse {
    HttpResponse::Forbidden().json(json!({
        "error": format!("{} (role {}) may not {what}", who.subject, who.role),
        "reason": "forbidden",
    }))
}

/// The client's address as the audit log shows it (the peer's, not a forwarded header's).
pub fn source_of(req: &HttpRequest) -> String {
    req.peer_addr().map_or_else(|| "-".to_string(), |a| a.ip().to_string())
}

/// `METHOD path` of a request (the path the router matches: percent-escapes decoded), the
/// object of its audit events.
fn object_of(req: &HttpRequest) -> String {
    format!("{} {}", req.method(), req.match_info().as_str())
}

/// A detail a handler gives its request's audit entry (its `message`), as a response extension:
/// `HttpResponse::extensions_mut().insert(AuditNote(..))`.
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

/// Authenticate the bearer token or session cookie and check the route's action: 401 (with a
/// `reason` code: `missing_token`, `invalid_token`, `token_expired`, `token_blocked`,
/// `invalid_session`, `session_expired`, `user_blocked`, `password_expired`) or 403 (`forbidden`;
/// `csrf` for a session's change without its anti-CSRF token).
/// The audit log gets every refusal (WARNING), every change made through an admin route (INFO,
/// with its outcome) and every other authenticated request (VERBOSE); posts to the inputs are
/// data traffic, audited only when refused.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The path the router matches: percent-decoded (but `%2F`, `%25`, `%2B`). Matching the raw
    // path would let `/admin/api/token%73` reach the tokens handler unchecked.
    let mut need = need(req.method(), req.match_info().as_str());
    if need == Some(Need::Action(Action::MetricsRead))
        && req
            .app_data::<web::Data<super::AppState>>()
            .is_some_and(|s| !s.engine.runtime().config.metrics.require_token)
    {
        // `metrics: {require_token: false}`: open for scrapers.
        need = Some(Need::Open);
    }
    if need == Some(Need::Open) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(security) = req.app_data::<web::Data<Arc<Security>>>().cloned() else {
        let response = HttpResponse::InternalServerError().json(json!({"error": "no security store"}));
        return Ok(req.into_response(response).map_into_right_body());
    };
    let audit = req.app_data::<web::Data<Arc<AuditLog>>>().cloned();
    let (who, session) = match authenticate(&security, &req) {
        Ok(found) => found,
        Err((refusal, name)) => {
            if let Some(name) = &name {
                tracing::warn!(subject = %name, reason = refusal.code(), path = %req.path(), "refused credentials");
            }
            if let Some(audit) = &audit {
                let subject = name.as_deref().unwrap_or("-");
                let event = Event::now(
                    Severity::Warning,
                    subject,
                    source_of(req.request()),
                    "authenticate",
                    object_of(req.request()),
                    format!("refused {}", refusal.status()),
                    refusal.code().into(),
                );
                // A caller known by name is recorded each time (its refusals lead to lock-outs);
                // one without valid credentials is counted beyond ten a minute.
                if name.is_some() {
                    audit.record(event);
                } else {
                    audit.record_refusal(event);
                }
            }
            let body = json!({"error": refusal.message(), "reason": refusal.code()});
            let response = if refusal == Refusal::Csrf {
                HttpResponse::Forbidden().json(body)
            } else {
                HttpResponse::Unauthorized().insert_header((header::WWW_AUTHENTICATE, "Bearer")).json(body)
            };
            return Ok(req.into_response(response).map_into_right_body());
        }
    };
    let Some(need) = need else {
        // Deny by default: a route that is not in the table is never handed to a handler.
        return Ok(req
            .into_response(super::error(actix_web::http::StatusCode::NOT_FOUND, "no such endpoint"))
            .map_into_right_body());
    };
    if let Need::Action(action) = need {
        if !who.may(action) {
            if let Some(audit) = &audit {
                audit.record(Event::now(
                    Severity::Warning,
                    &who.subject,
                    source_of(req.request()),
                    action.name(),
                    object_of(req.request()),
                    "refused 403".into(),
                    format!("role {}", who.role),
                ));
            }
            let response = forbidden(&who, action.description());
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    req.extensions_mut().insert(who);
    if let Some(session) = session {
        req.extensions_mut().insert(session);
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    let admin_graphql = req.match_info().as_str() == "/graphql"
        && req.headers().get("schema").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"admin"));
    let (severity, action) = match need {
        Need::Action(Action::InputPost) => (None, "input_post"),
        Need::Action(action) if reads => (Some(Severity::Verbose), action.name()),
        Need::Action(action) => (Some(Severity::Info), action.name()),
        Need::Data if admin_graphql && !reads => (Some(Severity::Info), "admin_graphql"),
        Need::Identity if !reads => (Some(Severity::Info), "account"),
        _ => (Some(Severity::Verbose), "request"),
    };
    // Whether to record is decided before the handler runs, by the settings in force then: a
    // request that turns the audit log off or down (a configuration apply) is still recorded.
    let recorded = audit.as_ref().is_some_and(|a| severity.is_some_and(|s| a.records(s)));
    let refusals_recorded = audit.as_ref().is_some_and(|a| a.records(Severity::Warning));
    let response = next.call(req).await?;
    if let Some(audit) = &audit {
        let status = response.status();
        let severity = if status.as_u16() == 403 {
            refusals_recorded.then_some(Severity::Warning)
        } else {
            severity.filter(|_| recorded)
        };
        if let Some(severity) = severity {
            let (source, object) = (source_of(response.request()), object_of(response.request()));
            let outcome = if status.is_success() {
                format!("ok {}", status.as_u16())
            } else {
                format!("failed {}", status.as_u16())
            };
            let outcome = if status.as_u16() == 403 { "refused 403".to_string() } else { outcome };
            let subject = principal(response.request()).map(|p| p.subject).unwrap_or_else(|| "-".into());
            let note = response.response().extensions().get::<AuditNote>().map(|n| n.0.clone()).unwrap_or_default();
            audit.record_always(Event::now(severity, &subject, source, action, object, outcome, note));
        }
    }
    Ok(response.map_into_left_body())
}

/// The route table as Markdown: method, path, what it needs, and whether each built-in role may
/// call it (docs/security.md holds this text; a test keeps the two equal).
pub fn markdown() -> String {
    let roles: Vec<crate::security::Role> =
        crate::security::roles::BUILT_IN.iter().filter_map(|n| crate::security::roles::built_in(n)).collect();
    let mut out = String::from("| method | path | needs |");
    for role in &roles {
        out.push_str(&format!(" {} |", role.name));
    }
    out.push_str("\n| --- | --- | --- |");
    out.push_str(&" --- |".repeat(roles.len()));
    out.push('\n');
    for r in ROUTES {
        let needs = match r.need {
            Need::Open => "nothing (open)".to_string(),
            Need::Action(a) => format!("`{}`", a.name()),
            Need::Data => "a valid token; data rights per type (or the admin schema's actions)".to_string(),
            Need::Identity => "a valid token or session".to_string(),
        };
        out.push_str(&format!("| {} | `{}` | {needs} |", r.method, r.path));
        for role in &roles {
            let cell = match r.need {
                Need::Open => "yes",
                Need::Action(a) if role.actions.contains(&a) => "yes",
                Need::Action(_) => "403",
                Need::Identity => "yes",
                Need::Data => match role.name.as_str() {
                    "admin" => "read, write",
                    "supervisor" => "read",
                    _ => "its data actions",
                },
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/security.md shows the route table between these markers.
    const BEGIN: &str = "<!-- routes: generated from engine/src/http/access.rs -->\n";
    const END: &str = "<!-- end of routes -->";

    #[test]
    fn the_docs_show_the_route_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md");
        let text = std::fs::read_to_string(&path).expect("docs/security.md");
        let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
            panic!("docs/security.md has no route-table markers");
        };
        let shown = &text[start + BEGIN.len()..end];
        if shown != markdown() {
            if std::env::var_os("FERROGRID_BLESS").is_some() {
                let updated = format!("{}{BEGIN}{}{}", &text[..start], markdown(), &text[end..]);
                std::fs::write(&path, updated).expect("write docs/security.md");
                return;
            }
            panic!("docs/security.md's route table is out of date: run FERROGRID_BLESS=1 cargo test -p ferrogrid-engine --lib access");
        }
    }

    #[test]
    fn routes_match_by_segment() {
        assert_eq!(need(&Method::GET, "/health"), Some(Need::Open));
        assert_eq!(need(&Method::HEAD, "/admin/app.js"), Some(Need::Open));
        assert_eq!(need(&Method::POST, "/admin/api/repair/abc/retry"), Some(Need::Action(Action::RepairOperate)));
        assert_eq!(need(&Method::GET, "/admin/api/repair/abc"), Some(Need::Action(Action::RepairRead)));
        assert_eq!(need(&Method::GET, "/admin/api/tokens/export"), Some(Need::Action(Action::TokensRead)));
        assert_eq!(need(&Method::GET, "/admin/api/repair//retry"), None);
        assert_eq!(need(&Method::POST, "/health"), None);
        assert_eq!(need(&Method::GET, "/nowhere"), None);
    }
}
