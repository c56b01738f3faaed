//! `POST /soap` as a SOAP client sees it: SOAP 1.1 and 1.2 envelopes with any prefixes are
//! stored with their element order, repeated elements and attributes; every malformed or hostile
//! message (DTD, entities, too deep, too large, wrong namespace, unknown operation) is refused
//! with a fault naming the problem and nothing is kept; `GET /soap?wsdl`; the token; a failing
//! handler parks the XML tree in the repair queue, where it can be edited and retried; an
//! acknowledged message survives SIGKILL.

use ferrogrid_tests::{raw_request, sample, soap_field, soap_outcome, wait_for_data, Resp, Server};
use serde_json::{json, Value};

const S11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const S12: &str = "http://www.w3.org/2003/05/soap-envelope";

const CONFIG: &str = r#"
types: {__file: model.avsc}
functions:
  store_item: {__file: store_item.rhai}
  broken: {__file: broken.rhai}
pipelines:
  store_item: [store_item]
connector:
  input:
    - name: soap_in
      type: soap
      wsdl: {__file: service.wsdl}
      max_body_size: 4096
      max_depth: 8
      max_elements: 40
      handlers:
        - {function: Connect, pipeline: store_item}
        - {function: Broken, pipeline: broken}
input_processor:
  storage:
    - {key: Item, type: Item}
"#;

const MODEL: &str = r#"[{"name": "Item", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
  "fields": [{"name": "id", "type": "long"}, {"name": "tree", "type": "string"}]}]"#;

/// Stores the whole tree as JSON text under the id in `<id>`.
const STORE_ITEM: &str = r#"
let id = parse_int(xml::text(xml::child(param, "id")));
#{obj: #{id: id, tree: json::encode(param)}, routing_key: "Item", priority: 1}
"#;

const BROKEN: &str = r#"throw `handler broken for ${xml::text(xml::child(param, "id"))}`;"#;

const WSDL: &str = "<definitions name=\"Items\" xmlns=\"http://schemas.xmlsoap.org/wsdl/\"/>\n";

fn start() -> Server {
    Server::start_with_config(
        CONFIG,
        &[("model.avsc", MODEL), ("store_item.rhai", STORE_ITEM), ("broken.rhai", BROKEN), ("service.wsdl", WSDL)],
    )
}

fn soap11(body: &str) -> String {
    format!(r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="{S11}"><soap:Body>{body}</soap:Body></soap:Envelope>"#)
}

/// The tree stored for item `id`.
fn stored_tree(server: &Server, id: i64) -> Value {
    let found = server.data("Item", &format!("id={id}"));
    assert_eq!(found.len(), 1, "item {id}: {found:?}");
    serde_json::from_str(found[0]["object"]["tree"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

fn leaf(tag: &str, ns: Option<&str>, text: &str) -> Value {
    let mut node = json!({"tag": tag, "attr": {}, "children": [text]});
    if let Some(ns) = ns {
        node["ns"] = json!(ns);
    }
    node
}

#[test]
fn soap11_and_soap12_envelopes_are_stored_with_order_repeats_and_attributes() {
    let server = start();
    let r = server.post_soap(
        "/soap?sync=true",
        &soap11(r#"<Connect><id>1</id><tag a="x" b="y">one</tag><other/><tag>two &amp; &#51;</tag></Connect>"#),
    );
    r.assert_status(200, "SOAP 1.1");
    assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
    assert!(r.body.contains(S11) && r.body.contains("<ConnectResponse>"), "{}", r.body);
    let outcome = soap_outcome(&r.body);
    assert_eq!((outcome["status"].as_str(), outcome["type"].as_str()), (Some("stored"), Some("Item")), "{outcome}");
    assert_eq!(
        stored_tree(&server, 1),
        json!({"tag": "Connect", "attr": {}, "children": [
            leaf("id", None, "1"),
            {"tag": "tag", "attr": {"a": "x", "b": "y"}, "children": ["one"]},
            {"tag": "other", "attr": {}, "children": []},
            leaf("tag", None, "two & 3"),
        ]})
    );

    // SOAP 1.2, another prefix for the envelope, a default namespace for the operation.
    let v12 = format!(
        r#"<e:Envelope xmlns:e="{S12}"><e:Header><trace>t</trace></e:Header><e:Body>
             <Connect xmlns="urn:items"><id>2</id><x:note xmlns:x="urn:notes">n</x:note></Connect>
           </e:Body></e:Envelope>"#
    );
    let r = server.post_soap("/soap?sync=true", &v12);
    r.assert_status(200, "SOAP 1.2");
    assert_eq!(r.header("content-type"), Some("application/soap+xml; charset=utf-8"));
    assert!(r.body.contains(S12), "{}", r.body);
    assert_eq!(
        stored_tree(&server, 2),
        json!({"tag": "Connect", "ns": "urn:items", "attr": {}, "children": [
            leaf("id", Some("urn:items"), "2"), leaf("note", Some("urn:notes"), "n")
        ]})
    );

    // A default-namespace Envelope, answered without waiting: an id, then stored.
    let plain = format!(r#"<Envelope xmlns="{S11}"><Body><Connect xmlns=""><id>3</id></Connect></Body></Envelope>"#);
    let r = server.post_soap("/soap", &plain);
    r.assert_status(200, "default namespace");
    assert!(soap_field(&r.body, "id").is_some_and(|id| id.len() > 10), "{}", r.body);
    wait_for_data(&server, "Item", "id=3");
}

fn assert_fault(r: &Resp, status: u16, texts: &[&str], what: &str) {
    r.assert_status(status, what);
    for text in texts {
        assert!(r.body.contains(text), "{what}: {text:?} not in {}", r.body);
    }
}

#[test]
fn bad_messages_are_refused_with_faults_naming_the_problem_and_nothing_is_kept() {
    let server = start();
    let deep = soap11(&format!("<Connect>{}{}</Connect>", "<a>".repeat(6), "</a>".repeat(6)));
    let v12_unknown = format!(r#"<env:Envelope xmlns:env="{S12}"><env:Body><Nope/></env:Body></env:Envelope>"#);
    let cases: Vec<(String, u16, Vec<&str>)> = vec![
        (soap11("<Connect><id>1</Connect>"), 400, vec!["soap:Client", "malformed XML"]),
        ("<soap:Envelope><soap:Body/></soap:Envelope>".into(), 400, vec!["prefix \"soap\" is not declared"]),
        ("<Order><id>1</id></Order>".into(), 400, vec!["the root element is &lt;Order&gt;, not a SOAP Envelope"]),
        (
            r#"<soap:Envelope xmlns:soap="http://example.com/not-soap"><soap:Body><Connect/></soap:Body></soap:Envelope>"#
                .into(),
            400,
            vec!["soap:VersionMismatch", "http://example.com/not-soap"],
        ),
        (soap11(""), 400, vec!["the SOAP Body is empty"]),
        (soap11("<Unknown><id>1</id></Unknown>"), 400, vec!["no SOAP handler for operation \"Unknown\""]),
        (v12_unknown, 400, vec!["<env:Value>env:Sender</env:Value>", "\"Nope\""]),
        (deep, 400, vec!["XML nesting deeper than 8 elements"]),
        (soap11("<Connect>&ent;</Connect>"), 400, vec!["undefined entity &amp;ent;"]),
        (
            soap11(&format!("<Connect><id>3</id>{}</Connect>", "<i/>".repeat(37))),
            413,
            vec!["soap:Client", "more than 40 elements"],
        ),
    ];
    for (xml, status, texts) in &cases {
        assert_fault(&server.post_soap("/soap", xml), *status, texts, xml);
    }
    let r = server.post_raw("/soap", "application/json", soap11("<Connect/>").as_bytes());
    assert_fault(&r, 415, &["text/xml"], "JSON content type");

    let auth = format!("Bearer {}", server.token());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "text/xml")];
    let big = soap11(&format!("<Connect><id>9</id><pad>{}</pad></Connect>", "x".repeat(5000)));
    let r = raw_request(&server.addr(), "POST", "/soap", &headers, big.into_bytes()).expect("an answer");
    assert_fault(&r, 413, &["larger than 4096 bytes"], "body over max_body_size");

    assert!(server.repair_entries("").is_empty(), "nothing refused was kept");
    assert!(server.data("Item", "").is_empty());
}

#[test]
fn billion_laughs_and_xxe_are_refused_without_expansion_or_leak() {
    let server = start();
    let laughs = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<soap:Envelope xmlns:soap="{S11}"><soap:Body><Connect><id>1</id><x>&lol3;</x></Connect></soap:Body></soap:Envelope>"#
    );
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="{S11}"><soap:Body><Connect><id>2</id><x>&e;</x></Connect></soap:Body></soap:Envelope>"#
    );
    for (xml, what) in [(laughs, "billion laughs"), (xxe, "XXE")] {
        let r = server.post_soap("/soap?sync=true", &xml);
        assert_fault(&r, 400, &["soap:Client", "DOCTYPE"], what);
        assert!(!r.body.contains("lollol") && !r.body.contains("root:"), "{what}: {}", r.body);
    }
    assert!(server.repair_entries("").is_empty());
    assert!(server.data("Item", "").is_empty());
}

#[test]
fn wsdl_and_the_token() {
    let server = start();
    let r = server.get("/soap?wsdl");
    r.assert_status(200, "GET /soap?wsdl");
    assert_eq!(r.body, WSDL);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/xml")), "{:?}", r.headers);

    let anonymous = server.unauthorized();
    anonymous.get("/soap?wsdl").assert_status(401, "WSDL without token");
    let r = anonymous.post_raw("/soap", "text/xml", soap11("<Connect><id>5</id></Connect>").as_bytes());
    r.assert_status(401, "POST without token");
    server.with_token("not-the-token").get("/soap?wsdl").assert_status(401, "wrong token");
    assert!(server.repair_entries("").is_empty());

    // Without a WSDL in the configuration: 404.
    let bare = Server::start_with_config(
        &CONFIG.replace("      wsdl: {__file: service.wsdl}\n", ""),
        &[("model.avsc", MODEL), ("store_item.rhai", STORE_ITEM), ("broken.rhai", BROKEN)],
    );
    bare.get("/soap?wsdl").assert_status(404, "no WSDL configured");
}

#[test]
fn a_failing_handler_parks_the_tree_which_can_be_edited_and_retried() {
    let server = start();
    let r = server.post_soap("/soap?sync=true", &soap11("<Broken><id>7</id></Broken>"));
    r.assert_status(200, "accepted, then failed");
    let outcome = soap_outcome(&r.body);
    assert_eq!(outcome["status"], "repair", "{}", r.body);
    let id = outcome["id"].as_str().unwrap_or_default().to_string();

    let entries = server.repair_entries("filter=handler%20broken%20for%207");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = server.get(&format!("/admin/api/repair/{id}")).json();
    assert_eq!(entry["source"], "soap", "{entry}");
    let tree = json!({"tag": "Broken", "attr": {}, "children": [leaf("id", None, "7")]});
    assert_eq!(entry["payload"], tree, "{entry}");

    // Edited to an operation the input does not have: it stays, saying so.
    let mut edited = tree.clone();
    edited["tag"] = json!("Missing");
    let r = server.post_json(&format!("/admin/api/repair/{id}/retry"), &json!({"payload": edited, "by": "test"}));
    r.assert_status(200, "retry with an unknown operation");
    let answer = r.json();
    assert_eq!(answer["status"], "repair", "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("no SOAP handler for operation \"Missing\" (handlers: Connect, Broken)"), "{answer}");

    // Edited to Connect: the Connect handler's pipeline stores it.
    edited["tag"] = json!("Connect");
    let r = server.post_json(&format!("/admin/api/repair/{id}/retry"), &json!({"payload": edited, "by": "test"}));
    r.assert_status(200, "retry as Connect");
    assert_eq!(r.json()["status"], "stored", "{}", r.body);
    assert_eq!(stored_tree(&server, 7), edited);
    assert!(server.repair_entries("").is_empty());
}

#[test]
fn an_acknowledged_message_survives_sigkill() {
    let mut server = Server::start(sample("soap"));
    let xml = soap11(
        r#"<Connect xmlns="urn:ferrogrid:library"><User><id>42</id><username>Kill Proof</username></User></Connect>"#,
    );
    server.post_soap("/soap", &xml).assert_status(200, "acknowledged");
    server.kill();
    server.restart();
    let users = wait_for_data(&server, "User", "id=42");
    assert_eq!(users[0]["object"]["username"], "Kill Proof");
}
