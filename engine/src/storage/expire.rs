//! Removing old object versions in bounded batches: expiration (versions past a lifetime,
//! history beyond a number of versions) and archiving (versions past a lifetime, handed to the
//! archive writer before they go). Each batch reads and removes inside one commit, so what it
//! takes for an object's current version is current when it goes.

use super::db::{Db, ReadView};
use super::error::StorageError;
use super::keycodec::{decode_u64_desc, prefix_successor};
use super::keys::{current_key, history_key, index_keys, type_prefix};
use super::keyspace::Keyspace;
use super::record;
use super::spec::TypeSpec;
use serde_json::Value;
use std::ops::Bound;

/// One stored version, as a batch found it.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its version.
    pub version: u64,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// The object.
    pub object: Value,
    /// 0 for the object's newest version, 1 for the one before, ...
    pub rank: usize,
}

/// Where a pass over a type got to: the last object key read.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    after: Option<Vec<u8>>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Versions removed.
    pub removed: u64,
    /// The pass is over (the type's last version was read).
    pub done: bool,
}

/// The age past which a version is old, for `now_ns` and a lifetime in nanoseconds: versions
/// are nanoseconds since the epoch (explicit versions are taken as such too).
pub fn older_than(now_ns: u64, lifetime_ns: u64) -> u64 {
    now_ns.saturating_sub(lifetime_ns)
}

/// Read the next `batch` stored versions of the type `spec_of` gives from `cursor`, and remove
/// those `select` picks, in one commit; `keep` sees them first (the archive writes and syncs
/// them) and an error there removes nothing. A removed newest live version takes its current
/// entries with it. `spec_of` is asked inside the commit (an apply changes specs under the same
/// lock); `None` (the type left the model) ends the pass. Ranks are counted up to `ranks` (the
/// largest `select` tells apart, at least 1: 0 is the current version), no further.
#[allow(clippy::too_many_arguments)]
pub fn step(
    db: &Db,
    spec_of: &dyn Fn() -> Option<std::sync::Arc<TypeSpec>>,
    cursor: &mut Cursor,
    batch: usize,
    ranks: usize,
    select: &dyn Fn(&Found) -> bool,
    keep: &mut dyn FnMut(&[Found]) -> Result<(), StorageError>,
) -> Result<Step, StorageError> {
    let mut next = cursor.clone();
    let step = db.write(|tx| {
        let Some(spec) = spec_of() else { return Ok(Step { removed: 0, done: true }) };
        let spec = spec.as_ref();
        let tp = type_prefix(spec);
        let end = prefix_successor(&tp);
        let lower = next.after.as_deref().map_or(Bound::Included(tp.as_slice()), Bound::Excluded);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = tx
            .range(Keyspace::Objects, lower, upper, false)
            .take(batch)
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        let mut picked: Vec<(Vec<u8>, Vec<u8>, Found)> = Vec::new();
        let mut previous: Option<(Vec<u8>, usize)> = None;
        for (key, value) in &rows {
            let Some(split) = key.len().checked_sub(8).filter(|s| *s >= tp.len()) else {
                return Err(StorageError::Corrupt(format!("bad object key of {}", spec.name)));
            };
            let pk = key[tp.len()..split].to_vec();
            let version = decode_u64_desc(&key[split..]).unwrap_or_default();
            // An object's versions are newest first. Its rank is counted in this commit where
            // the batch starts inside its versions: what came before may have changed since the
            // last batch (new versions; a purge and versions written again).
            let rank = match previous.take() {
                Some((last, rank)) if last == pk => rank + 1,
                Some(_) => 0,
                None => {
                    // Counted as far as the selection tells ranks apart: an object of millions
                    // of versions costs a few reads a batch, not a walk of them all.
                    let first = [tp.as_slice(), &pk].concat();
                    tx.range(Keyspace::Objects, Bound::Included(first.as_slice()), Bound::Excluded(key), false)
                        .take(ranks.max(1))
                        .try_fold(0usize, |n, item| item.map(|_| n + 1))?
                }
            };
            previous = Some((pk.clone(), rank));
            let (deleted, object) = record::decode(value)?;
            let found = Found { version, deleted, object, rank };
            if select(&found) {
                picked.push((key.clone(), pk, found));
            }
        }
        next.after = rows.last().map(|(k, _)| k.clone()).or(next.after.take());
        let done = rows.len() < batch;
        if picked.is_empty() {
            return Ok(Step { removed: 0, done });
        }
        let found: Vec<Found> = picked.iter().map(|(_, _, f)| f.clone()).collect();
        keep(&found)?;
        for (key, pk, f) in &picked {
            tx.remove(Keyspace::Objects, key);
            let current = f.rank == 0 && !f.deleted;
            for i in 1..spec.indexes.len() {
                for k in index_keys(spec, i, &f.object, usize::MAX, false).unwrap_or_default() {
                    tx.remove(Keyspace::HistoryIndex, &history_key(&tp, spec.key_id(i), &k, pk, f.version));
                    if current {
                        tx.remove(Keyspace::CurrentIndex, &current_key(&tp, spec.key_id(i), &k, pk));
                    }
                }
            }
            if current {
                tx.remove(Keyspace::CurrentIndex, &current_key(&tp, 0, pk, pk));
            }
        }
        Ok(Step { removed: picked.len() as u64, done })
    })?;
    *cursor = next;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{temp_db, user, user_spec};
    use crate::storage::{objects, Condition, DeleteOptions, FindOptions, Op, PutOptions};
    use serde_json::json;

    fn pass(db: &Db, spec: &TypeSpec, select: &dyn Fn(&Found) -> bool) -> u64 {
        let mut cursor = Cursor::default();
        let mut removed = 0;
        loop {
            // Small batches: an object's versions span several.
            let shared = std::sync::Arc::new(spec.clone());
            let step = step(db, &|| Some(shared.clone()), &mut cursor, 2, usize::MAX, select, &mut |_| Ok(())).unwrap();
            removed += step.removed;
            if step.done {
                return removed;
            }
        }
    }

    #[test]
    fn history_beyond_a_count_and_versions_past_a_lifetime_go() {
        let (_d, db) = temp_db();
        let spec = user_spec();
        let at = |v: u64| PutOptions { version: Some(v), ..Default::default() };
        for id in 1..=3 {
            for v in 1..=4u64 {
                let mut u = user(id);
                u["username"] = json!(format!("u{id}v{v}"));
                db.put_object(&spec, u, &at(id as u64 * 100 + v)).unwrap();
            }
        }
        let all = FindOptions { all_versions: true, first: Some(100), ..Default::default() };
        let count = || objects::find(&db, &spec, &[], &all).unwrap().items.len();
        assert_eq!(count(), 12);
        // keep_version_count 2: the current and one more of each object.
        assert_eq!(pass(&db, &spec, &|f| f.rank >= 2), 6);
        assert_eq!(count(), 6);
        let current = objects::find(&db, &spec, &[], &FindOptions::default()).unwrap();
        assert_eq!(current.items.len(), 3, "no current version went");
        // A lifetime that object 1's versions (101..104) are past: the object itself expires.
        let old = |f: &Found| f.version < 200;
        assert_eq!(pass(&db, &spec, &old), 2);
        let by_id =
            |id: i64| objects::find(&db, &spec, &[Condition::new("id", Op::Eq, json!(id))], &FindOptions::default());
        assert!(by_id(1).unwrap().items.is_empty());
        assert_eq!(by_id(2).unwrap().items.len(), 1);
        // Its index entries went with it: a query by name finds nothing, now or as of then.
        let name = [Condition::new("username", Op::Eq, json!("u1v4"))];
        assert!(objects::find(&db, &spec, &name, &FindOptions::default()).unwrap().items.is_empty());
        let then = FindOptions { version: Some(104), ..Default::default() };
        assert!(objects::find(&db, &spec, &name, &then).unwrap().items.is_empty());
    }

    /// A batch that starts inside an object's versions counts what comes before it as it is
    /// then: purged and written again between two batches, the object's only version is its
    /// current one, not the third of the versions the last batch saw.
    #[test]
    fn ranks_are_counted_as_stored_when_a_batch_starts_inside_an_objects_versions() {
        let (_d, db) = temp_db();
        let spec = user_spec();
        let at = |v: u64| PutOptions { version: Some(v), ..Default::default() };
        for v in [10, 20, 30] {
            db.put_object(&spec, user(1), &at(v)).unwrap();
        }
        let shared = std::sync::Arc::new(spec.clone());
        let keep_two = |f: &Found| f.rank >= 2;
        let mut cursor = Cursor::default();
        // The first batch reads versions 30 and 20 (ranks 0 and 1) and removes nothing.
        let first = step(&db, &|| Some(shared.clone()), &mut cursor, 2, 2, &keep_two, &mut |_| Ok(())).unwrap();
        assert_eq!(first, Step { removed: 0, done: false });
        let purge = DeleteOptions { first: Some(10), all_versions: true, permanent_delete: true, ..Default::default() };
        db.delete_objects(&spec, &[], &purge).unwrap();
        let mut again = user(1);
        again["username"] = json!("again");
        db.put_object(&spec, again, &at(5)).unwrap();
        let second = step(&db, &|| Some(shared.clone()), &mut cursor, 2, 2, &keep_two, &mut |_| Ok(())).unwrap();
        assert_eq!(second, Step { removed: 0, done: true }, "the current version stays");
        let by_name = [Condition::new("username", Op::Eq, json!("again"))];
        assert_eq!(objects::find(&db, &spec, &by_name, &FindOptions::default()).unwrap().items.len(), 1);
        // Versions written meanwhile count too: keep_version_count 1 over 3 new ones.
        for v in [40, 50] {
            db.put_object(&spec, user(1), &at(v)).unwrap();
        }
        let mut cursor = Cursor::default();
        let keep_one = |f: &Found| f.rank >= 1;
        let first = step(&db, &|| Some(shared.clone()), &mut cursor, 1, 1, &keep_one, &mut |_| Ok(())).unwrap();
        assert_eq!(first.removed, 0, "50, the current one");
        db.put_object(&spec, user(1), &at(60)).unwrap();
        let mut removed = 0;
        while let Step { removed: r, done: false } =
            step(&db, &|| Some(shared.clone()), &mut cursor, 1, 1, &keep_one, &mut |_| Ok(())).unwrap()
        {
            removed += r;
        }
        let all = FindOptions { all_versions: true, first: Some(10), ..Default::default() };
        let left: Vec<u64> = objects::find(&db, &spec, &[], &all).unwrap().items.iter().map(|s| s.version).collect();
        assert_eq!((removed, left), (2, vec![60, 50]), "50 was read as current, 40 and 5 counted after 60");
    }

    #[test]
    fn a_failing_keeper_removes_nothing() {
        let (_d, db) = temp_db();
        let spec = user_spec();
        db.put_object(&spec, user(1), &PutOptions::default()).unwrap();
        let mut cursor = Cursor::default();
        let shared = std::sync::Arc::new(spec.clone());
        let failed = step(&db, &|| Some(shared.clone()), &mut cursor, 10, 1, &|_| true, &mut |_| {
            Err(StorageError::user("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(objects::find(&db, &spec, &[], &FindOptions::default()).unwrap().items.len(), 1);
    }
}
