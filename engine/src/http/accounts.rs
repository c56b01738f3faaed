//! REST for users and sign-in: `/admin/api/login`, `/admin/api/logout`, `/admin/api/password`,
//! `/admin/api/password-policy` and `/admin/api/users`. Which role may call which is in
//! `access::ROUTES`.

use super::access::{principal, source_of, SessionCookie};
use super::security::{block_reason, parse, run};
use super::{error, AppState};
use crate::security::accounts::{AccountSettings, SESSION_COOKIE};
use crate::security::audit::{AuditLog, Event, Severity};
use crate::security::mail::{hand_over, HandOver, PasswordMailer};
use crate::security::sessions::{hashing_turn, HashingTurn, SignInError};
use crate::security::users::{NewUser, UserPatch};
use crate::security::{Security, TokenState};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The largest sign-in or password-change body: a password is at most 1024 characters.
const SIGN_IN_BODY_LIMIT: usize = 16 * 1024;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let small = || web::PayloadConfig::new(SIGN_IN_BODY_LIMIT);
    cfg.service(web::resource("/admin/api/login").app_data(small()).route(web::post().to(sign_in)))
        .route("/admin/api/logout", web::post().to(sign_out))
        .service(web::resource("/admin/api/password").app_data(small()).route(web::put().to(change_password)))
        .route("/admin/api/password-policy", web::get().to(password_policy))
        .route("/admin/api/password-policy", web::put().to(set_password_policy))
        .route("/admin/api/password-policy", web::delete().to(reset_password_policy))
        .service(
            web::scope("/admin/api/users")
                .route("", web::get().to(list_users))
                .route("", web::post().to(create_user))
                .route("/{login}", web::get().to(get_user))
                .route("/{login}", web::patch().to(edit_user))
                .route("/{login}", web::delete().to(delete_user))
                .route("/{login}/block", web::post().to(block_user))
                .route("/{login}/unblock", web::post().to(unblock_user))
                .route("/{login}/reset-password", web::post().to(reset_password)),
        );
}

/// The `account_manager` settings in force: the configuration's, with the password policy an
/// admin set.
fn settings(state: &AppState, security: &Security) -> AccountSettings {
    security.account_settings(&state.engine.runtime().config.account_manager)
}

/// What a request that may generate a password needs: the settings in force, the mailer of
/// one-time passwords (if the configuration has one) and a hashing turn.
struct Generating {
    settings: AccountSettings,
    mailer: Option<PasswordMailer>,
    turn: HashingTurn,
}

async fn generating(state: &AppState, security: &Security) -> Result<Generating, HttpResponse> {
    let settings = settings(state, security);
    let mailer = PasswordMailer::of(&settings, &state.engine.runtime().outputs)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let turn = turn().await?;
    Ok(Generating { settings, mailer, turn })
}

/// The answer with a generated password: in it, or where it was mailed; 502 when the mail
/// failed (`done` says what happened to the user all the same).
async fn with_password(
    req: &HttpRequest,
    audit: &AuditLog,
    mailer: Option<&PasswordMailer>,
    user: &crate::security::users::User,
    password: String,
    status: StatusCode,
    done: &str,
) -> HttpResponse {
    let mut answer = user.public(chrono::Utc::now());
    let by = principal(req).map_or_else(|| "-".to_string(), |p| p.subject);
    match hand_over(mailer, user, password, Some(audit), &by, source_of(req)).await {
        HandOver::Shown(password) => answer["password"] = password.into(),
        HandOver::Mailed(to) => answer["password_sent_to"] = to.into(),
        HandOver::Failed(e) => return HttpResponse::BadGateway().json(json!({
            "error": format!(
                "user \"{}\" {done}, but mailing the one-time password failed: {e}; reset the password to mail another",
                user.login
            ),
            "user": answer,
        })),
    }
    HttpResponse::build(status).json(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    login: String,
    password: String,
}

/// The session cookie: `HttpOnly`, `SameSite=Strict`, `Secure` when the request came over TLS
/// (as the client reached us: a TLS-terminating proxy's `X-Forwarded-Proto` counts).
fn session_cookie(req: &HttpRequest, value: String, max_age: i64) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish();
    if req.connection_info().scheme() == "https" {
        cookie.set_secure(true);
    }
    cookie
}

/// A hashing turn, or the `503` that says to come back in a moment.
async fn turn() -> Result<HashingTurn, HttpResponse> {
    hashing_turn().await.map_err(|busy| {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"error": busy.to_string(), "reason": "busy"}))
    })
}

/// A failed password check as clients see it: the same answer for an unknown login, a wrong
/// password and the attempt that locks a user out.
fn refused(e: SignInError) -> HttpResponse {
    match e {
        SignInError::Internal(e) => super::security::failed(e),
        refused => HttpResponse::Unauthorized().json(json!({"error": refused.to_string(), "reason": refused.code()})),
    }
}

async fn sign_in(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    security: web::Data<Arc<Security>>,
    audit: web::Data<Arc<AuditLog>>,
) -> HttpResponse {
    // JSON only: a cross-site form cannot post it, so no page signs a visitor in as someone else.
    let json_body = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json_body {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "sign in with Content-Type: application/json");
    }
    let credentials: Credentials = match parse(&body, "sign in with {login, password}") {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let settings = settings(&state, &security);
    // Taken before the section is read: a session opened after the section changed is refused.
    let generation = security.ldap_generation();
    let domains = state.engine.runtime().config.ldap.clone();
    if let Some((domain, name)) = crate::security::ldap::domain_of(&domains, &credentials.login) {
        let domain = domain.clone();
        let signing = LdapSignIn { domain: &domain, name: &name, generation };
        return ldap_sign_in(&req, signing, credentials, settings, security, audit).await;
    }
    // A blocked user is refused before it waits for a hashing turn (a flood against a locked
    // account costs nothing).
    let turn = if security.blocked_now(&credentials.login) {
        None
    } else {
        match turn().await {
            Ok(t) => Some(t),
            Err(busy) => return busy,
        }
    };
    let login = credentials.login.clone();
    let security_ = security.get_ref().clone();
    let outcome = web::block(move || match turn {
        Some(turn) => {
            security_.sign_in(&turn, &credentials.login, &credentials.password, &settings, chrono::Utc::now())
        }
        None => Err(SignInError::Blocked),
    })
    .await;
    let source = source_of(&req);
    // What the audit log shows of a login that may be anything the client sent.
    let subject: String = login.chars().take(crate::security::store::NAME_MAX).collect();
    let record = |severity, outcome: &str, message: String| {
        audit.record(Event::now(
            severity,
            &subject,
            source.clone(),
            "sign_in",
            "POST /admin/api/login".into(),
            outcome.into(),
            message,
        ))
    };
    match outcome {
        Ok(Ok(signed)) => {
            record(Severity::Info, "ok 200", format!("role {}", signed.user.role));
            let (role, one_time) = (signed.user.role.clone(), signed.user.one_time_password);
            opened(&req, &signed.user.login, &role, signed.secret, &signed.session, one_time)
        }
        Ok(Err(e)) => {
            match &e {
                SignInError::LockedOut(n) => {
                    record(Severity::Alarm, "locked out", format!("blocked after {n} failed sign-in attempts"))
                }
                SignInError::Lapsed(why) => record(Severity::Alarm, "blocked", why.clone()),
                SignInError::Internal(_) => {}
                other => record(Severity::Warning, "refused 401", other.code().to_string()),
            }
            refused(e)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The answer to a sign-in that opened `session`: the cookie, the role and the anti-CSRF token.
fn opened(
    req: &HttpRequest,
    login: &str,
    role: &str,
    secret: String,
    session: &crate::security::sessions::Session,
    one_time_password: bool,
) -> HttpResponse {
    let max_age = (session.expires_at - chrono::Utc::now()).num_seconds().max(0);
    HttpResponse::Ok().cookie(session_cookie(req, secret, max_age)).json(json!({
        "login": login,
        "role": role,
        "csrf_token": session.csrf,
        "expires_at": session.expires_at.to_rfc3339(),
        "one_time_password": one_time_password,
    }))
}

/// A sign-in of `name@domain` against the domain's LDAP servers.
/// What an LDAP sign-in signs in to: the domain as configured, the name in it, and the LDAP
/// session generation when it began.
struct LdapSignIn<'a> {
    domain: &'a crate::security::ldap::LdapDomain,
    name: &'a str,
    generation: u64,
}

async fn ldap_sign_in(
    req: &HttpRequest,
    signing: LdapSignIn<'_>,
    credentials: Credentials,
    settings: AccountSettings,
    security: web::Data<Arc<Security>>,
    audit: web::Data<Arc<AuditLog>>,
) -> HttpResponse {
    use crate::security::ldap::{self, LdapError};
    // An LDAP sign-in takes a turn like a password hash: the outgoing connections (and the
    // guesses relayed to the directory) are bounded the same way.
    let _turn = match turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let login = credentials.login;
    let record = |severity, outcome: &str, message: String| {
        audit.record(Event::now(
            severity,
            &login,
            source_of(req),
            "sign_in",
            "POST /admin/api/login".into(),
            outcome.into(),
            message,
        ))
    };
    match ldap::sign_in(signing.domain, &login, signing.name, &credentials.password).await {
        Ok(identity) => {
            let security = security.get_ref().clone();
            let who = identity.clone();
            let generation = signing.generation;
            match web::block(move || security.open_ldap_session(&who, &settings, chrono::Utc::now(), generation)).await
            {
                Ok(Ok((secret, session))) => {
                    // Recorded under the name the directory gives, as the session acts.
                    audit.record(Event::now(
                        Severity::Info,
                        &identity.login,
                        source_of(req),
                        "sign_in",
                        "POST /admin/api/login".into(),
                        "ok 200".into(),
                        format!("ldap {}, role {}", identity.dn, identity.role),
                    ));
                    opened(req, &identity.login, &identity.role, secret, &session, false)
                }
                Ok(Err(e)) => super::security::failed(e),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Err(e @ LdapError::InvalidCredentials) => {
            record(Severity::Warning, "refused 401", "invalid_credentials (ldap)".into());
            HttpResponse::Unauthorized().json(json!({"error": e.to_string(), "reason": "invalid_credentials"}))
        }
        Err(LdapError::NoRole(who)) => {
            // Answered like a wrong password: the answer must not tell a guesser that a
            // directory password is right. The audit log knows.
            record(Severity::Warning, "refused 401", format!("no_role (ldap): {who} is in no mapped group"));
            HttpResponse::Unauthorized()
                .json(json!({"error": LdapError::InvalidCredentials.to_string(), "reason": "invalid_credentials"}))
        }
        Err(e @ LdapError::Unavailable { .. }) => {
            // The hosts and what they said go to the log and the audit log, not to the caller.
            let detail = match &e {
                LdapError::Unavailable { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            tracing::error!(error = %e, detail = %detail, "LDAP sign-in failed");
            record(Severity::Warning, "failed 503", format!("{e}: {detail}"));
            HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string(), "reason": "ldap_unavailable"}))
        }
    }
}

async fn sign_out(req: HttpRequest, security: web::Data<Arc<Security>>) -> HttpResponse {
    let cleared = session_cookie(&req, String::new(), 0);
    let Some(SessionCookie { secret, .. }) = req.extensions().get::<SessionCookie>().cloned() else {
        // A token has no session to end.
        return HttpResponse::Ok().cookie(cleared).json(json!({"signed_out": false}));
    };
    match run(&security, move |s| s.sign_out(&secret)).await {
        Ok(()) => HttpResponse::Ok().cookie(cleared).json(json!({"signed_out": true})),
        Err(e) => e,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

async fn change_password(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    security: web::Data<Arc<Security>>,
    audit: web::Data<Arc<AuditLog>>,
) -> HttpResponse {
    let change: PasswordChange = match parse(&body, "a password change is {old_password, new_password}") {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let session = req.extensions().get::<SessionCookie>().cloned();
    if session.is_none() {
        return error(StatusCode::BAD_REQUEST, format!("{} is a token: tokens have no password", who.subject));
    }
    if let Err(e) = crate::security::ldap::check_own_password_change(&state.engine.runtime().config.ldap, &who.subject)
    {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let settings = settings(&state, &security);
    let login = who.subject.clone();
    let subject = who.subject.clone();
    let keep = session.map(|s| s.secret);
    let turn = match turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let security = security.get_ref().clone();
    let changed = web::block(move || {
        security.change_password(&turn, &login, &change.old_password, &change.new_password, &settings, keep.as_deref())
    })
    .await;
    match changed {
        Ok(Ok(user)) => HttpResponse::Ok().json(user.public(chrono::Utc::now())),
        // A wrong old password is refused like a sign-in (and counted), but with 403: the
        // caller is signed in.
        Ok(Err(SignInError::Internal(e))) => super::security::failed(e),
        Ok(Err(e)) => {
            if let Some(alarm) = e.password_change_alarm(&subject, source_of(&req), "PUT /admin/api/password") {
                audit.record(alarm);
            }
            HttpResponse::Forbidden()
                .json(json!({"error": format!("the old password is not accepted: {e}"), "reason": e.code()}))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn password_policy(state: web::Data<AppState>, security: web::Data<Arc<Security>>) -> HttpResponse {
    let settings = settings(&state, &security);
    HttpResponse::Ok().json(json!({
        "password_policy": settings.password_policy,
        "overridden": security.password_policy_overridden(),
        "configured": state.engine.runtime().config.account_manager.password_policy,
        "only_one_time_passwords": settings.only_one_time_passwords,
        "password_change_timeout_seconds": settings.password_change_timeout_seconds,
        "block_after_n_failed_attempts": settings.block_after_n_failed_attempts,
        "ban_inactive_more_seconds": settings.inactive_limit(),
        "session_lifetime_seconds": settings.session_lifetime_seconds,
    }))
}

/// `PUT /admin/api/password-policy {min_length, include: {lower, upper, digits, symbols}}`: the
/// policy for passwords set from now on, over the configuration's (TDG's Settings > Password
/// Policy); `DELETE` goes back to the configuration's.
async fn set_password_policy(
    body: web::Bytes,
    state: web::Data<AppState>,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    let policy: crate::security::accounts::PasswordPolicy =
        match parse(&body, "a password policy is {min_length, include: {lower, upper, digits, symbols}}") {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
    match run(&security, move |s| s.set_password_policy(Some(policy))).await {
        Ok(()) => password_policy(state, security).await,
        Err(e) => e,
    }
}

async fn reset_password_policy(state: web::Data<AppState>, security: web::Data<Arc<Security>>) -> HttpResponse {
    match run(&security, |s| s.set_password_policy(None)).await {
        Ok(()) => password_policy(state, security).await,
        Err(e) => e,
    }
}

async fn list_users(security: web::Data<Arc<Security>>) -> HttpResponse {
    let now = chrono::Utc::now();
    match run(&security, |s| s.users()).await {
        Ok(users) => HttpResponse::Ok().json(users.iter().map(|u| u.public(now)).collect::<Vec<_>>()),
        Err(e) => e,
    }
}

async fn get_user(path: web::Path<String>, security: web::Data<Arc<Security>>) -> HttpResponse {
    let login = path.into_inner();
    let wanted = login.clone();
    match run(&security, move |s| s.user(&wanted)).await {
        Ok(Some(user)) => HttpResponse::Ok().json(user.public(chrono::Utc::now())),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no user with login \"{login}\"")),
        Err(e) => e,
    }
}

async fn create_user(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    security: web::Data<Arc<Security>>,
    audit: web::Data<Arc<AuditLog>>,
) -> HttpResponse {
    let new: NewUser =
        match parse(&body, "a user needs {login, role} and may have username, email, expires_in, password") {
            Ok(n) => n,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    if let Err(e) = crate::security::ldap::check_local_login(&state.engine.runtime().config.ldap, &new.login) {
        return super::security::failed(e);
    }
    let Generating { settings, mailer, turn } = match generating(&state, &security).await {
        Ok(g) => g,
        Err(answer) => return answer,
    };
    match run(&security, move |s| s.create_user(&turn, new, &settings, &who)).await {
        Ok((user, Some(password))) => {
            with_password(&req, &audit, mailer.as_ref(), &user, password, StatusCode::CREATED, "was created").await
        }
        Ok((user, None)) => HttpResponse::Created().json(user.public(chrono::Utc::now())),
        Err(e) => e,
    }
}

async fn edit_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    let patch: UserPatch = match parse(&body, "a user edit is {username, email, role, expires_in}") {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let login = path.into_inner();
    match run(&security, move |s| s.edit_user(&login, patch, &who)).await {
        Ok(user) => HttpResponse::Ok().json(user.public(chrono::Utc::now())),
        Err(e) => e,
    }
}

async fn delete_user(req: HttpRequest, path: web::Path<String>, security: web::Data<Arc<Security>>) -> HttpResponse {
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let login = path.into_inner();
    match run(&security, move |s| s.delete_user(&login, &who)).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e,
    }
}

async fn set_user_state(
    req: HttpRequest,
    login: String,
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
    match run(&security, move |s| s.set_user_state(&login, state, reason, &who)).await {
        Ok(user) => HttpResponse::Ok().json(user.public(chrono::Utc::now())),
        Err(e) => e,
    }
}

async fn block_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    set_user_state(req, path.into_inner(), body, security, TokenState::Blocked).await
}

async fn unblock_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    security: web::Data<Arc<Security>>,
) -> HttpResponse {
    set_user_state(req, path.into_inner(), body, security, TokenState::Active).await
}

async fn reset_password(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    security: web::Data<Arc<Security>>,
    audit: web::Data<Arc<AuditLog>>,
) -> HttpResponse {
    let Some(who) = principal(&req) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let login = path.into_inner();
    let Generating { settings, mailer, turn } = match generating(&state, &security).await {
        Ok(g) => g,
        Err(answer) => return answer,
    };
    match run(&security, move |s| s.reset_password(&turn, &login, &settings, &who)).await {
        Ok((user, password)) => {
            with_password(&req, &audit, mailer.as_ref(), &user, password, StatusCode::OK, "has a new password").await
        }
        Err(e) => e,
    }
}
