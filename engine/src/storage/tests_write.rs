//! Tests of put/update/delete: versions and history queries, tombstones, permanent delete,
//! optimistic locking, if_not_exists, updaters, atomicity with engine keyspaces, reindex.

use super::db::ReadView;
use super::filter::{Condition, Op};
use super::objects::{self, find, get};
use super::test_util::{ids, store_users, temp_db, user, user_spec};
use super::{
    DeleteOptions, ErrorClass, FindOptions, Keyspace, PutOptions, StorageError, UpdateOptions, Updater, UpdaterOp,
};
use serde_json::json;

fn by_id(id: i64) -> Vec<Condition> {
    vec![Condition::new("id", Op::Eq, json!(id))]
}

fn count_keys(db: &super::Db, ks: Keyspace) -> usize {
    db.scan_prefix(ks, &[]).count()
}

#[test]
fn versions_as_of_all_versions_tombstones_and_permanent_delete() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let mut versions = Vec::new();
    for name in ["first", "second", "third"] {
        let mut u = user(1);
        u["username"] = json!(name);
        versions.push(db.put_object(&spec, u, &PutOptions::default()).unwrap().version);
    }
    store_users(&db, 0);
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    let as_of = |v: u64| FindOptions { version: Some(v), ..Default::default() };
    let v2 = find(&db, &spec, &by_id(1), &as_of(versions[1])).unwrap();
    assert_eq!(v2.items[0].object["username"], "second");
    assert_eq!(v2.items[0].version, versions[1]);
    let between = find(&db, &spec, &by_id(1), &as_of(versions[1] + 1)).unwrap();
    assert_eq!(between.items[0].version, versions[1], "nearest version <= v");
    assert!(find(&db, &spec, &by_id(1), &as_of(versions[0] - 1)).unwrap().items.is_empty());
    // the old name is found through the history index as of v2, not now
    let name2 = [Condition::new("username", Op::Eq, json!("second"))];
    assert_eq!(ids(&find(&db, &spec, &name2, &as_of(versions[1])).unwrap()), [1]);
    assert!(find(&db, &spec, &name2, &FindOptions::default()).unwrap().items.is_empty());
    let all = FindOptions { all_versions: true, ..Default::default() };
    let hist = find(&db, &spec, &by_id(1), &all).unwrap();
    let vs: Vec<u64> = hist.items.iter().map(|s| s.version).collect();
    assert_eq!(vs, [versions[2], versions[1], versions[0]], "newest first");
    // soft delete: hidden, but visible with dont_skip_deleted and in history
    let del = db.delete_objects(&spec, &by_id(1), &DeleteOptions::default()).unwrap();
    assert_eq!(del.len(), 1);
    assert!(del[0].deleted && del[0].version > versions[2]);
    assert!(find(&db, &spec, &by_id(1), &FindOptions::default()).unwrap().items.is_empty());
    assert!(get(&db, &spec, "id", &[json!(1)], &FindOptions::default()).unwrap().is_none());
    let name3 = [Condition::new("username", Op::Eq, json!("third"))];
    assert!(find(&db, &spec, &name3, &FindOptions::default()).unwrap().items.is_empty());
    let shown = FindOptions { dont_skip_deleted: true, ..Default::default() };
    let tomb = find(&db, &spec, &name3, &shown).unwrap();
    assert_eq!(tomb.items.len(), 1);
    assert!(tomb.items[0].deleted);
    assert_eq!(tomb.items[0].object["username"], "third", "a tombstone keeps the last state");
    assert_eq!(find(&db, &spec, &by_id(1), &as_of(versions[2])).unwrap().items.len(), 1, "history stays");
    // a put after a delete revives the object
    db.put_object(&spec, user(1), &PutOptions::default()).unwrap();
    assert_eq!(find(&db, &spec, &by_id(1), &FindOptions::default()).unwrap().items.len(), 1);
    // permanent delete: every version and every index entry
    let e = db.delete_objects(&spec, &by_id(1), &DeleteOptions { permanent_delete: true, ..Default::default() });
    assert_eq!(e.unwrap_err().class(), ErrorClass::UserData, "permanent_delete needs all_versions");
    let perm = DeleteOptions { permanent_delete: true, all_versions: true, ..Default::default() };
    assert_eq!(db.delete_objects(&spec, &by_id(1), &perm).unwrap().len(), 1);
    for ks in [Keyspace::Objects, Keyspace::CurrentIndex, Keyspace::HistoryIndex] {
        assert_eq!(count_keys(&db, ks), 0, "{ks:?} is empty");
    }
    assert!(find(&db, &spec, &by_id(1), &all).unwrap().items.is_empty());
}

#[test]
fn all_versions_pages_through_history() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    for round in 0..4 {
        for id in 1..=3 {
            let mut u = user(id);
            u["score"] = json!(round);
            db.put_object(&spec, u, &PutOptions::default()).unwrap();
        }
    }
    let mut after = None;
    let mut got = Vec::new();
    loop {
        let o = FindOptions { all_versions: true, first: Some(5), after: after.clone(), ..Default::default() };
        let page = find(&db, &spec, &[Condition::new("age", Op::Ge, json!(0))], &o).unwrap();
        let Some(last) = page.items.last() else { break };
        after = Some(last.cursor.clone());
        got.extend(page.items.iter().map(|s| (s.object["id"].as_i64().unwrap(), s.object["score"].as_i64().unwrap())));
    }
    let want: Vec<(i64, i64)> = (1..=3).flat_map(|id| (0..4).rev().map(move |r| (id, r))).collect();
    assert_eq!(got, want, "12 versions once each, per object newest first");
}

#[test]
fn only_if_version_and_if_not_exists() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let v1 = db.put_object(&spec, user(1), &PutOptions::default()).unwrap().version;
    let stale = PutOptions { only_if_version: Some(v1 - 1), ..Default::default() };
    let e = db.put_object(&spec, user(1), &stale).unwrap_err();
    assert!(matches!(e, StorageError::Conflict { actual: Some(a), .. } if a == v1));
    assert_eq!(e.class(), ErrorClass::Conflict);
    let ok = PutOptions { only_if_version: Some(v1), ..Default::default() };
    let v2 = db.put_object(&spec, user(1), &ok).unwrap().version;
    assert!(v2 > v1);
    let missing = db.put_object(&spec, user(2), &ok).unwrap_err();
    assert!(matches!(missing, StorageError::Conflict { actual: None, .. }));
    let upd = UpdateOptions { only_if_version: Some(v1), ..Default::default() };
    let set = [Updater::new(UpdaterOp::Set, "score", json!(0))];
    assert!(matches!(db.update_objects(&spec, &by_id(1), &set, &upd), Err(StorageError::Conflict { .. })));
    let del = DeleteOptions { only_if_version: Some(v1), ..Default::default() };
    assert!(matches!(db.delete_objects(&spec, &by_id(1), &del), Err(StorageError::Conflict { .. })));
    // if_not_exists: the existing object is kept and returned
    let mut changed = user(1);
    changed["score"] = json!(-1);
    let ine = PutOptions { if_not_exists: true, ..Default::default() };
    let kept = db.put_object(&spec, changed.clone(), &ine).unwrap();
    assert_eq!((kept.version, &kept.object), (v2, &user(1)));
    changed["id"] = json!(9);
    assert_eq!(db.put_object(&spec, changed.clone(), &ine).unwrap().object, changed, "created when absent");
    let both = PutOptions { if_not_exists: true, only_if_version: Some(v2), version: None };
    assert_eq!(db.put_object(&spec, user(3), &both).unwrap_err().class(), ErrorClass::UserData);
}

#[test]
fn update_with_paths_and_stars_moves_index_entries() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let mut u = user(1);
    u["items"] = json!([{"qty": 1}, {"qty": 2}]);
    u["balance"] = json!(10.5);
    db.put_object(&spec, u, &PutOptions::default()).unwrap();
    let ups = Updater::parse_list(&json!([
        ["set", "username", "Renamed"],
        ["add", "balance", 10],
        ["sub", "score", 3],
        ["add", "items.*.qty", 10],
        ["set", "items.1.tag", "x"],
        ["set", "phones.2", "999"]
    ]))
    .unwrap();
    let out = db.update_objects(&spec, &by_id(1), &ups, &UpdateOptions::default()).unwrap();
    assert_eq!(out.len(), 1);
    let obj = &out[0].object;
    assert_eq!(obj["balance"], json!(20.5));
    assert_eq!(obj["score"], json!(0));
    assert_eq!(obj["items"], json!([{"qty": 11, "tag": "x"}, {"qty": 12}]));
    let by = |f: &str, v: &str| {
        ids(&find(&db, &spec, &[Condition::new(f, Op::Eq, json!(v))], &FindOptions::default()).unwrap())
    };
    assert_eq!(by("username", "renamed"), [1]);
    assert!(by("username", "user001").is_empty(), "old current-index entry removed");
    assert_eq!(by("phones", "999"), [1]);
    assert!(by("phones", "q1").is_empty());
    assert_eq!(by("phones", "p1"), [1], "unchanged element keeps its entry");
    let pk = [Updater::new(UpdaterOp::Set, "id", json!(2))];
    let e = db.update_objects(&spec, &by_id(1), &pk, &UpdateOptions::default()).unwrap_err();
    assert!(e.to_string().contains("would change primary key field \"id\""), "{e}");
    let bad = [Updater::new(UpdaterOp::Add, "username", json!(1))];
    assert_eq!(
        db.update_objects(&spec, &by_id(1), &bad, &UpdateOptions::default()).unwrap_err().class(),
        ErrorClass::UserData
    );
    // update respects first
    store_users(&db, 20);
    let many = db
        .update_objects(
            &spec,
            &[Condition::new("id", Op::Gt, json!(0))],
            &[Updater::new(UpdaterOp::Set, "flag", json!(true))],
            &UpdateOptions { first: Some(4), ..Default::default() },
        )
        .unwrap();
    assert_eq!(many.len(), 4);
}

#[test]
fn one_write_covers_an_object_and_engine_keyspaces_all_or_nothing() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    db.write(|tx| {
        tx.insert(Keyspace::RepairQueue, b"req-1", &b"pending"[..]);
        Ok::<_, StorageError>(())
    })
    .unwrap();
    let failed: Result<(), StorageError> = db.write(|tx| {
        objects::put(tx, &spec, user(1), &PutOptions::default())?;
        tx.remove(Keyspace::RepairQueue, b"req-1");
        tx.insert(Keyspace::OutputQueue, b"out-1", &b"x"[..]);
        objects::put(tx, &spec, json!({"id": 2, "username": 5}), &PutOptions::default())?; // invalid
        Ok(())
    });
    assert!(failed.unwrap_err().to_string().contains("expected string"));
    assert!(get(&db, &spec, "id", &[json!(1)], &FindOptions::default()).unwrap().is_none());
    assert!(db.get(Keyspace::RepairQueue, b"req-1").unwrap().is_some());
    assert!(db.get(Keyspace::OutputQueue, b"out-1").unwrap().is_none());
    assert_eq!(count_keys(&db, Keyspace::HistoryIndex), 0);
    db.write(|tx| {
        objects::put(tx, &spec, user(1), &PutOptions::default())?;
        // the transaction sees its own object: update it in the same commit
        let n = objects::update(
            tx,
            &spec,
            &by_id(1),
            &[Updater::new(UpdaterOp::Set, "score", json!(77))],
            &UpdateOptions::default(),
        )?;
        assert_eq!(n.len(), 1);
        tx.remove(Keyspace::RepairQueue, b"req-1");
        tx.insert(Keyspace::OutputQueue, b"out-1", &b"x"[..]);
        Ok::<_, StorageError>(())
    })
    .unwrap();
    assert_eq!(get(&db, &spec, "id", &[json!(1)], &FindOptions::default()).unwrap().unwrap().object["score"], 77);
    assert!(db.get(Keyspace::RepairQueue, b"req-1").unwrap().is_none());
    assert!(db.get(Keyspace::OutputQueue, b"out-1").unwrap().is_some());
}

#[test]
fn reindex_rebuilds_entries_after_an_index_is_added() {
    let (_d, db) = temp_db();
    let mut spec = user_spec();
    spec.indexes.truncate(2);
    store_users(&db, 10);
    db.delete_objects(&spec, &by_id(3), &DeleteOptions::default()).unwrap();
    let full = user_spec();
    let n = db.write(|tx| objects::reindex(tx, &full)).unwrap();
    assert_eq!(n, 10);
    let p = find(&db, &full, &[Condition::new("phones", Op::Eq, json!("q3"))], &FindOptions::default()).unwrap();
    assert_eq!(ids(&p), [8], "new index works; the deleted object 3 is not current");
    let shown = FindOptions { dont_skip_deleted: true, ..Default::default() };
    let p = find(&db, &full, &[Condition::new("phones", Op::Eq, json!("q3"))], &shown).unwrap();
    assert_eq!(ids(&p), [3, 8]);
}

#[test]
fn puts_reject_bad_objects_with_named_fields() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let e = db.put_object(&spec, json!([1]), &PutOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "User: an object must be a JSON object");
    let e = db.put_object(&spec, json!({"username": "x"}), &PutOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "User: field \"id\" (index \"id\"): a value is required");
    let e = db
        .put_object(
            &spec,
            json!({"id": 1, "username": "x", "last": "a", "first": "b", "phones": 7}),
            &PutOptions::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("field \"phones.*\" (index \"phones\")"), "{e}");
}

#[test]
fn explicit_versions_go_to_history_replace_or_become_current() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let named = |name: &str| {
        let mut u = user(1);
        u["username"] = json!(name);
        u
    };
    let at = |v: u64| PutOptions { version: Some(v), ..Default::default() };
    let current = db.put_object(&spec, named("current"), &PutOptions::default()).unwrap().version;
    let by_name = |name: &str, opts: &FindOptions| {
        ids(&find(&db, &spec, &[Condition::new("username", Op::Eq, json!(name))], opts).unwrap())
    };
    let all = FindOptions { all_versions: true, ..Default::default() };

    // Older: into history; the current state stays, and the history index finds it as of then.
    let older = current - 1_000;
    assert_eq!(db.put_object(&spec, named("older"), &at(older)).unwrap().version, older);
    let now = get(&db, &spec, "id", &[json!(1)], &FindOptions::default()).unwrap().unwrap();
    assert_eq!((now.version, now.object["username"].clone()), (current, json!("current")));
    assert!(by_name("older", &FindOptions::default()).is_empty(), "not current");
    assert_eq!(by_name("older", &FindOptions { version: Some(older), ..Default::default() }), [1]);
    let versions: Vec<u64> = find(&db, &spec, &by_id(1), &all).unwrap().items.iter().map(|s| s.version).collect();
    assert_eq!(versions, [current, older], "history in version order");

    // Equal to a stored version: replaces it (its old index entries go).
    db.put_object(&spec, named("older, fixed"), &at(older)).unwrap();
    assert!(by_name("older", &FindOptions { version: Some(older), ..Default::default() }).is_empty());
    assert_eq!(by_name("older, fixed", &FindOptions { version: Some(older), ..Default::default() }), [1]);
    db.put_object(&spec, named("current, fixed"), &at(current)).unwrap();
    assert_eq!(by_name("current, fixed", &FindOptions::default()), [1]);
    assert!(by_name("current", &FindOptions::default()).is_empty());
    assert_eq!(find(&db, &spec, &by_id(1), &all).unwrap().items.len(), 2);

    // Newer: the current one; later automatic versions come after it.
    let newer = current + 1_000_000_000_000;
    db.put_object(&spec, named("newer"), &at(newer)).unwrap();
    assert_eq!(by_name("newer", &FindOptions::default()), [1]);
    let next = db.put_object(&spec, named("next"), &PutOptions::default()).unwrap().version;
    assert!(next > newer, "versions never go back");

    // A delete older than the current version lands in history; the object stays live.
    let del = DeleteOptions { version: Some(older + 1), ..Default::default() };
    let deleted = db.delete_objects(&spec, &by_id(1), &del).unwrap();
    assert_eq!(deleted[0].version, older + 1);
    assert_eq!(by_name("next", &FindOptions::default()), [1], "still live");
    let as_then = FindOptions { version: Some(older + 1), ..Default::default() };
    assert!(find(&db, &spec, &by_id(1), &as_then).unwrap().items.is_empty(), "deleted as of then");

    // update/delete skip deleted objects unless dont_skip_deleted.
    db.delete_objects(&spec, &by_id(1), &DeleteOptions::default()).unwrap();
    let set = [Updater::new(UpdaterOp::Set, "username", json!("revived"))];
    assert!(db.update_objects(&spec, &by_id(1), &set, &UpdateOptions::default()).unwrap().is_empty());
    let revive = UpdateOptions { dont_skip_deleted: true, ..Default::default() };
    let revived = db.update_objects(&spec, &by_id(1), &set, &revive).unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(by_name("revived", &FindOptions::default()), [1], "live again");
    let zero = db.put_object(&spec, named("zero"), &PutOptions { version: Some(0), ..Default::default() });
    assert!(zero.is_err(), "version 0 is refused");
    // A version far ahead of the clock would push every later automatic version after it.
    let ahead = db.put_object(&spec, named("ahead"), &PutOptions { version: Some(u64::MAX), ..Default::default() });
    assert!(ahead.unwrap_err().to_string().contains("ahead of this machine's clock"));
    let after = db.put_object(&spec, named("after"), &PutOptions::default()).unwrap().version;
    assert!(after < u64::MAX / 2, "the refused version moved nothing: {after}");
}

/// TDG: an update with a version updates the object as of that version (or the nearest older
/// one) and stores it as that version; a delete with a version deletes as of it; a permanent
/// delete with a version removes that version and the older ones, not the newer.
#[test]
fn update_delete_and_permanent_delete_with_a_version_act_as_of_it() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let mut versions = Vec::new();
    for (name, score) in [("first", 10), ("second", 20), ("third", 30)] {
        let mut u = user(1);
        (u["username"], u["score"]) = (json!(name), json!(score));
        versions.push(db.put_object(&spec, u, &PutOptions::default()).unwrap().version);
    }
    let as_of = |v: u64| FindOptions { version: Some(v), ..Default::default() };
    let by_name = |name: &str| vec![Condition::new("username", Op::Eq, json!(name))];
    let rename = |to: &str| [Updater::new(UpdaterOp::Set, "username", json!(to))];

    // The filter sees the object as of the version: "second" then, "third" now.
    let at_v2 = UpdateOptions { version: Some(versions[1]), ..Default::default() };
    assert!(db.update_objects(&spec, &by_name("third"), &rename("x"), &at_v2).unwrap().is_empty());
    let updated = db.update_objects(&spec, &by_name("second"), &rename("renamed"), &at_v2).unwrap();
    assert_eq!((updated[0].version, &updated[0].object["score"]), (versions[1], &json!(20)), "v2's state, kept as v2");
    let then = find(&db, &spec, &by_id(1), &as_of(versions[1])).unwrap();
    assert_eq!((&then.items[0].object["username"], &then.items[0].object["score"]), (&json!("renamed"), &json!(20)));
    let now = find(&db, &spec, &by_id(1), &FindOptions::default()).unwrap();
    assert_eq!((&now.items[0].object["username"], now.items[0].version), (&json!("third"), versions[2]));
    assert_eq!(ids(&find(&db, &spec, &by_name("renamed"), &as_of(versions[1])).unwrap()), [1], "its history entry");
    assert!(find(&db, &spec, &by_name("second"), &as_of(versions[1])).unwrap().items.is_empty());

    // A permanent delete up to v2: v1 and v2 go, v3 stays current with its index entries.
    let perm =
        |v: u64| DeleteOptions { permanent_delete: true, all_versions: true, version: Some(v), ..Default::default() };
    assert_eq!(db.delete_objects(&spec, &by_id(1), &perm(versions[1])).unwrap().len(), 1);
    let all = FindOptions { all_versions: true, ..Default::default() };
    let left: Vec<u64> = find(&db, &spec, &by_id(1), &all).unwrap().items.iter().map(|s| s.version).collect();
    assert_eq!(left, [versions[2]]);
    assert_eq!(ids(&find(&db, &spec, &by_name("third"), &FindOptions::default()).unwrap()), [1]);
    assert!(find(&db, &spec, &by_name("first"), &as_of(versions[0])).unwrap().items.is_empty());
    // Up to a version at or after the newest: all of it.
    assert_eq!(db.delete_objects(&spec, &by_id(1), &perm(versions[2])).unwrap().len(), 1);
    for ks in [Keyspace::Objects, Keyspace::CurrentIndex, Keyspace::HistoryIndex] {
        assert_eq!(count_keys(&db, ks), 0, "{ks:?} is empty");
    }
}

/// Without `first`, an update or a delete acts on every match (TDG: `User(delete: true)` deletes
/// every User) within the hard limits; past them it fails and changes nothing.
#[test]
fn update_and_delete_without_first_act_on_every_match_within_the_hard_limits() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    for id in 1..=15 {
        db.put_object(&spec, user(id), &PutOptions::default()).unwrap();
    }
    let everyone = [Condition::new("id", Op::Ge, json!(1))];
    let set = [Updater::new(UpdaterOp::Set, "score", json!(7))];
    assert_eq!(db.update_objects(&spec, &everyone, &set, &UpdateOptions::default()).unwrap().len(), 15);
    let tight = super::HardLimits { scanned: 2000, returned: 12 };
    let limited = DeleteOptions { hard_limits: tight, ..Default::default() };
    let e = db.delete_objects(&spec, &everyone, &limited).unwrap_err();
    assert!(matches!(e, StorageError::HardLimit { limit: "returned", .. }), "{e}");
    assert_eq!(
        find(&db, &spec, &everyone, &FindOptions { first: Some(100), ..Default::default() }).unwrap().items.len(),
        15
    );
    assert_eq!(db.delete_objects(&spec, &everyone, &DeleteOptions::default()).unwrap().len(), 15);
    assert!(find(&db, &spec, &everyone, &FindOptions::default()).unwrap().items.is_empty());
}
