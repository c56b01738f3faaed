//! The connector conformance harness: every output (http, soap, kafka, smtp, dummy) and every
//! input (http, soap, kafka) goes through the same steps against a real peer: open, a batch of
//! 100, the peer stopped and started again mid-stream with nothing lost, close.

use ferrogrid_tests::peers::{Broker, HttpReceiver, SmtpSink};
use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate",
  "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}], "indexes": ["id"]}]"#;

/// A peer an output delivers to.
trait Peer {
    /// The YAML of the output `out` (list item under `connector.output`).
    fn output(&self) -> String;
    /// The ids of the objects it received so far.
    fn ids(&self) -> BTreeSet<i64>;
    /// What a send to it says while it is down.
    fn down_error(&self) -> &'static str;
    fn stop(&mut self);
    fn start_again(&mut self);
}

fn ids_in<'a>(texts: impl Iterator<Item = &'a str>) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    for text in texts {
        // Every format carries `id` as a JSON field, an XML element or in the mail's JSON text.
        for part in text.split("\"id\":").skip(1).chain(text.split("<id>").skip(1)) {
            let digits: String = part.trim_start().chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                ids.insert(id);
            }
        }
    }
    ids
}

impl Peer for HttpReceiver {
    fn output(&self) -> String {
        format!(
            "{{name: out, type: http, url: \"{}\", headers: {{X-Test: conformance}}, options: {{timeout: 5}}}}",
            self.url("/in")
        )
    }
    fn ids(&self) -> BTreeSet<i64> {
        let got = self.received();
        assert!(got.iter().all(|r| r.content_type == "application/json" && r.path == "/in"), "{got:?}");
        assert!(got.iter().all(|r| r.headers.contains(&("x-test".into(), "conformance".into()))));
        ids_in(got.iter().map(|r| r.body.as_str()))
    }
    fn down_error(&self) -> &'static str {
        "Sending error: POST http://127.0.0.1"
    }
    fn stop(&mut self) {
        HttpReceiver::stop(self)
    }
    fn start_again(&mut self) {
        HttpReceiver::start_again(self)
    }
}

/// A SOAP service: the same receiver, checked for envelopes.
struct SoapService(HttpReceiver);

impl Peer for SoapService {
    fn output(&self) -> String {
        format!("{{name: out, type: soap, url: \"{}\", soap_action: \"urn:put\"}}", self.0.url("/soap"))
    }
    fn ids(&self) -> BTreeSet<i64> {
        let got = self.0.received();
        for r in &got {
            assert!(r.content_type.starts_with("text/xml"), "{r:?}");
            assert!(r.headers.contains(&("soapaction".into(), "\"urn:put\"".into())), "{r:?}");
            assert!(r.body.contains("<soap:Body><Item><id>"), "{}", r.body);
        }
        ids_in(got.iter().map(|r| r.body.as_str()))
    }
    fn down_error(&self) -> &'static str {
        "Sending error: POST http://127.0.0.1"
    }
    fn stop(&mut self) {
        self.0.stop()
    }
    fn start_again(&mut self) {
        self.0.start_again()
    }
}

/// A Kafka topic (an outage of its broker cuts every connection; the topic stays).
struct Topic {
    broker: Broker,
}

impl Peer for Topic {
    fn output(&self) -> String {
        format!(
            "{{name: out, type: kafka, brokers: [\"{}\"], topic: out, options: {{message.timeout.ms: \"3000\"}}}}",
            self.broker.address()
        )
    }
    fn ids(&self) -> BTreeSet<i64> {
        let got = self.broker.read_topic("out", 1, usize::MAX, Duration::from_secs(2));
        ids_in(got.iter().map(|(_, _, text)| text.as_str()))
    }
    fn down_error(&self) -> &'static str {
        "Sending error: producing to out failed"
    }
    fn stop(&mut self) {
        self.broker.stop();
    }
    fn start_again(&mut self) {
        self.broker.start_again();
    }
}

impl Peer for SmtpSink {
    fn output(&self) -> String {
        format!("{{name: out, type: smtp, url: \"{}\", from: \"Grid <grid@example.com>\", to: [ops@example.com], subject: Item, timeout: 5}}", self.url())
    }
    fn ids(&self) -> BTreeSet<i64> {
        let mails = self.mails();
        assert!(mails.iter().all(|m| m.contains("Subject: Item") && m.contains("ops@example.com")), "{mails:?}");
        ids_in(mails.iter().map(String::as_str))
    }
    fn down_error(&self) -> &'static str {
        "Sending error: mailing through smtp://127.0.0.1"
    }
    fn stop(&mut self) {
        SmtpSink::stop(self)
    }
    fn start_again(&mut self) {
        SmtpSink::start_again(self)
    }
}

fn config_with_output(output: &str) -> String {
    format!(
        "types: {{__file: model.avsc}}\nconnector:\n  input:\n    - {{name: http, type: http}}\n  output:\n    - {output}\n  routing:\n    - {{key: Item, output: out}}\n"
    )
}

fn post_items(server: &Server, ids: std::ops::Range<i64>) {
    for id in ids {
        server.post_json("/http", &json!({"Item": {"id": id, "n": id}})).assert_status(200, "accepted");
    }
}

/// Open, a batch of 100, the peer down for 20 objects (they wait in the repair queue with the
/// reason), the peer back and the 20 retried, close: all 120 delivered.
fn output_conformance(mut peer: impl Peer) {
    let mut server = Server::start_with_config(&config_with_output(&peer.output()), &[("model.avsc", MODEL)]);
    post_items(&server, 0..100);
    wait_until(Duration::from_secs(60), "a batch of 100 delivered", || (peer.ids().len() == 100).then_some(()));

    peer.stop();
    post_items(&server, 100..120);
    let entries = wait_until(Duration::from_secs(60), "20 failed sends in the repair queue", || {
        let entries = server.repair_entries("");
        // Failed entries carry the error; those still on their way do not.
        (entries.len() == 20 && entries.iter().all(|e| e["error"].is_string())).then_some(entries)
    });
    for e in &entries {
        assert_eq!(e["stage"], "output", "{e}");
        assert!(e["error"].as_str().unwrap_or("").starts_with(peer.down_error()), "{e}");
    }
    peer.start_again();
    server.post_json("/admin/api/repair/retry-all", &json!({})).assert_status(200, "retry all");
    wait_until(Duration::from_secs(60), "the 20 retried objects delivered", || {
        server.repair_entries("").is_empty().then_some(())
    });
    // Read until all are there (a peer's read may come up short: a new Kafka consumer's first
    // fetch can take longer than its read window).
    wait_until(Duration::from_secs(60), "all 120 delivered", || {
        let ids = peer.ids();
        (0..120).all(|id| ids.contains(&id)).then_some(())
    });
    let metrics = server.get("/metrics").body;
    assert_eq!(metric_value(&metrics, "ferrogrid_objects_routed_total", &[("output", "out")]), Some(120.0));
    assert!(server.stop().success(), "closed cleanly");
}

#[test]
fn http_output_conformance() {
    output_conformance(HttpReceiver::start());
}

#[test]
fn soap_output_conformance() {
    output_conformance(SoapService(HttpReceiver::start()));
}

#[test]
fn kafka_output_conformance() {
    let broker = Broker::start();
    broker.create_topic("out", 1);
    output_conformance(Topic { broker });
}

#[test]
fn smtp_output_conformance() {
    output_conformance(SmtpSink::start());
}

#[test]
fn dummy_output_drops_and_counts() {
    let mut server =
        Server::start_with_config(&config_with_output("{name: out, type: dummy}"), &[("model.avsc", MODEL)]);
    post_items(&server, 0..100);
    wait_until(Duration::from_secs(30), "100 objects routed to the dummy output", || {
        let metrics = server.get("/metrics").body;
        (metric_value(&metrics, "ferrogrid_objects_routed_total", &[("output", "out")]) == Some(100.0)).then_some(())
    });
    assert!(server.repair_entries("").is_empty());
    assert!(server.data("Item", "id=1").is_empty(), "dropped, not stored");
    assert!(server.stop().success());
}

#[test]
fn a_refusing_peer_leaves_its_answer_in_the_repair_queue() {
    let receiver = HttpReceiver::start();
    receiver.fail_with(Some((422, "field n is not accepted here")));
    let server = Server::start_with_config(&config_with_output(&receiver.output()), &[("model.avsc", MODEL)]);
    let outcome = server.post_sync(&json!({"Item": {"id": 1, "n": 1}}));
    assert_eq!(outcome["status"], "repair", "{outcome}");
    let error = outcome["error"].as_str().unwrap_or("");
    assert!(error.contains("answered 422: field n is not accepted here"), "{error}");
    receiver.fail_with(None);
    let id = outcome["id"].as_str().expect("an id");
    let retried = server.post_json(&format!("/admin/api/repair/{id}/retry"), &json!({})).json();
    assert_eq!(retried["status"], "routed", "{retried}");
    assert_eq!(receiver.ids(), BTreeSet::from([1]));
}

#[test]
fn output_urls_are_checked_at_load_time() {
    let dir = ferrogrid_tests::ConfigDir::new(
        &config_with_output("{name: out, type: http, url: \"localhost:8080/in\"}"),
        &[("model.avsc", MODEL)],
    )
    .expect("a config dir");
    let out = ferrogrid_tests::ferrogrid_command().arg("check").arg(dir.path()).output().expect("ferrogrid check");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("connector.output[0].url"), "{text}");
}

/// Inputs: a batch of 100 through each of http, soap and kafka, stored; for Kafka the broker
/// has an outage mid-stream and consumption goes on.
#[test]
fn input_conformance_http_soap_and_kafka() {
    let mut broker = Broker::start();
    broker.create_topic("items", 2);
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
hard_limits: {{returned: 1000}}
functions:
  from_xml: {{__file: from_xml.rhai}}
pipelines:
  from_xml: [from_xml]
connector:
  input:
    - {{name: http, type: http}}
    - {{name: soap, type: soap, handlers: [{{function: PutItem, pipeline: from_xml}}]}}
    - name: kafka
      type: kafka
      brokers: ["{}"]
      topics: [items]
      group_id: conformance
      options: {{session.timeout.ms: "6000", fetch.wait.max.ms: "10", reconnect.backoff.max.ms: "500"}}
input_processor:
  storage:
    - {{key: Item, type: Item}}
"#,
        broker.address()
    );
    let from_xml =
        r#"let m = xml::to_map(param); #{obj: #{id: parse_int(m.id), n: parse_int(m.n)}, routing_key: "Item"}"#;
    let mut server = Server::start_with_config(&yaml, &[("model.avsc", MODEL), ("from_xml.rhai", from_xml)]);
    post_items(&server, 0..100);
    for id in 100..200 {
        let envelope = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><PutItem><id>{id}</id><n>{id}</n></PutItem></s:Body></s:Envelope>"#
        );
        server.post_raw("/soap", "text/xml", envelope.as_bytes()).assert_status(200, "soap accepted");
    }
    let producer = broker.producer();
    producer.send_all("items", (200..250).map(|id| json!({"Item": {"id": id, "n": id}}).to_string()));
    let stored = |server: &Server| {
        let answer = server.graphql("{ Item(first: 1000) { id } }", json!({}));
        answer["data"]["Item"].as_array().map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect::<BTreeSet<_>>())
    };
    wait_until(Duration::from_secs(60), "250 objects stored", || stored(&server).filter(|s| s.len() == 250));
    broker.stop();
    // The outage shows: the consumer's errors counted (librdkafka's code: a lost connection,
    // then all brokers down).
    wait_until(Duration::from_secs(60), "the consumer's errors counted", || {
        let metrics = server.get("/metrics").body;
        metric_value(&metrics, "ferrogrid_kafka_errors_total", &[("client", "kafka"), ("role", "consumer")])
            .filter(|n| *n > 0.0)
    });
    broker.start_again();
    broker.producer().send_all("items", (250..300).map(|id| json!({"Item": {"id": id, "n": id}}).to_string()));
    let all = wait_until(Duration::from_secs(120), "300 objects stored after the broker restart", || {
        stored(&server).filter(|s| s.len() == 300)
    });
    assert_eq!(all, (0..300).collect::<BTreeSet<i64>>());
    let item: Value = server.data("Item", "id=150")[0]["object"].clone();
    assert_eq!(item, json!({"id": 150, "n": 150}), "read from the XML tree");
    assert!(server.stop().success());
}
