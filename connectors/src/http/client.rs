//! The HTTP client shared by the `http` and `soap` outputs: one async reqwest client per output
//! (keep-alive pool, timeouts, TLS settings with rustls and ring).

use super::config::HttpClientOptions;
use crate::intake::BoxFuture;
use crate::registry::{BuildError, ConfigProblem, SendError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How much of a peer's answer is kept in an error message.
const EXCERPT: usize = 512;
/// Most of an answer's body kept whole for [`Poster::post_keeping`] (a SOAP answer is parsed).
pub const KEPT_LIMIT: usize = 1024 * 1024;
/// Most of an answer's body read (to keep its connection); a longer one closes it.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// A peer's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The start of the body.
    pub excerpt: String,
    /// The body, as much of it as the caller asked to keep (empty unless it asked).
    pub body: Vec<u8>,
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
    match url.parse::<reqwest::Url>() {
        Err(e) => vec![ConfigProblem::new("url", format!("\"{url}\" is not a URL: {e}"))],
        Ok(uri) => {
            let mut problems = Vec::new();
            if !matches!(uri.scheme(), "http" | "https") {
                problems.push(ConfigProblem::new("url", format!("\"{url}\" must start with http:// or https://")));
            } else if uri.host_str().is_none_or(str::is_empty) {
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
        if HeaderName::try_from(name.as_str()).is_err() {
            problems.push(ConfigProblem::new(format!("headers.{name}"), "not a valid header name"));
        } else if HeaderValue::try_from(value.as_str()).is_err() {
            problems.push(ConfigProblem::new(format!("headers.{name}"), "not a valid header value"));
        }
    }
    problems
}

/// An error and its causes, `outer: inner: ...` (reqwest's own text leaves out why a connection
/// failed, e.g. the certificate it did not trust).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Posts bodies to one URL.
#[derive(Clone)]
pub struct Poster {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
}

fn read_pem(name: &str, what: &str, path: &str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path)
        .map_err(|e| BuildError { name: name.to_string(), message: format!("reading the {what} {path}: {e}") })
}

/// rustls takes its cryptography from the process default: ring, installed once (a provider
/// installed before, by another crate, is kept).
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Poster {
    /// A client for `url` with `options`; `name` is the output's, for errors.
    pub fn new(
        name: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        options: &HttpClientOptions,
    ) -> Result<Self, BuildError> {
        install_crypto_provider();
        let fail = |message: String| BuildError { name: name.to_string(), message };
        let keepalive = crate::config_seconds(options.keepalive_idle, 0.0);
        let mut builder = reqwest::Client::builder()
            .timeout(crate::config_seconds(options.timeout, 0.001))
            .connect_timeout(crate::config_seconds(options.connect_timeout, 0.001))
            .pool_idle_timeout(keepalive)
            // Outputs send many objects at once to one peer: keep a connection for each.
            .pool_max_idle_per_host(if keepalive.is_zero() { 0 } else { 128 })
            // Proxies come from HTTP_PROXY / HTTPS_PROXY / NO_PROXY, as with most clients.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .tls_danger_accept_invalid_certs(!options.verify_peer)
            .tls_danger_accept_invalid_hostnames(!options.verify_host);
        if let Some(interval) = options.keepalive_interval.filter(|i| *i > 0.0) {
            builder = builder.tcp_keepalive_interval(crate::config_seconds(interval, 0.001));
        }
        // The peer's certificate is checked against `ca_file`, else against the Mozilla roots
        // built in (the same on every machine, with or without a system trust store).
        let roots = match &options.ca_file {
            Some(path) => {
                let pem = read_pem(name, "CA file", path)?;
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(format!("CA file {path}: {e}")))?;
                if certs.is_empty() {
                    return Err(fail(format!("{path} holds no PEM certificate")));
                }
                certs
            }
            None => webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
                .collect(),
        };
        builder = builder.tls_certs_only(roots);
        if let (Some(cert), Some(key)) = (&options.ssl_cert, &options.ssl_key) {
            let mut pem = read_pem(name, "client certificate", cert)?;
            pem.push(b'\n');
            pem.extend(read_pem(name, "client key", key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| fail(format!("client certificate {cert} with key {key}: {e}")))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| fail(format!("the HTTP client: {e}")))?;
        let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("\"{url}\" is not a URL: {e}")))?;
        let mut header_map = HeaderMap::new();
        for (k, v) in headers {
            let header = HeaderName::try_from(k.as_str()).map_err(|e| fail(format!("header {k}: {e}")))?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|e| fail(format!("header {k}: {e}")))?;
            header_map.insert(header, value);
        }
        Ok(Self { inner: Arc::new(Inner { client, url: parsed, headers: header_map }) })
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// POST `body`; resolves to the peer's answer, or an [`SendError::Unavailable`] when there
    /// was none (connection refused, timeout, TLS failure).
    pub fn post(&self, body: Vec<u8>, content_type: &str) -> BoxFuture<Result<Answer, SendError>> {
        self.post_keeping(body, content_type, 0)
    }

    /// [`Poster::post`], keeping the first `keep` bytes (at most [`KEPT_LIMIT`]) of the answer's
    /// body in [`Answer::body`].
    pub fn post_keeping(&self, body: Vec<u8>, content_type: &str, keep: usize) -> BoxFuture<Result<Answer, SendError>> {
        let keep = keep.min(KEPT_LIMIT);
        let inner = self.inner.clone();
        let content_type = HeaderValue::try_from(content_type)
            .map_err(|e| SendError::Rejected(format!("content type \"{content_type}\": {e}")));
        Box::pin(async move {
            let content_type = content_type?;
            let unavailable =
                |e: reqwest::Error| SendError::Unavailable(format!("POST {} failed: {}", inner.url, with_causes(&e)));
            let mut response = inner
                .client
                .post(inner.url.clone())
                .headers(inner.headers.clone())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .map_err(unavailable)?;
            let status = response.status().as_u16();
            // Only the start is kept; the rest (up to a limit) is read and dropped so that the
            // connection can be used again.
            let mut excerpt = Vec::new();
            let mut kept = Vec::new();
            let mut read = 0usize;
            while read < DRAIN_LIMIT {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        read += chunk.len();
                        let room = EXCERPT.saturating_sub(excerpt.len());
                        excerpt.extend_from_slice(&chunk[..room.min(chunk.len())]);
                        let room = keep.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    }
                    // The answer came; a body cut short does not change it.
                    Ok(None) | Err(_) => break,
                }
            }
            Ok(Answer { status, excerpt: String::from_utf8_lossy(&excerpt).trim().to_string(), body: kept })
        })
    }
}
