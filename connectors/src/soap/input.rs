//! The `POST /soap` and `GET /soap?wsdl` handlers: content-type and size checks, envelope
//! parsing, the handler chosen by the Body element, then the engine's [`Intake`]; the answer
//! comes once the object is durable.

use super::answer::{self, FaultCode};
use super::config::SoapInputConfig;
use super::xml::{parse_envelope, SoapVersion, XmlError};
use crate::http::input::{read_body, wants_sync};
use crate::intake::{Intake, IntakeError, Received, Wait};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;

/// A running SOAP input.
#[derive(Clone)]
pub struct SoapInput {
    config: Arc<SoapInputConfig>,
    intake: Arc<dyn Intake>,
}

impl SoapInput {
    /// Build the input from its configuration and the engine's intake.
    pub fn new(config: SoapInputConfig, intake: Arc<dyn Intake>) -> Self {
        Self { config: Arc::new(config), intake }
    }

    /// An answer of `version` carrying `body`.
    fn reply(version: SoapVersion, status: StatusCode, body: String) -> HttpResponse {
        HttpResponse::build(status).content_type(version.content_type()).body(body)
    }

    /// A refusal: the configured error template, else a SOAP Fault.
    fn refuse(&self, version: SoapVersion, status: StatusCode, code: FaultCode, message: &str) -> HttpResponse {
        let body = match &self.config.error_response_body {
            Some(template) => answer::template(template, message),
            None => answer::fault(version, code, message),
        };
        Self::reply(version, status, body)
    }
}

impl crate::Input for SoapInput {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// `POST /soap` and `GET /soap?wsdl`.
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route("/soap", web::post().to(post_soap))
            .route("/soap", web::get().to(get_wsdl));
    }
}

/// The content type's essence (`text/xml`), lower case.
fn essence(req: &HttpRequest) -> Option<String> {
    let text = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(text.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The version a fault is answered in before the envelope is read: SOAP 1.2 for its content
/// type, else 1.1.
fn version_of(essence: Option<&str>) -> SoapVersion {
    if essence == Some("application/soap+xml") {
        SoapVersion::V12
    } else {
        SoapVersion::V11
    }
}

fn is_xml(essence: Option<&str>) -> bool {
    matches!(essence, Some("text/xml" | "application/xml" | "application/soap+xml"))
}

/// The handler of `POST /soap` for `input` (registered by [`crate::Input::routes`], or called by
/// an engine that picks the input per request).
pub async fn post_soap(req: HttpRequest, payload: web::Payload, input: web::Data<SoapInput>) -> HttpResponse {
    let essence = essence(&req);
    let version = version_of(essence.as_deref());
    if !is_xml(essence.as_deref()) {
        let message = "Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)";
        return input.refuse(version, StatusCode::UNSUPPORTED_MEDIA_TYPE, FaultCode::Client, message);
    }
    let body = match read_body(&req, payload, input.config.max_body_size).await {
        Ok(body) => body,
        Err((status, message)) => return input.refuse(version, status, FaultCode::Client, &message),
    };
    let envelope = match parse_envelope(&body, input.config.max_depth, input.config.max_elements) {
        Ok(envelope) => envelope,
        Err(e @ XmlError::VersionMismatch(_)) => {
            return input.refuse(version, StatusCode::BAD_REQUEST, FaultCode::VersionMismatch, &e.to_string())
        }
        Err(e @ XmlError::TooLarge(_)) => {
            return input.refuse(version, StatusCode::PAYLOAD_TOO_LARGE, FaultCode::Client, &e.to_string())
        }
        Err(e) => return input.refuse(version, StatusCode::BAD_REQUEST, FaultCode::Client, &e.to_string()),
    };
    let version = envelope.version;
    let function = envelope.body.get("tag").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Err(e) = input.config.pipeline_for(&envelope.body) {
        return input.refuse(version, StatusCode::BAD_REQUEST, FaultCode::Client, &e.to_string());
    }
    let wait = if wants_sync(&req) { Wait::Outcome } else { Wait::Durable };
    let received = Received { input: input.config.name.clone(), source: "soap", payload: envelope.body, version: None };
    match input.intake.accept(received, wait).await {
        Ok(accepted) => {
            let body = match &input.config.success_response_body {
                Some(body) if accepted.outcome.is_none() => body.clone(),
                _ => answer::success(version, &function, &accepted),
            };
            SoapInput::reply(version, StatusCode::OK, body)
        }
        Err(e @ (IntakeError::Busy | IntakeError::Starting | IntakeError::Draining)) => {
            let mut response =
                input.refuse(version, StatusCode::SERVICE_UNAVAILABLE, FaultCode::Server, &e.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(e @ IntakeError::Internal(_)) => {
            input.refuse(version, StatusCode::INTERNAL_SERVER_ERROR, FaultCode::Server, &e.to_string())
        }
        Err(e @ IntakeError::Refused(_)) => {
            input.refuse(version, StatusCode::FORBIDDEN, FaultCode::Client, &e.to_string())
        }
    }
}

/// Whether the query string has the key `wsdl` (any case, with or without a value).
fn asks_wsdl(req: &HttpRequest) -> bool {
    req.query_string().split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("wsdl")))
}

/// The handler of `GET /soap?wsdl` for `input`.
pub async fn get_wsdl(req: HttpRequest, input: web::Data<SoapInput>) -> HttpResponse {
    if !asks_wsdl(&req) {
        return HttpResponse::BadRequest()
            .json(json!({"error": "GET /soap?wsdl answers the service description; SOAP messages are POSTed"}));
    }
    match &input.config.wsdl {
        Some(wsdl) => HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(wsdl.clone()),
        None => HttpResponse::NotFound().json(json!({"error": "this SOAP input has no WSDL configured"})),
    }
}
