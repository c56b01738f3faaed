//! Configuration of the HTTP JSON input and output.

use crate::registry::ConfigProblem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn default_max_body_size() -> usize {
    16 * 1024 * 1024
}

fn default_max_depth() -> usize {
    128
}

/// `connector.input[]` of `type: http`: JSON objects posted to `POST /http`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpInputConfig {
    /// Name of the input (shown in metrics and the repair queue).
    pub name: String,
    /// Pipeline run on each object before connector routing. Without it the default step turns
    /// `{"User": {...}}` into the object `{...}` with routing key `User`.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Largest accepted request body in bytes (at most 1 GiB); larger bodies get 413.
    #[serde(default = "default_max_body_size")]
    #[schemars(range(min = 1, max = 1073741824))]
    pub max_body_size: usize,
    /// Deepest accepted nesting of arrays/objects; deeper bodies get 400. At most 200, so that
    /// parsing stays well inside the stack and scripts can still wrap the object.
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 1, max = 200))]
    pub max_depth: usize,
}

/// The body format of the `http` output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormat {
    /// The object as a JSON document (`Content-Type: application/json`).
    #[default]
    Json,
}

fn default_timeout() -> f64 {
    30.0
}

fn default_connect_timeout() -> f64 {
    10.0
}

fn default_keepalive_idle() -> f64 {
    60.0
}

fn default_true() -> bool {
    true
}

/// Client options of the `http` and `soap` outputs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpClientOptions {
    /// Seconds a whole request (connect, send, answer) may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 0.001))]
    pub timeout: f64,
    /// Seconds to establish the connection.
    #[serde(default = "default_connect_timeout")]
    #[schemars(range(min = 0.001))]
    pub connect_timeout: f64,
    /// Seconds an idle connection is kept for the next request (keep-alive); 0 closes each.
    #[serde(default = "default_keepalive_idle")]
    #[schemars(range(min = 0))]
    pub keepalive_idle: f64,
    /// TDG's `keepalive_interval`: seconds between TCP keep-alive probes on an idle connection
    /// (absent or 0: the client's default, 15 s), so a peer or a middlebox that went away is
    /// noticed.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub keepalive_interval: Option<f64>,
    /// Verify the server's TLS certificate (https).
    #[serde(default = "default_true")]
    pub verify_peer: bool,
    /// TDG's `verify_host`: check that the certificate names the host of `url` (https).
    #[serde(default = "default_true")]
    pub verify_host: bool,
    /// PEM file with the certificate authorities to trust instead of the built-in roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM file with a client certificate (with `ssl_key`).
    #[serde(default)]
    pub ssl_cert: Option<String>,
    /// PEM file with the client certificate's private key.
    #[serde(default)]
    pub ssl_key: Option<String>,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            keepalive_idle: default_keepalive_idle(),
            keepalive_interval: None,
            verify_peer: true,
            verify_host: true,
            ca_file: None,
            ssl_cert: None,
            ssl_key: None,
        }
    }
}

impl HttpClientOptions {
    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.ssl_cert.is_some() != self.ssl_key.is_some() {
            problems.push(ConfigProblem::new("options.ssl_cert", "ssl_cert and ssl_key go together"));
        }
        for (field, path) in [("ca_file", &self.ca_file), ("ssl_cert", &self.ssl_cert), ("ssl_key", &self.ssl_key)] {
            if let Some(path) = path {
                if !std::path::Path::new(path).is_file() {
                    problems.push(ConfigProblem::new(format!("options.{field}"), format!("{path} is not a file")));
                }
            }
        }
        problems
    }
}

/// `connector.output[]` of `type: http`: each object routed here is POSTed as JSON to `url`. A
/// 2xx answer is success; any other answer or no answer leaves the object in the repair queue
/// with a `Sending error` that quotes the peer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
    /// Absolute `http://` or `https://` URL to POST to.
    pub url: String,
    /// Body format.
    #[serde(default)]
    pub format: HttpFormat,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Client options: timeouts, keep-alive, TLS.
    #[serde(default)]
    pub options: HttpClientOptions,
}

impl HttpOutputConfig {
    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = super::client::check_url(&self.url);
        problems.extend(super::client::check_headers(&self.headers));
        problems.extend(self.options.validate());
        problems
    }
}
