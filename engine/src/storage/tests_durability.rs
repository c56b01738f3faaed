//! Tests of durability plumbing: group commit, async sync, reopen with objects and indexes.

use super::filter::{Condition, Op};
use super::objects::find;
use super::test_util::{ids, store_users, temp_db, user, user_spec};
use super::{Db, FindOptions, Keyspace, PutOptions, ReadView, StorageError};
use serde_json::json;
use std::future::Future;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Minimal executor: polls a future on this thread until it is ready.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn concurrent_syncs_share_flushes() {
    let (_d, db) = temp_db();
    // sequential callers cannot share: one flush each
    let before = db.flush_count();
    for _ in 0..3 {
        db.sync().unwrap();
    }
    assert_eq!(db.flush_count() - before, 3);
    // 32 threads write and sync at once while every flush takes 30 ms (a slow disk)
    db.inner.flusher.set_test_delay_ms(30);
    let before = db.flush_count();
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32u32)
        .map(|i| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                db.write(|tx| {
                    tx.insert(Keyspace::RepairQueue, &i.to_be_bytes(), &b"accepted"[..]);
                    Ok::<_, StorageError>(())
                })
                .unwrap();
                barrier.wait();
                db.sync().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = db.flush_count() - before;
    assert!((1..=8).contains(&flushes), "32 sync() calls took {flushes} flushes");
    assert_eq!(db.scan_prefix(Keyspace::RepairQueue, &[]).count(), 32);
}

#[test]
fn async_sync_resolves_and_is_served_even_if_the_db_closes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.write(|tx| {
        tx.insert(Keyspace::Tokens, b"k", &b"v"[..]);
        Ok::<_, StorageError>(())
    })
    .unwrap();
    let before = db.flush_count();
    block_on(db.sync_async()).unwrap();
    assert!(db.flush_count() > before);
    db.inner.flusher.set_test_delay_ms(20);
    let pending = db.sync_async();
    drop(db);
    block_on(pending).unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get(Keyspace::Tokens, b"k").unwrap().unwrap().as_ref(), b"v");
}

#[test]
fn reopen_keeps_objects_indexes_and_monotonic_versions() {
    let dir = tempfile::tempdir().unwrap();
    let spec = user_spec();
    let last = {
        let db = Db::open(dir.path()).unwrap();
        store_users(&db, 12);
        let s = db.put_object(&spec, user(1), &PutOptions::default()).unwrap();
        db.sync().unwrap();
        s.version
    };
    let db = Db::open(dir.path()).unwrap();
    let p = find(&db, &spec, &[Condition::new("phones", Op::Eq, json!("q2"))], &FindOptions::default()).unwrap();
    assert_eq!(ids(&p), [2, 7, 12]);
    let again = db.put_object(&spec, user(1), &PutOptions::default()).unwrap();
    assert!(again.version > last, "versions keep increasing after reopen");
    let all = FindOptions { all_versions: true, ..Default::default() };
    let hist = find(&db, &spec, &[Condition::new("id", Op::Eq, json!(1))], &all).unwrap();
    assert_eq!(hist.items.len(), 3);
}

#[test]
fn a_second_open_of_the_same_directory_fails_cleanly() {
    let (dir, _db) = temp_db();
    let e = Db::open(dir.path()).unwrap_err();
    assert_eq!(e.class(), super::ErrorClass::Internal, "{e}");
}
