//! SOAP side of the harness: the content type of an envelope and the fields of an answer, read
//! as text (the tests check what a SOAP client would see, without an XML library of their own).

use serde_json::{json, Value};

/// SOAP 1.2's envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// `application/soap+xml` for an envelope in SOAP 1.2's namespace, else `text/xml`.
pub fn soap_content_type(xml: &str) -> &'static str {
    if xml.contains(SOAP12_NS) {
        "application/soap+xml; charset=utf-8"
    } else {
        "text/xml; charset=utf-8"
    }
}

/// The text of the first element `<name>...</name>` (no prefix, no attributes) in `xml`,
/// with the predefined entities decoded.
pub fn soap_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = &xml[start..end];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The outcome in a `?sync=true` SOAP answer as the JSON `/http?sync=true` answers: `id`,
/// `status`, `routing_key`, `type`, `version` (a number), `error`; null when absent.
pub fn soap_outcome(xml: &str) -> Value {
    let field = |name: &str| soap_field(xml, name).map_or(Value::Null, Value::String);
    let version = soap_field(xml, "version").and_then(|v| v.parse::<u64>().ok()).map_or(Value::Null, Value::from);
    json!({
        "id": field("id"),
        "status": field("status"),
        "routing_key": field("routing_key"),
        "type": field("type"),
        "version": version,
        "error": field("error"),
    })
}
