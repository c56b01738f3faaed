//! The Kafka input and output against a real Kafka-protocol broker (tansu): thousands of
//! messages consumed and stored with none lost, offsets committed only after durable
//! acceptance (checked across a SIGKILL), invalid messages kept in the repair queue without
//! blocking their partition, and TDG's loop example (consume, bump a field, produce back).

use ferrogrid_tests::peers::Broker;
use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate", "fields": [
    {"name": "id", "type": "long"}, {"name": "n", "type": "long"}],
  "indexes": ["id"]}]"#;

/// A config with a Kafka input on `topic` (and `extra` appended to the YAML).
fn config(broker: &Broker, topic: &str, with_input: bool, extra: &str) -> String {
    let input = if with_input {
        format!(
            r#"  input:
    - name: kafka
      type: kafka
      brokers: ["{broker}"]
      topics: [{topic}]
      group_id: ferrogrid
      options: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500", auto.commit.interval.ms: "200", fetch.wait.max.ms: "10"}}
"#,
            broker = broker.address()
        )
    } else {
        "  input: []\n".to_string()
    };
    format!(
        "types: {{__file: model.avsc}}\nhard_limits: {{scanned: 1000000, returned: 1000000}}\nconnector:\n{input}{extra}\ninput_processor:\n  storage:\n    - key: Item\n      type: Item\n"
    )
}

/// Every stored version of every Item: id -> number of versions.
fn stored_versions(server: &Server) -> BTreeMap<i64, usize> {
    let answer = server.graphql("{ Item(first: 1000000, all_versions: true) { id } }", json!({}));
    let mut versions = BTreeMap::new();
    for item in answer["data"]["Item"].as_array().unwrap_or_else(|| panic!("{answer}")) {
        *versions.entry(item["id"].as_i64().expect("an id")).or_insert(0) += 1;
    }
    versions
}

fn received(server: &Server) -> f64 {
    metric_value(&server.get("/metrics").body, "ferrogrid_objects_received_total", &[("input", "kafka")]).unwrap_or(0.0)
}

#[test]
fn ten_thousand_messages_none_lost_across_a_sigkill_and_offsets_committed_only_after_acceptance() {
    const TOTAL: i64 = 10_000;
    const PARTITIONS: i32 = 4;
    let broker = Broker::start();
    broker.create_topic("items", PARTITIONS as u32);
    broker.producer().send_all("items", (0..TOTAL).map(|i| json!({"Item": {"id": i, "n": i}}).to_string()));
    // Where each message is: (partition, offset) -> id.
    let placed: BTreeMap<(i32, i64), i64> = broker
        .read_topic("items", PARTITIONS, TOTAL as usize, Duration::from_secs(60))
        .into_iter()
        .map(|(p, o, text)| {
            let v: Value = serde_json::from_str(&text).expect("a test message");
            ((p, o), v["Item"]["id"].as_i64().expect("an id"))
        })
        .collect();
    assert_eq!(placed.len(), TOTAL as usize, "every test message is in the topic");

    let mut server = Server::start_with_config(&config(&broker, "items", true, ""), &[("model.avsc", MODEL)]);
    wait_until(Duration::from_secs(120), "a third of the messages to be received", || {
        (received(&server) >= (TOTAL / 3) as f64).then_some(())
    });
    server.kill();

    // What the group committed before the kill must all be in the engine: restarted without
    // the Kafka input, it may only finish what it had accepted.
    let committed = broker.committed("ferrogrid", "items", PARTITIONS);
    let covered: BTreeSet<i64> =
        placed.iter().filter(|((p, o), _)| *o < committed[*p as usize]).map(|(_, id)| *id).collect();
    assert!(!covered.is_empty(), "offsets were committed while consuming: {committed:?}");
    server.config_dir().expect("a config dir").write("config.yml", &config(&broker, "items", false, ""));
    server.restart();
    wait_until(Duration::from_secs(60), "resumed objects to be processed", || {
        server.repair_entries("").is_empty().then_some(())
    });
    let stored = stored_versions(&server);
    let missing: Vec<_> = covered.iter().filter(|id| !stored.contains_key(id)).take(10).collect();
    assert!(missing.is_empty(), "committed before the kill but not stored: {missing:?} (committed {committed:?})");

    // With the input back, the rest arrives: none lost, duplicates counted.
    server.config_dir().expect("a config dir").write("config.yml", &config(&broker, "items", true, ""));
    server.restart();
    let stored = wait_until(Duration::from_secs(180), "all 10,000 messages to be stored", || {
        let stored = stored_versions(&server);
        (stored.len() == TOTAL as usize).then_some(stored)
    });
    let duplicates: usize = stored.values().map(|v| v - 1).sum();
    println!(
        "kafka: {TOTAL} messages, {} stored before the kill were committed, {duplicates} consumed twice",
        covered.len()
    );
    assert!(server.repair_entries("").is_empty(), "nothing failed");
    wait_until(Duration::from_secs(30), "every offset to be committed", || {
        let committed = broker.committed("ferrogrid", "items", PARTITIONS);
        let ends: Vec<i64> = (0..PARTITIONS)
            .map(|p| placed.keys().filter(|(q, _)| *q == p).map(|(_, o)| o + 1).max().unwrap_or(0))
            .collect();
        (committed == ends).then_some(())
    });
    assert!(server.stop().success());
}

#[test]
fn an_invalid_message_waits_in_the_repair_queue_and_its_partition_moves_on() {
    let broker = Broker::start();
    broker.create_topic("mixed", 1);
    // The input takes messages nested 20 deep at most (TDG's max_depth).
    let yaml = config(&broker, "mixed", true, "")
        .replace("      group_id: ferrogrid\n", "      group_id: ferrogrid\n      max_depth: 20\n");
    assert!(yaml.contains("max_depth: 20"), "{yaml}");
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL)]);
    let deep = format!("{{\"Item\": {{\"id\": 4, \"n\": 4, \"x\": {}1{}}}}}", "[".repeat(30), "]".repeat(30));
    broker.producer().send_all(
        "mixed",
        [
            json!({"Item": {"id": 1, "n": 1}}).to_string(),
            "{\"Item\": {\"id\": 2,".to_string(),
            deep.clone(),
            json!({"Item": {"id": 3, "n": 3}}).to_string(),
        ],
    );
    wait_until(Duration::from_secs(60), "the message after the invalid one to be stored", || {
        (!server.data("Item", "id=3").is_empty()).then_some(())
    });
    assert_eq!(server.data("Item", "id=1").len(), 1);
    let entries = wait_until(Duration::from_secs(30), "the invalid messages in the repair queue", || {
        let entries = server.repair_entries("");
        (entries.len() >= 2).then_some(entries)
    });
    assert_eq!(entries.len(), 2, "{entries:?}");
    let too_deep = entries.iter().find(|e| e["payload"] == deep.as_str()).expect("the deep message kept as text");
    assert!(
        too_deep["error"].as_str().unwrap_or("").contains("deeper than 20 levels"),
        "refused by the input's limit: {too_deep}"
    );
    assert!(server.data("Item", "id=4").is_empty(), "not stored");
    let entry = entries.iter().find(|e| e["payload"] != deep.as_str()).expect("the invalid JSON");
    assert_eq!(entry["source"], "kafka");
    assert_eq!(entry["payload"], "{\"Item\": {\"id\": 2,", "kept as received: {entry}");
    assert!(entry["error"].as_str().unwrap_or("").contains("invalid JSON"), "{entry}");
    wait_until(Duration::from_secs(30), "the offset past all four to be committed", || {
        (broker.committed("ferrogrid", "mixed", 1) == vec![4]).then_some(())
    });

    // The operator corrects the text and retries it.
    let id = entry["id"].as_str().expect("an id");
    let fixed = json!({"payload": {"Item": {"id": 2, "n": 2}}});
    server
        .post_json(&format!("/admin/api/repair/{id}/retry"), &fixed)
        .assert_status(200, "retry with a corrected payload");
    assert_eq!(server.data("Item", "id=2").len(), 1);
}

#[test]
fn tdg_loop_example_consumes_bumps_a_field_and_produces_back() {
    let broker = Broker::start();
    broker.create_topic("in", 2);
    broker.create_topic("out", 1);
    let output = format!(
        r#"  output:
    - name: to_kafka
      type: kafka
      brokers: ["{}"]
      topic: out
  routing:
    - key: Bumped
      output: to_kafka
"#,
        broker.address()
    );
    let mut yaml = config(&broker, "in", true, &output);
    yaml = yaml.replace("      group_id: ferrogrid\n", "      group_id: ferrogrid\n      pipeline: bump\n");
    yaml.push_str("functions:\n  bump: {__file: bump.rhai}\npipelines:\n  bump: [bump]\n");
    // The script gives each message its key (TDG 1.7.18's set_key, from a script result).
    let bump = "let obj = param; obj.n += 1; #{obj: obj, routing_key: \"Bumped\", key: `item-${obj.id}`}";
    let mut server = Server::start_with_config(&yaml, &[("model.avsc", MODEL), ("bump.rhai", bump)]);
    broker.producer().send_all("in", (0..100).map(|i| json!({"id": i, "n": i * 10}).to_string()));
    let out = broker.read_keyed("out", 1, 100, Duration::from_secs(60));
    let got: BTreeMap<i64, i64> = out
        .iter()
        .map(|(_, _, key, text)| {
            let v: Value = serde_json::from_str(text).expect("JSON produced");
            assert_eq!(key.clone(), Some(format!("item-{}", v["id"])), "the script's key: {v}");
            (v["id"].as_i64().expect("id"), v["n"].as_i64().expect("n"))
        })
        .collect();
    assert_eq!(got.len(), 100, "every message produced back once at least");
    assert!(got.iter().all(|(id, n)| *n == id * 10 + 1), "each bumped by one: {got:?}");
    assert!(server.repair_entries("").is_empty());
    let metrics = server.get("/metrics").body;
    assert_eq!(metric_value(&metrics, "ferrogrid_objects_routed_total", &[("output", "to_kafka")]), Some(100.0));
    assert!(server.stop().success());
}

/// `samples/kafka` is TDG's tutorial (3.1.6) verbatim: the documented message sent to `items`
/// comes back to `items` with `version` 1, then 2, 3, ... for as long as the engine runs, and
/// nothing is stored or kept for repair.
#[test]
fn the_kafka_sample_is_tdgs_recursive_loop() {
    let broker = Broker::start();
    broker.create_topic("items", 1);
    let sample = ferrogrid_tests::sample("kafka");
    let handler = std::fs::read_to_string(sample.join("kafka_handler.rhai")).expect("the handler");
    let yaml = std::fs::read_to_string(sample.join("config.yml")).expect("the sample config");
    let yaml = yaml.replace("localhost:9092", &broker.address());
    let mut server = Server::start_with_config(&yaml, &[("model.avsc", ""), ("kafka_handler.rhai", &handler)]);
    broker.producer().send_all("items", [r#"{"id": "tarantool", "version": 0}"#.to_string()]);
    let items = broker.read_topic("items", 1, 6, Duration::from_secs(60));
    let versions: Vec<i64> = items
        .iter()
        .map(|(_, _, text)| {
            let v: Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(v["id"], "tarantool", "{v}");
            v["version"].as_i64().expect("a version")
        })
        .collect();
    assert_eq!(versions, vec![0, 1, 2, 3, 4, 5], "each consumed, raised by one, produced back");
    assert!(server.repair_entries("").is_empty());
    assert!(server.stop().success(), "the loop stops with the engine");
}

/// `samples/kafka-orders` against a broker: orders from `items` are stored, events are stamped
/// and produced to `events` keyed by their id (`set_key: id`), nothing goes back to `items`.
#[test]
fn the_kafka_orders_sample_stores_orders_and_produces_keyed_events() {
    let broker = Broker::start();
    broker.create_topic("items", 2);
    broker.create_topic("events", 1);
    let sample = ferrogrid_tests::sample("kafka-orders");
    let mut files = Vec::new();
    for name in ["model.avsc", "classify_item.rhai"] {
        let text = std::fs::read_to_string(sample.join(name)).expect("a sample file");
        files.push((name, text));
    }
    let yaml = std::fs::read_to_string(sample.join("config.yml")).expect("the sample config");
    let yaml = yaml.replace("localhost:9092", &broker.address());
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let mut server = Server::start_with_config(&yaml, &files);
    broker.producer().send_all(
        "items",
        (0..20).map(|i| {
            if i % 2 == 0 {
                json!({"kind": "order", "id": i, "customer": format!("c{i}"), "amount": i as f64 / 2.0}).to_string()
            } else {
                json!({"kind": "event", "id": i, "what": "clicked"}).to_string()
            }
        }),
    );
    let events = broker.read_keyed("events", 1, 10, Duration::from_secs(60));
    assert_eq!(events.len(), 10, "{events:?}");
    for (_, _, key, text) in &events {
        let event: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(event["kind"], "event");
        assert_eq!(key.as_deref(), Some(event["id"].to_string().as_str()), "keyed by id: {event}");
        assert!(event["processed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
    }
    wait_until(Duration::from_secs(30), "the 10 orders stored", || {
        (0..20).step_by(2).all(|i| !server.data("Order", &format!("id={i}")).is_empty()).then_some(())
    });
    assert_eq!(server.data("Order", "id=4")[0]["object"], json!({"id": 4, "customer": "c4", "amount": 2.0}));
    assert_eq!(broker.read_all("items", 2, 20, Duration::from_secs(2)).len(), 20, "nothing looped back");
    assert!(server.stop().success());
}

/// An apply that leaves the Kafka input's settings alone keeps its consumer (no stop, no
/// rebalance: messages go on being consumed); one that changes them reconnects it with the new
/// settings (here another topic).
#[test]
fn an_apply_keeps_an_unchanged_consumer_and_reconnects_a_changed_one() {
    let broker = Broker::start();
    broker.create_topic("first", 1);
    broker.create_topic("second", 1);
    // Statistics every half second: the new consumer's metric series show soon.
    let config = |broker: &Broker, topic: &str, with_input: bool, extra: &str| {
        config(broker, topic, with_input, extra)
            .replace("fetch.wait.max.ms: \"10\"}", "fetch.wait.max.ms: \"10\", statistics.interval.ms: \"500\"}")
    };
    let server = Server::start_with_config(&config(&broker, "first", true, ""), &[("model.avsc", MODEL)]);
    let dir = server.config_dir().expect("test config").path().to_path_buf();
    let send = |topic: &str, ids: std::ops::Range<i64>| {
        broker.producer().send_all(topic, ids.map(|i| json!({"Item": {"id": i, "n": i}}).to_string()));
    };
    let stored = |count: usize| {
        wait_until(Duration::from_secs(60), &format!("{count} items stored"), || {
            (stored_versions(&server).len() >= count).then_some(())
        })
    };
    send("first", 0..50);
    stored(50);

    // Another setting changes (hard limits); the input's do not.
    let yaml = std::fs::read_to_string(dir.join("config.yml")).expect("config");
    std::fs::write(dir.join("config.yml"), yaml.replace("returned: 1000000", "returned: 999999")).expect("write");
    server.apply_folder(&dir).assert_status(200, "apply, input unchanged");
    send("first", 50..100);
    stored(100);
    assert!(!server.output().contains("stopping an input"), "the consumer was kept");

    // The input's topic changes: the consumer is stopped and one for `second` starts.
    std::fs::write(dir.join("config.yml"), config(&broker, "second", true, "")).expect("write");
    server.apply_folder(&dir).assert_status(200, "apply, input changed");
    assert!(server.output().contains("stopping an input the new configuration changed or removed"));
    send("second", 100..150);
    stored(150);
    let before = received(&server);
    send("first", 150..160);
    // A later message on the new topic, then: the old one's were not taken meanwhile.
    send("second", 160..161);
    wait_until(Duration::from_secs(60), "the later message stored", || stored_versions(&server).get(&160).copied());
    assert_eq!(received(&server), before + 1.0, "the old topic is not consumed any more");
    // The old consumer ended (not restarted by its supervisor, holding the input's metric
    // series): the new one's show.
    assert!(!server.output().contains("kafka consumer actor restarting"), "{}", server.output());
    wait_until(Duration::from_secs(60), "the new consumer's committed offset", || {
        let metrics = server.get("/metrics").body;
        metric_value(&metrics, "ferrogrid_kafka_committed_offset", &[("input", "kafka"), ("topic", "second")])
    });
}

#[test]
fn a_token_named_input_posts_only_while_its_token_may() {
    let broker = Broker::start();
    broker.create_topic("etl", 1);
    let yaml = config(&broker, "etl", true, "")
        .replace("      group_id: ferrogrid\n", "      group_id: ferrogrid\n      token_name: etl\n");
    let server = Server::start_with_config(&yaml, &[("model.avsc", MODEL)]);
    let producer = broker.producer();
    // No token "etl" yet: nothing is accepted (and nothing committed).
    let refusals = |server: &Server| server.output().matches("the input's token may not post").count();
    producer.send_all("etl", [json!({"Item": {"id": 1, "n": 1}}).to_string()]);
    wait_until(Duration::from_secs(60), "the message consumed and refused", || (refusals(&server) >= 1).then_some(()));
    assert!(stored_versions(&server).is_empty(), "nothing stored without the token");
    // The token appears: the waiting message goes through.
    let created = server.client().send("POST", "/admin/api/tokens", Some(&json!({"name": "etl", "role": "user"})));
    created.assert_status(201, "create the input's token");
    wait_until(Duration::from_secs(30), "the waiting message to be stored", || {
        stored_versions(&server).get(&1).copied()
    });
    // Blocked: the next message waits; unblocked: it goes through.
    server.client().post_empty("/admin/api/tokens/etl/block").assert_status(200, "block");
    let before = refusals(&server);
    producer.send_all("etl", [json!({"Item": {"id": 2, "n": 2}}).to_string()]);
    wait_until(Duration::from_secs(60), "the next message consumed and refused", || {
        (refusals(&server) > before).then_some(())
    });
    assert!(!stored_versions(&server).contains_key(&2), "a blocked token's input does not post");
    server.client().post_empty("/admin/api/tokens/etl/unblock").assert_status(200, "unblock");
    wait_until(Duration::from_secs(30), "the message to be stored after the unblock", || {
        stored_versions(&server).get(&2).copied()
    });
}

/// The metrics of a running engine with Kafka clients: consumer lag per partition going to 0
/// once consumed, librdkafka's client statistics, GraphQL time and failures with TDG's labels,
/// the process, the disk waits; and every series the Grafana dashboard in docs/ queries is one
/// `/metrics` serves.
#[test]
fn metrics_cover_kafka_lag_graphql_process_and_disk_and_the_dashboard_queries_only_served_series() {
    let broker = Broker::start();
    broker.create_topic("m", 2);
    broker.create_topic("events", 1);
    // Something of every kind the dashboard shows: Kafka in and out, a failing object, a
    // delivery parked (its peer is not there), a failing job and a failing task.
    let extra = format!(
        r#"  output:
    - name: to_kafka
      type: kafka
      brokers: ["{}"]
      topic: events
      options: {{statistics.interval.ms: "500"}}
    - name: hook
      type: http
      url: http://127.0.0.1:9/gone
  routing:
    - key: Ev
      output: to_kafka
output_processor:
  Item:
    output: hook
    retry: {{max_attempts: 1}}
functions:
  fail: {{__file: fail.rhai}}
  note: {{__file: note.rhai}}
tasks:
  failing: {{kind: single_shot, pipeline: fail}}
"#,
        broker.address()
    );
    let yaml = config(&broker, "m", true, &extra)
        .replace("fetch.wait.max.ms: \"10\"}", "fetch.wait.max.ms: \"10\", statistics.interval.ms: \"500\"}")
        .replace("input_processor:\n", "input_processor:\n  routing:\n    - key: Item\n      pipeline: note\n");
    assert!(yaml.contains("statistics.interval.ms: \"500\"}\n"), "{yaml}");
    let note = "if param.obj.id == 0 { repository::push_job(\"fail\", #{}); } param";
    let files = [("model.avsc", MODEL), ("fail.rhai", "throw \"failing on purpose\""), ("note.rhai", note)];
    let server = Server::start_with_config(&yaml, &files);
    broker.producer().send_all("m", (0..40).map(|i| json!({"Item": {"id": i, "n": i}}).to_string()));
    broker.producer().send_all("m", (0..5).map(|i| json!({"Ev": {"id": i}}).to_string()));
    broker.producer().send_all("m", [json!({"Item": {"id": "not a number"}}).to_string()]);
    wait_until(Duration::from_secs(60), "40 items stored", || (stored_versions(&server).len() == 40).then_some(()));
    server.post_json("/admin/api/tasks/failing/start", &json!({})).assert_status(200, "start the task");

    // GraphQL: a named query, a mutation, and one of each that fails at its resolver.
    let ok = server.graphql("query GetItems { Item(first: 5) { id } }", json!({}));
    assert!(ok["errors"].is_null(), "{ok}");
    let bad = server.graphql("query BadCursor { Item(first: 5, after: \"not-a-cursor\") { id } }", json!({}));
    assert!(bad["errors"].is_array(), "{bad}");
    let put = server.graphql("mutation PutItem { Item(insert: {id: 100, n: 1}) { id } }", json!({}));
    assert!(put["errors"].is_null(), "{put}");
    let clash =
        server.graphql("mutation Clash { Item(insert: {id: 100, n: 2}, only_if_version: 1) { id } }", json!({}));
    assert!(clash["errors"].is_array(), "{clash}");

    // Lag per partition, 0 once everything is consumed and committed.
    let text = wait_until(Duration::from_secs(60), "consumer lag 0 on both partitions", || {
        let text = server.get("/metrics").body;
        let lag = |p: &str| {
            metric_value(&text, "ferrogrid_kafka_consumer_lag", &[("input", "kafka"), ("topic", "m"), ("partition", p)])
        };
        (lag("0") == Some(0.0) && lag("1") == Some(0.0)).then_some(text)
    });
    let hw = |p: &str| {
        metric_value(&text, "ferrogrid_kafka_high_watermark", &[("input", "kafka"), ("topic", "m"), ("partition", p)])
    };
    assert_eq!(hw("0").unwrap_or(0.0) + hw("1").unwrap_or(0.0), 46.0, "both partitions' ends: {text}");
    let text = wait_until(Duration::from_secs(30), "the producer's statistics", || {
        let text = server.get("/metrics").body;
        (metric_value(&text, "ferrogrid_kafka_tx_messages", &[("client", "to_kafka"), ("role", "producer")])
            == Some(5.0))
        .then_some(text)
    });
    assert!(metric_value(&text, "ferrogrid_kafka_rx_messages", &[("client", "kafka"), ("role", "consumer")]).is_some());
    assert!(metric_value(&text, "ferrogrid_kafka_broker_rtt_seconds", &[("client", "kafka")]).is_some(), "{text}");

    let graphql = |name: &str, labels: &[(&str, &str)]| metric_value(&text, name, labels);
    let get_items = [("schema", "default"), ("entity", "Item"), ("operation_name", "GetItems")];
    assert_eq!(graphql("ferrogrid_graphql_query_time_seconds_count", &get_items), Some(1.0), "{text}");
    assert_eq!(graphql("ferrogrid_graphql_query_fail_total", &get_items), None, "it did not fail");
    let bad_cursor = [("schema", "default"), ("entity", "Item"), ("operation_name", "BadCursor")];
    assert_eq!(graphql("ferrogrid_graphql_query_fail_total", &bad_cursor), Some(1.0), "{text}");
    let put_item = [("schema", "default"), ("entity", "Item"), ("operation_name", "PutItem")];
    assert_eq!(graphql("ferrogrid_graphql_mutation_time_seconds_count", &put_item), Some(1.0), "{text}");
    let clash = [("schema", "default"), ("entity", "Item"), ("operation_name", "Clash")];
    assert_eq!(graphql("ferrogrid_graphql_mutation_fail_total", &clash), Some(1.0), "{text}");
    assert!(metric_value(&text, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 1e6), "{text}");
    assert!(metric_value(&text, "process_threads", &[]).is_some_and(|v| v >= 2.0));
    assert!(metric_value(&text, "process_open_fds", &[]).is_some_and(|v| v >= 3.0));
    assert!(metric_value(&text, "ferrogrid_uptime_seconds", &[]).is_some_and(|v| v > 0.0));
    assert!(metric_value(&text, "ferrogrid_intake_log_flush_seconds_count", &[]).is_some_and(|v| v >= 1.0));
    assert!(metric_value(&text, "ferrogrid_store_flush_seconds_count", &[]).is_some_and(|v| v >= 1.0));
    let text = wait_until(Duration::from_secs(30), "the failing job, task and delivery counted", || {
        let text = server.get("/metrics").body;
        let failed = |name: &str| metric_value(&text, name, &[]).is_some_and(|v| v >= 1.0);
        (failed("ferrogrid_jobs_failed_total")
            && failed("ferrogrid_tasks_failed_total")
            && failed("ferrogrid_output_parked_total")
            && failed("ferrogrid_repair_queue_added_total"))
        .then_some(text)
    });

    // The dashboard: valid JSON, and each metric its expressions name is served.
    let path = ferrogrid_tests::workspace_root().join("docs/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).expect("JSON");
    let served: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expression");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("ferrogrid_") || word.starts_with("process_") {
                    queried.insert(word.to_string());
                }
            }
        }
    }
    assert!(queried.len() >= 25, "{queried:?}");
    for name in &queried {
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(served.contains(family), "the dashboard queries {name}, which /metrics does not serve");
    }
}
