//! Bearer-token middleware: every request but `GET /health` and the UI's static files (and
//! `HEAD` of them) needs a valid token.

use crate::security::Tokens;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Refuse requests without a valid bearer token with 401.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let open = req.path() == "/health" || super::ui::ASSETS.contains(&req.path());
    if open && matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let authorized = req.app_data::<web::Data<Tokens>>().is_some_and(|tokens| {
        tokens.verify_header(req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
    });
    if authorized {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({"error": "missing or invalid bearer token (Authorization: Bearer <token>)"}));
    Ok(req.into_response(response).map_into_right_body())
}
