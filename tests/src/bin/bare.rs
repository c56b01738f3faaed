//! The bare endpoint the benchmark compares Ferrogrid with: an actix-web server that parses each
//! `POST /http` body as JSON and answers an id, and does nothing else (no storage, no scripts).
//! It runs as its own process, like Ferrogrid, so the load generator measures both the same way.
//!
//! `bare [--listen 127.0.0.1:PORT] [--workers N]` (defaults: a free port, actix's default worker
//! count). Prints `listening on ADDR` on stdout once it accepts connections; SIGTERM stops it.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::{json, Value};

async fn ingest(body: web::Bytes, counter: web::Data<AtomicU64>) -> HttpResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(_)) => {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            HttpResponse::Ok().json(json!({ "id": n.to_string() }))
        }
        Ok(_) => HttpResponse::BadRequest().json(json!({"error": "expected a JSON object"})),
        Err(e) => HttpResponse::BadRequest().json(json!({"error": e.to_string()})),
    }
}

fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut workers: Option<usize> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => listen = it.next().context("--listen needs an address")?,
            "--workers" => {
                let v = it.next().context("--workers needs a number")?;
                workers = Some(v.parse().with_context(|| format!("--workers: {v:?} is not a number"))?);
            }
            other => anyhow::bail!("unknown argument {other:?}; usage: bare [--listen ADDR] [--workers N]"),
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let counter = web::Data::new(AtomicU64::new(0));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(counter.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/http", web::post().to(ingest))
                .route("/health", web::get().to(HttpResponse::Ok))
        });
        if let Some(n) = workers {
            server = server.workers(n.max(1));
        }
        let server = server.bind(&listen).with_context(|| format!("cannot listen on {listen}"))?;
        let addr = server.addrs().first().copied().context("no listening address")?;
        let running = server.run();
        println!("listening on {addr}");
        running.await.context("bare server failed")
    })
}
