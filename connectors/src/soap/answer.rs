//! What `POST /soap` answers: envelopes of the request's SOAP version, SOAP Faults, and the
//! configured templates.

use super::xml::SoapVersion;
use crate::intake::Accepted;
use std::borrow::Cow;
use std::fmt::Write;

/// Whose fault a refusal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultCode {
    /// The message is wrong (1.1 `Client`, 1.2 `Sender`).
    Client,
    /// The service failed or is busy (1.1 `Server`, 1.2 `Receiver`).
    Server,
    /// The Envelope is not in a SOAP namespace.
    VersionMismatch,
}

/// Escape text for XML content (`<`, `>`, `&`).
fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::partial_escape(text)
}

fn envelope(version: SoapVersion, prefix: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{prefix}:Envelope xmlns:{prefix}=\"{ns}\"><{prefix}:Body>{body}</{prefix}:Body></{prefix}:Envelope>\n",
        ns = version.namespace()
    )
}

/// A SOAP Fault envelope of `version` with `message`.
pub(crate) fn fault(version: SoapVersion, code: FaultCode, message: &str) -> String {
    let message = escape(message);
    match version {
        SoapVersion::V11 => {
            let code = match code {
                FaultCode::Client => "soap:Client",
                FaultCode::Server => "soap:Server",
                FaultCode::VersionMismatch => "soap:VersionMismatch",
            };
            let body =
                format!("<soap:Fault><faultcode>{code}</faultcode><faultstring>{message}</faultstring></soap:Fault>");
            envelope(version, "soap", &body)
        }
        SoapVersion::V12 => {
            let code = match code {
                FaultCode::Client => "env:Sender",
                FaultCode::Server => "env:Receiver",
                FaultCode::VersionMismatch => "env:VersionMismatch",
            };
            let body = format!(
                "<env:Fault><env:Code><env:Value>{code}</env:Value></env:Code>\
                 <env:Reason><env:Text xml:lang=\"en\">{message}</env:Text></env:Reason></env:Fault>"
            );
            envelope(version, "env", &body)
        }
    }
}

/// The default answer to an accepted message of operation `function`:
/// `<{function}Response><id>...</id></{function}Response>`, with the outcome's `status`,
/// `routing_key`, `type`, `version` and `error` when it was waited for (`?sync=true`).
pub(crate) fn success(version: SoapVersion, function: &str, accepted: &Accepted) -> String {
    let mut inner = format!("<id>{}</id>", escape(&accepted.id));
    if let Some(outcome) = &accepted.outcome {
        let status = serde_json::to_value(outcome.status).ok();
        let fields = [
            ("status", status.as_ref().and_then(|s| s.as_str()).map(str::to_string)),
            ("routing_key", outcome.routing_key.clone()),
            ("type", outcome.type_name.clone()),
            ("version", outcome.version.map(|v| v.to_string())),
            ("error", outcome.error.clone()),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                let _ = write!(inner, "<{name}>{}</{name}>", escape(&value));
            }
        }
    }
    let prefix = match version {
        SoapVersion::V11 => "soap",
        SoapVersion::V12 => "env",
    };
    envelope(version, prefix, &format!("<{function}Response>{inner}</{function}Response>"))
}

/// The configured error template with `%s` replaced by `message`, escaped for content and
/// attribute values alike.
pub(crate) fn template(template: &str, message: &str) -> String {
    template.replace("%s", &quick_xml::escape::escape(message))
}
