//! The HTTP client shared by the `http` and `soap` outputs: one ureq agent per output (keep-alive
//! pool, timeouts, TLS settings), requests run on the async runtime's blocking pool.

use super::config::HttpClientOptions;
use crate::intake::BoxFuture;
use crate::registry::{BuildError, ConfigProblem, SendError};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

/// How much of a peer's answer is kept in an error message.
const EXCERPT: usize = 512;

/// A peer's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The start of the body.
    pub excerpt: String,
}

impl Answer {
    /// `POST <url> answered 503: <excerpt>`
    pub fn describe(&self, url: &str) -> String {
        if self.excerpt.is_empty() {
            format!("POST {url} answered {}", self.status)
        } else {
            format!("POST {url} answered {}: {}", self.status, self.excerpt)
        }
    }

    /// Whether sending the same request again may succeed: server errors, timeouts and rate
    /// limits may pass; other client errors will not.
    pub fn retryable(&self) -> bool {
        self.status >= 500 || self.status == 408 || self.status == 429
    }
}

/// Check an output URL: absolute, `http` or `https`, with a host.
pub fn check_url(url: &str) -> Vec<ConfigProblem> {
    match url.parse::<ureq::http::Uri>() {
        Err(e) => vec![ConfigProblem::new("url", format!("\"{url}\" is not a URL: {e}"))],
        Ok(uri) => {
            let mut problems = Vec::new();
            if !matches!(uri.scheme_str(), Some("http" | "https")) {
                problems.push(ConfigProblem::new("url", format!("\"{url}\" must start with http:// or https://")));
            } else if uri.host().is_none_or(str::is_empty) {
                problems.push(ConfigProblem::new("url", format!("\"{url}\" has no host")));
            }
            problems
        }
    }
}

/// Check header names and values.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (name, value) in headers {
        if ureq::http::HeaderName::try_from(name.as_str()).is_err() {
            problems.push(ConfigProblem::new(format!("headers.{name}"), "not a valid header name"));
        } else if ureq::http::HeaderValue::try_from(value.as_str()).is_err() {
            problems.push(ConfigProblem::new(format!("headers.{name}"), "not a valid header value"));
        }
    }
    problems
}

/// Posts bodies to one URL.
#[derive(Clone)]
pub struct Poster {
    inner: Arc<Inner>,
}

struct Inner {
    agent: Agent,
    url: String,
    headers: BTreeMap<String, String>,
}

fn read_pem(name: &str, what: &str, path: &str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path)
        .map_err(|e| BuildError { name: name.to_string(), message: format!("reading the {what} {path}: {e}") })
}

/// The certificates in a PEM file.
fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

impl Poster {
    /// An agent for `url` with `options`; `name` is the output's, for errors.
    pub fn new(
        name: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        options: &HttpClientOptions,
    ) -> Result<Self, BuildError> {
        let fail = |message: String| BuildError { name: name.to_string(), message };
        let mut tls = TlsConfig::builder().disable_verification(!options.verify_peer);
        if let Some(path) = &options.ca_file {
            let pem = read_pem(name, "CA file", path)?;
            let certs = certificates(&pem);
            if certs.is_empty() {
                return Err(fail(format!("{path} holds no PEM certificate")));
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let (Some(cert), Some(key)) = (&options.ssl_cert, &options.ssl_key) {
            let cert_pem = read_pem(name, "client certificate", cert)?;
            let key_pem = read_pem(name, "client key", key)?;
            let certs = certificates(&cert_pem);
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| fail(format!("client key {key}: {e}")))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&certs, key)));
        }
        let keepalive = Duration::from_secs_f64(options.keepalive_idle.max(0.0));
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs_f64(options.timeout.max(0.001))))
            .timeout_connect(Some(Duration::from_secs_f64(options.connect_timeout.max(0.001))))
            .max_idle_age(keepalive)
            .max_idle_connections(if keepalive.is_zero() { 0 } else { 256 })
            // Outputs send many objects at once to one peer: keep a connection for each.
            .max_idle_connections_per_host(if keepalive.is_zero() { 0 } else { 128 })
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Self { inner: Arc::new(Inner { agent, url: url.to_string(), headers: headers.clone() }) })
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// POST `body`; resolves to the peer's answer, or an [`SendError::Unavailable`] when there
    /// was none (connection refused, timeout, TLS failure).
    pub fn post(&self, body: Vec<u8>, content_type: &str) -> BoxFuture<Result<Answer, SendError>> {
        let inner = self.inner.clone();
        let content_type = content_type.to_string();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                let mut request = inner.agent.post(&inner.url).header("content-type", &content_type);
                for (name, value) in &inner.headers {
                    request = request.header(name, value);
                }
                let mut response = request
                    .send(&body[..])
                    .map_err(|e| SendError::Unavailable(format!("POST {} failed: {e}", inner.url)))?;
                let status = response.status().as_u16();
                let mut excerpt = Vec::with_capacity(EXCERPT);
                // Only the start is kept; the rest is read and dropped so the connection can be reused.
                let mut reader = response.body_mut().with_config().limit(16 * 1024 * 1024).reader();
                let _ = reader.by_ref().take(EXCERPT as u64).read_to_end(&mut excerpt);
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                Ok(Answer { status, excerpt: String::from_utf8_lossy(&excerpt).trim().to_string() })
            });
            task.await.map_err(|e| SendError::Unavailable(format!("the sending task failed: {e}")))?
        })
    }
}
