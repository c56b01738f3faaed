//! Parsing a SOAP envelope into the XML tree handed to pipelines.
//!
//! The document is read with quick-xml's `NsReader`: prefixes are resolved to namespace URIs, so
//! `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/">` is an Envelope and
//! `<soap:Envelope xmlns:soap="urn:other">` is not. What is refused, as the sender's fault:
//! a DOCTYPE (so no DTD, no entity declarations, no external entities: billion laughs and XXE
//! cannot happen), any entity other than the five predefined ones and character references,
//! elements nested deeper than the limit, malformed XML, an unknown prefix, text or elements
//! after the root, a body that is not UTF-8.
//!
//! A node of the tree is a JSON object (key order as shown):
//!
//! ```json
//! {"tag": "User", "ns": "urn:library", "attr": {"kind": "reader"}, "children": [node-or-string, ...]}
//! ```
//!
//! `tag` is the local name; `ns` the namespace URI (absent when the element has none); `attr`
//! the attributes by name as written (`xsi:type` keeps its prefix; `xmlns` declarations are not
//! attributes); `children` the child elements and texts in document order. Adjacent text, entity
//! and CDATA pieces form one string; whitespace-only text between elements is dropped; comments
//! and processing instructions are skipped.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};
use serde_json::{Map, Value};

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

/// A parsed envelope: its version and the first element of its Body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// SOAP version (from the Envelope's namespace).
    pub version: SoapVersion,
    /// The first element inside Body, as an XML tree node.
    pub body: Value,
}

/// An element being read: its node fields and the text not yet added to its children.
struct Open {
    tag: String,
    ns: Option<String>,
    attr: Map<String, Value>,
    children: Vec<Value>,
    text: String,
}

impl Open {
    /// Add the pending text to the children unless it is whitespace only.
    fn flush_text(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            if !text.chars().all(char::is_whitespace) {
                self.children.push(Value::String(text));
            }
        }
    }

    fn into_node(mut self) -> Value {
        self.flush_text();
        let mut node = Map::with_capacity(4);
        node.insert("tag".into(), Value::String(self.tag));
        if let Some(ns) = self.ns {
            node.insert("ns".into(), Value::String(ns));
        }
        node.insert("attr".into(), Value::Object(self.attr));
        node.insert("children".into(), Value::Array(self.children));
        Value::Object(node)
    }
}

fn syntax(reader: &NsReader<&[u8]>, message: impl ToString) -> XmlError {
    XmlError::Syntax { at: reader.error_position().max(reader.buffer_position()), message: message.to_string() }
}

/// A resolved namespace as owned data: `Ok(None)` unbound, `Err(prefix)` an undeclared prefix.
fn owned(ns: ResolveResult<'_>) -> Result<Option<String>, String> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_string())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(prefix),
    }
}

/// Open an element: its resolved name and its attributes.
fn open(
    reader: &NsReader<&[u8]>,
    ns: Result<Option<String>, String>,
    start: &BytesStart<'_>,
) -> Result<Open, XmlError> {
    let ns = ns.map_err(XmlError::UnknownPrefix)?;
    let tag = start.local_name().into_inner().to_string();
    let mut attr = Map::new();
    for a in start.attributes() {
        let a = a.map_err(|e| syntax(reader, e))?;
        if a.key.as_namespace_binding().is_some() {
            continue;
        }
        let value = a.normalized_value(XmlVersion::Implicit1_0).map_err(|e| syntax(reader, e))?;
        attr.insert(a.key.into_inner().to_string(), Value::String(value.into_owned()));
    }
    Ok(Open { tag, ns, attr, children: Vec::new(), text: String::new() })
}

/// The text of a predefined entity reference.
fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// Parse a whole XML document (at most `max_depth` elements deep) into its root node.
pub fn parse_document(bytes: &[u8], max_depth: usize) -> Result<Value, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError::NotUtf8(e.to_string()))?;
    // A byte order mark is not text outside the root.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            // Namespace URIs borrow the reader: owned before the reader is used again.
            Ok((ns, event)) => {
                let ns = if matches!(event, Event::Start(_) | Event::Empty(_)) { owned(ns) } else { Ok(None) };
                (ns, event)
            }
            Err(e) => return Err(XmlError::Syntax { at: reader.error_position(), message: e.to_string() }),
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(syntax(&reader, "an element after the root element"));
                }
                if stack.len() >= max_depth {
                    return Err(XmlError::TooDeep(max_depth));
                }
                let element = open(&reader, ns, start)?;
                if let Some(parent) = stack.last_mut() {
                    parent.flush_text();
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(syntax(&reader, "an end tag without a start tag"));
                };
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&t),
                    None if t.chars().all(char::is_whitespace) => {}
                    None => return Err(syntax(&reader, "text outside the root element")),
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(open) => open.text.push_str(&t.xml10_content()),
                None => return Err(syntax(&reader, "CDATA outside the root element")),
            },
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| syntax(&reader, e))?
                } else {
                    Some(predefined(&r).ok_or_else(|| XmlError::Entity(r.to_string()))?)
                };
                match (stack.last_mut(), ch) {
                    (Some(open), Some(ch)) => open.text.push(ch),
                    _ => return Err(syntax(&reader, "a reference outside the root element")),
                }
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax(&reader, format!("unexpected end of document: <{}> is not closed", open.tag)));
    }
    root.ok_or(XmlError::NoRoot)
}

/// Close `element`: it becomes a child of its parent, or the root.
fn close(stack: &mut [Open], root: &mut Option<Value>, element: Open) {
    let node = element.into_node();
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
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
                return owned(bound).ok().flatten();
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Parse a SOAP 1.1 or 1.2 envelope and take the first element of its Body.
pub fn parse_envelope(bytes: &[u8], max_depth: usize) -> Result<Envelope, XmlError> {
    let root = parse_document(bytes, max_depth)?;
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
