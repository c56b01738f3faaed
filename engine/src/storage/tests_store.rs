//! The repository over a second [`Store`] (an in-memory map): the seam a networked backend uses.

use super::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

/// An in-memory store: atomic because every apply holds the write lock.
#[derive(Default)]
struct MemStore {
    map: RwLock<BTreeMap<Vec<u8>, IVec>>,
    durable_calls: std::sync::atomic::AtomicU64,
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, StorageError> {
        Ok(self.map.read().unwrap().get(key).cloned())
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RawIter<'_> {
        let items: Vec<_> = self
            .map
            .read()
            .unwrap()
            .range((lower, upper))
            .map(|(k, v)| Ok((IVec::from(k.as_slice()), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Option<IVec>)>) -> Result<(), StorageError> {
        let mut map = self.map.write().unwrap();
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn make_durable(&self) -> Result<(), StorageError> {
        self.durable_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(0)
    }
}

#[test]
fn the_repository_runs_over_any_store() {
    let store = Arc::new(MemStore::default());
    let db = Db::with_store(store.clone(), "memory".into(), &StorageConfig::default()).unwrap();
    let spec = TypeSpec {
        name: "User".into(),
        indexes: vec![
            IndexSpec::new("id", vec![PartSpec::new("id", KeyKind::Long)]),
            IndexSpec::new("name", vec![PartSpec::new("name", KeyKind::String)]),
        ],
        ids: Vec::new(),
        building: Vec::new(),
        config_version: 0,
    };
    let first = db.put_object(&spec, json!({"id": 1, "name": "a"}), &PutOptions::default()).unwrap();
    db.put_object(&spec, json!({"id": 1, "name": "b"}), &PutOptions::default()).unwrap();
    db.put_object(&spec, json!({"id": 2, "name": "c"}), &PutOptions::default()).unwrap();
    let by_name = objects::find(
        &db,
        &spec,
        &Condition::parse_filter(&json!([["name", "==", "b"]])).unwrap(),
        &FindOptions::default(),
    )
    .unwrap();
    assert_eq!(by_name.items.len(), 1);
    assert_eq!(by_name.items[0].object, json!({"id": 1, "name": "b"}));
    let old = FindOptions { version: Some(first.version), ..FindOptions::default() };
    let then = objects::find(&db, &spec, &Condition::parse_filter(&json!([["id", "==", 1]])).unwrap(), &old).unwrap();
    assert_eq!(then.items[0].object["name"], "a", "history works over the seam");
    db.sync().unwrap();
    assert!(store.durable_calls.load(std::sync::atomic::Ordering::Relaxed) >= 2, "open and sync reach make_durable");
}
