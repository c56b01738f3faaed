//! Fault injection: the engine's failpoints (the `fail` crate, compiled into the test build of
//! the binary by `scripts/test.sh` with `--features failpoints`, set through `FAILPOINTS`) make
//! an actor panic or a commit fail at a chosen moment; what users see must not change: every
//! object accepted is stored or in the repair queue, every delivery arrives once, the process
//! lives and the restart is counted.

use ferrogrid_tests::peers::HttpReceiver;
use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate",
  "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}], "indexes": ["id"]}]"#;

/// How many times each id reached `receiver`.
fn arrivals(receiver: &HttpReceiver) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for r in receiver.received() {
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        *seen.entry(v["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    seen
}

fn restarts(server: &Server, actor: &str, name: &str) -> f64 {
    let metrics = server.get("/metrics").body;
    metric_value(&metrics, "ferrogrid_actor_restarts_total", &[("actor", actor), ("name", name)]).unwrap_or(0.0)
}

#[test]
fn an_output_actor_that_panics_is_restarted_and_delivers_everything_once() {
    const TOTAL: i64 = 1_000;
    let (hub, other) = (HttpReceiver::start(), HttpReceiver::start());
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output:
    - {{name: hub, type: http, url: "{}"}}
    - {{name: other, type: http, url: "{}"}}
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{handlers: [{{outputs: [hub, other]}}]}}
"#,
        hub.url("/hub"),
        other.url("/other")
    );
    // The hub's actor panics as it starts its 10th send.
    let failpoints = [("FAILPOINTS", "output-send/hub=9*off->1*panic(injected by the test)->off")];
    let server = Server::start_with_config_env(&yaml, &[("model.avsc", MODEL)], &failpoints);
    // Ingest goes on all the while: every object is accepted.
    for id in 0..TOTAL {
        server.post_json("/http", &json!({"Item": {"id": id, "n": id}})).assert_status(200, "accepted");
    }
    for (receiver, name) in [(&hub, "hub"), (&other, "other")] {
        wait_until(Duration::from_secs(60), &format!("every object delivered to {name}"), || {
            (arrivals(receiver).len() == TOTAL as usize).then_some(())
        });
        // Nothing more comes later.
        std::thread::sleep(Duration::from_millis(500));
        let seen = arrivals(receiver);
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "{name}: every object exactly once, not {twice:?}");
        assert_eq!(seen.len(), TOTAL as usize, "{name}");
    }
    assert_eq!(restarts(&server, "output", "hub"), 1.0, "the panic restarted the hub's actor once");
    assert_eq!(restarts(&server, "output", "other"), 0.0, "the other output went on");
    assert!(server.output().contains("injected by the test"), "the panic is logged");
    assert!(server.get("/admin/api/output-repair").json()["items"].as_array().is_some_and(Vec::is_empty));
    wait_until(Duration::from_secs(60), "both queues empty", || {
        let queues = server.get("/admin/api/output-queues").json();
        let items = queues["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 2 && items.iter().all(|q| q["waiting"] == 0)).then_some(())
    });
}

/// `Item` objects through the routing pipeline `tag` (which marks them) into storage.
fn tagging(env: &[(&str, &str)]) -> Server {
    let yaml = r#"types: {__file: model.avsc}
functions:
  tag: {__file: tag.rhai}
connector:
  input: [{name: http, type: http}]
input_processor:
  routing: [{key: Item, pipeline: tag}]
  storage: [{key: Item, type: Item}]
"#;
    let tag = r#"let obj = param.obj; obj.n = obj.id * 10; #{obj: obj, routing_key: "Item", priority: 1}"#;
    Server::start_with_config_env(yaml, &[("model.avsc", MODEL), ("tag.rhai", tag)], env)
}

/// The intake log's write fails (the disk is full, say): the object is refused, every later one
/// too, and /health says so (503 failed) instead of ready, for a load balancer and an
/// orchestrator to act on.
#[test]
fn a_failed_intake_log_refuses_objects_and_health_says_so() {
    let server = tagging(&[("FAILPOINTS", "intake-log-write=return")]);
    server.get("/health").assert_status(200, "ready before any write");
    let refused = server.post_json("/http", &json!({"Item": {"id": 1}}));
    assert!(refused.status >= 500, "a write that failed: {} {}", refused.status, refused.body);
    let later = server.post_json("/http", &json!({"Item": {"id": 2}}));
    assert!(later.status >= 500, "refused until restart: {} {}", later.status, later.body);
    let health = server.get("/health");
    health.assert_status(503, "the intake log failed");
    assert_eq!(health.json()["status"], "failed", "{}", health.body);
    assert!(health.json()["error"].as_str().is_some_and(|e| e.contains("injected")), "{}", health.body);
    assert!(server.repair_entries("").is_empty() && server.data("Item", "").is_empty(), "nothing kept");
}

/// With `--log-format json` every line the process writes is a JSON object, a panic's too (the
/// engine survives it: the object waits in the repair queue), and a log level that does not
/// parse is refused at start rather than ignored.
#[test]
fn json_logs_are_json_lines_panics_included() {
    let mut server = tagging(&[
        ("FERROGRID_LOG_FORMAT", "json"),
        ("FAILPOINTS", "pipeline-step/tag=1*panic(injected into a step)->off"),
    ]);
    assert_eq!(server.post_sync(&json!({"Item": {"id": 1, "n": 0}}))["status"], "repair");
    assert_eq!(server.post_sync(&json!({"Item": {"id": 2, "n": 0}}))["status"], "stored");
    server.stop();
    let output = server.output();
    let lines: Vec<Value> = output
        .lines()
        // (the harness's own "===== start #N" lines aside)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("===== "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "panicked" && l["panic"].to_string().contains("injected into a step")),
        "{output}"
    );
    let refused = ferrogrid_tests::ferrogrid_command()
        .args(["check", "--log-level", "loud", "samples/quickstart"])
        .current_dir(ferrogrid_tests::workspace_root())
        .output()
        .expect("run ferrogrid check");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--log-level \"loud\""), "{refused:?}");
}

#[test]
fn a_pipeline_worker_that_panics_is_replaced_and_its_object_waits_in_the_repair_queue() {
    let server = tagging(&[("FAILPOINTS", "pipeline-step/tag=2*off->1*panic(injected into a step)->off")]);
    let answers: Vec<Value> = (0..6).map(|id| server.post_sync(&json!({"Item": {"id": id, "n": 0}}))).collect();
    for (id, answer) in answers.iter().enumerate() {
        if id == 2 {
            assert_eq!(answer["status"], "repair", "{answer}");
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(error.contains("processing panicked: injected into a step"), "{answer}");
        } else {
            assert_eq!(answer["status"], "stored", "the workers go on after the panic: {answer}");
        }
    }
    let entries = server.repair_entries("");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0]["error"].as_str().unwrap_or_default().contains("injected into a step"), "{:?}", entries[0]);
    let metrics = server.get("/metrics").body;
    assert_eq!(
        metric_value(&metrics, "ferrogrid_actor_restarts_total", &[("actor", "pipeline_worker")]),
        Some(1.0),
        "the worker started over once"
    );
    // The failpoint is spent: a retry stores the object, marked by the pipeline.
    let id = answers[2]["id"].as_str().expect("id");
    let retried = server.post_empty(&format!("/admin/api/repair/{id}/retry")).json();
    assert_eq!(retried["status"], "stored", "{retried}");
    assert_eq!(server.data("Item", "id=2")[0]["object"]["n"], 20);
    assert!(server.repair_entries("").is_empty());
}

#[test]
fn a_failed_storage_commit_acknowledges_nothing_as_stored_and_keeps_every_object() {
    const CLIENTS: i64 = 4;
    const EACH: i64 = 50;
    let server = tagging(&[("FAILPOINTS", "storage-commit=10*off->4*return(disk full, injected)->off")]);
    let answers: Vec<(i64, Value)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let server = &server;
                scope.spawn(move || {
                    (c * EACH..(c + 1) * EACH)
                        .map(|id| (id, server.post_sync(&json!({"Item": {"id": id, "n": 0}}))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().expect("client")).collect()
    });
    let in_repair = answers.iter().filter(|(_, a)| a["status"] == "repair").count();
    assert!(in_repair > 0, "the failpoint failed some commits");
    for (item, answer) in &answers {
        let id = answer["id"].as_str().expect("id");
        let stored = server.data("Item", &format!("id={item}"));
        match answer["status"].as_str() {
            Some("stored") => assert_eq!(stored.len(), 1, "answered stored, so stored: {answer}"),
            Some("repair") => {
                let error = answer["error"].as_str().unwrap_or_default();
                assert!(error.contains("disk full, injected"), "{answer}");
                assert!(stored.is_empty(), "answered repair, so not stored: {answer}");
                let entry = server.get(&format!("/admin/api/repair/{id}")).json();
                assert_eq!(entry["stage"], "storage", "{entry}");
            }
            other => panic!("stored or kept, not {other:?}: {answer}"),
        }
    }
    assert_eq!(server.repair_entries("").len(), in_repair);
    // The cause is gone (the failpoint is spent): Try again all stores them.
    server.post_empty("/admin/api/repair/retry-all").assert_status(200, "retry-all");
    wait_until(Duration::from_secs(30), "the repair queue emptied", || {
        server.repair_entries("").is_empty().then_some(())
    });
    for (item, _) in &answers {
        assert_eq!(server.data("Item", &format!("id={item}")).len(), 1, "item {item} stored");
    }
}

#[test]
fn hostile_scripts_end_in_the_repair_queue_and_the_process_lives() {
    let yaml = r#"types: {__file: model.avsc}
functions:
  route: {__file: route.rhai}
connector:
  input: [{name: http, type: http}]
input_processor:
  routing: [{key: Item, pipeline: route}]
  storage: [{key: Item, type: Item}]
"#;
    // n = 1: endless recursion; n = 2: a value nested a hundred thousand levels deep.
    let route = r#"
fn down(n) { down(n + 1) }
let obj = param.obj;
if obj.n == 1 { down(0); }
if obj.n == 2 { let m = #{}; for i in 0..100000 { m = #{inner: m}; } obj.deep = m; }
#{obj: obj, routing_key: "Item", priority: 1}
"#;
    let mut server = Server::start_with_config(yaml, &[("model.avsc", MODEL), ("route.rhai", route)]);
    for (id, n) in [(1, 1), (2, 2)] {
        let answer = server.post_sync(&json!({"Item": {"id": id, "n": n}}));
        assert_eq!(answer["status"], "repair", "{answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains("route")), "names the function: {answer}");
    }
    assert!(server.is_running(), "the process lives");
    let fine = server.post_sync(&json!({"Item": {"id": 3, "n": 0}}));
    assert_eq!(fine["status"], "stored", "{fine}");
    assert_eq!(server.repair_entries("").len(), 2);
}

#[test]
fn a_preprocessing_step_that_panics_parks_its_delivery_and_the_rest_go_out() {
    let hub = HttpReceiver::start();
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
functions:
  stamp: {{__file: stamp.rhai}}
connector:
  input: [{{name: http, type: http}}]
  output: [{{name: hub, type: http, url: "{}"}}]
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{pipeline: stamp, output: hub, is_async: false}}
"#,
        hub.url("/hub")
    );
    let stamp = "let obj = param.obj; obj.stamped = true; obj";
    let failpoints = [("FAILPOINTS", "pipeline-step/stamp=1*panic(injected into preprocessing)->off")];
    let server = Server::start_with_config_env(&yaml, &[("model.avsc", MODEL), ("stamp.rhai", stamp)], &failpoints);
    for id in 0..5 {
        server.post_json("/http", &json!({"Item": {"id": id, "n": id}})).assert_status(200, "accepted");
    }
    // Parked at once (a bug is no reason to try again), and the output moves on, even in sync
    // mode, where a delivery tried again would hold it back.
    let parked = wait_until(Duration::from_secs(30), "one delivery parked", || {
        let items = server.get("/admin/api/output-repair").json()["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 1).then(|| items[0].clone())
    });
    assert_eq!(parked["status"], "Preprocessing error", "{parked}");
    assert!(parked["error"].as_str().is_some_and(|e| e.contains("injected into preprocessing")), "{parked}");
    wait_until(Duration::from_secs(30), "the other four delivered", || (arrivals(&hub).len() == 4).then_some(()));
    assert_eq!(
        metric_value(&server.get("/metrics").body, "ferrogrid_actor_restarts_total", &[("actor", "pipeline_worker")]),
        Some(1.0),
        "the worker started over"
    );
    // The failpoint is spent: Try again sends it.
    server.post_empty("/admin/api/output-repair/retry-all").assert_status(200, "retry-all");
    wait_until(Duration::from_secs(30), "all five delivered", || (arrivals(&hub).len() == 5).then_some(()));
}

/// A SIGTERM drain ends at `--drain-timeout` (here 2 s) whatever hangs: a peer that holds the
/// send open would keep the output's stop waiting for 10 s. The delivery cut short is sent at
/// the next start, once.
#[test]
fn a_drain_ends_at_its_deadline_and_what_it_cut_short_is_sent_after_the_restart() {
    let hub = HttpReceiver::start();
    hub.delay_answers(Some(Duration::from_secs(120)));
    let yaml = format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
  output:
    - {{name: hub, type: http, url: "{}", options: {{timeout: 300}}}}
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item: {{handlers: [{{outputs: [hub]}}]}}
"#,
        hub.url("/hub")
    );
    let mut server =
        Server::start_with_config_env(&yaml, &[("model.avsc", MODEL)], &[("FERROGRID_DRAIN_TIMEOUT", "2")]);
    server.post_json("/http?sync=true", &json!({"Item": {"id": 1, "n": 1}})).assert_status(200, "stored");
    wait_until(Duration::from_secs(60), "the send under way", || (hub.arrived() >= 1).then_some(()));
    let started = std::time::Instant::now();
    assert!(server.stop().success(), "a drain cut short still exits 0");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "the drain took {took:?} (2 s allowed; the output alone waits 10 s)");
    assert!(server.output().contains("the drain did not end within --drain-timeout"), "{}", server.output());
    hub.delay_answers(None);
    server.restart();
    wait_until(Duration::from_secs(60), "the delivery sent after the restart", || {
        (arrivals(&hub).get(&1) == Some(&1)).then_some(())
    });
}
