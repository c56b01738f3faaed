//! Applying configurations to a running engine (issue 14): uploads as zip or tar.gz, the
//! operator's loop without a restart, applies under load, rollbacks, refusals that change
//! nothing, unsafe archives, and `ferrogrid run` with and without a folder.

use ferrogrid_tests::{binary_path, folder_files, tar_gz, wait_until, ConfigDir, Resp, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A zip of `(name, bytes)` entries, names written as given (evil ones too).
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

fn upload(server: &Server, dir: &ConfigDir) -> Resp {
    server.apply_folder(dir.path())
}

fn active_version(server: &Server) -> u64 {
    server.get("/admin/api/config").json()["active"].as_u64().expect("an active version")
}

/// A small configuration whose two scripts both stamp the objects with `tag`: the input step
/// sets `tag_in`, the routing step `tag_route`; an object processed by one version from end to
/// end has both equal.
fn stamped(tag: &str) -> (String, Vec<(&'static str, String)>) {
    let yaml = r#"
types: {__file: model.avsc}
functions:
  stamp_in: {__file: stamp_in.rhai}
  stamp_route: {__file: stamp_route.rhai}
pipelines:
  stamp_in: [stamp_in]
  stamp_route: [stamp_route]
connector:
  input:
    - {name: http, type: http, pipeline: stamp_in}
  routing:
    - {key: item_in, output: to_ip}
  output:
    - {name: to_ip, type: input_processor}
input_processor:
  routing:
    - {key: item_in, pipeline: stamp_route}
  storage:
    - {key: item, type: Item}
"#;
    let model = r#"[{"name": "Item", "type": "record", "logicalType": "Aggregate",
      "fields": [{"name": "id", "type": "long"}, {"name": "tag_in", "type": "string"},
                 {"name": "tag_route", "type": "string"}],
      "indexes": ["id"]}]"#;
    let files = vec![
        ("model.avsc", model.to_string()),
        ("stamp_in.rhai", format!("#{{obj: #{{id: param.id, tag_in: \"{tag}\"}}, routing_key: \"item_in\"}}\n")),
        (
            "stamp_route.rhai",
            format!("let o = param.obj;\no.tag_route = \"{tag}\";\n#{{obj: o, routing_key: \"item\"}}\n"),
        ),
    ];
    (yaml.to_string(), files)
}

fn stamped_dir(tag: &str) -> ConfigDir {
    let (yaml, files) = stamped(tag);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    ConfigDir::new(&yaml, &files).expect("config dir")
}

fn start_stamped(tag: &str) -> Server {
    let (yaml, files) = stamped(tag);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    Server::start_with_config(&yaml, &files)
}

/// Every stored version of every Item, through the pages of `/data/Item?all_versions=true`.
fn all_items(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(c) => format!("/data/Item?all_versions=true&first=100&after={c}"),
            None => "/data/Item?all_versions=true&first=100".to_string(),
        };
        let page = server.get(&query);
        page.assert_status(200, &query);
        let items = page.json().as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return out;
        }
        after = items.last().and_then(|i| i["cursor"].as_str()).map(str::to_string);
        out.extend(items);
    }
}

#[test]
fn a_fixed_script_is_applied_with_ferrogrid_apply_and_the_repair_queue_retried_without_a_restart() {
    let config = ConfigDir::sample_copy("library");
    let good = config.read("process_book.rhai");
    config.write("process_book.rhai", "throw \"the bug of the day\";\n");
    let server = Server::start(config.path());
    let pid = server.pid();
    for id in 1..=3 {
        let answer = server.post_sync(&json!({"id": id, "book_name": format!("B{id}"), "author": "A", "year": 2000}));
        assert_eq!(answer["status"], "repair", "{answer}");
    }

    // The operator fixes the script and applies the folder from the command line.
    config.write("process_book.rhai", &good);
    let token_file = server.data_dir().join("admin.token");
    let out = std::process::Command::new(binary_path())
        .args(["apply", &config.path().display().to_string(), "--url", &server.base_url(), "--token-file"])
        .arg(&token_file)
        .output()
        .expect("ferrogrid apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ferrogrid apply: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let applied: Value = serde_json::from_str(&stdout).expect("the answer is JSON");
    assert_eq!(applied["version"], 2, "{applied}");
    assert_eq!(applied["changed"]["modified"], json!(["process_book.rhai"]), "{applied}");

    server.post_empty("/admin/api/repair/retry-all").assert_status(200, "retry-all");
    let books = wait_until(Duration::from_secs(30), "the three books to be stored", || {
        let books = server.data("Book", "");
        (books.len() == 3).then_some(books)
    });
    assert!(books.iter().all(|b| b["object"]["author"] == "A"), "{books:?}");
    assert_eq!(server.pid(), pid, "the same process: no restart");
    assert_eq!(server.starts(), 1);

    // `ferrogrid pull` writes the active configuration back into a folder.
    let pulled = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(binary_path())
        .args(["pull", &pulled.path().display().to_string(), "--url", &server.base_url(), "--token-file"])
        .arg(&token_file)
        .output()
        .expect("ferrogrid pull");
    assert!(out.status.success(), "ferrogrid pull: {}", String::from_utf8_lossy(&out.stderr));
    let back = std::fs::read_to_string(pulled.path().join("process_book.rhai")).expect("pulled script");
    assert_eq!(back, good);
}

#[test]
fn five_applies_under_load_store_every_acknowledged_object_once_by_one_version() {
    let server = start_stamped("v1");
    let base = server.base_url();
    let token = server.token().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let statuses: Arc<Mutex<HashMap<u16, u64>>> = Arc::default();
    let clients: Vec<_> = (0..8i64)
        .map(|c| {
            let (stop, acked, statuses) = (stop.clone(), acked.clone(), statuses.clone());
            let client = ferrogrid_tests::Client::new(&base, Some(&token));
            std::thread::spawn(move || {
                let mut id = c * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    // An object refused with 503 (back-pressure) is posted again until taken.
                    loop {
                        let status = match client.try_post_json("/http", &json!({"id": id})) {
                            Ok(r) => r.status,
                            Err(e) => panic!("POST /http: transport error: {e}"),
                        };
                        *statuses.lock().expect("statuses").entry(status).or_default() += 1;
                        if status == 200 {
                            acked.lock().expect("acked").push(id);
                            break;
                        }
                        assert_eq!(status, 503, "only back-pressure may refuse an object");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let began = Instant::now();
    let mut versions = Vec::new();
    for k in 2..=6 {
        std::thread::sleep(Duration::from_secs(3));
        let dir = stamped_dir(&format!("v{k}"));
        let answer = upload(&server, &dir);
        answer.assert_status(200, "apply under load");
        versions.push(answer.json()["version"].as_u64().expect("version"));
    }
    while began.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    assert_eq!(versions, [2, 3, 4, 5, 6]);
    let acked = acked.lock().expect("acked").clone();
    let statuses = statuses.lock().expect("statuses").clone();
    assert!(statuses.keys().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(acked.len() > 100, "the clients got objects in: {}", acked.len());

    let items = wait_until(Duration::from_secs(120), "every acknowledged object to be stored", || {
        let items = all_items(&server);
        (items.len() >= acked.len()).then_some(items)
    });
    let mut seen: HashMap<i64, u32> = HashMap::new();
    let mut tags: HashMap<String, u64> = HashMap::new();
    for item in &items {
        let obj = &item["object"];
        *seen.entry(obj["id"].as_i64().expect("id")).or_default() += 1;
        assert_eq!(obj["tag_in"], obj["tag_route"], "processed by one version from end to end: {obj}");
        *tags.entry(obj["tag_in"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    assert_eq!(items.len(), acked.len(), "stored exactly once each");
    for id in &acked {
        assert_eq!(seen.get(id), Some(&1), "object {id} stored once");
    }
    assert!(tags.len() >= 5, "objects went through most of the versions: {tags:?}");
    println!("applies under load: {} objects, statuses {statuses:?}, by version {tags:?}", acked.len());
}

#[test]
fn rollback_identical_reapply_and_restarts_with_and_without_a_folder() {
    let config = stamped_dir("v1");
    let mut server = Server::start(config.path());
    assert_eq!(active_version(&server), 1);
    let store = |server: &Server, id: i64| {
        let answer = server.post_sync(&json!({"id": id}));
        assert_eq!(answer["status"], "stored", "{answer}");
        server.data("Item", &format!("id={id}"))[0]["object"]["tag_in"].clone()
    };
    assert_eq!(store(&server, 1), "v1");

    // The same folder again: a no-op that says so.
    let again = upload(&server, &config);
    again.assert_status(200, "identical re-apply");
    assert_eq!(again.json()["unchanged"], true, "{}", again.body);
    assert_eq!(again.json()["version"], 1);

    // v2 from a zip whose files sit in one top folder.
    let v2 = stamped_dir("v2");
    let files = folder_files(v2.path());
    let entries: Vec<(String, &[u8])> = files.iter().map(|(n, b)| (format!("conf/{n}"), b.as_slice())).collect();
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let answer = server.put_raw("/admin/api/config", "application/zip", &zip_of(&entries));
    answer.assert_status(200, "zip upload");
    assert_eq!(answer.json()["version"], 2);
    assert_eq!(store(&server, 2), "v2");
    // Every stored version records the configuration version it was written under.
    assert_eq!(server.data("Item", "id=1")[0]["config_version"], 1);
    assert_eq!(server.data("Item", "id=2")[0]["config_version"], 2);

    // A dry run of a rollback changes nothing; the rollback itself is version 3.
    let dry = server.post_empty("/admin/api/config/rollback/1?dry_run=true");
    dry.assert_status(200, "dry run");
    assert_eq!(active_version(&server), 2);
    let back = server.post_empty("/admin/api/config/rollback/1");
    back.assert_status(200, "rollback");
    assert_eq!(back.json()["version"], 3, "{}", back.body);
    assert_eq!(store(&server, 3), "v1");
    let listed = server.get("/admin/api/config").json();
    assert_eq!(listed["versions"][0]["how"], "rollback to 1", "{listed}");
    let one = server.get("/admin/api/config/1").json();
    let three = server.get("/admin/api/config/3").json();
    assert_eq!(one["files"], three["files"]);
    assert_eq!(one["info"]["checksum"], three["info"]["checksum"]);
    server.post_empty("/admin/api/config/rollback/99").assert_status(404, "no such version");
    let bad = server.post_empty("/admin/api/config/rollback/latest");
    bad.assert_status(400, "not a version");
    assert!(bad.error_text().contains("\"latest\" is not a version number"), "{}", bad.body);
    // Who applied each: the admin token here (a signed-in user's would read `user NAME`).
    let by = listed["versions"][0]["applied_by"].as_str().unwrap_or_default().to_string();
    assert!(by.starts_with("token admin from "), "{listed}");

    // Back to v2, then a restart without a folder runs the active version (v2) ...
    server.post_empty("/admin/api/config/rollback/2").assert_status(200, "rollback to 2");
    assert_eq!(active_version(&server), 4);
    server.run_active_config(true);
    server.restart();
    assert_eq!(active_version(&server), 4);
    assert_eq!(store(&server, 4), "v2");
    // ... and a restart with the (v1) folder records it as a new version.
    server.run_active_config(false);
    server.restart();
    assert_eq!(active_version(&server), 5);
    assert_eq!(server.get("/admin/api/config").json()["versions"][0]["how"], "start");
    assert_eq!(store(&server, 5), "v1");
}

#[test]
fn refused_applies_change_nothing_and_name_every_problem() {
    let config = stamped_dir("v1");
    let server = Server::start(config.path());
    let refused = |dir: &ConfigDir, what: &str| -> Value {
        let answer = upload(&server, dir);
        answer.assert_status(422, what);
        answer.json()
    };

    // A script that does not compile and a dangling pipeline reference, in one answer.
    let broken = stamped_dir("v2");
    broken.write("stamp_route.rhai", "let o = ;\n");
    let yaml = std::fs::read_to_string(broken.path().join("config.yml")).expect("yaml");
    broken.write("config.yml", &yaml.replace("pipeline: stamp_in}", "pipeline: ghost}"));
    let problems = refused(&broken, "broken config")["problems"].to_string();
    assert!(problems.contains("connector.input[0].pipeline"), "{problems}");

    let broken = stamped_dir("v2");
    broken.write("stamp_route.rhai", "let o = ;\n");
    let problems = refused(&broken, "broken script")["problems"].to_string();
    assert!(problems.contains("functions.stamp_route"), "{problems}");

    // The engine version pin.
    let pinned = stamped_dir("v2");
    pinned.write("config.yml", &format!("ferrogrid-version: \">=99\"\n{yaml}"));
    let problems = refused(&pinned, "version pin")["problems"].to_string();
    assert!(problems.contains("ferrogrid-version"), "{problems}");

    // The primary index of a stored type cannot change.
    let answer = server.post_sync(&json!({"id": 1}));
    assert_eq!(answer["status"], "stored", "{answer}");
    let rekeyed = stamped_dir("v2");
    let model = rekeyed.read("model.avsc");
    rekeyed.write("model.avsc", &model.replace(r#""indexes": ["id"]"#, r#""indexes": ["tag_in"]"#));
    let problems = refused(&rekeyed, "primary index change")["problems"].to_string();
    assert!(problems.contains("Item") && problems.contains("primary index"), "{problems}");

    // Unsafe or unreadable archives: 400 with the reason; other content types: 415.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a path with ..", zip_of(&[("config.yml", b"{}"), ("../evil.rhai", b"x")]), ".."),
        ("an absolute path", zip_of(&[("/etc/evil.yml", b"{}")]), "/etc/evil.yml"),
        ("a duplicate name", zip_of(&[("config.yml", b"{}"), ("./config.yml", b"{}")]), "config.yml"),
        ("not an archive", b"hello".to_vec(), "archive"),
        ("a non-UTF-8 YAML file", zip_of(&[("config.yml", &[0xff, 0xfe, 0x00])]), "config.yml"),
    ];
    for (what, bytes, named) in cases {
        let answer = server.put_raw("/admin/api/config", "application/zip", &bytes);
        answer.assert_status(400, what);
        assert!(answer.body.contains(named), "{what}: {}", answer.body);
    }
    let mut many = BTreeMap::new();
    for i in 0..1001 {
        many.insert(format!("f{i}.txt"), b"x".to_vec());
    }
    let answer = server.put_raw("/admin/api/config", "application/gzip", &tar_gz(&many, None));
    answer.assert_status(400, "too many files");
    let zeros = vec![0u8; 200 * 1024 * 1024];
    let mut bomb = BTreeMap::new();
    bomb.insert("config.yml".to_string(), zeros);
    let answer = server.put_raw("/admin/api/config", "application/gzip", &tar_gz(&bomb, None));
    answer.assert_status(400, "a gzip bomb");
    server.put_raw("/admin/api/config", "text/plain", b"types: []").assert_status(415, "plain text");

    // Nothing changed: still version 1, objects still stamped v1.
    assert_eq!(active_version(&server), 1);
    assert_eq!(server.get("/admin/api/config").json()["versions"].as_array().map(Vec::len), Some(1));
    let answer = server.post_sync(&json!({"id": 2}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(server.data("Item", "id=2")[0]["object"]["tag_in"], "v1");
}

#[test]
fn locked_sections_cannot_be_changed_by_an_upload_but_can_by_a_start() {
    let (yaml, files) = stamped("v1");
    let locked_yaml = format!("locked_sections: [functions]\n{yaml}");
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let config = ConfigDir::new(&locked_yaml, &files).expect("config");
    let mut server = Server::start(config.path());

    let changed = stamped_dir("v2");
    changed.write("config.yml", &locked_yaml);
    let answer = upload(&server, &changed);
    answer.assert_status(422, "a locked section changed");
    let problems = answer.json()["problems"].to_string();
    assert!(problems.contains("functions: the section is locked"), "{problems}");

    // Unlocking by upload is refused too; changing an unlocked section is fine.
    let unlocked = stamped_dir("v1");
    let answer = upload(&server, &unlocked);
    answer.assert_status(422, "unlocking by upload");
    assert!(answer.body.contains("locked_sections"), "{}", answer.body);
    let other = stamped_dir("v1");
    other.write("config.yml", &format!("{locked_yaml}\nhard_limits: {{returned: 500}}\n"));
    upload(&server, &other).assert_status(200, "an unlocked section");

    // The operator on the machine may: a start with the folder applies it.
    config.write("stamp_in.rhai", &changed.read("stamp_in.rhai"));
    server.restart();
    let answer = server.post_sync(&json!({"id": 7}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(server.data("Item", "id=7")[0]["object"]["tag_in"], "v2");
}

#[test]
fn an_apply_adds_an_index_and_queries_find_the_stored_objects() {
    let config = ConfigDir::sample_copy("library");
    let server = Server::start(config.path());
    for (id, author) in [(1, "A1"), (2, "A2"), (3, "A2")] {
        let answer = server.post_sync(&json!({"id": id, "book_name": "B", "author": author, "year": 1992}));
        assert_eq!(answer["status"], "stored", "{answer}");
    }
    let model = config.read("model.avsc");
    config
        .write("model.avsc", &model.replace(r#""indexes": ["id", "year"]"#, r#""indexes": ["id", "author", "year"]"#));
    let answer = upload(&server, &config);
    answer.assert_status(200, "apply with a new index");
    assert_eq!(answer.json()["migration"]["build"], json!(["Book.author"]), "{}", answer.body);
    let found = wait_until(Duration::from_secs(30), "the new index to answer", || {
        let r = server.get("/data/Book?author=A2");
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(found.as_array().map(Vec::len), Some(2), "{found}");
    assert_eq!(server.data("Book", "year=1992").len(), 3);
    // GraphQL answers with the new version's schema, too.
    let answer = server.graphql("{ Book(author: \"A2\") { id } }", json!({}));
    assert_eq!(answer["data"]["Book"].as_array().map(Vec::len), Some(2), "{answer}");
}

/// `ferrogrid run FOLDER` with a model the stored objects do not fit is refused as an upload is,
/// before anything in the store changes; the folder put right, it starts on the same data.
#[test]
fn a_start_with_a_model_the_stored_objects_do_not_fit_is_refused() {
    let config = stamped_dir("v1");
    let mut server = Server::start(config.path());
    assert_eq!(server.post_sync(&json!({"id": 1}))["status"], "stored");
    server.stop();
    let model = config.read("model.avsc");
    config.write(
        "model.avsc",
        &model.replace(
            r#"{"name": "tag_route", "type": "string"}]"#,
            r#"{"name": "tag_route", "type": "string"}, {"name": "isbn", "type": "string"}]"#,
        ),
    );
    let refused = format!("{:#}", server.try_restart().expect_err("a model the stored Items lack a field of"));
    assert!(refused.contains("Item.isbn") && refused.contains("1 stored object(s)"), "{refused}");
    config.write("model.avsc", &model);
    server.restart();
    assert_eq!(server.data("Item", "id=1").len(), 1);
}

#[test]
fn field_changes_are_checked_against_the_stored_objects() {
    let config = stamped_dir("v1");
    let server = Server::start(config.path());
    for id in 1..=7 {
        let answer = server.post_sync(&json!({"id": id}));
        assert_eq!(answer["status"], "stored", "{answer}");
    }
    let model = config.read("model.avsc");
    let with_fields = |fields: &str| {
        let dir = stamped_dir("v1");
        dir.write(
            "model.avsc",
            &model.replace(
                r#"{"name": "tag_route", "type": "string"}]"#,
                &format!(r#"{{"name": "tag_route", "type": "string"}}, {fields}]"#),
            ),
        );
        dir
    };

    // A required field without a default: every stored Item lacks it.
    let answer = upload(&server, &with_fields(r#"{"name": "isbn", "type": "string"}"#));
    answer.assert_status(422, "a new required field");
    let problems = answer.json()["problems"].to_string();
    assert!(problems.contains("Item.isbn"), "{problems}");
    assert!(problems.contains("7 stored object(s)") && problems.contains(r#"{\"id\":1}"#), "{problems}");

    // A type change the stored values do not satisfy.
    let retyped = stamped_dir("v1");
    retyped.write(
        "model.avsc",
        &model.replace(r#"{"name": "tag_in", "type": "string"}"#, r#"{"name": "tag_in", "type": "long"}"#),
    );
    let answer = upload(&server, &retyped);
    answer.assert_status(422, "string -> long");
    assert!(answer.body.contains("Item.tag_in"), "{}", answer.body);
    assert_eq!(active_version(&server), 1, "refused: nothing changed");

    // Compatible: an optional field, a field with a default; then widening int -> long.
    let compatible =
        with_fields(r#"{"name": "note", "type": ["null", "string"]}, {"name": "prio", "type": "int", "default": 0}"#);
    upload(&server, &compatible).assert_status(200, "optional and defaulted fields");
    let answer = server.post_sync(&json!({"id": 8}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(server.data("Item", "id=8")[0]["object"]["prio"], 0);
    let widened =
        with_fields(r#"{"name": "note", "type": ["null", "string"]}, {"name": "prio", "type": "long", "default": 0}"#);
    upload(&server, &widened).assert_status(200, "int -> long");
    assert_eq!(active_version(&server), 3);
}

#[test]
fn a_type_the_model_removes_is_kept_unlinked_until_truncated_or_dropped() {
    let config = stamped_dir("v1");
    let server = Server::start(config.path());
    for id in 1..=3 {
        let answer = server.post_sync(&json!({"id": id}));
        assert_eq!(answer["status"], "stored", "{answer}");
    }
    // The model renames Item to Thing: Item's objects are kept, unlinked.
    let renamed = stamped_dir("v2");
    renamed.write("model.avsc", &renamed.read("model.avsc").replace("\"Item\"", "\"Thing\""));
    renamed.write("config.yml", &renamed.read("config.yml").replace("type: Item", "type: Thing"));
    let answer = upload(&server, &renamed);
    answer.assert_status(200, "a model without Item");
    assert_eq!(answer.json()["migration"]["unlinked_types"], json!(["Item"]), "{}", answer.body);
    assert_eq!(answer.json()["migration"]["new_types"], json!(["Thing"]), "{}", answer.body);
    let listed = server.get("/admin/api/unlinked").json();
    assert_eq!(listed["items"], json!([{"type": "Item", "versions": 3}]), "{listed}");
    server.get("/data/Item").assert_status(404, "not a type of the model any more");
    // Brought back with a field its kept objects lack: refused, as for a type that stayed.
    let back = stamped_dir("v3");
    back.write(
        "model.avsc",
        &back.read("model.avsc").replace(
            r#"{"name": "tag_route", "type": "string"}]"#,
            r#"{"name": "tag_route", "type": "string"}, {"name": "isbn", "type": "string"}]"#,
        ),
    );
    let answer = upload(&server, &back);
    answer.assert_status(422, "Item back with a field its stored objects lack");
    let problems = answer.json()["problems"].to_string();
    assert!(problems.contains("Item.isbn") && problems.contains("3 stored object(s)"), "{problems}");

    server.post_empty("/admin/api/unlinked/Thing/truncate").assert_status(409, "Thing is in the model");
    server.post_empty("/admin/api/unlinked/Nope/truncate").assert_status(404, "no such type");
    server.post_empty("/admin/api/unlinked/Item/truncate").assert_status(200, "truncate");
    let listed = server.get("/admin/api/unlinked").json();
    assert_eq!(listed["items"], json!([{"type": "Item", "versions": 0}]), "{listed}");
    server.delete("/admin/api/unlinked/Item").assert_status(200, "drop");
    assert_eq!(server.get("/admin/api/unlinked").json()["items"], json!([]));

    // Bringing Item back starts it empty.
    upload(&server, &config).assert_status(200, "Item again");
    assert_eq!(server.data("Item", ""), Vec::<Value>::new());
}

#[test]
fn explicit_versions_from_http_and_graphql() {
    let server = start_stamped("v1");
    let post = |id: i64, query: &str| {
        let answer = server.post_json(&format!("/http?sync=true{query}"), &json!({"id": id}));
        answer.assert_status(200, "POST /http");
        answer.json()
    };
    let stored = post(1, "&version=1000");
    assert_eq!(stored["version"], 1000, "{stored}");
    // Older: into history; the current version stays.
    assert_eq!(post(1, "&version=500")["version"], 500);
    let current = server.data("Item", "id=1");
    assert_eq!(current[0]["version"], 1000);
    let all = server.data("Item", "id=1&all_versions=true");
    let versions: Vec<u64> = all.iter().filter_map(|i| i["version"].as_u64()).collect();
    assert_eq!(versions, [1000, 500]);
    server.post_json("/http?version=x", &json!({"id": 2})).assert_status(400, "a version that is not a number");

    // GraphQL: equal to a stored version replaces it; dont_skip_deleted revives.
    let answer = server.graphql(
        r#"mutation { Item(insert: {id: 1, tag_in: "fixed", tag_route: "fixed"}, version: 500) { id tag_in } }"#,
        json!({}),
    );
    assert!(answer["errors"].is_null(), "{answer}");
    let as_of = server.data("Item", "id=1&version=500");
    assert_eq!(as_of[0]["object"]["tag_in"], "fixed");
    assert_eq!(server.data("Item", "id=1&all_versions=true").len(), 2, "replaced, not added");
    let answer = server.graphql(r#"mutation { Item(id: 1, delete: true) { id } }"#, json!({}));
    assert!(answer["errors"].is_null(), "{answer}");
    assert!(server.data("Item", "id=1").is_empty());
    let answer = server.graphql(
        r#"mutation { Item(id: 1, update: [["set", "tag_in", "back"]], dont_skip_deleted: true) { id tag_in } }"#,
        json!({}),
    );
    assert_eq!(answer["data"]["Item"][0]["tag_in"], "back", "{answer}");
    assert_eq!(server.data("Item", "id=1")[0]["object"]["tag_in"], "back");
}

#[test]
fn expiration_keeps_a_number_of_versions_and_expires_old_objects() {
    let (yaml, files) = stamped("v1");
    let yaml =
        format!("{yaml}\nexpiration:\n  - {{type: Item, lifetime_hours: 0, keep_version_count: 2, delay_sec: 1}}\n");
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let server = Server::start_with_config(&yaml, &files);
    for _ in 0..5 {
        assert_eq!(server.post_sync(&json!({"id": 1}))["status"], "stored");
    }
    assert_eq!(server.post_sync(&json!({"id": 2}))["status"], "stored");
    wait_until(Duration::from_secs(30), "history beyond two versions to go", || {
        (server.data("Item", "id=1&all_versions=true").len() == 2).then_some(())
    });
    assert_eq!(server.data("Item", "id=2").len(), 1, "a single version is never removed by the count");
    let listed = server.get("/admin/api/expiration").json();
    assert_eq!(listed["items"][0]["source"], "config", "{listed}");
    let metrics = server.get("/metrics").body;
    let expired = ferrogrid_tests::metric_value(&metrics, "ferrogrid_expired_versions_total", &[("type", "Item")]);
    assert_eq!(expired, Some(3.0), "{metrics}");

    // An operator sets a lifetime of about a second: objects whose newest version is older go.
    let set = server.client().try_put_raw(
        "/admin/api/expiration/Item",
        "application/json",
        br#"{"lifetime_hours": 0.0003, "delay_sec": 1}"#,
    );
    set.expect("PUT").assert_status(200, "set");
    let too_long = server.client().try_put_raw(
        "/admin/api/expiration/Item",
        "application/json",
        br#"{"delay_sec": 18446744073709551615}"#,
    );
    too_long.expect("PUT").assert_status(400, "a delay past the limits");
    let graphql = server.graphql_admin("{ expiration { get_list } }", json!({}));
    assert_eq!(graphql["data"]["expiration"]["get_list"][0]["source"], "api", "{graphql}");
    wait_until(Duration::from_secs(30), "the old objects to expire", || {
        server.data("Item", "").is_empty().then_some(())
    });
    let cleaned = server.graphql_admin(r#"mutation { expiration { cleanup(type: "Item") } }"#, json!({}));
    assert_eq!(cleaned["data"]["expiration"]["cleanup"], true, "{cleaned}");
    assert_eq!(server.get("/admin/api/expiration").json()["items"][0]["source"], "config");
}

#[test]
fn archiving_writes_rotated_files_then_removes_the_versions() {
    let archive = tempfile::tempdir().expect("archive dir");
    let (yaml, files) = stamped("v1");
    let yaml = format!(
        "{yaml}\narchivation:\n  - {{type: Item, lifetime_days: 0.00001, schedule: \"* * * * * *\", dir: \"{}\", file_size_threshold: 150}}\n",
        archive.path().display()
    );
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let server = Server::start_with_config(&yaml, &files);
    for id in 1..=5 {
        assert_eq!(server.post_sync(&json!({"id": id}))["status"], "stored");
    }
    assert_eq!(server.post_sync(&json!({"id": 1}))["status"], "stored", "a second version of 1");
    wait_until(Duration::from_secs(30), "the store to be emptied into the archive", || {
        server.data("Item", "").is_empty().then_some(())
    });
    let mut lines = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(archive.path())
        .expect("archive")
        .flatten()
        .map(|e| e.file_name().into_string().expect("name"))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "rotated past 150 bytes: {names:?}");
    for name in &names {
        assert!(name.ends_with(".jsonl"), "{name}");
        let text = std::fs::read_to_string(archive.path().join(name)).expect("archive file");
        for line in text.lines() {
            lines.push(serde_json::from_str::<Value>(line).expect("one JSON object a line"));
        }
    }
    assert_eq!(lines.len(), 6, "every version once: {lines:?}");
    assert!(lines.iter().all(|l| l["Item"]["tag_in"] == "v1" && l["version"].is_u64()), "{lines:?}");
    assert!(server.data("Item", "id=1&all_versions=true").is_empty(), "history went too");
}
