//! The SMTP output (lettre): one mail per object.

use super::config::SmtpOutputConfig;
use crate::intake::BoxFuture;
use crate::registry::{BuildError, Outgoing, Output, SendError};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::client::{Identity, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use serde_json::Value;
use std::sync::Arc;

/// Mails objects.
pub struct SmtpOutput {
    name: String,
    inner: Arc<Inner>,
}

struct Inner {
    config: SmtpOutputConfig,
    from: Mailbox,
    transport: SmtpTransport,
    /// The server's URL without its login and password, for messages.
    shown_url: String,
}

/// `url` without the `user:password@` part (errors reach the repair queue and the audit log).
fn without_credentials(url: &str) -> String {
    match url.parse::<reqwest::Url>() {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            // Both calls only fail for URLs that cannot have credentials, which these have.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "the SMTP server".to_string(),
    }
}

impl SmtpOutput {
    /// Build from a validated configuration.
    pub fn new(config: SmtpOutputConfig) -> Result<Self, BuildError> {
        let fail = |message: String| BuildError { name: config.name.clone(), message };
        let from: Mailbox = config.from.parse().map_err(|e| fail(format!("from: {e}")))?;
        let mut builder = SmtpTransport::from_url(&config.url).map_err(|e| fail(format!("url: {e}")))?;
        builder = builder.timeout(Some(crate::config_seconds(config.timeout, 0.001)));
        let client_cert = match (&config.ssl_cert, &config.ssl_key) {
            (Some(cert), Some(key)) => {
                let read = |path: &str| std::fs::read(path).map_err(|e| fail(format!("reading {path}: {e}")));
                Some(
                    Identity::from_pem(&read(cert)?, &read(key)?)
                        .map_err(|e| fail(format!("client certificate: {e}")))?,
                )
            }
            _ => None,
        };
        let mode = tls_mode(&config.url);
        if client_cert.is_some() || (config.skip_verify_host && mode != "none") {
            let host = config
                .url
                .parse::<reqwest::Url>()
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .ok_or_else(|| fail(format!("url: no host in {}", without_credentials(&config.url))))?;
            let mut params = TlsParameters::builder(host).dangerous_accept_invalid_hostnames(config.skip_verify_host);
            if let Some(identity) = client_cert {
                params = params.identify_with(identity);
            }
            let params = params.build().map_err(|e| fail(format!("TLS parameters: {e}")))?;
            let tls = match mode {
                "wrapper" => Tls::Wrapper(params),
                "opportunistic" => Tls::Opportunistic(params),
                // A client certificate on a plain URL: TLS it is (STARTTLS, required).
                _ => Tls::Required(params),
            };
            builder = builder.tls(tls);
        }
        let shown_url = without_credentials(&config.url);
        Ok(Self {
            name: config.name.clone(),
            inner: Arc::new(Inner { from, transport: builder.build(), config, shown_url }),
        })
    }
}

/// The URL's TLS mode (lettre's reading of it: `smtps://`, `?tls=required`,
/// `?tls=opportunistic`, else none), kept when TLS parameters are set here.
fn tls_mode(url: &str) -> &'static str {
    if url.starts_with("smtps://") {
        "wrapper"
    } else if url.contains("tls=required") {
        "required"
    } else if url.contains("tls=opportunistic") {
        "opportunistic"
    } else {
        "none"
    }
}

/// Recipients from the object's `to` (an address or a list), else the output's.
fn recipients(object: &Value, config: &SmtpOutputConfig) -> Result<Vec<Mailbox>, SendError> {
    let named: Vec<&str> = match object.get("to") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => config.to.iter().map(String::as_str).collect(),
    };
    if named.is_empty() {
        return Err(SendError::Rejected("no recipient: the object has no `to` and the output none either".into()));
    }
    named
        .into_iter()
        .map(|to| {
            to.parse::<Mailbox>().map_err(|e| SendError::Rejected(format!("to: \"{to}\" is not a mail address: {e}")))
        })
        .collect()
}

fn message(object: &Value, inner: &Inner) -> Result<Message, SendError> {
    let subject = object.get("subject").and_then(Value::as_str).unwrap_or(&inner.config.subject);
    let body = match object.get("body") {
        Some(Value::String(text)) => text.clone(),
        _ => serde_json::to_string_pretty(object).map_err(|e| SendError::Rejected(format!("encoding JSON: {e}")))?,
    };
    let mut builder = Message::builder().from(inner.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
    for to in recipients(object, &inner.config)? {
        builder = builder.to(to);
    }
    builder.body(body).map_err(|e| SendError::Rejected(format!("building the mail: {e}")))
}

impl Output for SmtpOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, outgoing: &Outgoing) -> Result<(), SendError> {
        message(&outgoing.object, &self.inner).map(|_| ())
    }

    fn send(&self, outgoing: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let object = outgoing.object;
        let inner = self.inner.clone();
        Box::pin(async move {
            let mail = message(&object, &inner)?;
            let task = tokio::task::spawn_blocking(move || {
                inner.transport.send(&mail).map(|_| ()).map_err(|e| {
                    let text = format!("mailing through {} failed: {e}", inner.shown_url);
                    if e.is_permanent() {
                        SendError::Rejected(text)
                    } else {
                        SendError::Unavailable(text)
                    }
                })
            });
            task.await.map_err(|e| SendError::Unavailable(format!("the sending task failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{tls_mode, without_credentials};

    #[test]
    fn the_urls_tls_mode_is_kept() {
        assert_eq!(tls_mode("smtps://mail:465"), "wrapper");
        assert_eq!(tls_mode("smtp://mail:587?tls=required"), "required");
        assert_eq!(tls_mode("smtp://mail:25?tls=opportunistic"), "opportunistic");
        assert_eq!(tls_mode("smtp://mail:25"), "none");
    }

    #[test]
    fn messages_name_the_server_without_its_login() {
        assert_eq!(without_credentials("smtp://grid:s3cret@mail.example.com:587"), "smtp://mail.example.com:587");
        assert_eq!(without_credentials("smtps://mail.example.com"), "smtps://mail.example.com");
        assert!(!without_credentials("smtp://a:b@[::1").contains('b'), "unparsable: no text of it");
    }
}
