//! Tests of the envelope parser and of the SOAP input against an in-memory intake.

use super::xml::{parse_envelope, SoapVersion, XmlError};
use super::*;
use crate::intake::Recorder;
use crate::Input;
use actix_web::{test as web_test, App};
use serde_json::{json, Value};
use std::sync::Arc;

const S11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const S12: &str = "http://www.w3.org/2003/05/soap-envelope";

fn envelope11(body: &str) -> String {
    format!(r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="{S11}"><soap:Body>{body}</soap:Body></soap:Envelope>"#)
}

#[test]
fn parses_a_soap11_body_into_the_tree() {
    let xml = envelope11(
        r#"
        <Connect xmlns="urn:lib">
          <User kind="reader" xsi:type="t" xmlns:xsi="urn:xsi"><id>1</id><phone>a</phone><phone>b</phone></User>
          <note>x &amp; y &#65;&#x42; <![CDATA[<raw>]]></note>
          <empty/>
        </Connect>"#,
    );
    let env = parse_envelope(xml.as_bytes(), 64, 1000).unwrap();
    assert_eq!(env.version, SoapVersion::V11);
    let leaf = |tag: &str, text: &str| json!({"tag": tag, "ns": "urn:lib", "attr": {}, "children": [text]});
    assert_eq!(
        env.body,
        json!({"tag": "Connect", "ns": "urn:lib", "attr": {}, "children": [
            {"tag": "User", "ns": "urn:lib", "attr": {"kind": "reader", "xsi:type": "t"}, "children": [
                leaf("id", "1"), leaf("phone", "a"), leaf("phone", "b")
            ]},
            leaf("note", "x & y AB <raw>"),
            {"tag": "empty", "ns": "urn:lib", "attr": {}, "children": []}
        ]})
    );
}

#[test]
fn prefixes_are_resolved_not_matched() {
    let xml = format!(r#"<e:Envelope xmlns:e="{S12}"><e:Header><h/></e:Header><e:Body><Op/></e:Body></e:Envelope>"#);
    let env = parse_envelope(xml.as_bytes(), 64, 1000).unwrap();
    assert_eq!(env.version, SoapVersion::V12);
    assert_eq!(env.body, json!({"tag": "Op", "attr": {}, "children": []}));
    let default_ns = format!(r#"<Envelope xmlns="{S11}"><Body><Op xmlns=""/></Body></Envelope>"#);
    assert_eq!(parse_envelope(default_ns.as_bytes(), 64, 1000).unwrap().body["tag"], "Op");
    let wrong = r#"<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body><Op/></soap:Body></soap:Envelope>"#;
    assert_eq!(parse_envelope(wrong.as_bytes(), 64, 1000), Err(XmlError::VersionMismatch("urn:not-soap".into())));
    let body_elsewhere = format!(r#"<s:Envelope xmlns:s="{S11}"><Body><Op/></Body></s:Envelope>"#);
    assert_eq!(parse_envelope(body_elsewhere.as_bytes(), 64, 1000), Err(XmlError::NoBody));
}

#[test]
fn refuses_what_is_not_an_envelope() {
    let parse = |xml: &str| parse_envelope(xml.as_bytes(), 64, 1000);
    for malformed in ["<a><b></a>", "<a>", "</a>", "<a x='1' x='2'/>"] {
        assert!(matches!(parse(malformed), Err(XmlError::Syntax { .. })), "{malformed}: {:?}", parse(malformed));
    }
    assert_eq!(parse("<Envelope/>"), Err(XmlError::VersionMismatch(String::new())));
    assert_eq!(parse("<x:Op xmlns:x='urn:x'/>"), Err(XmlError::NotEnvelope("Op".into())));
    assert_eq!(parse(""), Err(XmlError::NoRoot));
    assert_eq!(parse(&envelope11("")), Err(XmlError::EmptyBody));
    assert_eq!(parse(&envelope11("  text only  ")), Err(XmlError::EmptyBody));
    assert_eq!(parse(&envelope11("<p:Op/>")), Err(XmlError::UnknownPrefix("p".into())));
    assert_eq!(parse(&envelope11("<Op>&nbsp;</Op>")), Err(XmlError::Entity("nbsp".into())));
    assert!(parse(&format!("{}<x/>", envelope11("<Op/>"))).unwrap_err().to_string().contains("after the root"));
    assert!(parse(&format!("{}tail", envelope11("<Op/>"))).unwrap_err().to_string().contains("text outside"));
    assert!(matches!(parse_envelope(b"\xff<a/>", 64, 1000), Err(XmlError::NotUtf8(_))));
    assert!(parse(&format!("\u{feff}{}", envelope11("<Op/>"))).is_ok(), "a byte order mark is fine");
}

#[test]
fn doctype_entities_and_depth_are_refused() {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
        <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Op>&lol2;</Op></soap:Body></soap:Envelope>"#;
    assert_eq!(parse_envelope(laughs.as_bytes(), 64, 1000), Err(XmlError::Doctype));
    let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
    assert_eq!(parse_envelope(xxe.as_bytes(), 64, 1000), Err(XmlError::Doctype));
    let deep = |n: usize| envelope11(&format!("{}{}", "<a>".repeat(n), "</a>".repeat(n)));
    // Envelope and Body are two levels.
    assert!(parse_envelope(deep(8).as_bytes(), 10, 1000).is_ok());
    assert_eq!(parse_envelope(deep(9).as_bytes(), 10, 1000), Err(XmlError::TooDeep(10)));
    let deep_empty = envelope11(&format!("{}<b/>{}", "<a>".repeat(8), "</a>".repeat(8)));
    assert_eq!(parse_envelope(deep_empty.as_bytes(), 10, 1000), Err(XmlError::TooDeep(10)));
}

#[test]
fn element_count_is_limited() {
    // Envelope, Body, the operation: three elements, then the items.
    let items = |n: usize| envelope11(&format!("<Op>{}</Op>", "<i/>".repeat(n)));
    assert!(parse_envelope(items(7).as_bytes(), 64, 10).is_ok());
    assert_eq!(parse_envelope(items(8).as_bytes(), 64, 10), Err(XmlError::TooLarge(10)));
}

#[test]
fn the_handler_follows_the_tag_of_the_payload() {
    let config = config(json!({}));
    assert_eq!(config.pipeline_for(&json!({"tag": "Connect"})), Ok("connect_pipeline"));
    let err = config.pipeline_for(&json!({"tag": "Other"})).unwrap_err();
    assert_eq!(err.to_string(), "no SOAP handler for operation \"Other\" (handlers: Connect, Ping)");
    // Through the registry: SOAP inputs choose by the payload, HTTP inputs have one pipeline.
    let soap: crate::InputConfig = serde_json::from_value(json!({"type": "soap", "name": "s",
        "handlers": [{"function": "Ping", "pipeline": "ping"}]}))
    .unwrap();
    assert_eq!(soap.pipeline_for(&json!({"tag": "Ping"})), Ok(Some("ping")));
    assert_eq!(soap.pipeline_for(&json!({"not": "a tree"})).unwrap_err().tag, "");
    let http: crate::InputConfig = serde_json::from_value(json!({"type": "http", "name": "h"})).unwrap();
    assert_eq!(http.pipeline_for(&json!({"tag": "Ping"})), Ok(None));
}

fn config(extra: Value) -> SoapInputConfig {
    let mut base = json!({"name": "soap", "max_body_size": 2048, "wsdl": "<definitions/>", "handlers": [
        {"function": "Connect", "pipeline": "connect_pipeline"}, {"function": "Ping", "pipeline": "ping"}]});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(base).unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

async fn call(intake: Arc<Recorder>, config: SoapInputConfig, req: web_test::TestRequest) -> Answer {
    let input = SoapInput::new(config, intake);
    let app = web_test::init_service(App::new().configure(|c| input.routes(c))).await;
    let resp = web_test::call_service(&app, req.to_request()).await;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, content_type, retry_after) =
        (resp.status().as_u16(), header("content-type").unwrap_or_default(), header("retry-after"));
    let body = String::from_utf8(web_test::read_body(resp).await.to_vec()).unwrap();
    Answer { status, content_type, retry_after, body }
}

async fn post(intake: Arc<Recorder>, config: SoapInputConfig, ct: &str, body: &str, uri: &str) -> Answer {
    let req = web_test::TestRequest::post().uri(uri).insert_header(("content-type", ct)).set_payload(body.to_string());
    call(intake, config, req).await
}

#[actix_rt::test]
async fn accepts_soap11_and_answers_an_envelope_with_the_id() {
    let intake = Arc::new(Recorder::default());
    let xml = envelope11("<Connect><User id='1'/></Connect>");
    let a = post(intake.clone(), config(json!({})), "text/xml; charset=utf-8", &xml, "/soap").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.content_type, "text/xml; charset=utf-8");
    assert!(a.body.contains(S11) && a.body.contains("<ConnectResponse><id>id-1</id></ConnectResponse>"), "{}", a.body);
    let got = intake.got.lock().unwrap();
    assert_eq!((got[0].input.as_str(), got[0].source), ("soap", "soap"));
    assert_eq!(got[0].payload["children"][0]["attr"], json!({"id": "1"}));
}

#[actix_rt::test]
async fn soap12_is_answered_in_soap12_and_sync_reports_the_outcome() {
    let intake = Arc::new(Recorder::default());
    let xml = format!(r#"<env:Envelope xmlns:env="{S12}"><env:Body><Ping/></env:Body></env:Envelope>"#);
    let a = post(intake, config(json!({})), "application/soap+xml", &xml, "/soap?sync=true").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.content_type, "application/soap+xml; charset=utf-8");
    assert!(a.body.contains(S12), "{}", a.body);
    assert!(a.body.contains("<status>stored</status><routing_key>User</routing_key><type>User</type>"), "{}", a.body);
}

#[actix_rt::test]
async fn templates_replace_the_default_answers() {
    let templates = json!({"success_response_body": "<ok/>", "error_response_body": "<err>%s</err>"});
    let intake = Arc::new(Recorder::default());
    let a = post(intake.clone(), config(templates.clone()), "text/xml", &envelope11("<Connect/>"), "/soap").await;
    assert_eq!((a.status, a.body.as_str()), (200, "<ok/>"));
    let a = post(intake, config(templates), "text/xml", &envelope11("<Op>&bad;</Op>"), "/soap").await;
    assert_eq!(a.status, 400);
    assert!(a.body.starts_with("<err>undefined entity &amp;bad;"), "{}", a.body);
}

#[actix_rt::test]
async fn refusals_are_faults_naming_the_problem() {
    let too_big = envelope11(&format!("<Connect>{}</Connect>", "x".repeat(3000)));
    let v12 = format!(r#"<env:Envelope xmlns:env="{S12}"><env:Body><Nope/></env:Body></env:Envelope>"#);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("application/json", envelope11("<Connect/>"), 415, "<faultcode>soap:Client</faultcode>"),
        ("text/xml", "<a><b></a>".into(), 400, "malformed XML"),
        ("text/xml", "<Op/>".into(), 400, "not a SOAP Envelope"),
        ("text/xml", envelope11(""), 400, "SOAP Body is empty"),
        ("text/xml", envelope11("<Nope/>"), 400, "no SOAP handler for operation \"Nope\""),
        ("application/soap+xml", v12, 400, "<env:Value>env:Sender</env:Value>"),
        ("text/xml", "<s:Envelope xmlns:s='urn:x'/>".into(), 400, "soap:VersionMismatch"),
        ("text/xml", too_big, 413, "larger than 2048 bytes"),
    ];
    for (ct, body, want, text) in cases {
        let intake = Arc::new(Recorder::default());
        let a = post(intake.clone(), config(json!({})), ct, &body, "/soap").await;
        assert_eq!(a.status, want, "{body}: {}", a.body);
        assert!(a.body.contains(text), "{body}: {}", a.body);
        assert!(intake.got.lock().unwrap().is_empty());
    }
}

#[actix_rt::test]
async fn busy_engine_answers_503_with_a_server_fault() {
    let intake = Arc::new(Recorder { busy: true, ..Default::default() });
    let a = post(intake, config(json!({})), "text/xml", &envelope11("<Connect/>"), "/soap").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert!(a.body.contains("<faultcode>soap:Server</faultcode>"), "{}", a.body);
}

#[actix_rt::test]
async fn get_wsdl_answers_the_configured_text() {
    let intake = Arc::new(Recorder::default());
    let a = call(intake.clone(), config(json!({})), web_test::TestRequest::get().uri("/soap?wsdl")).await;
    assert_eq!((a.status, a.body.as_str()), (200, "<definitions/>"));
    assert!(a.content_type.starts_with("text/xml"));
    let none = config(json!({"wsdl": null}));
    assert_eq!(call(intake, none, web_test::TestRequest::get().uri("/soap?WSDL")).await.status, 404);
}

mod output {
    use crate::soap::xml::parse_envelope;
    use crate::soap::{envelope, SoapOutputVersion};
    use serde_json::json;

    #[test]
    fn objects_become_elements_named_after_the_routing_key_and_their_fields() {
        let object = json!({"id": 7, "name": "A & B", "tags": ["x", "y"], "note": null, "inner": {"ok": true}});
        let xml = envelope(SoapOutputVersion::V11, &object, "User").unwrap();
        assert!(xml.contains(
            "<soap:Body><User><id>7</id><name>A &amp; B</name><tags>x</tags><tags>y</tags><note/><inner><ok>true</ok></inner></User></soap:Body>"
        ), "{xml}");
        // What the output writes, the SOAP input reads back.
        let parsed = parse_envelope(xml.as_bytes(), 64, 1000).unwrap();
        assert_eq!(parsed.body["tag"], "User");
    }

    #[test]
    fn an_xml_tree_is_written_back_as_xml_in_the_chosen_version() {
        let tree = json!({"tag": "Connect", "ns": "urn:lib", "attr": {"v": "1"},
            "children": [{"tag": "user", "attr": {}, "children": ["Kim <3"]}]});
        let xml = envelope(SoapOutputVersion::V12, &tree, "ignored").unwrap();
        assert!(xml.contains("http://www.w3.org/2003/05/soap-envelope"), "{xml}");
        assert!(xml.contains("<Connect xmlns=\"urn:lib\" v=\"1\"><user>Kim &lt;3</user></Connect>"), "{xml}");
    }

    #[test]
    fn names_that_cannot_be_elements_are_refused() {
        let e = envelope(SoapOutputVersion::V11, &json!({"a b": 1}), "User").unwrap_err();
        assert!(e.to_string().contains("\"a b\" cannot be an XML element name"), "{e}");
        assert!(envelope(SoapOutputVersion::V11, &json!({}), "1st").is_err());
    }

    #[test]
    fn text_xml_cannot_hold_is_refused_and_line_breaks_survive() {
        let e = envelope(SoapOutputVersion::V11, &json!({"note": "a\u{1}b"}), "User").unwrap_err();
        assert!(e.to_string().contains("note: the character U+0001 cannot be written in XML 1.0"), "{e}");
        let xml = envelope(SoapOutputVersion::V11, &json!({"note": "a\r\nb & <c>"}), "User").unwrap();
        assert!(xml.contains("<note>a&#13;\nb &amp; &lt;c&gt;</note>"), "{xml}");
    }

    use crate::soap::output::{fault_in, Fault};
    use crate::soap::{SoapOutput, SoapOutputConfig};
    use crate::{Output, SendError};

    const S11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    const S12: &str = "http://www.w3.org/2003/05/soap-envelope";

    fn fault11(prefix: &str, code: &str) -> String {
        format!(
            r#"<{prefix}:Envelope xmlns:{prefix}="{S11}"><{prefix}:Body><{prefix}:Fault><faultcode>{prefix}:{code}</faultcode><faultstring>no</faultstring></{prefix}:Fault></{prefix}:Body></{prefix}:Envelope>"#
        )
    }

    fn fault12(code: &str) -> String {
        format!(
            r#"<env:Envelope xmlns:env="{S12}"><env:Body><env:Fault><env:Code><env:Value>env:{code}</env:Value></env:Code><env:Reason><env:Text xml:lang="en">no</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#
        )
    }

    #[test]
    fn faults_are_classified_by_their_code() {
        assert_eq!(fault_in(fault11("soap", "Client").as_bytes()), Some(Fault::Request("soap:Client".into())));
        assert_eq!(fault_in(fault11("s", "Client.Auth").as_bytes()), Some(Fault::Request("s:Client.Auth".into())));
        assert_eq!(fault_in(fault11("soap", "Server").as_bytes()), Some(Fault::Peer("soap:Server".into())));
        assert_eq!(
            fault_in(fault11("soap", "MustUnderstand").as_bytes()),
            Some(Fault::Request("soap:MustUnderstand".into()))
        );
        assert_eq!(fault_in(fault12("Sender").as_bytes()), Some(Fault::Request("env:Sender".into())));
        assert_eq!(fault_in(fault12("Receiver").as_bytes()), Some(Fault::Peer("env:Receiver".into())));
        // A default namespace instead of a prefix is the same Fault.
        let plain = format!(
            r#"<Envelope xmlns="{S11}"><Body><Fault xmlns="{S11}"><faultcode xmlns="">Client</faultcode></Fault></Body></Envelope>"#
        );
        assert_eq!(fault_in(plain.as_bytes()), Some(Fault::Request("Client".into())));
        // An application's own code named like a standard one is not the standard one.
        let custom = format!(
            r#"<s:Envelope xmlns:s="{S11}"><s:Body><s:Fault><faultcode xmlns:app="urn:app">app:Client</faultcode></s:Fault></s:Body></s:Envelope>"#
        );
        assert_eq!(fault_in(custom.as_bytes()), Some(Fault::Peer("app:Client".into())));
        let custom12 = format!(
            r#"<e:Envelope xmlns:e="{S12}"><e:Body><e:Fault><e:Code><e:Value xmlns:x="urn:x">x:Sender</e:Value></e:Code></e:Fault></e:Body></e:Envelope>"#
        );
        assert_eq!(fault_in(custom12.as_bytes()), Some(Fault::Peer("x:Sender".into())));
    }

    #[test]
    fn what_is_no_fault_is_not_taken_for_one() {
        // An answer element named Fault in another namespace, a body mentioning ":Fault", no XML.
        let other =
            format!(r#"<s:Envelope xmlns:s="{S11}"><s:Body><x:Fault xmlns:x="urn:app"/></s:Body></s:Envelope>"#);
        assert_eq!(fault_in(other.as_bytes()), None);
        let text = format!(r#"<s:Envelope xmlns:s="{S11}"><s:Body><Ok>s:Fault s:Client</Ok></s:Body></s:Envelope>"#);
        assert_eq!(fault_in(text.as_bytes()), None);
        assert_eq!(fault_in(b"OK"), None);
        // A 1.1 Fault element inside a 1.2 envelope is not that envelope's Fault.
        let mixed = format!(r#"<e:Envelope xmlns:e="{S12}"><e:Body><f:Fault xmlns:f="{S11}"/></e:Body></e:Envelope>"#);
        assert_eq!(fault_in(mixed.as_bytes()), None);
    }

    /// A SOAP peer on a loopback port answering every request with `status` and `body`.
    fn peer(status: u16, body: Vec<u8>) -> (actix_web::dev::ServerHandle, String) {
        let server = actix_web::HttpServer::new(move || {
            let body = body.clone();
            actix_web::App::new().default_service(actix_web::web::to(move || {
                let body = body.clone();
                async move {
                    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .content_type("text/xml")
                        .body(body)
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}/soap", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        (handle, url)
    }

    async fn send_to(status: u16, answer: String) -> Result<(), SendError> {
        send_bytes(status, answer.into_bytes()).await
    }

    async fn send_bytes(status: u16, answer: Vec<u8>) -> Result<(), SendError> {
        let (handle, url) = peer(status, answer);
        let config: SoapOutputConfig = serde_json::from_value(json!({"name": "out", "url": url})).unwrap();
        let output = SoapOutput::new(config).unwrap();
        let result = output.send(crate::Outgoing::new(json!({"id": 1}), "User")).await;
        handle.stop(false).await;
        result
    }

    #[actix_rt::test]
    async fn a_peers_answer_decides_delivered_refused_or_retry() {
        let ok = format!(r#"<s:Envelope xmlns:s="{S11}"><s:Body><Done/></s:Body></s:Envelope>"#);
        assert!(send_to(200, ok).await.is_ok());
        // A 200 answer carrying a Fault is not a delivery: Client refuses, Server retries.
        assert!(matches!(send_to(200, fault11("soap", "Client")).await, Err(SendError::Rejected(_))));
        assert!(matches!(send_to(200, fault11("soap", "Server")).await, Err(SendError::Unavailable(_))));
        assert!(matches!(send_to(500, fault12("Sender")).await, Err(SendError::Rejected(_))));
        assert!(matches!(send_to(500, fault12("Receiver")).await, Err(SendError::Unavailable(_))));
        // The Fault behind a long Header (past the excerpt kept for the error text) still counts.
        let padding = "<h>x</h>".repeat(2000);
        let late = format!(
            r#"<Envelope xmlns="{S11}"><Header>{padding}</Header><Body><Fault><faultcode>Client</faultcode></Fault></Body></Envelope>"#
        );
        assert!(matches!(send_to(200, late).await, Err(SendError::Rejected(_))));
        // A Fault that cannot be read (here: another encoding) is not taken for a delivery, nor
        // trusted to be a Client fault: it is tried again.
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>caf\xe9</faultstring></s:Fault></s:Body></s:Envelope>";
        assert!(matches!(send_bytes(200, latin1.to_vec()).await, Err(SendError::Unavailable(_))));
        // No envelope: the status decides.
        assert!(send_to(202, String::new()).await.is_ok());
        assert!(matches!(send_to(503, "busy".into()).await, Err(SendError::Unavailable(_))));
        assert!(matches!(send_to(404, "nope".into()).await, Err(SendError::Rejected(_))));
    }
}
