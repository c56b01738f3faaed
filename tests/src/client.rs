//! HTTP client side of the harness: a [`Client`] that talks to a running `ferrogrid` as a user
//! would (bearer token, JSON bodies, keep-alive), the [`Resp`] it hands back, a raw-socket request
//! for answers a server sends before it has read the whole body (413), and small helpers for
//! query strings and Prometheus text.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;
use ureq::Agent;

/// Largest response body the tests accept (repair-queue listings can be big).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// One HTTP answer: status, headers (lower-case names) and the body as text.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Resp {
    /// The body parsed as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        // Without serde_json's 128-level limit: answers may quote payloads as deep as an input
        // accepts (200 levels) inside their own.
        let mut de = serde_json::Deserializer::from_str(&self.body);
        de.disable_recursion_limit();
        match Value::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
            Ok(v) => v,
            Err(e) => {
                panic!("response (status {}) is not JSON: {e}; body: {}", self.status, truncate(&self.body, 2000))
            }
        }
    }

    /// The value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The `error` field of a JSON error body; panics when the body is not `{"error": "<text>"}`.
    pub fn error_text(&self) -> String {
        let v = self.json();
        match v.get("error").and_then(Value::as_str) {
            Some(s) => s.to_string(),
            None => {
                panic!("response (status {}) has no string field `error`: {}", self.status, truncate(&self.body, 2000))
            }
        }
    }

    /// Panics unless the status is `expected`, showing the body.
    pub fn assert_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "{what}: expected HTTP {expected}, got {} with body {}",
            self.status,
            truncate(&self.body, 2000)
        );
        self
    }
}

/// Cuts a text for messages.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}

/// A keep-alive HTTP client for one server address, with or without a bearer token.
/// Cloning shares the connection pool; [`crate::Server::client`] makes a fresh one.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: Agent,
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:PORT`) sending `Authorization: Bearer <token>`
    /// when a token is given. HTTP error statuses are answers, not errors.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self::with_timeout(base, token, Duration::from_secs(120))
    }

    /// Like [`Client::new`] with an overall per-request timeout.
    pub fn with_timeout(base: &str, token: Option<&str>, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections_per_host(16)
            .build()
            .into();
        Self { base: base.trim_end_matches('/').to_string(), token: token.map(str::to_string), agent }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// `POST path` with a JSON body (`Content-Type: application/json`).
    pub fn try_post_json(&self, path: &str, body: &Value) -> Result<Resp, ureq::Error> {
        let bytes = serde_json::to_vec(body).map_err(ureq::Error::Json)?;
        self.try_post_raw(path, Some("application/json"), &bytes)
    }

    /// `POST path` with the given content type (none when `None`) and raw bytes.
    pub fn try_post_raw(&self, path: &str, content_type: Option<&str>, bytes: &[u8]) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.post(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        to_resp(req.send(bytes)?)
    }

    /// `PUT path` with a content type and raw bytes.
    pub fn try_put_raw(&self, path: &str, content_type: &str, bytes: &[u8]) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.put(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        to_resp(req.header("Content-Type", content_type).send(bytes)?)
    }

    /// `METHOD path` with an optional JSON body (GET, POST, PUT, PATCH, DELETE); panics on a
    /// transport error or another method.
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.send_with_headers(method, path, body, &[])
    }

    /// [`Client::send`] with more request headers.
    pub fn send_with_headers(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let url = self.url(path);
        let auth = self.auth();
        let bytes = body.map(|b| b.to_string().into_bytes());
        let with_body = |mut req: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            let req = match &auth {
                Some(a) => req.header("Authorization", a),
                None => req,
            };
            match &bytes {
                Some(b) => req.header("Content-Type", "application/json").send(b.as_slice()),
                None => req.send_empty(),
            }
        };
        let without_body = |mut req: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            match &auth {
                Some(a) => req.header("Authorization", a),
                None => req,
            }
            .call()
        };
        let sent = match method {
            "GET" => without_body(self.agent.get(&url)),
            "DELETE" => without_body(self.agent.delete(&url)),
            "POST" => with_body(self.agent.post(&url)),
            "PUT" => with_body(self.agent.put(&url)),
            "PATCH" => with_body(self.agent.patch(&url)),
            other => panic!("send: method {other} is not supported"),
        };
        sent.and_then(to_resp).unwrap_or_else(|e| panic!("{method} {path}: transport error: {e}"))
    }

    /// `POST /graphql` with `{"query", "variables"}`; `admin` adds the header `schema: admin`.
    /// Returns the whole GraphQL answer (`data`, `errors`); panics unless the status is 200.
    pub fn graphql(&self, query: &str, variables: Value, admin: bool) -> Value {
        let body = serde_json::json!({"query": query, "variables": variables});
        let mut req = self.agent.post(self.url("/graphql"));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        if admin {
            req = req.header("schema", "admin");
        }
        let resp = req
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|r| to_resp(r).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("POST /graphql: transport error: {e}"));
        resp.assert_status(200, &format!("POST /graphql {query}"));
        resp.json()
    }

    /// `POST path` without a body.
    pub fn try_post_empty(&self, path: &str) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.post(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        to_resp(req.send_empty()?)
    }

    /// `GET path`.
    pub fn try_get(&self, path: &str) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.get(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        to_resp(req.call()?)
    }

    /// `DELETE path`.
    pub fn try_delete(&self, path: &str) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.delete(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        to_resp(req.call()?)
    }

    /// [`Client::try_post_json`], panicking on a transport error.
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.try_post_json(path, body).unwrap_or_else(|e| panic!("POST {path}: transport error: {e}"))
    }

    /// [`Client::try_post_raw`] with a content type, panicking on a transport error.
    pub fn post_raw(&self, path: &str, content_type: &str, bytes: &[u8]) -> Resp {
        self.try_post_raw(path, Some(content_type), bytes)
            .unwrap_or_else(|e| panic!("POST {path} ({content_type}): transport error: {e}"))
    }

    /// [`Client::try_post_empty`], panicking on a transport error.
    pub fn post_empty(&self, path: &str) -> Resp {
        self.try_post_empty(path).unwrap_or_else(|e| panic!("POST {path}: transport error: {e}"))
    }

    /// [`Client::try_get`], panicking on a transport error.
    pub fn get(&self, path: &str) -> Resp {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: transport error: {e}"))
    }

    /// [`Client::try_delete`], panicking on a transport error.
    pub fn delete(&self, path: &str) -> Resp {
        self.try_delete(path).unwrap_or_else(|e| panic!("DELETE {path}: transport error: {e}"))
    }

    /// `GET /data/{type_name}?{query}`; asserts 200 and a JSON array, returns its items
    /// (`{"object", "version", "cursor"}`).
    pub fn data(&self, type_name: &str, query: &str) -> Vec<Value> {
        let path = if query.is_empty() { format!("/data/{type_name}") } else { format!("/data/{type_name}?{query}") };
        let r = self.get(&path);
        r.assert_status(200, &format!("GET {path}"));
        match r.json() {
            Value::Array(items) => items,
            other => panic!("GET {path}: expected a JSON array, got {other}"),
        }
    }

    /// Every repair-queue entry matching `query` (e.g. `filter=text`), following the cursor
    /// with pages of 500. Newest first, as the server lists them.
    pub fn repair_entries(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..10_000 {
            let mut path = String::from("/admin/api/repair?first=500");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(a) = &after {
                path.push_str("&after=");
                path.push_str(&encode(a));
            }
            let r = self.get(&path);
            r.assert_status(200, &format!("GET {path}"));
            let v = r.json();
            let items = match v.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => panic!("GET {path}: no `items` array in {}", truncate(&r.body, 500)),
            };
            let n = items.len();
            out.extend(items);
            match v.get("cursor").and_then(Value::as_str) {
                Some(c) if n > 0 => after = Some(c.to_string()),
                _ => return out,
            }
        }
        panic!("repair-queue paging did not end after 10000 pages")
    }
}

fn to_resp(mut r: ureq::http::Response<ureq::Body>) -> Result<Resp, ureq::Error> {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = r.body_mut().with_config().limit(MAX_RESPONSE_BYTES).lossy_utf8(true).read_to_string()?;
    Ok(Resp { status, headers, body })
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends one HTTP/1.1 request over a fresh socket, writing the body on a second thread while
/// reading the answer, the way curl does. A server may answer (413) and close before it has
/// read a large body; a client that only reads after writing would see a reset instead.
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<Resp> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut writer = stream.try_clone()?;
    let write_thread = std::thread::spawn(move || {
        // The server may stop reading once it has decided; a write error is expected then.
        for chunk in body.chunks(64 * 1024) {
            if writer.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = writer.flush();
    });
    let mut raw = Vec::new();
    let read_result = stream.read_to_end(&mut raw);
    let _ = write_thread.join();
    if raw.is_empty() {
        if let Err(e) = read_result {
            bail!("{method} {path}: no answer, read error: {e}");
        }
        bail!("{method} {path}: connection closed without an answer");
    }
    parse_raw_response(&raw)
}

fn parse_raw_response(raw: &[u8]) -> anyhow::Result<Resp> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        bail!("incomplete HTTP answer: {}", truncate(&text, 500));
    };
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok(Resp { status, headers, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, rest)) = s.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        s = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Sum of the samples of metric `name` whose label set contains every `label="value"` in
/// `labels`, from Prometheus text. `None` when no sample matches.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_part, value_part) = if let Some(r) = rest.strip_prefix('{') {
            match r.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // another metric with this name as prefix
        };
        let all = labels.iter().all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\"")));
        if !all {
            continue;
        }
        let Some(v) = value_part.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        sum = Some(sum.unwrap_or(0.0) + v);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_sums_matching_labels_only() {
        let text = "# HELP x\nferrogrid_objects_stored_total{type=\"User\"} 3\n\
                    ferrogrid_objects_stored_total{type=\"Book\"} 2\n\
                    ferrogrid_objects_stored_total_extra 9\nferrogrid_repair_queue_depth 4\n";
        assert_eq!(metric_value(text, "ferrogrid_objects_stored_total", &[("type", "User")]), Some(3.0));
        assert_eq!(metric_value(text, "ferrogrid_objects_stored_total", &[]), Some(5.0));
        assert_eq!(metric_value(text, "ferrogrid_repair_queue_depth", &[]), Some(4.0));
        assert_eq!(metric_value(text, "ferrogrid_nothing", &[]), None);
    }

    #[test]
    fn encode_escapes_brackets_and_commas() {
        assert_eq!(encode("[1,2]"), "%5B1%2C2%5D");
        assert_eq!(encode("a b"), "a%20b");
    }

    #[test]
    fn raw_response_parsing_handles_chunked_bodies() {
        let raw = b"HTTP/1.1 413 Payload Too Large\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let r = parse_raw_response(raw).unwrap();
        assert_eq!(r.status, 413);
        assert_eq!(r.body, "hello");
    }
}
