//! A model change over stored data (issue 14's reproduction): the indexes of a stored type are
//! identified by the store's index catalog, not by their position in the model, so adding,
//! removing or reordering indexes never hides stored objects.

use ferrogrid_tests::{sample, ConfigDir, Server};
use serde_json::{json, Value};

/// `samples/library`, copied into a folder the test may change.
fn library_copy() -> ConfigDir {
    let dir = sample("library");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading samples/library/{name}: {e}"))
    };
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("samples/library")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "config.yml")
        .collect();
    let files: Vec<(String, String)> = names.iter().map(|n| (n.clone(), read(n))).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    ConfigDir::new(&read("config.yml"), &files).expect("config copy")
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
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2], "the new index was built from the stored books");

    // A book stored now is found by both, and removing `author` again loses nothing.
    let answer = server.post_sync(&json!({"id": 4, "book_name": "Book 4", "author": "A2", "year": 2001}));
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2, 4]);
    assert_eq!(server.stop().code(), Some(0));
    config.write("model.avsc", &model);
    server.restart();
    assert_eq!(ids(&server.data("Book", "year=2001")), vec![3, 4]);
    assert_eq!(ids(&server.data("Book", "year=1992")), vec![1, 2]);
    // Without its index, `author` is a plain field: filtered by a scan, still the right answer.
    assert_eq!(ids(&server.data("Book", "author=A2")), vec![2, 4]);
}
