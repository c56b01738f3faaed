//! The configuration API: the active configuration and its versions, uploads (a zip or a
//! tar.gz of a configuration folder), downloads and rollbacks.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /admin/api/config` | the versions (who, when, how, checksum, what changed) and the active one |
//! | `PUT /admin/api/config` | apply an archive (`application/zip` or `application/gzip`); `?dry_run=true` checks and plans only |
//! | `GET /admin/api/config/{version}` | a version's record and files (`active` for the active one) |
//! | `GET /admin/api/config/{version}/archive` | a version as a tar.gz |
//! | `POST /admin/api/config/rollback/{version}` | apply an older version again |
//! | `GET /admin/api/expiration` | the expiration rules in force (configuration, or set here) |
//! | `PUT /admin/api/expiration/{type}`, `DELETE ...` | set a type's expiration; forget what was set |
//! | `GET /admin/api/unlinked` | types with stored data that the model no longer has |
//! | `POST /admin/api/unlinked/{type}/truncate` | delete an unlinked type's data (it stays listed, empty) |
//! | `DELETE /admin/api/unlinked/{type}` | delete an unlinked type's data and forget it |

use super::{error, AppState};
use crate::config::archive::{self, Kind, Limits};
use crate::config::Files;
use crate::live::{Applied, ApplyError, How};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// Largest archive accepted (compressed).
const ARCHIVE_LIMIT: usize = 16 * 1024 * 1024;

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/api/config")
            .app_data(web::PayloadConfig::new(ARCHIVE_LIMIT))
            .route("", web::get().to(list))
            .route("", web::put().to(upload))
            .route("/rollback/{version}", web::post().to(rollback))
            .route("/{version}", web::get().to(get_version))
            .route("/{version}/archive", web::get().to(download)),
    );
    cfg.service(
        web::scope("/admin/api/expiration")
            .route("", web::get().to(expiration_list))
            .route("/{type}", web::put().to(expiration_set))
            .route("/{type}", web::delete().to(expiration_cleanup)),
    );
    cfg.service(
        web::scope("/admin/api/unlinked")
            .route("", web::get().to(unlinked))
            .route("/{type}/truncate", web::post().to(truncate))
            .route("/{type}", web::delete().to(drop_type)),
    );
}

async fn expiration_list(state: web::Data<AppState>) -> HttpResponse {
    let rt = state.engine.runtime();
    match web::block(move || crate::lifecycle::expiration_rules(&rt.db, &rt.config.expiration)).await {
        Ok(Ok(rules)) => HttpResponse::Ok().json(json!({"items": rules})),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `PUT /admin/api/expiration/{type}` with `{lifetime_hours, keep_version_count, delay_sec}`.
async fn expiration_set(path: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let type_name = path.into_inner();
    const SHAPE: &str = "the body is a JSON object {lifetime_hours, keep_version_count, delay_sec}";
    let mut value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => return error(StatusCode::BAD_REQUEST, SHAPE),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{SHAPE}: {e}")),
    };
    value["type"] = json!(type_name);
    let rule: crate::config::ExpirationRule = match serde_json::from_value(value) {
        Ok(rule) => rule,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = rule.validate() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let rt = state.engine.runtime();
    if rt.repository.spec_of(&rule.type_name).is_none() {
        return error(StatusCode::NOT_FOUND, format!("\"{}\" is not an aggregate of the model", rule.type_name));
    }
    let set = rule.clone();
    match web::block(move || crate::lifecycle::set_expiration(&rt.db, &set)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(rule),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn expiration_cleanup(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let type_name = path.into_inner();
    let rt = state.engine.runtime();
    match web::block(move || crate::lifecycle::cleanup_expiration(&rt.db, &type_name)).await {
        Ok(Ok(had)) => HttpResponse::Ok().json(json!({"cleaned": had})),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn unlinked(state: web::Data<AppState>) -> HttpResponse {
    let live = state.live.clone();
    match web::block(move || live.unlinked()).await {
        Ok(Ok(items)) => HttpResponse::Ok().json(json!({"items": items})),
        Ok(Err(e)) => answer(Err(e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn clear(type_name: String, drop: bool, state: web::Data<AppState>) -> HttpResponse {
    match state.live.clear_unlinked(&type_name, drop).await {
        Ok(deleted) => HttpResponse::Ok().json(json!({"type": type_name, "dropped": drop, "keys_deleted": deleted})),
        Err(e) => answer(Err(e)),
    }
}

async fn truncate(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    clear(path.into_inner(), false, state).await
}

async fn drop_type(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    clear(path.into_inner(), true, state).await
}

/// Who applies: the caller of the admin API (a user signed in to the web UI, or a token) and
/// where from.
fn who(req: &HttpRequest) -> String {
    use actix_web::HttpMessage;
    let kind = if req.extensions().get::<super::access::SessionCookie>().is_some() { "user" } else { "token" };
    let name =
        super::access::principal(req).map_or_else(|| "unknown caller".to_string(), |p| format!("{kind} {}", p.subject));
    match req.peer_addr() {
        Some(peer) => format!("{name} from {}", peer.ip()),
        None => name,
    }
}

fn dry_run(req: &HttpRequest) -> bool {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("dry_run").map(|v| v == "true" || v == "1"))
        .unwrap_or(false)
}

fn answer(result: Result<Applied, ApplyError>) -> HttpResponse {
    match result {
        Ok(applied) => HttpResponse::Ok().json(applied),
        Err(ApplyError::Invalid(problems)) => HttpResponse::UnprocessableEntity().json(json!({
            "error": format!("the configuration was not applied: {} problem(s)", problems.len()),
            "problems": problems,
        })),
        Err(e @ (ApplyError::NoVersion(_) | ApplyError::NoType(_))) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ ApplyError::Linked(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ ApplyError::Busy(_)) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(json!({"error": e.to_string()})),
        Err(e @ ApplyError::Internal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The files of an uploaded archive, as text. Configuration files (YAML, JSON, scripts) must be
/// UTF-8; other files that are not are left out (a configuration only reads the files it
/// includes, as text).
fn texts(files: std::collections::BTreeMap<String, Vec<u8>>) -> Result<(Files, Vec<String>), String> {
    let mut out = Files::new();
    let mut skipped = Vec::new();
    for (name, bytes) in files {
        match String::from_utf8(bytes) {
            Ok(text) => {
                out.insert(name, text);
            }
            Err(_) => {
                let lower = name.to_ascii_lowercase();
                let config_like = [".yml", ".yaml", ".json", ".avsc", ".rhai", ".lua", ".wsdl", ".xml", ".graphql"]
                    .iter()
                    .any(|ext| lower.ends_with(ext));
                if config_like {
                    return Err(format!("{name}: not UTF-8 text"));
                }
                skipped.push(name);
            }
        }
    }
    Ok((out, skipped))
}

async fn upload(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(kind) = Kind::from_content_type(content_type) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the configuration folder as a zip (Content-Type: application/zip) or a tar.gz (application/gzip)",
        );
    };
    let unpacked = web::block(move || archive::unpack(&body, kind, &Limits::default())).await;
    let files = match unpacked {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("the archive was refused: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (files, _binary) = match texts(files) {
        Ok(texts) => texts,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the archive was refused: {e}")),
    };
    answer(state.live.apply(files, How::Upload, &who(&req), dry_run(&req)).await)
}

async fn rollback(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let version = match version_of(&path, &state) {
        Ok(v) => v,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    answer(state.live.rollback(version, &who(&req), dry_run(&req)).await)
}

async fn list(state: web::Data<AppState>) -> HttpResponse {
    let live = state.live.clone();
    match web::block(move || live.versions()).await {
        Ok(Ok((active, mut versions))) => {
            versions.reverse();
            HttpResponse::Ok().json(json!({"active": active, "versions": versions}))
        }
        Ok(Err(e)) => answer(Err(e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `{version}`: a number, or `active`.
fn version_of(text: &str, state: &AppState) -> Result<u64, String> {
    if text == "active" {
        return Ok(state.engine.runtime().version);
    }
    text.parse().map_err(|_| format!("\"{text}\" is not a version number (or active)"))
}

async fn get_version(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let version = match version_of(&path, &state) {
        Ok(v) => v,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let live = state.live.clone();
    match web::block(move || live.version(version)).await {
        Ok(Ok((info, files))) => HttpResponse::Ok().json(json!({"info": info, "files": files})),
        Ok(Err(e)) => answer(Err(e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn download(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let version = match version_of(&path, &state) {
        Ok(v) => v,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let live = state.live.clone();
    let packed = web::block(move || {
        live.version(version).map(|(_, files)| {
            let bytes = files.into_iter().map(|(name, text)| (name, text.into_bytes())).collect();
            archive::pack_tar_gz(&bytes)
        })
    })
    .await;
    match packed {
        Ok(Ok(Ok(bytes))) => HttpResponse::Ok()
            .content_type("application/gzip")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"ferrogrid-config-v{version}.tar.gz\""),
            ))
            .body(bytes),
        Ok(Ok(Err(e))) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Ok(Err(e)) => answer(Err(e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
