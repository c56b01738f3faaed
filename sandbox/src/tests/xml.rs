//! `xml::*` through real scripts, on trees shaped like the SOAP input's.

use serde_json::{json, Value};

use super::{fixture_with, run};
use crate::{Limits, ScriptErrorKind};

fn leaf(tag: &str, text: &str) -> Value {
    json!({"tag": tag, "attr": {}, "children": [text]})
}

/// `<Connect><message><header kind="a"><event_type>add</event_type></header>
///  <User id="7"><name>Ann</name><phone>1</phone><phone>2</phone>note</User></message></Connect>`
fn tree() -> Value {
    json!({"tag": "Connect", "ns": "urn:lib", "attr": {}, "children": [
        {"tag": "message", "attr": {}, "children": [
            {"tag": "header", "attr": {"kind": "a"}, "children": [leaf("event_type", "add")]},
            {"tag": "User", "attr": {"id": "7"}, "children": [
                leaf("name", "Ann"), leaf("phone", "1"), leaf("phone", "2"), "note"
            ]}
        ]}
    ]})
}

#[test]
fn get_by_path_walks_child_elements_by_tag() {
    let out = run(
        r#"#{
            found: xml::get_by_path(param, "message.header.event_type"),
            missing: xml::get_by_path(param, "message.nothing.event_type"),
            self_: xml::get_by_path(param, "").tag,
            from_unit: xml::get_by_path((), "a"),
        }"#,
        tree(),
    )
    .unwrap();
    assert_eq!(out["found"], leaf("event_type", "add"));
    assert_eq!(out["missing"], Value::Null);
    assert_eq!(out["self_"], "Connect");
    assert_eq!(out["from_unit"], Value::Null);
}

#[test]
fn text_concatenates_descendant_text() {
    let out = run(
        r#"[xml::text(xml::get_by_path(param, "message.header.event_type")),
            xml::text(xml::get_by_path(param, "message.User")),
            xml::text(xml::get_by_path(param, "message.none")),
            xml::text("plain")]"#,
        tree(),
    )
    .unwrap();
    assert_eq!(out, json!(["add", "Ann12note", null, "plain"]));
}

#[test]
fn children_child_and_attr() {
    let out = run(
        r#"let user = xml::get_by_path(param, "message.User");
           #{
             all: xml::children(user).map(|c| c.tag),
             phones: xml::children(user, "phone").map(|p| xml::text(p)),
             name: xml::text(xml::child(user, "name")),
             none: xml::child(user, "nope"),
             id: xml::attr(user, "id"),
             no_attr: xml::attr(user, "x"),
           }"#,
        tree(),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"all": ["name", "phone", "phone"], "phones": ["1", "2"], "name": "Ann", "none": null,
               "id": "7", "no_attr": null})
    );
}

#[test]
fn to_map_gives_plain_values() {
    let out = run(
        r#"#{user: xml::to_map(xml::get_by_path(param, "message.User")),
             header: xml::to_map(xml::get_by_path(param, "message.header")),
             leaf: xml::to_map(xml::get_by_path(param, "message.User.name")),
             empty: xml::to_map(#{tag: "e", attr: #{}, children: []})}"#,
        tree(),
    )
    .unwrap();
    assert_eq!(out["user"], json!({"@id": "7", "name": "Ann", "phone": ["1", "2"], "#text": "note"}));
    assert_eq!(out["header"], json!({"@kind": "a", "event_type": "add"}));
    assert_eq!(out["leaf"], "Ann");
    assert_eq!(out["empty"], "");
}

#[test]
fn non_nodes_are_errors_naming_the_function() {
    for (src, want) in [
        (r#"xml::text(42)"#, "xml::text: expected an XML node"),
        (r#"xml::to_map(#{a: 1})"#, "xml::to_map: expected an XML node"),
        (r#"xml::get_by_path(param, "a..b")"#, "empty step"),
    ] {
        let err = run(src, tree()).unwrap_err();
        assert!(matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.contains(want)), "{src}: {err}");
    }
}

#[test]
fn deep_trees_are_bounded() {
    let build = "let n = #{tag: \"x\", attr: #{}, children: [\"t\"]};
                 for i in 0..40 { n = #{tag: \"x\", attr: #{}, children: [n]}; }";
    let f = fixture_with(Limits { max_value_depth: 64, ..Limits::default() }, &[]);
    assert_eq!(f.run(&format!("{build} xml::text(n)"), json!(null)).unwrap(), "t");
    let f = fixture_with(Limits { max_value_depth: 30, ..Limits::default() }, &[]);
    for function in ["text", "to_map"] {
        let err = f.run(&format!("{build} xml::{function}(n)"), json!(null)).unwrap_err();
        assert!(err.to_string().contains(&format!("xml::{function}: the tree is nested deeper than 30")), "{err}");
    }
    let path = vec!["x"; 31].join(".");
    let err = f.run(&format!("xml::get_by_path(#{{tag: \"x\"}}, \"{path}\")"), json!(null)).unwrap_err();
    assert!(err.to_string().contains("deeper than 30"), "{err}");
}

#[test]
fn parse_reads_a_document_into_the_soap_inputs_tree() {
    let out = run(
        r#"let doc = xml::parse(param);
           #{tag: doc.tag, ns: doc.ns, user: xml::to_map(xml::child(doc, "User")), id: xml::attr(xml::child(doc, "User"), "id")}"#,
        json!(r#"<?xml version="1.0"?><Connect xmlns="urn:lib"><User id="7"><name>Ann &amp; Bo</name><phone>1</phone></User></Connect>"#),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"tag": "Connect", "ns": "urn:lib", "user": {"@id": "7", "name": "Ann & Bo", "phone": "1"}, "id": "7"})
    );
    for (text, want) in [
        ("<a><b></a>", "xml::parse: malformed XML"),
        ("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "xml::parse: a DOCTYPE"),
        ("<a>&nbsp;</a>", "undefined entity &nbsp;"),
        ("just text", "text outside the root element"),
        ("", "no root element"),
        ("<p:a/>", "namespace prefix \"p\" is not declared"),
    ] {
        let err = run("xml::parse(param)", json!(text)).unwrap_err();
        assert!(matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.contains(want)), "{text}: {err}");
    }
    let err = run("xml::parse(42)", json!(null)).unwrap_err();
    assert!(err.to_string().contains("xml::parse"), "{err}");
    let deep = format!("{}{}", "<x>".repeat(40), "</x>".repeat(40));
    let f = fixture_with(Limits { max_value_depth: 30, ..Limits::default() }, &[]);
    let err = f.run("xml::parse(param)", json!(deep)).unwrap_err();
    assert!(err.to_string().contains("XML nesting deeper than 30"), "{err}");
}

#[test]
fn element_and_to_string_build_and_write_xml() {
    let out = run(
        r#"let user = xml::element("User", #{id: 7}, [xml::element("name", #{}, ["Ann <&> \"Bo\""]), "note"]);
           let doc = xml::element("Connect", #{}, [user, xml::element("empty")]);
           doc.ns = "urn:lib";
           let text = xml::to_string(doc);
           #{text: text, again: xml::to_string(xml::parse(text))}"#,
        json!(null),
    )
    .unwrap();
    assert_eq!(
        out["text"],
        r#"<Connect xmlns="urn:lib"><User id="7"><name>Ann &lt;&amp;&gt; &quot;Bo&quot;</name>note</User><empty></empty></Connect>"#
    );
    assert_eq!(out["again"], out["text"], "what is written parses back to the same tree");
    for (src, want) in [
        (r#"xml::element("1bad")"#, "xml::element: \"1bad\" cannot be an XML element name"),
        (r#"xml::element("a", #{"x y": 1})"#, "\"x y\" cannot be an XML attribute name"),
        (r#"xml::element("a", #{}, [42])"#, "a child must be a node or a string, got i64"),
        (r#"xml::to_string(#{a: 1})"#, "xml::to_string: expected an XML node"),
        (r#"xml::to_string(#{tag: "a b", attr: #{}, children: []})"#, "\"a b\" cannot be an XML element name"),
        (r#"xml::to_string("text")"#, "xml::to_string: expected an XML node"),
    ] {
        let err = run(src, json!(null)).unwrap_err();
        assert!(matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.contains(want)), "{src}: {err}");
    }
    let build = "let n = xml::element(\"x\"); for i in 0..40 { n = xml::element(\"x\", #{}, [n]); }";
    let f = fixture_with(Limits { max_value_depth: 30, ..Limits::default() }, &[]);
    let err = f.run(&format!("{build} xml::to_string(n)"), json!(null)).unwrap_err();
    assert!(err.to_string().contains("xml::to_string"), "{err}");
}

#[test]
fn namespaces_are_declared_where_they_change() {
    let out = run(
        r#"let none = xml::element("plain"); none.ns = "";
           let other = xml::element("other"); other.ns = "urn:other";
           let root = xml::element("root", #{}, [xml::element("inherits"), none, other]);
           root.ns = "urn:root";
           xml::to_string(root)"#,
        json!(null),
    )
    .unwrap();
    assert_eq!(
        out,
        r#"<root xmlns="urn:root"><inherits></inherits><plain xmlns=""></plain><other xmlns="urn:other"></other></root>"#
    );
}

#[test]
fn a_parsed_document_writes_back_as_the_same_document() {
    // Unqualified children of a prefixed root (common in SOAP): still in no namespace once written.
    let doc = r#"<p:Req xmlns:p="urn:x" xml:lang="en"><item n="a&#10;b&#9;c">x&#13;y</item><p:q/></p:Req>"#;
    let out =
        run("let t = xml::parse(param); #{text: xml::to_string(t), item_ns: xml::child(t, \"item\").ns}", json!(doc))
            .unwrap();
    assert_eq!(out["item_ns"], "", "no namespace, said so");
    let text = out["text"].as_str().unwrap();
    assert_eq!(text, r#"<Req xmlns="urn:x" xml:lang="en"><item xmlns="" n="a&#10;b&#9;c">x&#13;y</item><q></q></Req>"#);
    let again = run("xml::to_string(xml::parse(param))", json!(text)).unwrap();
    assert_eq!(again, json!(text), "stable");
    for (src, want) in [
        (
            r#"xml::to_string(xml::parse("<a xmlns:xsi='urn:xsi' xsi:type='t'/>"))"#,
            "\"xsi:type\" cannot be written as an attribute",
        ),
        (r#"xml::to_string(xml::element("a", #{xmlns: "urn:y"}))"#, "\"xmlns\" cannot be written as an attribute"),
        (r#"xml::to_string(xml::element("a", #{}, ["bell\x07"]))"#, "U+0007 cannot be written in XML 1.0"),
    ] {
        let err = run(src, json!(null)).unwrap_err();
        assert!(err.to_string().contains(want), "{src}: {err}");
    }
    let many = format!("<a>{}</a>", "<b/>".repeat(200));
    let f = fixture_with(Limits { max_array_size: 100, ..Limits::default() }, &[]);
    let err = f.run("xml::parse(param)", json!(many)).unwrap_err();
    assert!(err.to_string().contains("more than 100 elements"), "{err}");
}
