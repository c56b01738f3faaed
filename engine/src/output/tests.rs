//! The output queue against a real database: staged deliveries, retries, parking and the
//! operator's actions; the backoff.

use super::queue::{now_ms, IN_PROGRESS, SENDING_ERROR};
use super::*;
use crate::config::RetryPolicy;
use crate::storage::Db;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn queue() -> (tempfile::TempDir, OutputQueue) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    (dir, OutputQueue::new(db))
}

fn stage(q: &OutputQueue, output: &str, id: i64) {
    q.db_for_tests()
        .write(|tx| q.stage_in(tx, output, None, "Item", Some(("Item", 1)), Content::Copy(json!({"id": id}))))
        .unwrap();
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
    assert_eq!(q.pending_count("b").unwrap(), 1);
    let skip: HashSet<String> = [a[0].id.clone()].into();
    assert_eq!(q.pending("a", &skip, 10).unwrap().len(), 2, "in-flight ones are left out");

    q.reschedule(a[1].clone(), "answered 503".into(), now_ms() + 60_000).unwrap();
    let again = q.pending("a", &HashSet::new(), 10).unwrap();
    assert_eq!(again[1].attempts, 1);
    assert!(again[1].next_at_ms > now_ms());

    q.park(again[1].clone(), SENDING_ERROR, "answered 503 twice".into()).unwrap();
    q.done_all(std::slice::from_ref(&again[0])).unwrap();
    assert_eq!(q.pending_count("a").unwrap(), 1);
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
    assert_eq!(q.delete_all(None).unwrap(), 1);
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
