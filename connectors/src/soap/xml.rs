//! Parsing a SOAP envelope into the XML tree handed to pipelines.
//!
//! The document is read as an XML tree ([`ferrogrid_sandbox::xmltree`], which says what is
//! refused and the shape of a node); its root must be a SOAP 1.1 or 1.2 Envelope, whose Body's
//! first element is what the pipeline gets.

use ferrogrid_sandbox::xmltree::{self, TreeError};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde_json::Value;

/// Namespace of SOAP 1.1 envelopes.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace of SOAP 1.2 envelopes.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The SOAP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    /// SOAP 1.1 (`text/xml`).
    V11,
    /// SOAP 1.2 (`application/soap+xml`).
    V12,
}

impl SoapVersion {
    /// The envelope namespace of this version.
    pub fn namespace(self) -> &'static str {
        match self {
            SoapVersion::V11 => SOAP11_NS,
            SoapVersion::V12 => SOAP12_NS,
        }
    }

    /// The content type of messages of this version.
    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// Why a body is not an acceptable SOAP envelope. Every case is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The bytes are not UTF-8.
    #[error("the body is not UTF-8 text: {0}")]
    NotUtf8(String),
    /// Not well-formed XML.
    #[error("malformed XML at byte {at}: {message}")]
    Syntax {
        /// Byte offset of the problem.
        at: u64,
        /// The parser's message.
        message: String,
    },
    /// A document type declaration.
    #[error("a DOCTYPE (DTD, entity declarations) is not allowed in a SOAP message")]
    Doctype,
    /// An entity other than the predefined ones.
    #[error("undefined entity &{0}; (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)")]
    Entity(String),
    /// Elements nested deeper than the limit.
    #[error("XML nesting deeper than {0} elements")]
    TooDeep(usize),
    /// More elements than the limit.
    #[error("the document holds more than {0} elements")]
    TooLarge(usize),
    /// A prefix without a namespace declaration.
    #[error("namespace prefix \"{0}\" is not declared")]
    UnknownPrefix(String),
    /// No element at all.
    #[error("no root element: the body holds no XML element")]
    NoRoot,
    /// The root is not a SOAP Envelope.
    #[error("the root element is <{0}>, not a SOAP Envelope")]
    NotEnvelope(String),
    /// An Envelope in another namespace than SOAP 1.1's or 1.2's.
    #[error("the Envelope namespace \"{0}\" is neither SOAP 1.1 ({SOAP11_NS}) nor SOAP 1.2 ({SOAP12_NS})")]
    VersionMismatch(String),
    /// The Envelope holds no Body.
    #[error("the SOAP Envelope has no Body")]
    NoBody,
    /// The Body holds no element.
    #[error("the SOAP Body is empty: it must hold the operation element")]
    EmptyBody,
}

impl From<TreeError> for XmlError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::NotUtf8(e) => XmlError::NotUtf8(e),
            TreeError::Syntax { at, message } => XmlError::Syntax { at, message },
            TreeError::Doctype => XmlError::Doctype,
            TreeError::Entity(name) => XmlError::Entity(name),
            TreeError::TooDeep(depth) => XmlError::TooDeep(depth),
            TreeError::UnknownPrefix(prefix) => XmlError::UnknownPrefix(prefix),
            TreeError::NoRoot => XmlError::NoRoot,
            TreeError::TooLarge(n) => XmlError::TooLarge(n),
        }
    }
}

/// Parse a whole XML document (at most `max_depth` elements deep, `max_elements` elements) into
/// its root node.
pub fn parse_document(bytes: &[u8], max_depth: usize, max_elements: usize) -> Result<Value, XmlError> {
    let options = xmltree::ParseOptions { max_depth, max_nodes: Some(max_elements), explicit_no_namespace: false };
    Ok(xmltree::parse_with(bytes, &options)?)
}

/// A parsed envelope: its version and the first element of its Body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// SOAP version (from the Envelope's namespace).
    pub version: SoapVersion,
    /// The first element inside Body, as an XML tree node.
    pub body: Value,
}

/// The child elements of a node (texts skipped).
fn elements(node: &Value) -> impl Iterator<Item = &Value> {
    node.get("children").and_then(Value::as_array).into_iter().flatten().filter(|c| c.is_object())
}

fn is(node: &Value, tag: &str, ns: &str) -> bool {
    node.get("tag").and_then(Value::as_str) == Some(tag) && node.get("ns").and_then(Value::as_str) == Some(ns)
}

/// The namespace `prefix` is bound to where the first element named `local` (local name) starts
/// in `bytes`: what a QName in that element's text (a SOAP Fault's code, `app:Busy`) means.
/// `None` when there is no such element or the prefix is not bound there.
pub fn prefix_namespace_at(bytes: &[u8], local: &str, prefix: &str) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = NsReader::from_str(text.strip_prefix('\u{feff}').unwrap_or(text));
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) | Event::Empty(start) if start.local_name().into_inner() == local => {
                let qname = format!("{prefix}:x");
                let (bound, _) = reader.resolver().resolve_element(quick_xml::name::QName(&qname));
                return match bound {
                    ResolveResult::Bound(ns) => Some(ns.into_inner().to_string()),
                    _ => None,
                };
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Parse a SOAP 1.1 or 1.2 envelope and take the first element of its Body.
pub fn parse_envelope(bytes: &[u8], max_depth: usize, max_elements: usize) -> Result<Envelope, XmlError> {
    let root = parse_document(bytes, max_depth, max_elements)?;
    let tag = root.get("tag").and_then(Value::as_str).unwrap_or_default();
    let ns = root.get("ns").and_then(Value::as_str).unwrap_or_default();
    if tag != "Envelope" {
        return Err(XmlError::NotEnvelope(tag.to_string()));
    }
    let version = match ns {
        SOAP11_NS => SoapVersion::V11,
        SOAP12_NS => SoapVersion::V12,
        other => return Err(XmlError::VersionMismatch(other.to_string())),
    };
    let body = elements(&root).find(|c| is(c, "Body", ns)).ok_or(XmlError::NoBody)?;
    let first = elements(body).next().cloned().ok_or(XmlError::EmptyBody)?;
    Ok(Envelope { version, body: first })
}
