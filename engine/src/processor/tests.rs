//! Tests of the storage stage over a real (temporary) database and a loaded configuration.

use super::{store, Done, Finish, ToStore};
use crate::config;
use crate::repair::{Entry, RepairQueue};
use crate::runtime::Runtime;
use crate::storage::Db;
use serde_json::{json, Value};

fn runtime(dir: &std::path::Path) -> Runtime {
    std::fs::write(
        dir.join("config.yml"),
        "types:\n  __file: model.avsc\ninput_processor:\n  storage:\n    - {key: User, type: User}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("model.avsc"),
        r#"[{"name": "User", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
            "fields": [{"name": "id", "type": "long"}, {"name": "username", "type": "string"}]}]"#,
    )
    .unwrap();
    let loaded = config::load(dir).unwrap();
    Runtime::build(&loaded, Db::open(dir.join("db")).unwrap(), 1).unwrap()
}

fn queued(rt: &Runtime, obj: &Value) -> (Entry, Finish) {
    let entry = RepairQueue::new_entry("http", "http", json!({"User": obj}));
    rt.repair.add(&entry).unwrap();
    (
        entry,
        Finish::Store(ToStore {
            routing_key: "User".into(),
            type_name: "User".into(),
            obj: obj.clone(),
            jobs: Vec::new(),
        }),
    )
}

fn version(result: &Result<Done, crate::repair::Failure>) -> u64 {
    match result {
        Ok(Done::Stored { version, .. }) => *version,
        other => panic!("not stored: {other:?}"),
    }
}

#[test]
fn a_group_is_one_commit_and_versions_of_one_key_follow_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let jobs = [
        queued(&rt, &json!({"id": 1, "username": "a"})),
        queued(&rt, &json!({"id": 1, "username": "b"})),
        queued(&rt, &json!({"id": 2, "username": "c"})),
    ];
    let items: Vec<(&Entry, &Finish)> = jobs.iter().map(|(e, i)| (e, i)).collect();
    let results = store(&rt, &items);
    assert_eq!(results.len(), 3);
    assert!(version(&results[0]) < version(&results[1]));
    let history = rt.repository.find("User", &json!([["id", "==", 1]]), &json!({"all_versions": true})).unwrap();
    assert_eq!(history.items.len(), 2);
    assert_eq!(history.items[0].object["username"], "b", "the latest version comes first");
    for (entry, _) in &jobs {
        assert!(rt.repair.get(&entry.id).unwrap().is_none(), "stored objects leave the repair queue");
    }
}

#[test]
fn a_failing_member_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let gone = queued(&rt, &json!({"id": 1, "username": "deleted meanwhile"}));
    let good = queued(&rt, &json!({"id": 2, "username": "fine"}));
    // An operator cannot delete it while it is processed (its status is its claim) ...
    assert!(matches!(rt.repair.delete(&gone.0.id), Err(crate::repair::RepairError::Busy(_))));
    // ... so it goes as a bug (or a hand on the store) would take it.
    let key = uuid::Uuid::parse_str(&gone.0.id).unwrap();
    rt.db
        .write(|tx| {
            tx.remove(crate::storage::Keyspace::RepairQueue, key.as_bytes());
            Ok::<_, crate::storage::StorageError>(())
        })
        .unwrap();
    let results = store(&rt, &[(&gone.0, &gone.1), (&good.0, &good.1)]);
    let error = results[0].as_ref().err().map(|f| f.error.clone()).unwrap_or_default();
    assert!(error.contains("was deleted while its object was being processed"), "{results:?}");
    assert!(version(&results[1]) > 0);
    let users = rt.repository.find("User", &json!([]), &json!({})).unwrap();
    assert_eq!(users.items.len(), 1, "the deleted object was not stored");
    assert_eq!(users.items[0].object["id"], 2);
}
