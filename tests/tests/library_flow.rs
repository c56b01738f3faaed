//! The happy path a user walks first: the `library` and `quickstart` samples store objects
//! posted to `/http` and give them back through `/data`; unknown objects wait in the repair
//! queue; every endpoint but `/health` needs the admin token; metrics count; `ferrogrid check`
//! judges configs; SIGTERM exits cleanly and the data survives a restart.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ferrogrid_tests::{encode, ferrogrid_command, metric_value, sample, wait_for_data, wait_until, ConfigDir, Server};
use serde_json::{json, Value};

/// `true` when `s` looks like a UUID (8-4-4-4-12 hex digits).
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Posts `obj` to `/http`, asserts 200 `{"id": "<uuid>"}` and returns the id.
fn post_async(server: &Server, obj: &Value) -> String {
    let r = server.post_json("/http", obj);
    r.assert_status(200, &format!("POST /http {obj}"));
    let id = r.json()["id"].as_str().map(str::to_string);
    let id = id.unwrap_or_else(|| panic!("POST /http answer has no string id: {}", r.body));
    assert!(is_uuid(&id), "POST /http id {id:?} is not a UUID");
    id
}

/// Asserts that every field of `expected` has the same value in `actual`.
fn assert_fields(actual: &Value, expected: &Value) {
    for (k, v) in expected.as_object().expect("expected is an object") {
        assert_eq!(actual.get(k), Some(v), "field {k}: stored object {actual} differs from posted {expected}");
    }
}

fn as_version(v: &Value, what: &str) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{what}: version {v} is not an unsigned integer"))
}

#[test]
fn library_stores_user_book_and_subscription_and_reads_them_back() {
    let server = Server::start("samples/library");
    let user = json!({"id": 1, "username": "John Smith"});
    let book = json!({"id": 1, "book_name": "Lord of the Rings", "author": "J. R. R. Tolkien"});
    let sub = json!({"id": 1, "user_id": 1, "book_id": 1});
    post_async(&server, &user);
    post_async(&server, &book);
    post_async(&server, &sub);

    let users = wait_for_data(&server, "User", "id=1");
    assert_eq!(users.len(), 1, "one User with id 1: {users:?}");
    assert_fields(&users[0]["object"], &user);
    as_version(&users[0]["version"], "User");
    assert!(users[0]["cursor"].is_string(), "cursor is a string: {}", users[0]);

    let books = wait_for_data(&server, "Book", "id=1");
    assert_eq!(books.len(), 1, "one Book with id 1: {books:?}");
    assert_fields(&books[0]["object"], &book);

    let query = format!("pkey={}", encode("[1,1]"));
    let subs = wait_for_data(&server, "Subscription", &query);
    assert_eq!(subs.len(), 1, "one Subscription with pkey [1,1]: {subs:?}");
    assert_fields(&subs[0]["object"], &sub);

    // Misses are empty arrays, not errors.
    let other = format!("pkey={}", encode("[1,2]"));
    assert!(server.data("Subscription", &other).is_empty());
    assert!(server.data("User", "id=2").is_empty());

    // Unknown type -> 404; a value that is not a long, or an unknown index -> 400.
    let r = server.get("/data/NoSuchType?id=1");
    r.assert_status(404, "GET /data/NoSuchType");
    assert!(!r.error_text().is_empty());
    let r = server.get("/data/User?id=abc");
    r.assert_status(400, "GET /data/User?id=abc");
    assert!(!r.error_text().is_empty());
    server.get("/data/User?no_such_index=1").assert_status(400, "GET /data/User?no_such_index=1");
}

#[test]
fn library_lists_all_objects_page_by_page_exactly_once() {
    let server = Server::start("samples/library");
    for id in 1..=25 {
        let answer = server.post_sync(&json!({"id": id, "username": format!("user {id}")}));
        assert_eq!(answer["status"], "stored", "user {id}: {answer}");
    }

    let default_page = server.data("User", "");
    assert_eq!(default_page.len(), 10, "GET /data/User without first gives 10");

    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &after {
            None => "first=7".to_string(),
            Some(c) => format!("first=7&after={}", encode(c)),
        };
        let page = server.data("User", &query);
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        assert!(page.len() <= 7, "page of {} items with first=7", page.len());
        if page.is_empty() {
            break;
        }
        for item in &page {
            let id = item["object"]["id"].as_i64().expect("User.id is an integer");
            *seen.entry(id).or_default() += 1;
        }
        let last = page.last().expect("non-empty page");
        after = Some(last["cursor"].as_str().unwrap_or_else(|| panic!("item without cursor: {last}")).to_string());
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "objects listed more than once: {twice:?}");
    let ids: Vec<i64> = seen.keys().copied().collect();
    assert_eq!(ids, (1..=25).collect::<Vec<i64>>(), "paging visits every User");
}

#[test]
fn quickstart_stores_a_wrapped_user() {
    let server = Server::start("samples/quickstart");
    let answer = server.post_sync(&json!({"User": {"id": 1, "username": "Alex"}}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(answer["type"], "User", "{answer}");
    let users = server.data("User", "id=1");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["object"], json!({"id": 1, "username": "Alex"}));
}

#[test]
fn sync_post_reports_stored_with_type_and_version() {
    let server = Server::start("samples/library");
    let answer = server.post_sync(&json!({"id": 7, "username": "Sync"}));
    assert!(is_uuid(answer["id"].as_str().unwrap_or("")), "{answer}");
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(answer["type"], "User", "{answer}");
    assert_eq!(answer["error"], Value::Null, "{answer}");
    let version = as_version(&answer["version"], "sync answer");

    // Stored before the answer: readable at once, with the version the answer named.
    let users = server.data("User", "id=7");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(as_version(&users[0]["version"], "GET /data"), version);
    assert_eq!(users[0]["object"]["username"], "Sync");
}

#[test]
fn unknown_object_waits_in_repair_queue_with_its_payload() {
    let server = Server::start("samples/library");
    let obj = json!({"title": "not a library object", "pages": 12});
    let answer = server.post_sync(&obj);
    assert_eq!(answer["status"], "repair", "{answer}");
    assert_eq!(answer["routing_key"], "unknown_type", "{answer}");
    let err = answer["error"].as_str().unwrap_or("");
    assert!(!err.is_empty(), "sync answer names the error: {answer}");
    let id = answer["id"].as_str().expect("answer id").to_string();

    // An asynchronous one lands there too.
    let obj2 = json!({"title": "another stranger"});
    let id2 = post_async(&server, &obj2);

    let entries = wait_until(Duration::from_secs(30), "both unknown objects to be processed (error set)", || {
        let e = server.repair_entries("");
        let done = e.iter().filter(|x| x["error"].is_string()).count();
        (done == 2).then_some(e)
    });
    assert_eq!(entries.len(), 2, "only the two unknown objects: {entries:?}");
    let entry =
        entries.iter().find(|e| e["id"] == id.as_str()).unwrap_or_else(|| panic!("entry {id} listed: {entries:?}"));
    assert_eq!(entry["routing_key"], "unknown_type");
    assert_eq!(entry["source"], "http");
    assert_eq!(entry["payload"], obj);
    assert!(entry["attempts"].as_u64().unwrap_or(0) >= 1, "{entry}");
    assert!(entry["created_at"].is_string() && entry["updated_at"].is_string());

    // Newest first.
    assert_eq!(entries[0]["id"], id2.as_str(), "newest entry first: {entries:?}");

    let r = server.get(&format!("/admin/api/repair/{id2}"));
    r.assert_status(200, "GET /admin/api/repair/{id}");
    let e2 = r.json();
    assert_eq!(e2["payload"], obj2);
    assert_eq!(e2["routing_key"], "unknown_type");
    assert!(!e2["error"].as_str().unwrap_or("").is_empty(), "{e2}");

    server.get("/admin/api/repair/00000000-0000-4000-8000-000000000000").assert_status(404, "GET unknown repair entry");

    // Processing ended in failure: the entries say so (checked last, the other checks first).
    for e in &entries {
        assert_eq!(e["status"], "New", "TDG status of an entry that failed once: {e}");
    }
}

#[test]
fn health_is_open_and_everything_else_needs_the_token() {
    let server = Server::start("samples/library");
    let anon = server.unauthorized();
    let r = anon.get("/health");
    r.assert_status(200, "GET /health without token");
    assert_eq!(r.json()["status"], "ready");

    let wrong = server.with_token("not-the-token");
    let user = json!({"id": 77, "username": "Mallory"});
    let fake = "00000000-0000-4000-8000-000000000000";
    for (label, client) in [("no token", &anon), ("wrong token", &wrong)] {
        let calls = [
            ("POST /http", client.post_json("/http", &user)),
            ("POST /http?sync", client.post_json("/http?sync=true", &user)),
            ("GET /data", client.get("/data/User?id=1")),
            ("GET repair", client.get("/admin/api/repair")),
            ("GET repair id", client.get(&format!("/admin/api/repair/{fake}"))),
            ("POST retry", client.post_empty(&format!("/admin/api/repair/{fake}/retry"))),
            ("POST retry-all", client.post_empty("/admin/api/repair/retry-all")),
            ("DELETE id", client.delete(&format!("/admin/api/repair/{fake}"))),
            ("DELETE all", client.delete("/admin/api/repair")),
            ("GET /metrics", client.get("/metrics")),
        ];
        for (what, r) in calls {
            r.assert_status(401, &format!("{what} with {label}"));
            assert!(!r.error_text().is_empty(), "{what} with {label}: 401 names the reason");
        }
    }
    // A bearer scheme with the real token in another header shape is still refused.
    let r = status_with_basic_scheme(&server);
    assert_eq!(r, 401, "Authorization: Basic <token> is refused");

    // Nothing from the refused requests was accepted.
    let ok = server.post_sync(&json!({"id": 1, "username": "real"}));
    assert_eq!(ok["status"], "stored");
    assert!(server.data("User", "id=77").is_empty(), "refused User 77 not stored");
    assert!(server.repair_entries("").is_empty(), "repair queue empty");
}

/// Sends the right token with the wrong scheme; returns the status.
fn status_with_basic_scheme(server: &Server) -> u16 {
    let r = ferrogrid_tests::raw_request(
        &server.addr(),
        "GET",
        "/data/User?id=1",
        &[("Authorization", &format!("Basic {}", server.token()))],
        Vec::new(),
    )
    .expect("raw GET");
    r.status
}

#[test]
fn metrics_count_received_and_stored_objects() {
    let server = Server::start("samples/library");
    let read = |name: &str, labels: &[(&str, &str)]| {
        let r = server.get("/metrics");
        r.assert_status(200, "GET /metrics");
        metric_value(&r.body, name, labels).unwrap_or(0.0)
    };
    let received = "ferrogrid_objects_received_total";
    let stored = "ferrogrid_objects_stored_total";
    let before_in = read(received, &[("input", "http")]);
    let before_st = read(stored, &[("type", "User")]);
    for id in 1..=3 {
        let a = server.post_sync(&json!({"id": id, "username": "m"}));
        assert_eq!(a["status"], "stored");
    }
    assert_eq!(read(received, &[("input", "http")]), before_in + 3.0);
    assert_eq!(read(stored, &[("type", "User")]), before_st + 3.0);

    let text = server.get("/metrics").body;
    assert!(
        metric_value(&text, "ferrogrid_repair_queue_depth", &[]).is_some(),
        "ferrogrid_repair_queue_depth is exported:\n{text}"
    );
    // Ferrogrid's own series carry its prefix; the process's are the standard `process_*` ones
    // every Prometheus exporter has (dashboards expect those names).
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("ferrogrid_") || line.starts_with("process_"), "metric without prefix: {line}");
    }
    assert!(metric_value(&text, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0), "{text}");
}

#[test]
fn check_accepts_the_library_sample() {
    let out = ferrogrid_command().arg("check").arg(sample("library")).output().expect("run ferrogrid check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check samples/library: {} \nstdout: {stdout}\nstderr: {stderr}", out.status);
    assert!(stdout.contains("ok"), "prints ok: {stdout}");
}

/// A config with two mistakes: an unknown key and a pipeline naming a function that does not exist.
const BROKEN_CONFIG: &str = r#"
types:
  __file: model.avsc

functions:
  classify:
    __file: classify.rhai

pipelines:
  classify:
    - classify
    - no_such_function

input_processor:
  classifiers:
    - name: classify
      pipeline: classify
  storage:
    - key: User
      type: User
      colour: blue
"#;

const USER_MODEL: &str = r#"[
  {"name": "User", "type": "record", "indexes": ["id"],
   "fields": [{"name": "id", "type": "long"}, {"name": "username", "type": "string"}]}
]"#;

#[test]
fn check_rejects_unknown_key_and_dangling_function_naming_both() {
    let dir = ConfigDir::new(
        BROKEN_CONFIG,
        &[("model.avsc", USER_MODEL), ("classify.rhai", "param.routing_key = \"User\";\nparam\n")],
    )
    .expect("config dir");
    let out = ferrogrid_command().arg("check").arg(dir.path()).output().expect("run ferrogrid check");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "check must fail: {text}");
    // `input_processor.storage[0].colour` or `input_processor.storage[0]: ... 'colour' ...`.
    assert!(
        text.contains("input_processor.storage[0]") && text.contains("colour"),
        "names the unknown key and its path: {text}"
    );
    assert!(
        text.contains("pipelines.classify[1]") && text.contains("no_such_function"),
        "names the dangling reference and its path: {text}"
    );
}

#[test]
fn sigterm_exits_zero_and_data_survives_restart() {
    let mut server = Server::start("samples/library");
    let token = server.token().to_string();
    let a = server.post_sync(&json!({"id": 42, "username": "Durable"}));
    assert_eq!(a["status"], "stored");
    let id = post_async(&server, &json!({"id": 43, "username": "Async before stop"}));

    let status = server.stop();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");

    server.restart();
    assert_eq!(server.token(), token, "the admin token is kept across restarts");
    let users = server.data("User", "id=42");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["object"]["username"], "Durable");
    // The accepted (200) asynchronous object is not lost: stored, or still queued for repair.
    let stored = wait_until(Duration::from_secs(30), "User 43 stored after restart", || {
        if !server.data("User", "id=43").is_empty() {
            return Some(true);
        }
        let r = server.get(&format!("/admin/api/repair/{id}"));
        (r.status == 200 && r.json()["error"].is_string()).then_some(false)
    });
    assert!(stored, "User 43 accepted before SIGTERM failed in the repair queue, not stored");
}

#[test]
fn admin_token_file_is_private_and_kept() {
    let mut server = Server::start("samples/quickstart");
    let path = server.data_dir().join("admin.token");
    let meta = std::fs::metadata(&path).expect("admin.token exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "admin.token mode");
    let raw = std::fs::read_to_string(&path).expect("read token");
    assert!(raw.ends_with('\n'), "token file ends with a newline");
    assert_eq!(raw.trim_end().lines().count(), 1, "token alone in the file");
    server.kill();
    server.restart();
    assert_eq!(std::fs::read_to_string(&path).expect("read token"), raw, "a later start keeps the token");
}

/// TDG's own spellings and sections (TDG 1.x, 2.16.1): what Ferrogrid reads differently or not
/// at all is a warning, not an error.
const TDG_CONFIG: &str = r#"
types:
  __file: model.avsc
functions:
  classify: {__file: classify.rhai}
  lookup: {__file: lookup.rhai}
  count_users: {__file: count_users.rhai}
  one: {__file: one.rhai}
  plus: {__file: plus.rhai}
pipelines:
  classify: [classify]
  lookup: [lookup]
connector:
  input:
    - {name: http, type: http}
  output:
    - name: to_external_http_service
      type: http
      url: http://localhost:8021
      format: json
      options: {timeout: 5, keepalive_idle: 60, keepalive_interval: 60, verify_host: true, verify_peer: true}
      headers: {hello: world}
input_processor:
  classifiers:
    - {name: classify, pipeline: classify}
  storage:
    - {key: User, type: User}
services:
  two_users: {function: lookup, return_type: long}
  count_users: {function: count_users, return_type: long}
hard-limits:
  scanned: 2000
  returned: 3
force_yield_limits: 1000
graphql_query_chache_size: 3000
vshard-timeout: 2
gc: {forced: true, period_sec: 2, steps: 20}
tracing: {base_url: "localhost:9411/api/v2/spans", api_method: POST, report_interval: 5, spans_limit: 100}
maintenance: {clock_delta_threshold_sec: 5}
welcome-message: Hello
"#;

#[test]
fn a_tdg_configuration_loads_with_warnings_for_what_does_not_apply() {
    let lookup =
        "repository::find(\"User\", [], #{mode: \"write\", prefer_replica: true, balance: true, first: 2}).len()";
    let model = r#"[{"name": "User", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
      "fields": [{"name": "id", "type": "long"}, {"name": "username", "type": "string"}]}]"#;
    let files = [
        ("model.avsc", model),
        ("classify.rhai", "param.routing_key = \"User\";\nparam\n"),
        ("lookup.rhai", lookup),
        // Every user, past `returned` (3), in pages: TDG's map_reduce with named functions.
        (
            "count_users.rhai",
            "repository::map_reduce(\"User\", [], (), \"one\", \"plus\", (), #{combine_initial_state: 0})",
        ),
        ("one.rhai", "1"),
        ("plus.rhai", "param.state + param.value"),
    ];
    let dir = ConfigDir::new(TDG_CONFIG, &files).expect("config dir");
    let out = ferrogrid_command().arg("check").arg(dir.path()).output().expect("run ferrogrid check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for section in [
        "force_yield_limits",
        "graphql_query_chache_size",
        "vshard-timeout",
        "gc",
        "tracing",
        "maintenance",
        "welcome-message",
    ] {
        assert!(stdout.contains(&format!("warning: {section}: ignored: ")), "{section}: {stdout}");
    }
    assert!(
        stdout.contains("warning: functions.lookup: repository option(s) prefer_replica, balance, mode"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");

    // It runs: hard-limits is hard_limits (3 returned at most), the routing options are accepted.
    let server = Server::start_with_config(TDG_CONFIG, &files);
    for id in 1..=4 {
        server.post_sync(&json!({"id": id, "username": format!("u{id}")}));
    }
    let limits = server.graphql_admin("{ config { hard_limits { scanned returned } } }", json!({}));
    assert_eq!(limits["data"]["config"]["hard_limits"]["returned"], 3, "{limits}");
    let r = server.graphql("{ User(first: 10) { id } }", json!({}));
    assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("returned"), "{r}");
    assert_eq!(server.graphql("{ two_users }", json!({}))["data"]["two_users"], 2);
    assert_eq!(server.graphql("{ count_users }", json!({}))["data"]["count_users"], 4);
}
