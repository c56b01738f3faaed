//! The output processor against a real HTTP receiver: stored objects are queued in the commit
//! that stores them and delivered with retries; a peer that is down gets everything after
//! Try again all; a peer that refuses parks at once with its answer; a preprocessing error parks
//! as such; queued deliveries survive a SIGKILL of the engine.

use ferrogrid_tests::peers::HttpReceiver;
use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate",
  "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}], "indexes": ["id"]}]"#;

const STAMP: &str = r#"let obj = param.obj; if obj.n < 0 { throw "negative n"; } obj.stamped = true; obj"#;

fn config(url: &str, retry: &str) -> String {
    format!(
        r#"types: {{__file: model.avsc}}
functions:
  stamp: {{__file: stamp.rhai}}
pipelines:
  stamp: [stamp]
connector:
  input:
    - {{name: http, type: http}}
  output:
    - {{name: hub, type: http, url: "{url}", options: {{timeout: 5}}}}
input_processor:
  storage:
    - {{key: Item, type: Item}}
output_processor:
  Item:
    pipeline: stamp
    output: hub
    retry: {retry}
"#
    )
}

fn start(receiver: &HttpReceiver, retry: &str) -> Server {
    Server::start_with_config(&config(&receiver.url("/items"), retry), &[("model.avsc", MODEL), ("stamp.rhai", STAMP)])
}

/// Posts `ids` one after the other, each stored before the next is posted (`?sync=true`), so the
/// order stored is the order posted (objects accepted together may be stored in either order).
fn post(server: &Server, ids: std::ops::Range<i64>) {
    for id in ids {
        server.post_json("/http?sync=true", &json!({"Item": {"id": id, "n": id}})).assert_status(200, "accepted");
    }
}

fn parked(server: &Server) -> Vec<Value> {
    server.get("/admin/api/output-repair").json()["items"].as_array().cloned().unwrap_or_default()
}

/// How many times each id reached the receiver.
fn arrivals(receiver: &HttpReceiver) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for r in receiver.received() {
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        *seen.entry(v["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    seen
}

/// Likewise, each preprocessed by the `stamp` pipeline.
fn deliveries(receiver: &HttpReceiver) -> BTreeMap<i64, usize> {
    for r in receiver.received() {
        assert!(r.body.contains("\"stamped\":true"), "preprocessed: {}", r.body);
    }
    arrivals(receiver)
}

/// The engine with `Item` objects stored and replicated to `hub` (`receiver` at `path`), no
/// preprocessing; `route` adds settings to the output-processor key.
fn start_plain(receiver: &HttpReceiver, path: &str, route: &str) -> Server {
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output: [{{name: hub, type: http, url: "{}"}}]
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{output: hub, {route}}}
"#,
        receiver.url(path)
    );
    Server::start_with_config(&yaml, &[("model.avsc", MODEL)])
}

#[test]
fn a_peer_that_was_down_gets_every_object_once_after_try_again_all() {
    const TOTAL: i64 = 2_000;
    let mut receiver = HttpReceiver::start();
    receiver.stop();
    let server = start(&receiver, "{max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 400}");
    post(&server, 0..TOTAL);
    let entries = wait_until(Duration::from_secs(120), "every delivery parked after 3 attempts", || {
        let entries = parked(&server);
        (entries.len() == TOTAL as usize).then_some(entries)
    });
    for e in &entries {
        assert_eq!(e["status"], "Sending error", "{e}");
        assert_eq!(e["attempts"], 3, "{e}");
        assert!(e["error"].as_str().unwrap_or("").contains("Sending error: POST http://127.0.0.1"), "{e}");
    }
    let metrics = server.get("/metrics").body;
    assert_eq!(
        metric_value(&metrics, "ferrogrid_output_retries_total", &[("output", "hub")]),
        Some(2.0 * TOTAL as f64)
    );
    assert_eq!(metric_value(&metrics, "ferrogrid_output_parked_total", &[("output", "hub")]), Some(TOTAL as f64));
    assert_eq!(server.data("Item", "id=7").len(), 1, "stored all the same");

    receiver.start_again();
    let retried = server.post_json("/admin/api/output-repair/retry-all", &json!({})).json();
    assert_eq!(retried["retried"], TOTAL);
    let seen = wait_until(Duration::from_secs(120), "every object delivered", || {
        let seen = deliveries(&receiver);
        (seen.len() == TOTAL as usize).then_some(seen)
    });
    assert!(seen.values().all(|n| *n == 1), "each exactly once");
    assert!(parked(&server).is_empty());
    let metrics = server.get("/metrics").body;
    assert_eq!(metric_value(&metrics, "ferrogrid_output_sent_total", &[("output", "hub")]), Some(TOTAL as f64));
}

#[test]
fn a_refusing_peer_and_a_failing_pipeline_park_at_once() {
    let receiver = HttpReceiver::start();
    receiver.fail_with(Some((400, "n is not accepted here")));
    let server = start(&receiver, "{max_attempts: 5, initial_backoff_ms: 50}");
    post(&server, 1..2);
    server.post_json("/http", &json!({"Item": {"id": 2, "n": -1}})).assert_status(200, "accepted");
    let entries = wait_until(Duration::from_secs(30), "both parked", || {
        let entries = parked(&server);
        (entries.len() == 2).then_some(entries)
    });
    let by_id = |id: i64| entries.iter().find(|e| e["object"]["id"] == id).cloned().expect("an entry");
    let refused = by_id(1);
    assert_eq!((refused["status"].as_str(), refused["attempts"].as_i64()), (Some("Sending error"), Some(1)));
    assert!(refused["error"].as_str().unwrap_or("").contains("answered 400: n is not accepted here"), "{refused}");
    let broken = by_id(2);
    assert_eq!(broken["status"], "Preprocessing error");
    assert!(broken["error"].as_str().unwrap_or("").contains("negative n"), "{broken}");
    let window = |query: &str| server.get(&format!("/admin/api/output-repair?{query}")).json()["total"].clone();
    assert_eq!(window("from=2999-01-01T00:00:00Z"), 0, "queued before that");
    assert_eq!(window("from=2000-01-01&to=2999-01-01"), 2);
    assert_eq!(window("filter=negative&from=2000-01-01"), 1);
    server.get("/admin/api/output-repair?to=yesterday").assert_status(400, "a bad time");
    let one = server.get(&format!("/admin/api/output-repair/{}", refused["id"].as_str().expect("id"))).json();
    assert_eq!(one["id"], refused["id"]);
    // The same queue in the admin GraphQL schema (TDG's output_processor namespace).
    let listed = server.graphql_admin("{ output_processor { get_list(filter: \"negative\") } }", json!({}));
    let listed = listed["data"]["output_processor"]["get_list"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "Preprocessing error");
    let none = server.graphql_admin("mutation { output_processor { delete_from_list(id: \"nope\") } }", json!({}));
    assert_eq!(none["data"]["output_processor"]["delete_from_list"], false, "{none}");

    // The peer is fixed: Try again sends it; the broken object parks again as Rereplicated.
    receiver.fail_with(None);
    for e in [&refused, &broken] {
        let id = e["id"].as_str().expect("id");
        server.post_empty(&format!("/admin/api/output-repair/{id}/retry")).assert_status(200, "retry");
    }
    wait_until(Duration::from_secs(30), "the refused one delivered", || {
        (deliveries(&receiver).get(&1) == Some(&1)).then_some(())
    });
    let left = wait_until(Duration::from_secs(30), "the broken one parked again", || {
        let left = parked(&server);
        (left.len() == 1 && left[0]["status"] == "Rereplicated (Preprocessing error)").then_some(left)
    });
    let id = left[0]["id"].as_str().expect("id");
    let cleared =
        server.graphql_admin("mutation { output_processor { clear_list(filter: \"Rereplicated\") } }", json!({}));
    assert_eq!(cleared["data"]["output_processor"]["clear_list"], 1, "{cleared}");
    assert!(parked(&server).is_empty());
    server.delete(&format!("/admin/api/output-repair/{id}")).assert_status(404, "gone");
}

#[test]
fn queued_deliveries_survive_a_sigkill() {
    const TOTAL: i64 = 1_000;
    let mut receiver = HttpReceiver::start();
    receiver.stop();
    let mut server = start(&receiver, "{max_attempts: 1000, initial_backoff_ms: 200, max_backoff_ms: 500}");
    post(&server, 0..TOTAL);
    wait_until(Duration::from_secs(60), "the last object stored", || {
        (!server.data("Item", &format!("id={}", TOTAL - 1)).is_empty()).then_some(())
    });
    server.kill();
    receiver.start_again();
    server.restart();
    let seen = wait_until(Duration::from_secs(120), "every queued object delivered after the restart", || {
        let seen = deliveries(&receiver);
        (seen.len() == TOTAL as usize).then_some(seen)
    });
    assert!(
        seen.values().all(|n| *n == 1),
        "none twice: {:?}",
        seen.iter().filter(|(_, n)| **n > 1).take(5).collect::<Vec<_>>()
    );
    assert!(parked(&server).is_empty());
}

#[test]
fn an_unclassified_object_is_also_handed_to_the_output_processor() {
    let receiver = HttpReceiver::start();
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
functions:
  classify: {{__file: classify.rhai}}
pipelines:
  classify: [classify]
connector:
  input: [{{name: http, type: http}}]
  output: [{{name: hub, type: http, url: "{}"}}]
input_processor:
  classifiers: [{{name: items, pipeline: classify}}]
  storage: [{{key: Item, type: Item}}]
repair_queue:
  on_object_added:
    __unclassified__: {{postprocess_with_routing_key: Lost}}
output_processor:
  Lost: {{output: hub}}
"#,
        receiver.url("/lost")
    );
    let classify = r#"if "id" in param.obj { param.routing_key = "Item"; } param"#;
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL), ("classify.rhai", classify)]);
    let outcome = server.post_sync(&json!({"what": "nothing", "where": "nowhere"}));
    assert_eq!(outcome["status"], "repair", "{outcome}");
    assert_eq!(outcome["routing_key"], "__unclassified__");
    let got = wait_until(Duration::from_secs(30), "the lost object at the hub", || {
        let got = receiver.received();
        (!got.is_empty()).then_some(got)
    });
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body, json!({"what": "nothing", "where": "nowhere"}), "the object as received");
    assert_eq!(server.repair_entries("").len(), 1, "and it waits in the repair queue");
    // A classified object is not handed over.
    assert_eq!(server.post_sync(&json!({"id": 1, "n": 1}))["status"], "stored");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn a_kafka_output_whose_broker_is_away_for_30_s_gets_everything() {
    let mut broker = ferrogrid_tests::peers::Broker::start();
    broker.create_topic("replica", 1);
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output: [{{name: replica, type: kafka, brokers: ["{}"], topic: replica, options: {{message.timeout.ms: "5000"}}}}]
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{output: replica, retry: {{max_attempts: 100, initial_backoff_ms: 200, max_backoff_ms: 2000}}}}
"#,
        broker.address()
    );
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL)]);
    post(&server, 0..50);
    let first = broker.read_topic("replica", 1, 50, Duration::from_secs(30));
    assert_eq!(first.len(), 50, "delivered while the broker is there");
    broker.stop();
    post(&server, 50..250);
    std::thread::sleep(Duration::from_secs(30));
    broker.start_again();
    let all = broker.read_topic("replica", 1, 250, Duration::from_secs(90));
    let ids: std::collections::BTreeSet<i64> = all
        .iter()
        .map(|(_, _, text)| serde_json::from_str::<Value>(text).expect("JSON")["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (0..250).collect(), "every object, none lost");
    let metrics = server.get("/metrics").body;
    assert!(metric_value(&metrics, "ferrogrid_output_retries_total", &[("output", "replica")]).unwrap_or(0.0) > 0.0);
    assert!(parked(&server).is_empty());
}

fn sync_config(a: &str, b: &str, threshold: &str) -> String {
    format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output:
    - {{name: a, type: http, url: "{a}"}}
    - {{name: b, type: http, url: "{b}"}}
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item:
    handlers: [{{outputs: [a, b]}}]
    is_async: false
    sync_retry_timeout: 0.2{threshold}
"#
    )
}

/// The ids a receiver got, in the order they arrived.
fn arrival_order(receiver: &HttpReceiver) -> Vec<i64> {
    receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("JSON")["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn sync_mode_keeps_the_order_and_a_failing_output_stops_only_itself() {
    let a = HttpReceiver::start();
    let b = HttpReceiver::start();
    a.fail_with(Some((503, "a is down")));
    let server = Server::start_with_config(&sync_config(&a.url("/a"), &b.url("/b"), ""), &[("model.avsc", MODEL)]);
    post(&server, 0..20);
    wait_until(Duration::from_secs(30), "b got all 20", || (b.received().len() == 20).then_some(()));
    assert_eq!(arrival_order(&b), (0..20).collect::<Vec<_>>(), "in the order stored");
    // a refuses (its refusals are not recorded as received): tried again and again.
    wait_until(Duration::from_secs(30), "a's head tried and refused twice", || {
        let metrics = server.get("/metrics").body;
        (metric_value(&metrics, "ferrogrid_output_retries_total", &[("output", "a")]).unwrap_or(0.0) >= 2.0)
            .then_some(())
    });
    assert!(parked(&server).is_empty(), "no threshold: a's head waits, nothing parked");
    a.fail_with(None);
    wait_until(Duration::from_secs(30), "a got all 20", || (a.received().len() == 20).then_some(()));
    assert_eq!(arrival_order(&a), (0..20).collect::<Vec<_>>(), "in the order stored, once each");
    let metrics = server.get("/metrics").body;
    assert!(metric_value(&metrics, "ferrogrid_output_retries_total", &[("output", "a")]).unwrap_or(0.0) >= 2.0);
}

#[test]
fn sync_mode_parks_after_the_threshold_and_moves_on() {
    let a = HttpReceiver::start();
    let b = HttpReceiver::start();
    a.fail_with(Some((500, "a keeps failing")));
    let yaml = sync_config(&a.url("/a"), &b.url("/b"), "\n    sync_failed_attempt_count_threshold: 2");
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL)]);
    post(&server, 0..3);
    let entries = wait_until(Duration::from_secs(30), "3 parked for a", || {
        let entries = parked(&server);
        (entries.len() == 3).then_some(entries)
    });
    assert!(
        entries.iter().all(|e| e["output"] == "a" && e["attempts"] == 2 && e["status"] == "Sending error"),
        "{entries:?}"
    );
    wait_until(Duration::from_secs(30), "b got its 3", || (b.received().len() == 3).then_some(()));
    assert_eq!(arrival_order(&b), vec![0, 1, 2]);
    a.fail_with(None);
    server.post_json("/admin/api/output-repair/retry-all", &json!({})).assert_status(200, "retry all");
    wait_until(Duration::from_secs(30), "a got the 3", || (a.received().len() == 3).then_some(()));
    assert!(parked(&server).is_empty());
}

#[test]
fn store_strategy_reference_sends_the_current_version() {
    let receiver = HttpReceiver::start();
    receiver.fail_with(Some((503, "not yet")));
    let route = "store_strategy: reference, retry: {max_attempts: 1000, initial_backoff_ms: 100, max_backoff_ms: 200}";
    let server = start_plain(&receiver, "/ref", route);
    for n in [1, 2, 3] {
        assert_eq!(server.post_sync(&json!({"Item": {"id": 7, "n": n}}))["status"], "stored");
    }
    receiver.fail_with(None);
    wait_until(Duration::from_secs(30), "the three versions' deliveries", || {
        (receiver.received().len() == 3).then_some(())
    });
    for r in receiver.received() {
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v, json!({"id": 7, "n": 3}), "each delivery reads the current version");
    }
    assert!(parked(&server).is_empty());
}

#[test]
fn a_delivery_past_its_expiration_timeout_is_dropped_and_counted() {
    let mut receiver = HttpReceiver::start();
    receiver.stop();
    let route = "expiration_timeout: 0.5, retry: {max_attempts: 1000, initial_backoff_ms: 50, max_backoff_ms: 100}";
    let server = start_plain(&receiver, "/exp", route);
    post(&server, 0..3);
    wait_until(Duration::from_secs(30), "3 deliveries expired", || {
        let metrics = server.get("/metrics").body;
        (metric_value(&metrics, "ferrogrid_output_expired_total", &[("output", "hub")]) == Some(3.0)).then_some(())
    });
    assert!(parked(&server).is_empty(), "dropped, not parked");
    receiver.start_again();
    std::thread::sleep(Duration::from_millis(500));
    assert!(receiver.received().is_empty(), "nothing left to send");
    assert_eq!(server.data("Item", "id=1").len(), 1, "the objects stay stored");
}

#[test]
fn a_full_output_queue_parks_new_deliveries_and_the_gauges_show_its_depth_and_age() {
    let mut receiver = HttpReceiver::start();
    receiver.stop();
    let route = "max_queue_size: 5, retry: {max_attempts: 1000, initial_backoff_ms: 300, max_backoff_ms: 300}";
    let server = start_plain(&receiver, "/bounded", route);
    post(&server, 0..8);
    // Accepted is not yet processed: wait for the 8 to be stored (the parking is in that commit).
    let entries = wait_until(Duration::from_secs(60), "the 3 beyond max_queue_size to be parked", || {
        let entries = parked(&server);
        (entries.len() >= 3).then_some(entries)
    });
    assert_eq!(entries.len(), 3, "the 3 beyond max_queue_size are parked at once: {entries:?}");
    for e in &entries {
        assert_eq!(e["status"], "Sending error", "{e}");
        assert!(e["error"].as_str().unwrap_or("").contains("max_queue_size = 5"), "{e}");
        assert!(e["object"]["id"].as_i64().unwrap_or(0) >= 5, "the newest: {e}");
    }
    std::thread::sleep(Duration::from_millis(1_100));
    let metrics = server.get("/metrics").body;
    let hub = [("output", "hub")];
    assert_eq!(metric_value(&metrics, "ferrogrid_output_queue_depth", &hub), Some(5.0));
    assert_eq!(metric_value(&metrics, "ferrogrid_output_queue_full_total", &hub), Some(3.0));
    let age = metric_value(&metrics, "ferrogrid_output_queue_oldest_seconds", &hub).unwrap_or(0.0);
    assert!((1.0..60.0).contains(&age), "the oldest waits since the posts: {age}");
    let queues = server.get("/admin/api/output-queues").json();
    let q = &queues["items"][0];
    assert_eq!(
        (&q["output"], &q["mode"], &q["waiting"], &q["parked"]),
        (&json!("hub"), &json!("async"), &json!(5), &json!(3))
    );
    assert!(q["oldest_queued_at"].is_string(), "{queues}");

    // The peer is back: the 5 waiting are sent, the queue is empty, Try again all sends the rest.
    receiver.start_again();
    wait_until(Duration::from_secs(30), "the waiting ones sent", || (receiver.received().len() == 5).then_some(()));
    wait_until(Duration::from_secs(30), "the depth gauge back to 0", || {
        let metrics = server.get("/metrics").body;
        let empty = metric_value(&metrics, "ferrogrid_output_queue_depth", &hub) == Some(0.0)
            && metric_value(&metrics, "ferrogrid_output_queue_oldest_seconds", &hub) == Some(0.0);
        empty.then_some(())
    });
    assert_eq!(server.post_json("/admin/api/output-repair/retry-all", &json!({})).json()["retried"], 3);
    let seen = wait_until(Duration::from_secs(30), "every object delivered", || {
        let seen = arrivals(&receiver);
        (seen.len() == 8).then_some(seen)
    });
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
}

#[test]
fn an_https_output_trusts_its_ca_file_and_parks_on_an_unknown_issuer() {
    let receiver = HttpReceiver::start_tls();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, receiver.ca_pem().expect("a CA")).expect("writing the CA file");
    let url = receiver.url("/tls");
    // The certificate names 127.0.0.1: by the name localhost, only verify_host: false (TDG's
    // option, with its keepalive_interval) gets through.
    let by_name = url.replace("127.0.0.1", "localhost");
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output:
    - {{name: trusting, type: http, url: "{url}", options: {{ca_file: "{ca}"}}}}
    - {{name: builtin, type: http, url: "{url}"}}
    - {{name: unchecked, type: http, url: "{url}", options: {{verify_peer: false}}}}
    - {{name: other_name, type: http, url: "{by_name}", options: {{ca_file: "{ca}"}}}}
    - {{name: any_name, type: http, url: "{by_name}", options: {{ca_file: "{ca}", verify_host: false, verify_peer: true, keepalive_idle: 60, keepalive_interval: 60}}}}
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{handlers: [{{outputs: [trusting, builtin, unchecked, other_name, any_name]}}], retry: {{max_attempts: 1}}}}
"#,
        ca = ca.display()
    );
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL)]);
    post(&server, 7..8);
    let mut entries = wait_until(Duration::from_secs(30), "the untrusted sends parked", || {
        let entries = parked(&server);
        (entries.len() == 2).then_some(entries)
    });
    entries.sort_by_key(|e| e["output"].as_str().unwrap_or_default().to_string());
    assert_eq!((entries[0]["output"].as_str(), entries[1]["output"].as_str()), (Some("builtin"), Some("other_name")));
    let error = entries[0]["error"].as_str().unwrap_or("").to_lowercase();
    assert!(error.contains("certificate") && error.contains(&url), "{error}");
    let error = entries[1]["error"].as_str().unwrap_or("").to_lowercase();
    assert!(error.contains("certificate") && error.contains("localhost"), "{error}");
    wait_until(Duration::from_secs(30), "the other three delivered over TLS", || {
        (arrivals(&receiver).get(&7) == Some(&3)).then_some(())
    });
}
