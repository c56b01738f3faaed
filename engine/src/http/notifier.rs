//! `GET /admin/api/notifier`: the repair-queue notification settings in force (the mail
//! server's password never shown), `PUT` sets them over the configuration's `notifier`
//! section (TDG's Settings > Mail server and Subscribers), `DELETE` goes back to it.

use super::{error, AppState};
use crate::config::NotifierSection;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/notifier", web::get().to(get))
        .route("/admin/api/notifier", web::put().to(put))
        .route("/admin/api/notifier", web::delete().to(reset));
}

/// The settings as answered: the password replaced by whether there is one.
fn shown(effective: &crate::notifier::Effective) -> serde_json::Value {
    let mut v = serde_json::to_value(effective).unwrap_or_default();
    if let Some(server) = v.get_mut("mail_server").and_then(serde_json::Value::as_object_mut) {
        let has = server.remove("password").is_some_and(|p| !p.is_null());
        server.insert("password_set".into(), has.into());
    }
    v
}

async fn get(state: web::Data<AppState>) -> HttpResponse {
    let rt = state.engine.runtime();
    match web::block(move || crate::notifier::settings(&rt.db, &rt.config.notifier)).await {
        Ok(Ok(effective)) => HttpResponse::Ok().json(shown(&effective)),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `PUT` with the whole section (`mail_server`, `users`, `interval_seconds`, `link`); a
/// `mail_server` without `password` keeps the one in force when `url` and `username` are the
/// same.
async fn put(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let mut settings: NotifierSection = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is the notifier section {{mail_server, users, interval_seconds, link}}: {e}"),
            )
        }
    };
    if let Err(e) = crate::notifier::check(&settings) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let engine = state.engine.clone();
    let done = web::block(move || {
        let rt = engine.runtime();
        let current = crate::notifier::settings(&rt.db, &rt.config.notifier)?;
        if let (Some(new), Some(old)) = (settings.mail_server.as_mut(), current.settings.mail_server.as_ref()) {
            // Kept only for the same login at the same server: pointing `url` elsewhere must
            // not send the stored password there.
            if new.password.is_none() && new.username == old.username && new.url == old.url {
                new.password = old.password.clone();
            }
        }
        crate::notifier::set_override(&rt.db, Some(&settings))?;
        crate::notifier::refresh(&engine)
    })
    .await;
    match done {
        Ok(Ok(effective)) => HttpResponse::Ok().json(shown(&effective)),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn reset(state: web::Data<AppState>) -> HttpResponse {
    let engine = state.engine.clone();
    let done = web::block(move || {
        crate::notifier::set_override(&engine.runtime().db, None)?;
        crate::notifier::refresh(&engine)
    })
    .await;
    match done {
        Ok(Ok(effective)) => HttpResponse::Ok().json(json!(shown(&effective))),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
