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
