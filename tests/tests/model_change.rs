//! A model change over stored data (issue 14's reproduction): the indexes of a stored type are
//! identified by the store's index catalog, not by their position in the model, so adding,
//! removing or reordering indexes never hides stored objects.

use ferrogrid_tests::{metric_value, wait_until, ConfigDir, Server};
use serde_json::{json, Value};
use std::time::Duration;

/// `samples/library`, copied into a folder the test may change.
fn library_copy() -> ConfigDir {
    ConfigDir::sample_copy("library")
}

/// Waits until every index is built (`GET /admin/api/indexes`).
fn wait_built(server: &Server) {
    wait_until(Duration::from_secs(120), "every index to be built", || {
        let states = server.get("/admin/api/indexes").json();
        let items = states["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty() && items.iter().all(|i| i["state"] == "ready")).then_some(())
    });
}

fn ids(items: &[Value]) -> Vec<i64> {
    let mut ids: Vec<i64> = items.iter().filter_map(|i| i["object"]["id"].as_i64()).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn books_stay_found_after_an_index_is_added_in_front_of_another() {
    let config = library_copy();
    let mut server = Server::start(config.path());
    for (id, author, year) in [(1, "A1", 1992), (2, "A2", 1992), (3, "A3", 2001)] {
        let answer =
            server.post_sync(&json!({"id": id, "book_name": format!("Book {id}"), "author": author, "year": year}));
        assert_eq!(answer["status"], "stored", "{answer}");
    }
    assert_eq!(ids(&server.data("Book", "year=1992")), vec![1, 2]);
    assert_eq!(server.stop().code(), Some(0));

    // `author` goes before `year`: by position, year's entries would now be read as author's.
    let model = std::fs::read_to_string(config.path().join("model.avsc")).expect("model");
    let changed = model.replace(r#""indexes": ["id", "year"]"#, r#""indexes": ["id", "author", "year"]"#);
    assert_ne!(model, changed, "the sample's Book indexes are [id, year]");
    config.write("model.avsc", &changed);
    server.restart();
    assert_eq!(ids(&server.data("Book", "year=1992")), vec![1, 2], "the old index answers as before");
    wait_built(&server);
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2], "the new index was built from the stored books");

    // A book stored now is found by both, and removing `author` again loses nothing.
    let answer = server.post_sync(&json!({"id": 4, "book_name": "Book 4", "author": "A2", "year": 2001}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2, 4]);
    assert_eq!(server.stop().code(), Some(0));
    config.write("model.avsc", &model);
    server.restart();
    wait_built(&server);
    assert_eq!(ids(&server.data("Book", "year=2001")), vec![3, 4]);
    assert_eq!(ids(&server.data("Book", "year=1992")), vec![1, 2]);
    // Without its index, `author` is a plain field: filtered by a scan, still the right answer.
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2, 4]);
}

/// While an added index is built in the background over many stored books, a query naming it
/// answers either 503 `INDEX_BUILDING` (with Retry-After) or the whole answer, never a part of
/// it; ingest goes on meanwhile and the books stored during the build are found too.
#[test]
fn a_query_during_an_index_build_answers_all_or_index_building() {
    let books: i64 = scaled(6_000, 200_000);
    let config = library_copy();
    let mut server = Server::start(config.path());
    store_books(&server, books);
    assert_eq!(server.stop().code(), Some(0));
    add_author_index(&config);
    // Each batch of the build 200 ms slower: queries meet it building, however fast the machine.
    server.set_env("FAILPOINTS", "index-build-step=sleep(200)");
    server.restart();
    let expected: Vec<i64> = (0..books).filter(|id| id % 100 == 7).collect();
    let (mut building, mut answered) = (0, 0);
    let query = "/data/Book?author=A7&first=100".to_string();
    // A book stored during the build is indexed by its write.
    let late = server.post_sync(&json!({"id": books, "book_name": "late", "author": "A7", "year": 2001}));
    assert_eq!(late["status"], "stored", "{late}");
    let mut expected_now = expected.clone();
    expected_now.push(books);
    let mut graphql_building = 0;
    wait_until(Duration::from_secs(120), "the index to be built", || {
        // GraphQL names the same index: INDEX_BUILDING in extensions.code, or every book.
        let answer = server.graphql(r#"{ Book(author: "A7", first: 100) { id } }"#, json!({}));
        match answer["errors"][0]["extensions"]["code"].as_str() {
            Some("INDEX_BUILDING") => graphql_building += 1,
            Some(other) => panic!("GraphQL answered {other}: {answer}"),
            None => {
                let books = answer["data"]["Book"].as_array().cloned().unwrap_or_default();
                let mut got: Vec<i64> = books.iter().filter_map(|b| b["id"].as_i64()).collect();
                got.sort_unstable();
                assert_eq!(got, expected_now, "GraphQL: all or nothing");
            }
        }
        let r = server.get(&query);
        match r.status {
            503 => {
                assert!(r.body.contains("is being built"), "{}", r.body);
                building += 1;
                None
            }
            200 => {
                assert_eq!(ids(&r.json().as_array().cloned().unwrap_or_default()), expected_now, "all or nothing");
                answered += 1;
                Some(())
            }
            other => panic!("GET {query}: {other} {}", r.body),
        }
    });
    assert_eq!(answered, 1);
    eprintln!("answers while building: {building} from /data, {graphql_building} from GraphQL");
    assert!(building > 0 && graphql_building > 0, "met the build: {building} / {graphql_building}");
    let states = server.get("/admin/api/indexes").json();
    let author = states["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["type"] == "Book" && i["index"] == "author").cloned());
    assert_eq!(author.map(|a| a["state"].clone()), Some(json!("ready")));
}

/// Posts `count` books (ids 0..count, author `A{id % 100}`) from four clients and waits until all
/// are stored.
/// `small`, or `large` with `FERROGRID_LARGE_TESTS=1` (the issue's sizes: slow in a debug
/// build, so not in the default run).
fn scaled(small: i64, large: i64) -> i64 {
    if std::env::var("FERROGRID_LARGE_TESTS").is_ok_and(|v| v == "1") {
        large
    } else {
        small
    }
}

fn store_books(server: &Server, count: i64) {
    std::thread::scope(|scope| {
        for client in 0..4 {
            scope.spawn(move || {
                for id in (client..count).step_by(4) {
                    let book = json!({"id": id, "book_name": format!("Book {id}"), "author": format!("A{}", id % 100), "year": 2000});
                    server.post_json("/http", &book).assert_status(200, "POST a book");
                }
            });
        }
    });
    wait_until(Duration::from_secs(180.max(count as u64 / 500)), "every book to be stored", || {
        let stored = metric_value(&server.get("/metrics").body, "ferrogrid_objects_stored_total", &[("type", "Book")]);
        (stored.unwrap_or(0.0) >= count as f64).then_some(())
    });
}

/// Adds the index `author` to Book, in front of `year`.
fn add_author_index(config: &ConfigDir) {
    let model = std::fs::read_to_string(config.path().join("model.avsc")).expect("model");
    let changed = model.replace(r#""indexes": ["id", "year"]"#, r#""indexes": ["id", "author", "year"]"#);
    assert_ne!(model, changed, "the sample's Book indexes are [id, year]");
    config.write("model.avsc", &changed);
}

/// The `author` index's entry of `GET /admin/api/indexes`.
fn author_index(server: &Server) -> Value {
    let states = server.get("/admin/api/indexes").json();
    states["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["type"] == "Book" && i["index"] == "author").cloned())
        .unwrap_or(Value::Null)
}

/// A SIGKILL while the index is being built: the next start goes on from the last batch that
/// reached the disk, and the index ends complete and right.
#[test]
fn an_index_build_killed_midway_resumes_and_completes() {
    let books: i64 = scaled(12_000, 100_000);
    let config = library_copy();
    let mut server = Server::start(config.path());
    store_books(&server, books);
    assert_eq!(server.stop().code(), Some(0));
    add_author_index(&config);
    // Each batch 100 ms slower: the kill comes while it builds.
    server.set_env("FAILPOINTS", "index-build-step=sleep(100)");
    server.restart();
    let done = wait_until(Duration::from_secs(60), "the build to have committed a batch", || {
        let author = author_index(&server);
        assert_eq!(author["state"], "building", "killed too late: {author}");
        author["versions_done"].as_u64().filter(|d| *d > 0)
    });
    server.kill();
    server.restart();
    // It goes on from the last batch that reached the disk (a batch and its progress are one
    // commit, so whatever survived is consistent).
    eprintln!("killed at {done} versions; after the restart: {}", author_index(&server));
    wait_built(&server);
    // 120 books each; a page holds 100 (the sample's `returned` limit), in key order.
    let expected: Vec<i64> = (0..books).filter(|id| id % 100 == 42).take(100).collect();
    assert_eq!(ids(&server.data("Book", "author=A42&first=100")), expected);
    let all = server.graphql(r#"{ Book(author: "A99", first: 100) { id } }"#, json!({}));
    assert_eq!(all["data"]["Book"].as_array().map(Vec::len), Some(100), "{all}");
}
