//! The `POST /http` handler: content-type and size checks, JSON parsing with a depth limit,
//! then the engine's [`Intake`]; the answer comes once the object is durable.

use super::config::HttpInputConfig;
use crate::intake::{Intake, IntakeError, Received, Wait};
use crate::json::{parse_object, JsonInputError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;

/// A running HTTP JSON input.
#[derive(Clone)]
pub struct HttpInput {
    config: Arc<HttpInputConfig>,
    intake: Arc<dyn Intake>,
}

impl HttpInput {
    /// Build the input from its configuration and the engine's intake.
    pub fn new(config: HttpInputConfig, intake: Arc<dyn Intake>) -> Self {
        Self { config: Arc::new(config), intake }
    }
}

impl crate::Input for HttpInput {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// `POST /http`.
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone())).route("/http", web::post().to(post_http));
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `?version=N`: the object is stored with version N (TDG's explicit versions).
fn explicit_version(req: &HttpRequest) -> Result<Option<u64>, String> {
    let query = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| format!("bad query string: {e}"))?;
    match query.get("version") {
        None => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(v) if v > 0 => Ok(Some(v)),
            _ => Err(format!("version: \"{text}\" is not a positive integer")),
        },
    }
}

/// `?sync=true` (or `1`): answer with the outcome of processing.
pub(crate) fn wants_sync(req: &HttpRequest) -> bool {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("sync").map(|v| v == "true" || v == "1"))
        .unwrap_or(false)
}

/// Read the whole body, refusing it (with the status to answer) as soon as it passes `limit` bytes.
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, (StatusCode, String)> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes"));
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err((StatusCode::BAD_REQUEST, format!("reading the body failed: {e}"))),
        Err(_) => Err(too_large()),
    }
}

/// The handler of `POST /http` for `input` (registered by [`crate::Input::routes`], or called by
/// an engine that picks the input per request).
pub async fn post_http(req: HttpRequest, payload: web::Payload, input: web::Data<HttpInput>) -> HttpResponse {
    if !is_json(&req) {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json");
    }
    let body = match read_body(&req, payload, input.config.max_body_size).await {
        Ok(body) => body,
        Err((status, message)) => return error(status, message),
    };
    let object = match parse_object(&body, input.config.max_depth) {
        Ok(map) => Value::Object(map),
        Err(e @ (JsonInputError::Syntax(_) | JsonInputError::NotAnObject(_) | JsonInputError::TooDeep(_))) => {
            return error(StatusCode::BAD_REQUEST, e.to_string())
        }
    };
    let wait = if wants_sync(&req) { Wait::Outcome } else { Wait::Durable };
    let version = match explicit_version(&req) {
        Ok(version) => version,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let received = Received { input: input.config.name.clone(), source: "http", payload: object, version };
    match input.intake.accept(received, wait).await {
        Ok(accepted) => match accepted.outcome {
            Some(outcome) => HttpResponse::Ok().json(outcome),
            None => HttpResponse::Ok().json(json!({ "id": accepted.id })),
        },
        Err(e @ (IntakeError::Busy | IntakeError::Starting | IntakeError::Draining)) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(e @ IntakeError::Internal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e @ IntakeError::Refused(_)) => error(StatusCode::FORBIDDEN, e.to_string()),
    }
}
