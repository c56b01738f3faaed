//! The output queue against a real database: staged deliveries, retries, parking and the
//! operator's actions; the backoff.

use super::queue::{now_ms, IN_PROGRESS, SENDING_ERROR};
use super::*;
use crate::config::{OutputProcessorRoute, RetryPolicy};
use crate::storage::{Db, StorageError};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn queue() -> (tempfile::TempDir, OutputQueue) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    (dir, OutputQueue::open(db).unwrap())
}

fn route(route: serde_json::Value) -> OutputProcessorRoute {
    serde_json::from_value(route).unwrap()
}

fn stage_to(q: &OutputQueue, route: &OutputProcessorRoute, id: i64) {
    q.db_for_tests()
        .write(|tx| q.stage_in(tx, route, ("Item", None), Some(("Item", 1)), Content::Copy(json!({"id": id}))))
        .unwrap();
}

fn stage(q: &OutputQueue, output: &str, id: i64) {
    stage_to(q, &route(json!({"output": output})), id);
}

/// Deliveries waiting for an output the configuration no longer has are parked, to be seen in
/// the output repair queue; the others wait as they did.
#[test]
fn deliveries_to_an_output_no_longer_configured_are_parked() {
    let (_dir, q) = queue();
    stage(&q, "a", 1);
    stage(&q, "gone", 2);
    stage(&q, "gone", 3);
    assert_eq!(q.park_unconfigured(&["a".to_string()]).unwrap(), 2);
    assert_eq!((q.depth("a"), q.depth("gone")), (1, 0));
    let parked = q.parked(None).unwrap();
    assert_eq!(parked.len(), 2);
    assert!(parked.iter().all(|d| d.status == super::queue::OUTPUT_REMOVED && d.output == "gone"), "{parked:?}");
    assert!(parked[0].error.as_deref().is_some_and(|e| e.contains("not in the configuration's output_processor")));
    assert_eq!(q.park_unconfigured(&["a".to_string()]).unwrap(), 0, "nothing left to park");
}

/// An output that sends in parallel reads what is due: deliveries waiting for their retry do not
/// hold back newer ones, and the earliest retry time comes back for the next look.
#[test]
fn deliveries_waiting_for_a_retry_do_not_hold_back_newer_ones() {
    let (_dir, q) = queue();
    for id in 0..4 {
        stage(&q, "a", id);
    }
    let all = q.pending("a", &HashSet::new(), 10).unwrap();
    let later = now_ms() + 60_000;
    q.reschedule(all[0].clone(), "answered 503".into(), later).unwrap();
    q.reschedule(all[1].clone(), "answered 503".into(), later + 1_000).unwrap();
    let (due, next) = q.due("a", &HashSet::new(), 2, now_ms()).unwrap();
    assert_eq!(due.iter().map(|d| d.object["id"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(next, Some(later));
    let (due, _) = q.due("a", &HashSet::new(), 10, later + 1_000).unwrap();
    assert_eq!(due.len(), 4, "all due once their time came");
}

#[test]
fn deliveries_wait_per_output_in_order_and_park_with_their_status() {
    let (_dir, q) = queue();
    for id in 0..3 {
        stage(&q, "a", id);
    }
    stage(&q, "b", 9);
    let a = q.pending("a", &HashSet::new(), 10).unwrap();
    assert_eq!(a.iter().map(|d| d.object["id"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(q.depth("b"), 1);
    let skip: HashSet<uuid::Uuid> = [a[0].uuid().unwrap()].into();
    assert_eq!(q.pending("a", &skip, 10).unwrap().len(), 2, "in-flight ones are left out");

    q.reschedule(a[1].clone(), "answered 503".into(), now_ms() + 60_000).unwrap();
    let again = q.pending("a", &HashSet::new(), 10).unwrap();
    assert_eq!(again[1].attempts, 1);
    assert!(again[1].next_at_ms > now_ms());

    q.park(again[1].clone(), SENDING_ERROR, "answered 503 twice".into()).unwrap();
    q.done_all(std::slice::from_ref(&again[0])).unwrap();
    assert_eq!(q.depth("a"), 1);
    let parked = q.parked(None).unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].status.as_str(), parked[0].attempts), (SENDING_ERROR, 2));
    assert_eq!(q.parked(Some("TWICE")).unwrap().len(), 1, "filter by text");
    assert!(q.parked(Some("nothing like it")).unwrap().is_empty());

    // Try again: back to its output as In Progress; a second failure says Rereplicated.
    assert!(q.retry(&parked[0].id).unwrap());
    assert!(!q.retry(&parked[0].id).unwrap(), "moved once");
    let back = q.pending("a", &HashSet::new(), 10).unwrap();
    let retried = back.iter().find(|d| d.id == parked[0].id).unwrap().clone();
    assert_eq!(retried.status, IN_PROGRESS);
    q.park(retried, SENDING_ERROR, "still down".into()).unwrap();
    assert_eq!(q.get_parked(&parked[0].id).unwrap().unwrap().status, "Rereplicated (Sending error)");
    assert!(q.delete(&parked[0].id).unwrap());
    assert!(q.parked(None).unwrap().is_empty());
}

#[test]
fn backoff_doubles_up_to_the_maximum_with_jitter() {
    let policy = RetryPolicy { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1_000 };
    for (attempts, base) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1_000), (20, 1_000)] {
        let d = backoff(&policy, attempts);
        assert!(d >= Duration::from_millis(base / 2) && d <= Duration::from_millis(base), "{attempts}: {d:?}");
    }
}

#[test]
fn depths_follow_the_commits_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    let q = OutputQueue::open(db.clone()).unwrap();
    let both = route(json!({"handlers": [{"outputs": ["a", "b"]}]}));
    for id in 0..4 {
        stage_to(&q, &both, id);
    }
    assert_eq!((q.depth("a"), q.depth("b")), (4, 4));
    // A transaction that fails leaves no delivery and no count behind.
    let failed: Result<(), StorageError> = db.write(|tx| {
        q.stage_in(tx, &both, ("Item", None), None, Content::Copy(json!({"id": 99})))?;
        Err(StorageError::user("the rest of the batch failed"))
    });
    assert!(failed.is_err());
    assert_eq!((q.depth("a"), q.depth("b")), (4, 4));

    let a = q.pending("a", &HashSet::new(), 10).unwrap();
    q.done_all(&a[..2]).unwrap();
    q.done_all(&a[..2]).unwrap();
    assert_eq!(q.depth("a"), 2, "removing twice counts once");
    q.park(a[2].clone(), SENDING_ERROR, "down".into()).unwrap();
    assert_eq!(q.depth("a"), 1);
    assert!(q.retry(&a[2].id).unwrap());
    assert_eq!(q.depth("a"), 2);
    let oldest = q.oldest("a").unwrap().unwrap();
    assert!((chrono::Utc::now() - oldest).num_seconds() < 60, "{oldest}");
    assert!(q.oldest("nobody").unwrap().is_none());

    drop(q);
    let reopened = OutputQueue::open(db).unwrap();
    assert_eq!((reopened.depth("a"), reopened.depth("b")), (2, 4));
}

#[test]
fn a_full_queue_parks_or_drops_new_deliveries() {
    let (_dir, q) = queue();
    let parks = route(json!({"output": "a", "max_queue_size": 2}));
    for id in 0..3 {
        stage_to(&q, &parks, id);
    }
    assert_eq!(q.depth("a"), 2);
    let parked = q.parked(None).unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].status.as_str(), parked[0].object["id"].as_i64()), (SENDING_ERROR, Some(2)));
    assert!(parked[0].error.as_deref().unwrap().contains("max_queue_size = 2"), "{:?}", parked[0].error);

    let drops = route(json!({"output": "a", "max_queue_size": 2, "on_queue_full": "drop"}));
    stage_to(&q, &drops, 3);
    assert_eq!((q.depth("a"), q.parked(None).unwrap().len()), (2, 1), "dropped");

    // Room again once one is sent.
    let waiting = q.pending("a", &HashSet::new(), 10).unwrap();
    q.done_all(&waiting[..1]).unwrap();
    stage_to(&q, &drops, 4);
    let ids: Vec<i64> =
        q.pending("a", &HashSet::new(), 10).unwrap().iter().map(|d| d.object["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 4]);
}
