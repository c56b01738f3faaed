//! Bad input on `POST /http`: each kind gets its documented status and a readable error
//! (`{"error": "..."}`), nothing refused is stored or queued, and accepted neighbours are not lost.

use std::path::Path;

use ferrogrid_tests::{raw_request, sample, Resp, Server};
use serde_json::{json, Value};

/// Small body limit configured for the size tests.
const SMALL_LIMIT: usize = 64 * 1024;

/// The library sample with `max_body_size: SMALL_LIMIT` on its HTTP input.
fn start_library_with_small_limit() -> Server {
    let dir = sample("library");
    let config = std::fs::read_to_string(dir.join("config.yml")).expect("library config.yml");
    let marker = "      pipeline: router\n";
    assert!(config.contains(marker), "library config has the http input pipeline line");
    let config = config.replacen(marker, &format!("{marker}      max_body_size: {SMALL_LIMIT}\n"), 1);
    let files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("read samples/library")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.file_name() != Some("config.yml".as_ref()))
        .map(|p| (file_name(&p), std::fs::read_to_string(&p).expect("read sample file")))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    Server::start_with_config(&config, &files)
}

fn file_name(p: &Path) -> String {
    p.file_name().and_then(|n| n.to_str()).expect("utf-8 file name").to_string()
}

/// A User whose serialized JSON is exactly `size` bytes long.
fn user_of_size(id: i64, size: usize) -> Vec<u8> {
    let empty = serde_json::to_vec(&json!({"id": id, "username": ""})).expect("json");
    assert!(size >= empty.len());
    let name = "x".repeat(size - empty.len());
    let bytes = serde_json::to_vec(&json!({"id": id, "username": name})).expect("json");
    assert_eq!(bytes.len(), size);
    bytes
}

/// An object nested `depth` levels deep (the outer object is level 1).
fn nested(depth: usize) -> Value {
    let mut v = json!({"leaf": true});
    for _ in 1..depth {
        v = json!({"a": v});
    }
    v
}

/// Asserts a refusal: the status, a JSON `{"error"}` body containing every `needle`.
fn assert_refused(r: &Resp, status: u16, needles: &[&str], what: &str) {
    r.assert_status(status, what);
    let text = r.error_text();
    for n in needles {
        assert!(text.contains(n), "{what}: error {text:?} should mention {n:?}");
    }
}

/// After refusals: a sentinel User is stored (so the pipeline is alive), none of `refused_ids`
/// is stored, and the repair queue holds exactly `expected_in_repair` entries.
fn assert_nothing_kept(server: &Server, refused_ids: &[i64], expected_in_repair: usize) {
    let a = server.post_sync(&json!({"id": 999_999, "username": "sentinel"}));
    assert_eq!(a["status"], "stored", "sentinel: {a}");
    for id in refused_ids {
        assert!(server.data("User", &format!("id={id}")).is_empty(), "refused User {id} was stored");
    }
    let entries = server.repair_entries("");
    assert_eq!(entries.len(), expected_in_repair, "repair queue after refusals: {entries:?}");
}

#[test]
fn invalid_json_is_400_with_line_and_column() {
    let server = Server::start("samples/library");
    let body = b"{\n  \"id\": 1,\n  \"username\": \n}";
    let r = server.post_raw("/http", "application/json", body);
    assert_refused(&r, 400, &["line 4 column 1"], "invalid JSON");
    let r = server.post_raw("/http?sync=true", "application/json", b"{\"id\": 2,");
    assert_refused(&r, 400, &["line 1 column"], "truncated JSON");
    let r = server.post_raw("/http", "application/json", b"");
    assert_refused(&r, 400, &[], "empty body");
    assert_nothing_kept(&server, &[1, 2], 0);
}

#[test]
fn json_that_is_not_an_object_is_400() {
    let server = Server::start("samples/library");
    for body in ["[1, 2]", "[{\"id\": 3, \"username\": \"x\"}]", "42", "\"text\"", "null", "true"] {
        let r = server.post_raw("/http", "application/json", body.as_bytes());
        assert_refused(&r, 400, &[], &format!("body {body}"));
    }
    assert_nothing_kept(&server, &[3], 0);
}

#[test]
fn nesting_deeper_than_128_is_400_and_depth_100_is_kept() {
    let mut server = Server::start("samples/library");
    let r = server.post_json("/http", &nested(129));
    assert_refused(&r, 400, &["128"], "depth 129");
    let r = server.post_json("/http", &nested(1000));
    assert_refused(&r, 400, &[], "depth 1000");

    // Accepted: not a library object, so it waits in the repair queue, whole.
    let deep = nested(100);
    let r = server.post_json("/http", &deep);
    r.assert_status(200, "depth 100");
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_nothing_kept(&server, &[], 1);
    let e = server.get(&format!("/admin/api/repair/{id}"));
    e.assert_status(200, "GET the depth-100 entry");
    assert_eq!(e.json()["payload"], deep, "the deep payload is kept whole");

    // The limit itself is accepted and kept whole; its repair-queue entry is deeper than
    // serde_json's own limit (128), and is still listed, read and retried after a SIGKILL.
    let deepest = nested(128);
    let r = server.post_json("/http?sync=true", &deepest);
    r.assert_status(200, "depth 128 (the limit itself)");
    assert_eq!(r.json()["routing_key"], "unknown_type", "{}", r.body);
    let deepest_id = r.json()["id"].as_str().expect("id").to_string();
    server.restart();
    let listed: Vec<Value> = server.repair_entries("").iter().map(|e| e["id"].clone()).collect();
    assert!(listed.contains(&json!(deepest_id)) && listed.contains(&json!(id)), "{listed:?}");
    let e = server.get(&format!("/admin/api/repair/{deepest_id}"));
    e.assert_status(200, "GET the depth-128 entry after a restart");
    assert_eq!(e.json()["payload"], deepest, "the deepest payload is kept whole");
    let r = server.post_empty(&format!("/admin/api/repair/{deepest_id}/retry"));
    r.assert_status(200, "retry the depth-128 entry");
}

#[test]
fn body_over_configured_max_body_size_is_413() {
    let server = start_library_with_small_limit();
    let addr = server.addr();
    let auth = format!("Bearer {}", server.token());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];

    let over = raw_request(&addr, "POST", "/http", &headers, user_of_size(1, SMALL_LIMIT + 1))
        .expect("an answer to the oversized body");
    assert_refused(&over, 413, &[], "body of limit + 1 bytes");
    let far_over =
        raw_request(&addr, "POST", "/http", &headers, user_of_size(2, 4 << 20)).expect("an answer to the 4 MiB body");
    assert_refused(&far_over, 413, &[], "body of 4 MiB");

    // Exactly at the limit: accepted and stored whole.
    let at_limit = user_of_size(3, SMALL_LIMIT);
    let r = server.post_raw("/http?sync=true", "application/json", &at_limit);
    r.assert_status(200, "body of exactly max_body_size");
    assert_eq!(r.json()["status"], "stored", "{}", r.body);
    let users = server.data("User", "id=3");
    assert_eq!(users.len(), 1);
    let mut sent: Value = serde_json::from_slice(&at_limit).expect("json");
    sent["phones"] = Value::Null; // the model's optional field
    assert_eq!(users[0]["object"], sent, "stored whole");

    assert_nothing_kept(&server, &[1, 2], 0);
}

#[test]
fn body_over_default_16_mib_is_413() {
    let server = Server::start("samples/library");
    let auth = format!("Bearer {}", server.token());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = raw_request(&server.addr(), "POST", "/http", &headers, user_of_size(1, 17 << 20))
        .expect("an answer to the 17 MiB body");
    assert_refused(&r, 413, &[], "17 MiB body");
    assert_nothing_kept(&server, &[1], 0);
}

#[test]
fn wrong_content_type_is_415_and_charset_is_fine() {
    let server = Server::start("samples/library");
    let body = serde_json::to_vec(&json!({"id": 5, "username": "typed"})).expect("json");
    for ct in ["text/plain", "application/xml", "application/x-www-form-urlencoded"] {
        let r = server.post_raw("/http", ct, &body);
        assert_refused(&r, 415, &[], &format!("Content-Type {ct}"));
    }
    let r = server.client().try_post_raw("/http", None, &body).expect("POST without Content-Type");
    assert_refused(&r, 415, &[], "no Content-Type");
    assert_nothing_kept(&server, &[5], 0);

    let body = serde_json::to_vec(&json!({"id": 6, "username": "charset"})).expect("json");
    let r = server.post_raw("/http?sync=true", "application/json; charset=utf-8", &body);
    r.assert_status(200, "application/json; charset=utf-8");
    assert_eq!(r.json()["status"], "stored", "{}", r.body);
}
