//! Tests of the repair queue over a real (temporary) database.

use super::*;
use crate::parked::{parse_time, ParkedFilter};
use serde_json::json;

fn queue() -> (tempfile::TempDir, RepairQueue) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    (dir, RepairQueue::open(db, 3).unwrap())
}

fn failure(text: &str) -> Failure {
    Failure {
        stage: "routing",
        function: Some("process_user".into()),
        routing_key: Some("add_user".into()),
        error: text.into(),
        object: None,
    }
}

#[test]
fn a_new_entry_is_unfinished_until_it_fails() {
    let (_dir, q) = queue();
    let entry = RepairQueue::new_entry("http", "http", json!({"id": 1}));
    q.add(&entry).unwrap();
    assert_eq!(q.unfinished().unwrap().len(), 1);
    let failed = q.fail(&entry, &failure("boom"), |_, _| Ok(())).unwrap().unwrap();
    assert_eq!(failed.status, Status::New);
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.error.as_deref(), Some("boom"));
    assert_eq!(failed.function.as_deref(), Some("process_user"));
    assert!(q.unfinished().unwrap().is_empty(), "failed entries wait for an operator");
}

#[test]
fn retries_move_through_tdg_statuses_and_keep_bounded_history() {
    let (_dir, q) = queue();
    let entry = RepairQueue::new_entry("http", "http", json!({"id": 1}));
    q.add(&entry).unwrap();
    q.fail(&entry, &failure("first"), |_, _| Ok(())).unwrap();
    let retrying = q.start_retry(&entry.id, Some((json!({"id": 2}), "alice".into()))).unwrap().unwrap();
    assert_eq!(retrying.status, Status::InProgress);
    assert_eq!(retrying.payload, json!({"id": 2}));
    let edit = retrying.history.last().unwrap();
    assert_eq!(edit.by.as_deref(), Some("alice"));
    assert_eq!(edit.previous_payload, Some(json!({"id": 1})));
    assert!(q.unfinished().unwrap().iter().any(|e| e.id == entry.id), "in-progress entries resume at start");
    // In Progress is the retry's claim: a second retry is refused, and nothing changes.
    assert!(matches!(q.start_retry(&entry.id, None), Err(RepairError::Busy(_))));
    assert_eq!(q.get(&entry.id).unwrap().unwrap().history.len(), retrying.history.len());
    let again = q.fail(&entry, &failure("second"), |_, _| Ok(())).unwrap().unwrap();
    assert_eq!(again.status, Status::Reworked);
    assert_eq!(again.attempts, 2);
    q.start_retry(&entry.id, None).unwrap();
    let last = q.fail(&entry, &failure("third"), |_, _| Ok(())).unwrap().unwrap();
    assert_eq!(last.history.len(), 3, "history is bounded by history_size");
    assert_eq!(last.history.last().unwrap().error.as_deref(), Some("third"));
}

#[test]
fn listing_is_newest_first_with_cursor_and_filters() {
    let (_dir, q) = queue();
    let mut ids = Vec::new();
    for i in 0..5 {
        let entry = RepairQueue::new_entry("http", "http", json!({"n": i, "name": format!("item{i}")}));
        q.add(&entry).unwrap();
        ids.push(entry.id);
    }
    let (page, cursor) = q.list(&ParkedFilter { first: 2, ..Default::default() }).unwrap();
    assert_eq!(page.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![ids[4].clone(), ids[3].clone()]);
    let (rest, end) = q.list(&ParkedFilter { first: 10, after: cursor, ..Default::default() }).unwrap();
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0].id, ids[2]);
    assert!(end.is_none());
    let (found, _) = q.list(&ParkedFilter { text: Some("ITEM3".into()), ..Default::default() }).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ids[3]);
    let future = parse_time("2999-01-01").unwrap();
    let (none, _) = q.list(&ParkedFilter { from: Some(future), ..Default::default() }).unwrap();
    assert!(none.is_empty());
    assert!(parse_time("yesterday").is_err());
}

#[test]
fn deletes_one_and_matching() {
    let (_dir, q) = queue();
    let a = RepairQueue::new_entry("http", "http", json!({"k": "keep"}));
    let b = RepairQueue::new_entry("http", "http", json!({"k": "drop"}));
    let c = RepairQueue::new_entry("http", "http", json!({"k": "drop"}));
    for e in [&a, &b, &c] {
        q.add(e).unwrap();
    }
    // Being processed (New, no error: its claim is its status): not deleted.
    assert!(matches!(q.delete(&a.id), Err(RepairError::Busy(ref id)) if *id == a.id));
    for e in [&a, &b, &c] {
        q.fail(e, &failure("x"), |_, _| Ok(())).unwrap();
    }
    assert!(q.delete(&a.id).unwrap());
    assert!(!q.delete(&a.id).unwrap());
    let n = q.delete_matching(&ParkedFilter { text: Some("drop".into()), ..Default::default() }).unwrap();
    assert_eq!(n, 2);
    assert!(q.get(&b.id).unwrap().is_none());
    assert!(matches!(q.get("not-a-uuid"), Err(RepairError::BadId(_))));
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let db = Db::open(dir.path().join("db")).unwrap();
        let q = RepairQueue::open(db.clone(), 5).unwrap();
        let entry = RepairQueue::new_entry("http", "http", json!({"x": 1}));
        q.add(&entry).unwrap();
        db.sync().unwrap();
        entry.id
    };
    let db = Db::open(dir.path().join("db")).unwrap();
    let q = RepairQueue::open(db, 5).unwrap();
    assert_eq!(q.get(&id).unwrap().unwrap().payload, json!({"x": 1}));
}

#[test]
fn finishing_a_deleted_entry_fails_the_commit_and_bulk_delete_skips_kept_ids() {
    let (_dir, q) = queue();
    let a = RepairQueue::new_entry("http", "http", json!({"k": "x"}));
    let b = RepairQueue::new_entry("http", "http", json!({"k": "x"}));
    q.add(&a).unwrap();
    q.add(&b).unwrap();
    q.fail(&a, &failure("x"), |_, _| Ok(())).unwrap();
    // `b` is being processed (its status says so): a bulk delete leaves it.
    let n = q.delete_matching(&ParkedFilter::default()).unwrap();
    assert_eq!(n, 1);
    assert!(q.get(&b.id).unwrap().is_some());
    // `a` is gone: whatever would have finished it is not committed.
    let db = q.db.clone();
    let result = db.write(|tx| {
        tx.insert(Keyspace::Meta, b"witness", b"1".to_vec());
        q.complete_in(tx, &a, &mut crate::storage::DoneBatch::default())
    });
    assert!(matches!(result, Err(RepairError::Gone(ref id)) if *id == a.id), "{result:?}");
    assert!(db.get(Keyspace::Meta, b"witness").unwrap().is_none(), "the failed commit wrote nothing");
    db.write(|tx| q.complete_in(tx, &b, &mut crate::storage::DoneBatch::default())).unwrap();
    assert!(q.get(&b.id).unwrap().is_none());
}

#[test]
fn a_fresh_object_comes_into_the_queue_when_it_fails_and_only_unless_it_was_stored() {
    let (dir, q) = queue();
    let (log, _) = crate::storage::IntakeLog::open(&dir.path().join("wal"), &q.db, Keyspace::RepairQueue, |tx, e| {
        q.put_in(tx, e).unwrap();
    })
    .unwrap();
    let fresh = |text: &str| {
        let mut entry = RepairQueue::new_entry("http", "http", json!({"k": text}));
        let (_, unsettled) = log.append(&mut entry).unwrap();
        entry.unsettled = Some(std::sync::Arc::new(unsettled));
        entry
    };
    // In flight: not in the queue.
    let failing = fresh("fails");
    assert!(q.get(&failing.id).unwrap().is_none(), "a fresh object is only in the intake log");
    let recorded = q.fail(&failing, &failure("boom"), |_, _| Ok(())).unwrap().unwrap();
    assert_eq!((recorded.attempts, recorded.error.as_deref()), (1, Some("boom")));
    let stored = q.get(&failing.id).unwrap().unwrap();
    assert_eq!(stored.payload, json!({"k": "fails"}));
    assert!(failing.unsettled.as_ref().unwrap().is_settled(), "the entry in the queue settles its record");
    // Its commit went through (settled) before something failed it: it stays out of the queue.
    let committed = fresh("stored");
    committed.unsettled.as_ref().unwrap().settle();
    assert!(q.fail(&committed, &failure("late"), |_, _| Ok(())).unwrap().is_none());
    assert!(q.get(&committed.id).unwrap().is_none(), "a stored object is not also kept for repair");
    log.close();
}
