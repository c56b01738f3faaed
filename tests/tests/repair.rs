//! The repair queue as an operator uses it: a script error or a validation error parks the object
//! with the error text, the stage and the function; the operator finds it by text, reads its
//! payload, retries it (still broken: attempts grow; fixed and restarted: stored), retries or
//! deletes many at once.

use std::time::Duration;

use ferrogrid_tests::{encode, wait_until, Server};
use serde_json::{json, Value};

const CONFIG: &str = r#"
types:
  __file: model.avsc

functions:
  check_item: {__file: check_item.rhai}

pipelines:
  process_item: [check_item]

connector:
  input:
    - name: http
      type: http

input_processor:
  routing:
    - key: Item
      pipeline: process_item
  storage:
    - key: Item
      type: Item
"#;

const MODEL: &str = r#"[
  {"name": "Item", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
   "fields": [{"name": "id", "type": "long"}, {"name": "bad", "type": "boolean"}]}
]"#;

/// Throws for objects with `"bad": true`.
const BROKEN_SCRIPT: &str = r#"
let obj = param.obj;
if obj.bad == true {
    throw `item ${obj.id} is broken`;
}
#{obj: obj, routing_key: "Item", priority: 1}
"#;

/// The corrected script: nothing throws.
const FIXED_SCRIPT: &str = r#"
let obj = param.obj;
#{obj: obj, routing_key: "Item", priority: 1}
"#;

fn start_broken() -> Server {
    Server::start_with_config(CONFIG, &[("model.avsc", MODEL), ("check_item.rhai", BROKEN_SCRIPT)])
}

fn item(id: i64, bad: bool) -> Value {
    json!({"Item": {"id": id, "bad": bad}})
}

/// Posts a bad item synchronously, asserts it went to repair and returns its entry id.
fn post_bad(server: &Server, id: i64) -> String {
    let answer = server.post_sync(&item(id, true));
    assert_eq!(answer["status"], "repair", "bad item {id}: {answer}");
    let err = answer["error"].as_str().unwrap_or("");
    assert!(err.contains(&format!("item {id} is broken")), "the sync answer carries the thrown text: {answer}");
    answer["id"].as_str().unwrap_or_else(|| panic!("no id in {answer}")).to_string()
}

fn entry(server: &Server, id: &str) -> Value {
    let r = server.get(&format!("/admin/api/repair/{id}"));
    r.assert_status(200, &format!("GET /admin/api/repair/{id}"));
    r.json()
}

/// Rewrites the script and restarts the server on the same data.
fn fix_and_restart(server: &mut Server) {
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM exit: {status}");
    server.config_dir().expect("config written by the test").write("check_item.rhai", FIXED_SCRIPT);
    server.restart();
}

#[test]
fn thrown_error_parks_the_object_with_text_stage_and_function() {
    let server = start_broken();
    let good = server.post_sync(&item(1, false));
    assert_eq!(good["status"], "stored", "a good item is stored: {good}");
    let id = post_bad(&server, 2);

    let e = entry(&server, &id);
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["source"], "http", "{e}");
    assert_eq!(e["payload"], item(2, true), "payload as received: {e}");
    assert!(e["error"].as_str().unwrap_or("").contains("item 2 is broken"), "entry error carries the thrown text: {e}");
    assert!(e["function"].as_str().unwrap_or("").contains("check_item"), "entry names the function: {e}");
    assert!(!e["stage"].as_str().unwrap_or("").is_empty(), "entry names the stage: {e}");
    assert_eq!(e["attempts"], 1, "{e}");
    assert!(server.data("Item", "id=2").is_empty(), "bad item not stored");

    // The filter finds it by the thrown text, and only it.
    let found = server.repair_entries(&format!("filter={}", encode("item 2 is broken")));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], id.as_str());
    let none = server.repair_entries(&format!("filter={}", encode("no such text anywhere")));
    assert!(none.is_empty(), "{none:?}");

    // Time window: created now, so not before 2000 and not after 2999.
    let early = encode("2000-01-01T00:00:00Z");
    let late = encode("2999-01-01T00:00:00Z");
    assert_eq!(server.repair_entries(&format!("from={early}")).len(), 1);
    assert!(server.repair_entries(&format!("to={early}")).is_empty());
    assert!(server.repair_entries(&format!("from={late}")).is_empty());

    // Checked last so that the checks above run whatever the status is called.
    assert_eq!(e["status"], "New", "TDG status after a failed first processing: {e}");
}

#[test]
fn retry_while_still_broken_keeps_it_and_counts_attempts() {
    let server = start_broken();
    let id = post_bad(&server, 3);
    assert_eq!(entry(&server, &id)["attempts"], 1);

    let r = server.post_empty(&format!("/admin/api/repair/{id}/retry"));
    r.assert_status(200, "retry");
    let answer = r.json();
    assert_eq!(answer["id"], id.as_str(), "{answer}");
    assert_eq!(answer["status"], "repair", "still broken: {answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("item 3 is broken"), "{answer}");

    let e = entry(&server, &id);
    assert_eq!(e["attempts"], 2, "attempts incremented: {e}");
    assert!(server.data("Item", "id=3").is_empty());

    server
        .post_empty("/admin/api/repair/00000000-0000-4000-8000-000000000000/retry")
        .assert_status(404, "retry of an unknown entry");
    assert_eq!(e["status"], "Reworked", "TDG status after a failed retry: {e}");
}

#[test]
fn retry_after_fix_and_restart_stores_the_object() {
    let mut server = start_broken();
    let id = post_bad(&server, 4);
    fix_and_restart(&mut server);

    // Failed entries wait for the operator; the restart alone does not store them.
    let e = entry(&server, &id);
    assert!(e["error"].as_str().unwrap_or("").contains("item 4 is broken"), "{e}");
    assert!(server.data("Item", "id=4").is_empty(), "not stored before the retry");

    let r = server.post_empty(&format!("/admin/api/repair/{id}/retry"));
    r.assert_status(200, "retry after fix");
    let answer = r.json();
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(answer["type"], "Item", "{answer}");

    let items = server.data("Item", "id=4");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["object"], json!({"id": 4, "bad": true}));
    server.get(&format!("/admin/api/repair/{id}")).assert_status(404, "a stored object leaves the repair queue");
}

#[test]
fn retry_all_after_fix_clears_fifty_entries() {
    let mut server = start_broken();
    for id in 1..=50 {
        post_bad(&server, id);
    }
    assert_eq!(server.repair_entries("").len(), 50);
    fix_and_restart(&mut server);

    let r = server.post_empty("/admin/api/repair/retry-all");
    r.assert_status(200, "retry-all");
    assert_eq!(r.json()["retried"], 50, "{}", r.body);

    wait_until(Duration::from_secs(60), "the repair queue to empty after retry-all", || {
        server.repair_entries("").is_empty().then_some(())
    });
    for id in 1..=50 {
        let items = server.data("Item", &format!("id={id}"));
        assert_eq!(items.len(), 1, "Item {id} stored once: {items:?}");
    }
}

#[test]
fn delete_one_by_filter_and_all() {
    let server = start_broken();
    let ids: Vec<String> = (1..=4).map(|i| post_bad(&server, i)).collect();

    let r = server.delete(&format!("/admin/api/repair/{}", ids[0]));
    r.assert_status(200, "DELETE one entry");
    server.get(&format!("/admin/api/repair/{}", ids[0])).assert_status(404, "deleted entry is gone");
    server.delete(&format!("/admin/api/repair/{}", ids[0])).assert_status(404, "deleting it again");

    let r = server.delete(&format!("/admin/api/repair?filter={}", encode("item 2 is broken")));
    r.assert_status(200, "DELETE by filter");
    assert_eq!(r.json()["deleted"], 1, "{}", r.body);
    let left: Vec<Value> = server.repair_entries("");
    assert_eq!(left.len(), 2, "{left:?}");

    let r = server.delete("/admin/api/repair");
    r.assert_status(200, "DELETE all");
    assert_eq!(r.json()["deleted"], 2, "{}", r.body);
    assert!(server.repair_entries("").is_empty());
    for id in 1..=4 {
        assert!(server.data("Item", &format!("id={id}")).is_empty());
    }
}

#[test]
fn validation_failure_names_the_field_path() {
    let server = Server::start("samples/library");
    let obj = json!({"id": 5, "username": 42});
    let answer = server.post_sync(&obj);
    assert_eq!(answer["status"], "repair", "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("User.username"), "sync answer names the field: {answer}");
    let id = answer["id"].as_str().expect("id").to_string();
    let e = entry(&server, &id);
    assert!(e["error"].as_str().unwrap_or("").contains("User.username"), "entry names the field: {e}");
    assert_eq!(e["payload"], obj);
    assert!(server.data("User", "id=5").is_empty(), "invalid User not stored");
}

/// The claim on an entry is its stored status: while an operator's retry runs (the pipeline step
/// made slow by a failpoint), the entry is `In Progress`, and a second retry or a delete is
/// refused with 409 (whichever thread or instance asks); once the retry ends it is free again.
#[test]
fn an_entry_being_retried_is_claimed_by_its_status() {
    let server = Server::start_with_config_env(
        CONFIG,
        &[("model.avsc", MODEL), ("check_item.rhai", BROKEN_SCRIPT)],
        &[("FAILPOINTS", "pipeline-step/process_item=sleep(5000)")],
    );
    let id = post_bad(&server, 7);
    std::thread::scope(|scope| {
        let retry = scope.spawn(|| server.post_empty(&format!("/admin/api/repair/{id}/retry")));
        wait_until(Duration::from_secs(60), "the retry to claim the entry", || {
            (entry(&server, &id)["status"] == "In Progress").then_some(())
        });
        server.post_empty(&format!("/admin/api/repair/{id}/retry")).assert_status(409, "a second retry");
        server.delete(&format!("/admin/api/repair/{id}")).assert_status(409, "a delete while it is retried");
        let r = server.delete("/admin/api/repair");
        r.assert_status(200, "DELETE all while it is retried");
        assert_eq!(r.json()["deleted"], 0, "the claimed entry stays: {}", r.body);
        let answer = retry.join().expect("retry thread");
        answer.assert_status(200, "the first retry");
        assert_eq!(answer.json()["status"], "repair", "still broken: {}", answer.body);
    });
    assert_eq!(entry(&server, &id)["status"], "Reworked");
    server.delete(&format!("/admin/api/repair/{id}")).assert_status(200, "free again once the retry ended");
}
