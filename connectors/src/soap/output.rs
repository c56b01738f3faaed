//! The `soap` output: POST each object inside a SOAP envelope.

use super::config::{SoapOutputConfig, SoapOutputVersion};
use super::xml::{SOAP11_NS, SOAP12_NS};
use crate::http::client::{Poster, KEPT_LIMIT};
use crate::intake::BoxFuture;
use crate::registry::{BuildError, Outgoing, Output, SendError};
use ferrogrid_sandbox::xmltree;
use serde_json::Value;
use std::fmt::Write;

/// Deepest nesting written into an envelope.
const MAX_DEPTH: usize = 64;
/// Most elements of a peer's answer read (for its Fault).
const MAX_ANSWER_ELEMENTS: usize = 100_000;

/// Posts objects as SOAP requests.
pub struct SoapOutput {
    name: String,
    version: SoapOutputVersion,
    content_type: String,
    poster: Poster,
}

impl SoapOutput {
    /// Build from a validated configuration.
    pub fn new(config: SoapOutputConfig) -> Result<Self, BuildError> {
        let mut headers = config.headers.clone();
        let content_type = match (config.version, &config.soap_action) {
            (SoapOutputVersion::V11, action) => {
                headers.insert("SOAPAction".into(), format!("\"{}\"", action.as_deref().unwrap_or_default()));
                "text/xml; charset=utf-8".to_string()
            }
            (SoapOutputVersion::V12, None) => "application/soap+xml; charset=utf-8".to_string(),
            (SoapOutputVersion::V12, Some(action)) => {
                format!("application/soap+xml; charset=utf-8; action=\"{action}\"")
            }
        };
        let poster = Poster::new(&config.name, &config.url, &headers, &config.options)?;
        Ok(Self { name: config.name, version: config.version, content_type, poster })
    }
}

fn name_of(name: &str) -> Result<&str, SendError> {
    if xmltree::is_xml_name(name) {
        Ok(name)
    } else {
        Err(SendError::Rejected(format!("\"{name}\" cannot be an XML element name")))
    }
}

/// Write `value` as element(s) named `name`: an object's fields become child elements, an
/// array repeats the element, `null` is an empty element.
fn write_value(out: &mut String, name: &str, value: &Value, depth: usize) -> Result<(), SendError> {
    if depth > MAX_DEPTH {
        return Err(SendError::Rejected(format!("the object is nested deeper than {MAX_DEPTH} levels")));
    }
    let name = name_of(name)?;
    match value {
        Value::Array(items) => {
            for item in items {
                write_value(out, name, item, depth + 1)?;
            }
        }
        Value::Object(fields) => {
            let _ = write!(out, "<{name}>");
            for (field, v) in fields {
                write_value(out, field, v, depth + 1)?;
            }
            let _ = write!(out, "</{name}>");
        }
        Value::Null => {
            let _ = write!(out, "<{name}/>");
        }
        Value::String(text) => {
            let text = xmltree::escaped(text, false).map_err(|e| SendError::Rejected(format!("{name}: {e}")))?;
            let _ = write!(out, "<{name}>{text}</{name}>");
        }
        other => {
            let _ = write!(out, "<{name}>{other}</{name}>");
        }
    }
    Ok(())
}

/// The SOAP envelope carrying `object`.
pub fn envelope(version: SoapOutputVersion, object: &Value, routing_key: &str) -> Result<String, SendError> {
    let ns = match version {
        SoapOutputVersion::V11 => SOAP11_NS,
        SoapOutputVersion::V12 => SOAP12_NS,
    };
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{ns}\"><soap:Body>");
    match object {
        Value::Object(node) if xmltree::is_node(node) => {
            out.push_str(&xmltree::write(node, MAX_DEPTH).map_err(SendError::Rejected)?);
        }
        other => write_value(&mut out, routing_key, other, 0)?,
    }
    out.push_str("</soap:Body></soap:Envelope>\n");
    Ok(out)
}

/// Who a SOAP Fault blames, by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request (1.1 `Client`, 1.2 `Sender`, and `VersionMismatch`, `MustUnderstand`,
    /// `DataEncodingUnknown`): sending the same object again will not help.
    Request(String),
    /// The peer (1.1 `Server`, 1.2 `Receiver`, or a code that is none of the standard ones):
    /// a later attempt may succeed.
    Peer(String),
}

/// The text content of the child element `name` of an XML tree node.
fn child<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("children")?.as_array()?.iter().find(|c| c.get("tag").and_then(Value::as_str) == Some(name))
}

fn text(node: &Value) -> String {
    let children = node.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    children.iter().filter_map(Value::as_str).collect::<String>().trim().to_string()
}

/// The Fault in a SOAP answer, if its Body holds one: the answer is parsed (prefixes resolved,
/// so `<Fault xmlns="...">` and any prefix count) and classified by the Fault's code. An answer
/// that is not a SOAP envelope holds no Fault.
#[cfg(test)]
pub(crate) fn fault_in(answer: &[u8]) -> Option<Fault> {
    fault_of(&super::xml::parse_envelope(answer, MAX_DEPTH, MAX_ANSWER_ELEMENTS).ok()?, answer)
}

/// The Fault in a parsed SOAP answer (`answer` its bytes), if its Body holds one. A code is a
/// standard one only when its prefix names the envelope's namespace (an unprefixed code is taken
/// as meant so); `app:Client` of another namespace is the application's own, and tells nothing
/// about whose fault it is.
fn fault_of(envelope: &super::xml::Envelope, answer: &[u8]) -> Option<Fault> {
    let body = &envelope.body;
    let ns = body.get("ns").and_then(Value::as_str);
    if body.get("tag").and_then(Value::as_str) != Some("Fault") || ns != Some(envelope.version.namespace()) {
        return None;
    }
    // 1.1: <faultcode>soap:Client.Auth</faultcode>; 1.2: <Code><Value>env:Sender</Value>...</Code>.
    let code = match envelope.version {
        super::xml::SoapVersion::V11 => child(body, "faultcode").map(text),
        super::xml::SoapVersion::V12 => child(body, "Code").and_then(|c| child(c, "Value")).map(text),
    }
    .unwrap_or_default();
    if let Some((prefix, _)) = code.split_once(':') {
        let element = match envelope.version {
            super::xml::SoapVersion::V11 => "faultcode",
            super::xml::SoapVersion::V12 => "Value",
        };
        let ns = super::xml::prefix_namespace_at(answer, element, prefix);
        if ns.as_deref() != Some(envelope.version.namespace()) {
            return Some(Fault::Peer(code));
        }
    }
    let local = code.rsplit(':').next().unwrap_or_default();
    let first = local.split('.').next().unwrap_or_default();
    Some(match first {
        "Client" | "Sender" | "VersionMismatch" | "MustUnderstand" | "DataEncodingUnknown" => Fault::Request(code),
        _ => Fault::Peer(code),
    })
}

impl Output for SoapOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, message: &Outgoing) -> Result<(), SendError> {
        envelope(self.version, &message.object, &message.routing_key).map(|_| ())
    }

    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let body = match envelope(self.version, &message.object, &message.routing_key) {
            Ok(body) => body.into_bytes(),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let poster = self.poster.clone();
        let sending = poster.post_keeping(body, &self.content_type, KEPT_LIMIT);
        Box::pin(async move {
            let answer = sending.await?;
            let described = answer.describe(poster.url());
            let parsed = super::xml::parse_envelope(&answer.body, MAX_DEPTH, MAX_ANSWER_ELEMENTS);
            // A 2xx answer that cannot be read as an envelope (another encoding, cut at the
            // limit) but speaks of a Fault is not taken for a delivery: it is tried again, and
            // parked with the answer quoted if it stays so.
            let unreadable_fault = || parsed.is_err() && String::from_utf8_lossy(&answer.body).contains("Fault");
            match (parsed.as_ref().ok().and_then(|envelope| fault_of(envelope, &answer.body)), answer.status) {
                (None, 200..=299) if unreadable_fault() => Err(SendError::Unavailable(described)),
                (None, 200..=299) => Ok(()),
                (Some(Fault::Request(_)), _) => Err(SendError::Rejected(described)),
                (Some(Fault::Peer(_)), _) => Err(SendError::Unavailable(described)),
                (None, _) if answer.retryable() => Err(SendError::Unavailable(described)),
                (None, _) => Err(SendError::Rejected(described)),
            }
        })
    }
}
