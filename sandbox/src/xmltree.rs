//! XML trees: the shape in which SOAP inputs hand XML to scripts, which scripts read with the
//! `xml` module, build as maps, parse from text (`xml::parse`) and write back (`xml::to_string`,
//! and the SOAP output).
//!
//! A document is read with quick-xml's `NsReader`: prefixes are resolved to namespace URIs. What
//! is refused: a DOCTYPE (so no DTD, no entity declarations, no external entities: billion laughs
//! and XXE cannot happen), any entity other than the five predefined ones and character
//! references, elements nested deeper than the limit, malformed XML, an unknown prefix, text or
//! elements after the root, text that is not UTF-8.
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

use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};
use serde_json::{Map, Value};
use std::fmt::Write;

/// Why a text is not an acceptable XML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
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
    #[error("a DOCTYPE (DTD, entity declarations) is not allowed")]
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
    #[error("no root element: the text holds no XML element")]
    NoRoot,
    /// More elements than the limit.
    #[error("the document holds more than {0} elements")]
    TooLarge(usize),
}

/// How [`parse_with`] reads a document.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Elements nested at most this deep.
    pub max_depth: usize,
    /// Elements at most (none: no limit but the size of the text).
    pub max_nodes: Option<usize>,
    /// Give an element without a namespace under one with a namespace `ns: ""`, so that what
    /// [`write`] makes of the tree (where a node without `ns` is in its parent's) is the same
    /// document.
    pub explicit_no_namespace: bool,
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

fn syntax(reader: &NsReader<&[u8]>, message: impl ToString) -> TreeError {
    TreeError::Syntax { at: reader.error_position().max(reader.buffer_position()), message: message.to_string() }
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
) -> Result<Open, TreeError> {
    let ns = ns.map_err(TreeError::UnknownPrefix)?;
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
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, TreeError> {
    parse_with(bytes, &ParseOptions { max_depth, max_nodes: None, explicit_no_namespace: false })
}

/// Parse a whole XML document into its root node, as `options` say.
pub fn parse_with(bytes: &[u8], options: &ParseOptions) -> Result<Value, TreeError> {
    let max_depth = options.max_depth;
    let mut nodes = 0usize;
    let text = std::str::from_utf8(bytes).map_err(|e| TreeError::NotUtf8(e.to_string()))?;
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
            Err(e) => return Err(TreeError::Syntax { at: reader.error_position(), message: e.to_string() }),
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(syntax(&reader, "an element after the root element"));
                }
                if stack.len() >= max_depth {
                    return Err(TreeError::TooDeep(max_depth));
                }
                let mut element = open(&reader, ns, start)?;
                nodes += 1;
                if let Some(parent) = stack.last_mut() {
                    parent.flush_text();
                    if options.explicit_no_namespace
                        && element.ns.is_none()
                        && parent.ns.as_deref().is_some_and(|ns| !ns.is_empty())
                    {
                        element.ns = Some(String::new());
                    }
                }
                if let Some(max) = options.max_nodes.filter(|max| nodes > *max) {
                    return Err(TreeError::TooLarge(max));
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
                    Some(predefined(&r).ok_or_else(|| TreeError::Entity(r.to_string()))?)
                };
                match (stack.last_mut(), ch) {
                    (Some(open), Some(ch)) => open.text.push(ch),
                    _ => return Err(syntax(&reader, "a reference outside the root element")),
                }
            }
            Event::DocType(_) => return Err(TreeError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax(&reader, format!("unexpected end of document: <{}> is not closed", open.tag)));
    }
    root.ok_or(TreeError::NoRoot)
}

/// Close `element`: it becomes a child of its parent, or the root.
fn close(stack: &mut [Open], root: &mut Option<Value>, element: Open) {
    let node = element.into_node();
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

/// Whether `name` can be an XML element or attribute name (a conservative subset: ASCII letters,
/// digits, `_`, `-`, `.`, not starting with a digit, `-` or `.`; no prefix, whose namespace the
/// tree could not declare).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `text` escaped for XML 1.0 (an attribute value's tab and line breaks too, which reading
/// would turn into spaces); a character XML 1.0 cannot hold is an error.
pub fn escaped(text: &str, attribute: bool) -> Result<String, String> {
    if let Some(bad) = text.chars().find(|c| matches!(*c as u32, 0..=8 | 0x0B | 0x0C | 0x0E..=0x1F | 0xFFFE | 0xFFFF)) {
        return Err(format!("the character U+{:04X} cannot be written in XML 1.0", bad as u32));
    }
    let text = escape(text);
    if !text.contains(['\r', '\t', '\n']) || (!attribute && !text.contains('\r')) {
        return Ok(text.into_owned());
    }
    Ok(text
        .chars()
        .map(|c| match c {
            '\r' => "&#13;".to_string(),
            '\t' if attribute => "&#9;".to_string(),
            '\n' if attribute => "&#10;".to_string(),
            other => other.to_string(),
        })
        .collect())
}

/// Whether `value` is a tree node: `{"tag", "attr", "children"}` (and maybe `"ns"`), nothing else.
pub fn is_node(value: &Map<String, Value>) -> bool {
    value.get("tag").is_some_and(Value::is_string)
        && value.get("children").is_none_or(Value::is_array)
        && value.get("attr").is_none_or(Value::is_object)
        && value.get("ns").is_none_or(Value::is_string)
        && value.keys().all(|k| matches!(k.as_str(), "tag" | "ns" | "attr" | "children"))
}

/// Write the node `node` as XML (at most `max_depth` elements deep): each `ns` as a default
/// namespace declaration where it changes (a node without `ns` is in its parent's; `""` is none), attribute and text values escaped, any other child (a number, a map
/// that is not a node) written as its JSON text.
pub fn write(node: &Map<String, Value>, max_depth: usize) -> Result<String, String> {
    let mut out = String::new();
    write_node(&mut out, node, "", 1, max_depth)?;
    Ok(out)
}

/// Write `node` where `scope` is the default namespace in force (`""`: none).
fn write_node(
    out: &mut String,
    node: &Map<String, Value>,
    scope: &str,
    depth: usize,
    max_depth: usize,
) -> Result<(), String> {
    if depth > max_depth {
        return Err(format!("the tree is nested deeper than {max_depth} elements"));
    }
    let tag = node.get("tag").and_then(Value::as_str).unwrap_or_default();
    if !is_xml_name(tag) {
        return Err(format!("\"{tag}\" cannot be an XML element name"));
    }
    let _ = write!(out, "<{tag}");
    // Declared where it changes: a node without `ns` is in its parent's namespace, and so is one
    // with the parent's; `ns: ""` is no namespace (`xmlns=""` under a parent with one).
    let ns = node.get("ns").and_then(Value::as_str).unwrap_or(scope);
    if ns != scope {
        let _ = write!(out, " xmlns=\"{}\"", escape(ns));
    }
    if let Some(Value::Object(attrs)) = node.get("attr") {
        for (name, value) in attrs {
            // `xml:` is the one prefix declared everywhere; `xmlns` is what `ns` says.
            let plain = name.strip_prefix("xml:").unwrap_or(name);
            if !is_xml_name(plain) || name == "xmlns" {
                return Err(format!(
                    "\"{name}\" cannot be written as an attribute (a prefix other than xml: needs a declaration the tree cannot hold; the namespace is `ns`)"
                ));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(out, " {name}=\"{}\"", escaped(&text, true)?);
        }
    }
    out.push('>');
    for child in node.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        match child {
            Value::Object(child) if is_node(child) => write_node(out, child, ns, depth + 1, max_depth)?,
            Value::String(text) => out.push_str(&escaped(text, false)?),
            other => out.push_str(&escaped(&other.to_string(), false)?),
        }
    }
    let _ = write!(out, "</{tag}>");
    Ok(())
}
