//! Configuration of the SMTP output.

use crate::registry::ConfigProblem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_subject() -> String {
    "Ferrogrid".to_string()
}

fn default_timeout() -> f64 {
    30.0
}

/// `connector.output[]` of `type: smtp`: each object routed here is mailed. The object may say
/// `to` (an address or a list), `subject` and `body` (text); without `body` the mail's text is the
/// object as JSON. Recipients default to the output's `to`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SmtpOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
    /// Server: `smtp://host:port` (plain; add `?tls=required` or `?tls=opportunistic` for
    /// STARTTLS) or `smtps://host:port` (TLS); `user:password@` before the host to log in.
    pub url: String,
    /// Sender address, e.g. `Ferrogrid <grid@example.com>`.
    pub from: String,
    /// Recipients when the object names none.
    #[serde(default)]
    pub to: Vec<String>,
    /// Subject when the object has none.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Seconds one delivery may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 0.001))]
    pub timeout: f64,
    /// PEM file with a client certificate presented over TLS (with `ssl_key`).
    #[serde(default)]
    pub ssl_cert: Option<String>,
    /// PEM file with the client certificate's private key.
    #[serde(default)]
    pub ssl_key: Option<String>,
    /// Over TLS, accept a certificate that does not name the server's host (TDG's
    /// `skip_verify_host`).
    #[serde(default)]
    pub skip_verify_host: bool,
}

/// `url` with `user` and `password` as its login (the `user:password@` part, percent-encoded).
pub fn url_with_login(url: &str, user: &str, password: Option<&str>) -> Result<String, String> {
    let mut parsed = url.parse::<reqwest::Url>().map_err(|e| format!("url: {e}"))?;
    parsed.set_username(user).map_err(|()| "url: it cannot carry a login".to_string())?;
    parsed.set_password(password).map_err(|()| "url: it cannot carry a password".to_string())?;
    Ok(parsed.to_string())
}

impl SmtpOutputConfig {
    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !(self.url.starts_with("smtp://") || self.url.starts_with("smtps://")) {
            problems.push(ConfigProblem::new("url", format!("\"{}\" must start with smtp:// or smtps://", self.url)));
        } else if let Err(e) = lettre::SmtpTransport::from_url(&self.url) {
            problems.push(ConfigProblem::new("url", format!("\"{}\": {e}", self.url)));
        }
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            problems.push(ConfigProblem::new("from", format!("\"{}\" is not a mail address: {e}", self.from)));
        }
        for (i, to) in self.to.iter().enumerate() {
            if let Err(e) = to.parse::<lettre::message::Mailbox>() {
                problems.push(ConfigProblem::new(format!("to[{i}]"), format!("\"{to}\" is not a mail address: {e}")));
            }
        }
        if self.ssl_cert.is_some() != self.ssl_key.is_some() {
            problems.push(ConfigProblem::new("ssl_cert", "ssl_cert and ssl_key go together"));
        }
        for (field, path) in [("ssl_cert", &self.ssl_cert), ("ssl_key", &self.ssl_key)] {
            if let Some(path) = path {
                if !std::path::Path::new(path).is_file() {
                    problems.push(ConfigProblem::new(field, format!("{path} is not a file")));
                }
            }
        }
        problems
    }
}
