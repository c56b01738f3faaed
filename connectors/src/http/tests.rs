//! Tests of the HTTP input against an in-memory intake.

use super::*;
use crate::intake::Recorder;
use crate::Input;
use actix_web::{test, App};
use serde_json::{json, Value};
use std::sync::Arc;

fn config(max_body_size: usize) -> HttpInputConfig {
    serde_json::from_value(json!({"name": "http", "max_body_size": max_body_size})).unwrap()
}

async fn post(intake: Arc<Recorder>, limit: usize, ct: &str, body: &[u8], uri: &str) -> (u16, Value) {
    let input = HttpInput::new(config(limit), intake);
    let app = test::init_service(App::new().configure(|c| input.routes(c))).await;
    let req =
        test::TestRequest::post().uri(uri).insert_header(("content-type", ct)).set_payload(body.to_vec()).to_request();
    let resp = test::call_service(&app, req).await;
    let status = resp.status().as_u16();
    let body: Value = test::read_body_json(resp).await;
    (status, body)
}

#[actix_rt::test]
async fn accepts_an_object_and_answers_its_id() {
    let intake = Arc::new(Recorder::default());
    let (status, body) = post(intake.clone(), 1024, "application/json", br#"{"User": {"id": 1}}"#, "/http").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"id": "id-1"}));
    assert_eq!(intake.got.lock().unwrap()[0].payload, json!({"User": {"id": 1}}));
}

#[actix_rt::test]
async fn sync_answers_the_outcome() {
    let intake = Arc::new(Recorder::default());
    let (status, body) = post(intake, 1024, "application/json; charset=utf-8", b"{}", "/http?sync=true").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "stored");
    assert_eq!(body["version"], 7);
}

#[actix_rt::test]
async fn refuses_bad_input_with_its_status() {
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("text/plain", b"{}", 415, "Content-Type"),
        ("application/json", b"{\"a\": }", 400, "line 1 column 7"),
        ("application/json", b"[1]", 400, "an array"),
        ("application/json", &[b'{'; 40], 413, "larger than 32 bytes"),
    ];
    for (ct, body, want, text) in cases {
        let intake = Arc::new(Recorder::default());
        let (status, answer) = post(intake.clone(), 32, ct, body, "/http").await;
        assert_eq!(status, *want, "{ct} {answer}");
        assert!(answer["error"].as_str().unwrap().contains(text), "{answer}");
        assert!(intake.got.lock().unwrap().is_empty());
    }
}

#[actix_rt::test]
async fn busy_engine_answers_503_with_retry_after() {
    let intake = Arc::new(Recorder { busy: true, ..Default::default() });
    let input = HttpInput::new(config(1024), intake);
    let app = test::init_service(App::new().configure(|c| input.routes(c))).await;
    let req = test::TestRequest::post()
        .uri("/http")
        .insert_header(("content-type", "application/json"))
        .set_payload("{}")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
}

#[actix_rt::test]
async fn output_urls_and_headers_are_checked() {
    let config: HttpOutputConfig = serde_json::from_value(json!({
        "name": "out", "url": "/relative", "headers": {"bad name": "x"}, "options": {"ssl_key": "/no/such.pem"}
    }))
    .unwrap();
    let problems: Vec<String> = config.validate().into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
    assert!(problems.iter().any(|p| p.starts_with("url: \"/relative\"")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("headers.bad name")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("options.ssl_cert: ssl_cert and ssl_key go together")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.starts_with("options.ssl_key: /no/such.pem")), "{problems:?}");
    for url in ["ftp://host/x", "http://"] {
        let config: HttpOutputConfig = serde_json::from_value(json!({"name": "o", "url": url})).unwrap();
        assert!(!config.validate().is_empty(), "{url} is refused");
    }
    let config: HttpOutputConfig =
        serde_json::from_value(json!({"name": "o", "url": "https://example.com:8443/in?x=1"})).unwrap();
    assert!(config.validate().is_empty());
}
