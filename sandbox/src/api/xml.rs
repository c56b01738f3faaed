//! `xml::*`: reading the XML trees that SOAP inputs hand to scripts.
//!
//! A node is a map `#{tag: "User", ns: "urn:lib", attr: #{kind: "reader"}, children: [...]}`:
//! `tag` the local name, `ns` the namespace URI (absent when none), `attr` the attributes,
//! `children` the child nodes and texts (strings) in document order. A script may walk it
//! directly (`param.children[0].tag`) or with these functions:
//!
//! | function | returns |
//! | --- | --- |
//! | `get_by_path(node, "a.b.c")` | the first child `a` of `node`, its first child `b`, ...: the node, or `()` |
//! | `text(node)` | the text of the node and all its descendants, concatenated (`()` for `()`) |
//! | `children(node[, tag])` | the child elements (with that tag), an array of nodes |
//! | `child(node, tag)` | the first child element with that tag, or `()` |
//! | `attr(node, name)` | the attribute's value, or `()` |
//! | `to_map(node)` | a plain value: an element with only text is its text; otherwise a map with attributes under `"@name"`, child elements under their tag (an array when the tag repeats) and mixed text under `"#text"` |
//! | `parse(text)` | the root node of an XML document (read as SOAP bodies are: no DOCTYPE, only the predefined entities) |
//! | `element(tag[, attr[, children]])` | a new node `#{tag, attr, children}` (children: nodes and strings) |
//! | `to_string(node)` | the node as XML text (its `ns` as a default namespace declaration, values escaped) |
//!
//! Every function takes `()` where a node is expected and answers `()` (so an optional part of
//! a message chains: `xml::text(xml::get_by_path(n, "a.b"))`); any other non-node value is an
//! error. Nesting is bounded by `sandbox.max_value_depth`.

use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, Map, Module};

use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::error::api_error;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// Whether `d` is a node (a map with a string `tag`).
fn is_node(d: &Dynamic) -> bool {
    d.read_lock::<Map>().is_some_and(|m| m.get("tag").is_some_and(|t| t.is_string()))
}

/// Call `f` with the map of the node `d`: `Ok(None)` for `()`, an error for anything else.
fn with_node<T>(function: &str, d: &Dynamic, f: impl FnOnce(&Map) -> Result<T>) -> Result<Option<T>> {
    if d.is_unit() {
        return Ok(None);
    }
    match d.read_lock::<Map>() {
        Some(m) if m.get("tag").is_some_and(|t| t.is_string()) => f(&m).map(Some),
        _ => Err(api_error(format!(
            "xml::{function}: expected an XML node (a map with tag, attr and children), got {}",
            d.type_name()
        ))),
    }
}

fn has_tag(d: &Dynamic, tag: &str) -> bool {
    d.read_lock::<Map>()
        .is_some_and(|m| m.get("tag").and_then(|t| t.read_lock::<ImmutableString>()).is_some_and(|t| t.as_str() == tag))
}

/// Call `f` with the children of a node map (none when missing or not an array).
fn with_children<T>(m: &Map, f: impl FnOnce(&[Dynamic]) -> T) -> T {
    match m.get("children").and_then(|c| c.read_lock::<Array>()) {
        Some(children) => f(&children),
        None => f(&[]),
    }
}

fn too_deep(function: &str, max_depth: usize) -> Box<EvalAltResult> {
    api_error(format!("xml::{function}: the tree is nested deeper than {max_depth} elements"))
}

/// `node` followed along `steps` (tags of child elements); `()` when a step finds nothing.
fn walk(d: &Dynamic, steps: &[&str]) -> Dynamic {
    let Some((first, rest)) = steps.split_first() else {
        return d.clone();
    };
    let Some(m) = d.read_lock::<Map>() else {
        return Dynamic::UNIT;
    };
    with_children(&m, |children| match children.iter().find(|c| has_tag(c, first)) {
        Some(child) => walk(child, rest),
        None => Dynamic::UNIT,
    })
}

fn get_by_path(node: &Dynamic, path: &str, max_depth: usize) -> Result<Dynamic> {
    let steps: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('.').collect() };
    if steps.iter().any(|s| s.is_empty()) {
        return Err(api_error(format!("xml::get_by_path: empty step in path \"{path}\"")));
    }
    if steps.len() > max_depth {
        return Err(too_deep("get_by_path", max_depth));
    }
    Ok(with_node("get_by_path", node, |_| Ok(walk(node, &steps)))?.unwrap_or(Dynamic::UNIT))
}

/// Append the text of `d` (a string, or a node and its descendants) to `out`.
fn collect_text(d: &Dynamic, out: &mut String, depth: usize, max_depth: usize) -> Result<()> {
    if let Some(s) = d.read_lock::<ImmutableString>() {
        out.push_str(&s);
        return Ok(());
    }
    if depth >= max_depth {
        return Err(too_deep("text", max_depth));
    }
    if let Some(m) = d.read_lock::<Map>() {
        with_children(&m, |children| children.iter().try_for_each(|c| collect_text(c, out, depth + 1, max_depth)))?;
    }
    Ok(())
}

fn text(node: &Dynamic, max_depth: usize) -> Result<Dynamic> {
    if node.is_string() {
        return Ok(node.clone());
    }
    let text = with_node("text", node, |_| {
        let mut out = String::new();
        collect_text(node, &mut out, 0, max_depth)?;
        Ok(out)
    })?;
    Ok(text.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
}

fn children(node: &Dynamic, tag: Option<&str>) -> Result<Array> {
    let found = with_node("children", node, |m| {
        Ok(with_children(m, |children| {
            children.iter().filter(|c| is_node(c) && tag.is_none_or(|t| has_tag(c, t))).cloned().collect::<Array>()
        }))
    })?;
    Ok(found.unwrap_or_default())
}

fn child(node: &Dynamic, tag: &str) -> Result<Dynamic> {
    let found = with_node("child", node, |m| Ok(with_children(m, |c| c.iter().find(|c| has_tag(c, tag)).cloned())))?;
    Ok(found.flatten().unwrap_or(Dynamic::UNIT))
}

fn attr(node: &Dynamic, name: &str) -> Result<Dynamic> {
    let found = with_node("attr", node, |m| {
        Ok(m.get("attr").and_then(|a| a.read_lock::<Map>()).and_then(|a| a.get(name).cloned()))
    })?;
    Ok(found.flatten().unwrap_or(Dynamic::UNIT))
}

/// The plain value of a node (see the module doc).
fn plain(d: &Dynamic, depth: usize, max_depth: usize) -> Result<Dynamic> {
    if depth >= max_depth {
        return Err(too_deep("to_map", max_depth));
    }
    let Some(m) = d.read_lock::<Map>() else {
        return Ok(d.clone());
    };
    let mut out = Map::new();
    if let Some(attrs) = m.get("attr").and_then(|a| a.read_lock::<Map>()) {
        for (k, v) in attrs.iter() {
            out.insert(format!("@{k}").into(), v.clone());
        }
    }
    let mut text = String::new();
    let mut elements = 0usize;
    with_children(&m, |children| -> Result<()> {
        for child in children {
            if let Some(s) = child.read_lock::<ImmutableString>() {
                text.push_str(&s);
                continue;
            }
            let Some(tag) = child.read_lock::<Map>().and_then(|c| c.get("tag").map(|t| t.to_string())) else {
                continue;
            };
            elements += 1;
            let value = plain(child, depth + 1, max_depth)?;
            // Values of `plain` are never arrays, so an array here is a repeated tag.
            match out.get_mut(tag.as_str()) {
                Some(existing) if existing.is_array() => {
                    if let Some(mut list) = existing.write_lock::<Array>() {
                        list.push(value);
                    }
                }
                Some(existing) => {
                    let first = std::mem::take(existing);
                    *existing = Dynamic::from_array(vec![first, value]);
                }
                None => {
                    out.insert(tag.into(), value);
                }
            }
        }
        Ok(())
    })?;
    if elements == 0 && out.is_empty() {
        return Ok(Dynamic::from(text));
    }
    if !text.is_empty() {
        out.insert("#text".into(), Dynamic::from(text));
    }
    Ok(Dynamic::from_map(out))
}

fn to_map(node: &Dynamic, max_depth: usize) -> Result<Dynamic> {
    Ok(with_node("to_map", node, |_| plain(node, 0, max_depth))?.unwrap_or(Dynamic::UNIT))
}

/// The value nesting of a tree `max_depth` elements deep: each element is a map holding an array.
fn value_depth(max_depth: usize) -> usize {
    max_depth.saturating_mul(2).saturating_add(2)
}

/// `xml::parse(text)`: the root node of the document, at most `max_nodes` elements.
fn parse(text: &str, max_depth: usize, max_nodes: usize) -> Result<Dynamic> {
    let options = crate::xmltree::ParseOptions { max_depth, max_nodes: Some(max_nodes), explicit_no_namespace: true };
    let tree =
        crate::xmltree::parse_with(text.as_bytes(), &options).map_err(|e| api_error(format!("xml::parse: {e}")))?;
    // Elements are maps of two levels each (node, children).
    json_to_dynamic(&tree, value_depth(max_depth)).map_err(|e| api_error(format!("xml::parse: {e}")))
}

/// `xml::element(tag, attr, children)`: a new node.
fn element(tag: &str, attr: Map, children: Array) -> Result<Dynamic> {
    if !crate::xmltree::is_xml_name(tag) {
        return Err(api_error(format!("xml::element: \"{tag}\" cannot be an XML element name")));
    }
    for name in attr.keys() {
        if !crate::xmltree::is_xml_name(name) {
            return Err(api_error(format!("xml::element: \"{name}\" cannot be an XML attribute name")));
        }
    }
    if let Some(bad) = children.iter().find(|c| !(c.is_string() || is_node(c))) {
        return Err(api_error(format!("xml::element: a child must be a node or a string, got {}", bad.type_name())));
    }
    let mut node = Map::new();
    node.insert("tag".into(), Dynamic::from(ImmutableString::from(tag)));
    node.insert("attr".into(), Dynamic::from_map(attr));
    node.insert("children".into(), Dynamic::from_array(children));
    Ok(Dynamic::from_map(node))
}

/// `xml::to_string(node)`: the node as XML text.
fn to_string(node: &Dynamic, max_depth: usize) -> Result<ImmutableString> {
    let value = dynamic_to_json(node, value_depth(max_depth)).map_err(|e| api_error(format!("xml::to_string: {e}")))?;
    match &value {
        serde_json::Value::Object(map) if crate::xmltree::is_node(map) => crate::xmltree::write(map, max_depth)
            .map(ImmutableString::from)
            .map_err(|e| api_error(format!("xml::to_string: {e}"))),
        _ => Err(api_error(format!(
            "xml::to_string: expected an XML node (a map with tag, attr and children), got {}",
            node.type_name()
        ))),
    }
}

/// Build the `xml` module; trees deeper than `max_depth` elements are an error, and a document
/// of more than `max_nodes` elements.
pub(crate) fn module(max_depth: usize, max_nodes: usize) -> Module {
    let mut m = Module::new();
    m.set_native_fn("get_by_path", move |node: &mut Dynamic, path: ImmutableString| {
        get_by_path(node, &path, max_depth)
    });
    m.set_native_fn("text", move |node: &mut Dynamic| text(node, max_depth));
    m.set_native_fn("children", |node: &mut Dynamic| children(node, None));
    m.set_native_fn("children", |node: &mut Dynamic, tag: ImmutableString| children(node, Some(&tag)));
    m.set_native_fn("child", |node: &mut Dynamic, tag: ImmutableString| child(node, &tag));
    m.set_native_fn("attr", |node: &mut Dynamic, name: ImmutableString| attr(node, &name));
    m.set_native_fn("to_map", move |node: &mut Dynamic| to_map(node, max_depth));
    m.set_native_fn("parse", move |text: ImmutableString| parse(&text, max_depth, max_nodes));
    m.set_native_fn("element", |tag: ImmutableString| element(&tag, Map::new(), Array::new()));
    m.set_native_fn("element", |tag: ImmutableString, attr: Map| element(&tag, attr, Array::new()));
    m.set_native_fn("element", |tag: ImmutableString, attr: Map, children: Array| element(&tag, attr, children));
    m.set_native_fn("to_string", move |node: &mut Dynamic| to_string(node, max_depth));
    m
}
