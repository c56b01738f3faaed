//! The object journal against a running engine: a mixed run (an object stored and replicated to
//! a peer that fails, then comes back; an object that fails validation, is edited by an
//! operator and stored) leaves each object's whole path — received, steps with their time,
//! outcome, every delivery attempt, the operator's actions — found by id, routing key, type and
//! key, and time; retention rotates the oldest objects out.

use ferrogrid_tests::peers::HttpReceiver;
use ferrogrid_tests::{encode, metric_value, wait_until, Server};
use serde_json::{json, Value};
use std::time::Duration;

const MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate",
  "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}], "indexes": ["id"]}]"#;

fn config(hook: &str) -> String {
    format!(
        r#"types: {{__file: model.avsc}}
functions:
  unwrap: {{__file: unwrap.rhai}}
connector:
  input: [{{name: http, type: http, pipeline: unwrap}}]
  output: [{{name: hook, type: http, url: "{hook}"}}]
input_processor:
  storage: [{{key: Item, type: Item}}]
output_processor:
  Item:
    output: hook
    retry: {{max_attempts: 2, initial_backoff_ms: 50, max_backoff_ms: 50}}
logger:
  rotate_log: true
  max_msg_in_log: 60
  delete_by_n_msg: 10
"#
    )
}

const UNWRAP: &str = r#"#{obj: param.Item, routing_key: "Item"}"#;

fn events(server: &Server, id: &str) -> Vec<Value> {
    let r = server.get(&format!("/admin/api/journal/{id}"));
    if r.status == 404 {
        return Vec::new();
    }
    r.assert_status(200, "the timeline");
    r.json()["events"].as_array().cloned().unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["kind"].as_str() {
            Some("processed") => format!("processed:{}", e["status"].as_str().unwrap_or_default()),
            Some("delivery") => format!("delivery:{}", e["result"].as_str().unwrap_or_default()),
            Some("operator") => format!("operator:{}", e["action"].as_str().unwrap_or_default()),
            other => format!("{other:?}"),
        })
        .collect()
}

fn search(server: &Server, query: &str) -> Vec<String> {
    let r = server.get(&format!("/admin/api/journal?{query}"));
    r.assert_status(200, query);
    r.json()["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_objects_path_is_kept_searchable_and_rotated() {
    let hook = HttpReceiver::start();
    hook.fail_with(Some((500, "the hook is down")));
    let server =
        Server::start_with_config(&config(&hook.url("/in")), &[("model.avsc", MODEL), ("unwrap.rhai", UNWRAP)]);

    // 1. Stored, replicated to a failing peer: tried twice, parked.
    let first = server.post_sync(&json!({"Item": {"id": 1, "n": 1}}));
    let first_id = first["id"].as_str().unwrap().to_string();
    let path = wait_until(Duration::from_secs(60), "two attempts journalled", || {
        let e = events(&server, &first_id);
        (e.iter().filter(|e| e["kind"] == "delivery").count() == 2).then_some(e)
    });
    assert_eq!(
        kinds(&path),
        [
            "processed:stored",
            "delivery:failed, to be tried again",
            "delivery:failed, parked in the output repair queue"
        ]
    );
    let processed = &path[0];
    assert_eq!(processed["input"], "http");
    assert!(processed["size"].as_u64().is_some_and(|s| s > 10), "{processed}");
    assert_eq!((processed["type"].as_str(), processed["key"].as_i64()), (Some("Item"), Some(1)));
    assert!(processed["version"].is_u64());
    let steps: Vec<&str> = processed["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["unwrap", "validation"]);
    assert!(processed["steps"][0]["ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(path[2]["error"].as_str().unwrap().contains("the hook is down"), "{}", path[2]);

    // 2. Fails validation; an operator edits and retries it.
    let after_first = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(5));
    let bad = server.post_sync(&json!({"Item": {"id": "two"}}));
    assert_eq!(bad["status"], "repair");
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let retry = json!({"payload": {"Item": {"id": 2, "n": 2}}, "by": "Olga"});
    server.post_json(&format!("/admin/api/repair/{bad_id}/retry"), &retry).assert_status(200, "retry edited");
    let path = wait_until(Duration::from_secs(60), "the second object's path", || {
        let e = events(&server, &bad_id);
        (kinds(&e).iter().filter(|k| k.starts_with("delivery")).count() == 2).then_some(e)
    });
    assert_eq!(kinds(&path)[..3], ["processed:repair", "operator:edited and retried", "processed:stored"]);
    assert_eq!(path[0]["stage"], "validation");
    assert!(path[0]["error"].as_str().unwrap().contains("Item.id"), "{}", path[0]);
    assert_eq!(path[1]["by"], "admin (for Olga)");
    assert_eq!((path[2]["attempt"].as_u64(), path[2]["key"].as_i64()), (Some(2), Some(2)));

    // 3. The peer is back; the parked delivery of the first is retried from the output repair queue.
    hook.fail_with(None);
    let parked = server.get("/admin/api/output-repair").json();
    let delivery = parked["items"]
        .as_array()
        .or_else(|| parked.as_array())
        .and_then(|items| items.iter().find(|d| d["source"] == first_id.as_str()).cloned())
        .unwrap_or_else(|| panic!("the first object's parked delivery: {parked}"));
    let delivery_id = delivery["id"].as_str().unwrap();
    server
        .post_empty(&format!("/admin/api/output-repair/{delivery_id}/retry"))
        .assert_status(200, "retry the delivery");
    let path = wait_until(Duration::from_secs(60), "the delivery sent", || {
        let e = events(&server, &first_id);
        kinds(&e).last().is_some_and(|k| k == "delivery:sent").then_some(e)
    });
    let operator = &path[path.len() - 2];
    assert_eq!(operator["kind"], "operator");
    assert!(operator["action"].as_str().unwrap().starts_with("retried the delivery to hook"), "{operator}");
    assert_eq!(operator["by"], "admin");

    // Search: by id, routing key, type and key, time.
    assert_eq!(search(&server, &format!("id={first_id}")), [first_id.as_str()]);
    assert_eq!(search(&server, "routing_key=Item"), [bad_id.as_str(), first_id.as_str()], "newest first");
    assert_eq!(search(&server, "type=Item&key=2"), [bad_id.as_str()]);
    assert_eq!(search(&server, "type=Item&key=1"), [first_id.as_str()]);
    let since = encode(&after_first.to_rfc3339());
    assert_eq!(search(&server, &format!("from={since}")), [bad_id.as_str()]);
    assert_eq!(search(&server, &format!("to={since}")), [first_id.as_str()]);
    assert!(search(&server, "routing_key=Nothing").is_empty());
    server.get("/admin/api/journal?from=yesterday").assert_status(400, "a bad time");
    server.get("/admin/api/journal/not-an-id").assert_status(400, "not a UUID");
    server.get(&format!("/admin/api/journal/{}", uuid_v4())).assert_status(404, "unknown, not time-ordered");
    server.get(&format!("/admin/api/journal/{}", uuid_v7_now())).assert_status(404, "unknown");
    server.get("/admin/api/journal?key=1").assert_status(400, "a key without its type");
    assert!(search(&server, &format!("id={first_id}&type=Other")).is_empty(), "every filter holds");

    // A caller who may read the repair queue, but neither deliveries nor Items, sees the path
    // without them: no delivery events, no primary key, no search by the type.
    let admin = server.client();
    let role = json!({"name": "repair-reader", "actions": ["repair_read"]});
    admin.send("POST", "/admin/api/roles", Some(&role)).assert_status(201, "a role that reads repairs");
    let made = admin.send("POST", "/admin/api/tokens", Some(&json!({"name": "reader", "role": "repair-reader"})));
    made.assert_status(201, "its token");
    let reader = server.with_token(made.json()["token"].as_str().unwrap());
    let seen = reader.get(&format!("/admin/api/journal/{first_id}"));
    seen.assert_status(200, "the reader's timeline");
    let seen = seen.json()["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(kinds(&seen), ["processed:stored"], "{seen:?}");
    assert!(seen[0].get("key").is_none() && seen[0]["type"] == "Item", "{}", seen[0]);
    reader.get("/admin/api/journal?type=Item").assert_status(403, "a search by a type it may not read");
    let found = reader.get("/admin/api/journal?routing_key=Item");
    found.assert_status(200, "a search by routing key");
    assert!(found.body.contains(&first_id) && !found.body.contains("\"delivery\""), "{}", found.body);
    server.unauthorized().get("/admin/api/journal").assert_status(401, "not signed in");

    // The admin GraphQL API's actions are journaled as the REST API's are: a repair-queue
    // entry retried (failing again) and deleted; a parked delivery tried again.
    let third = server.post_sync(&json!({"Item": {"id": "three"}}));
    let third_id = third["id"].as_str().unwrap().to_string();
    let vars = json!({"id": third_id});
    let retried = server.graphql_admin("mutation ($id: String!) { repair(id: $id) }", vars.clone());
    assert_eq!(retried["data"]["repair"]["status"], "repair", "{retried}");
    let deleted = server.graphql_admin("mutation ($id: String!) { delete_from_repair_queue(id: $id) }", vars);
    assert_eq!(deleted["data"]["delete_from_repair_queue"], true, "{deleted}");
    let path = wait_until(Duration::from_secs(60), "the third object's path", || {
        let e = events(&server, &third_id);
        (e.len() == 4).then_some(e)
    });
    assert_eq!(
        kinds(&path),
        ["processed:repair", "operator:retried", "processed:repair", "operator:deleted from the repair queue"]
    );
    assert_eq!(path[1]["by"], "admin");
    hook.fail_with(Some((500, "down again")));
    let fourth_id = server.post_sync(&json!({"Item": {"id": 4, "n": 4}}))["id"].as_str().unwrap().to_string();
    let delivery_id = wait_until(Duration::from_secs(60), "the fourth object's delivery parked", || {
        let parked = server.get("/admin/api/output-repair").json();
        let items = parked["items"].as_array().or_else(|| parked.as_array()).cloned().unwrap_or_default();
        items.iter().find(|d| d["source"] == fourth_id.as_str()).and_then(|d| d["id"].as_str().map(String::from))
    });
    hook.fail_with(None);
    let again = server.graphql_admin(
        "mutation ($id: String!) { output_processor { try_again(id: $id) } }",
        json!({"id": delivery_id}),
    );
    assert_eq!(again["data"]["output_processor"]["try_again"], true, "{again}");
    let path = wait_until(Duration::from_secs(60), "the fourth object's delivery sent", || {
        let e = events(&server, &fourth_id);
        kinds(&e).last().is_some_and(|k| k == "delivery:sent").then_some(e)
    });
    let operator = &path[path.len() - 2];
    assert!(operator["action"].as_str().unwrap().starts_with("retried the delivery to hook"), "{operator}");
    assert_eq!((operator["by"].as_str(), operator["delivery"].as_str()), (Some("admin"), Some(delivery_id.as_str())));

    // Retention: 60 events at most; the oldest pages go first.
    for i in 10..50 {
        server.post_sync(&json!({"Item": {"id": i, "n": i}}));
    }
    let text = wait_until(Duration::from_secs(30), "the journal rotated", || {
        let text = server.get("/metrics").body;
        (events(&server, &first_id).is_empty()).then_some(text)
    });
    let held = metric_value(&text, "ferrogrid_journal_events", &[]).unwrap();
    assert!(held <= 60.0, "{held}");
    assert!(!search(&server, "routing_key=Item").contains(&first_id), "not found any more");
}

/// A time-ordered (v7) id of now that no object has.
fn uuid_v7_now() -> String {
    let ms = chrono::Utc::now().timestamp_millis() as u64;
    let n: u64 = rand::random();
    let t = format!("{ms:012x}");
    format!(
        "{}-{}-7{:03x}-8{:03x}-{:012x}",
        &t[..8],
        &t[8..12],
        n & 0xfff,
        (n >> 12) & 0xfff,
        (n >> 24) & 0xffff_ffff_ffff
    )
}

fn uuid_v4() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!("{}-{}-4{}-8{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

#[test]
fn a_failed_update_is_found_by_the_type_and_key_it_was_to_be_stored_as() {
    let server = Server::start("samples/library");
    let stored = server.post_sync(&json!({"id": 4, "book_name": "Emma", "author": "Austen", "year": 1815}));
    assert_eq!(stored["status"], "stored");
    // Fails validation (author must be a string): recorded with Book and key 4.
    let failed = server.post_sync(&json!({"id": 4, "book_name": "Emma", "author": 5, "year": 1816}));
    assert_eq!(failed["status"], "repair");
    // Fails before it has a type (no classifier match): no type, no key.
    let stray = server.post_sync(&json!({"id": 4, "title": "neither user nor book"}));
    assert_eq!(stray["status"], "repair");
    let found = wait_until(Duration::from_secs(60), "both inputs of Book 4", || {
        let ids = search(&server, "type=Book&key=4");
        (ids.len() == 2).then_some(ids)
    });
    assert_eq!(found, [failed["id"].as_str().unwrap(), stored["id"].as_str().unwrap()], "newest first");
    // `more` says whether a search came back full (a larger `first` may find more).
    for (first, count, more) in [(1, 1, true), (3, 2, false)] {
        let r = server.get(&format!("/admin/api/journal?type=Book&key=4&first={first}")).json();
        assert_eq!(
            (r["objects"].as_array().map(Vec::len), &r["more"]),
            (Some(count), &json!(more)),
            "first={first}: {r}"
        );
    }
    let event = events(&server, failed["id"].as_str().unwrap()).remove(0);
    assert_eq!(
        (&event["status"], &event["stage"], &event["type"], &event["key"]),
        (&json!("repair"), &json!("validation"), &json!("Book"), &json!(4))
    );
    let stray_event = events(&server, stray["id"].as_str().unwrap()).remove(0);
    assert!(stray_event.get("type").is_none() && stray_event.get("key").is_none(), "{stray_event}");
}
