//! Object writes inside a [`WriteTx`]: put (new version), update (updaters on matches), delete
//! (tombstone or permanent purge), and rebuilding the index entries of a type.

use super::cursor::{self, Source};
use super::db::ReadView;
use super::error::StorageError;
use super::filter::Condition;
use super::keycodec::decode_u64_desc;
use super::keys::{current_key, history_key, index_keys, object_key, primary_key, type_prefix};
use super::keyspace::Keyspace;
use super::options::{DeleteOptions, PutOptions, Stored, UpdateOptions};
use super::record;
use super::scan::{self, load, Query};
use super::spec::TypeSpec;
use super::tx::WriteTx;
use super::updater::Updater;
use serde_json::Value;

/// How far ahead of the clock an explicit version may be (one hour, in nanoseconds).
const MAX_VERSION_AHEAD_NS: u64 = 3_600_000_000_000;

/// The newest stored version of object `pk` (live or a tombstone).
fn latest_version(tx: &WriteTx<'_>, tp: &[u8], pk: &[u8]) -> Result<Option<u64>, StorageError> {
    let prefix = [tp, pk].concat();
    let newest = tx.scan_prefix(Keyspace::Objects, &prefix).next().transpose()?;
    Ok(newest.and_then(|(key, _)| key.get(prefix.len()..).filter(|rest| rest.len() == 8).and_then(decode_u64_desc)))
}

/// Writes `obj` (a tombstone when `deleted`) as a version of object `pk`: a new one, or, with an
/// explicit `version` (TDG semantics), the current one when it is newer than the latest stored,
/// a replacement of the stored version it equals, or a history version when it is older (the
/// current state stays). `old` is the latest live version (its current entries go when the
/// written version becomes the current one).
#[allow(clippy::too_many_arguments)]
fn write_version(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    tp: &[u8],
    pk: &[u8],
    obj: &Value,
    deleted: bool,
    old: Option<&Value>,
    version: Option<u64>,
) -> Result<u64, StorageError> {
    let Some(v) = version else {
        let v = tx.next_version();
        return store_version(tx, spec, tp, pk, obj, deleted, old, v);
    };
    if v == 0 {
        return Err(StorageError::user(format!("{}: version must be a positive number", spec.name)));
    }
    // Versions are nanoseconds since the epoch: one far ahead would push every later automatic
    // version after it.
    let limit = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
        .saturating_add(MAX_VERSION_AHEAD_NS);
    if v > limit {
        return Err(StorageError::user(format!(
            "{}: version {v} is more than an hour ahead of this machine's clock (versions are nanoseconds since the epoch)",
            spec.name
        )));
    }
    tx.observe_version(v);
    let latest = latest_version(tx, tp, pk)?;
    if latest.is_some_and(|l| v <= l) {
        // The stored version it replaces gives up its history entries first.
        if let Some((_, previous, _)) = load(&*tx, tp, pk, v)? {
            for i in 1..spec.indexes.len() {
                for k in index_keys(spec, i, &previous, usize::MAX, false).unwrap_or_default() {
                    tx.remove(Keyspace::HistoryIndex, &history_key(tp, spec.key_id(i), &k, pk, v));
                }
            }
        }
    }
    match latest {
        Some(l) if v < l => {
            // History only: the record and its history entries; the current state stays.
            tx.insert(Keyspace::Objects, &object_key(tp, pk, v), record::encode(obj, deleted, spec.config_version)?);
            for i in 1..spec.indexes.len() {
                let keys = if deleted {
                    index_keys(spec, i, obj, usize::MAX, false).unwrap_or_default()
                } else {
                    index_keys(spec, i, obj, usize::MAX, true)?
                };
                for k in keys {
                    tx.insert(Keyspace::HistoryIndex, &history_key(tp, spec.key_id(i), &k, pk, v), &[][..]);
                }
            }
            Ok(v)
        }
        _ => store_version(tx, spec, tp, pk, obj, deleted, old, v),
    }
}

/// Writes version `v` of object `pk` (a tombstone when `deleted`) as its current version, with
/// its index entries; `old` is the latest live version it replaces (its current entries are
/// removed).
#[allow(clippy::too_many_arguments)]
fn store_version(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    tp: &[u8],
    pk: &[u8],
    obj: &Value,
    deleted: bool,
    old: Option<&Value>,
    v: u64,
) -> Result<u64, StorageError> {
    let mut new_keys = Vec::with_capacity(spec.indexes.len());
    for i in 1..spec.indexes.len() {
        new_keys.push(if deleted {
            index_keys(spec, i, obj, usize::MAX, false).unwrap_or_default()
        } else {
            index_keys(spec, i, obj, usize::MAX, true)?
        });
    }
    let ver = v.to_be_bytes();
    tx.insert(Keyspace::Objects, &object_key(tp, pk, v), record::encode(obj, deleted, spec.config_version)?);
    let cur_pk = current_key(tp, 0, pk, pk);
    if deleted {
        tx.remove(Keyspace::CurrentIndex, &cur_pk);
    } else {
        tx.insert(Keyspace::CurrentIndex, &cur_pk, &ver[..]);
    }
    for (n, keys) in new_keys.iter().enumerate() {
        let i = n + 1;
        if let Some(old) = old {
            for k in index_keys(spec, i, old, usize::MAX, false).unwrap_or_default() {
                if deleted || keys.binary_search(&k).is_err() {
                    tx.remove(Keyspace::CurrentIndex, &current_key(tp, spec.key_id(i), &k, pk));
                }
            }
        }
        for k in keys {
            if !deleted {
                tx.insert(Keyspace::CurrentIndex, &current_key(tp, spec.key_id(i), k, pk), &ver[..]);
            }
            tx.insert(Keyspace::HistoryIndex, &history_key(tp, spec.key_id(i), k, pk, v), &[][..]);
        }
    }
    Ok(v)
}

fn conflict(spec: &TypeSpec, expected: u64, actual: Option<u64>) -> StorageError {
    StorageError::Conflict { type_name: spec.name.clone(), expected, actual }
}

pub(crate) fn put(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    obj: Value,
    opts: &PutOptions,
) -> Result<Stored, StorageError> {
    spec.validate()?;
    if !obj.is_object() {
        return Err(StorageError::user(format!("{}: an object must be a JSON object", spec.name)));
    }
    if opts.if_not_exists && opts.only_if_version.is_some() {
        return Err(StorageError::user(format!("{}: if_not_exists and only_if_version cannot be combined", spec.name)));
    }
    let tp = type_prefix(spec);
    let pk = primary_key(spec, &obj)?;
    let current = match tx.get(Keyspace::CurrentIndex, &current_key(&tp, 0, &pk, &pk))? {
        Some(v) => Some(record::decode_version(&v)?),
        None => None,
    };
    if let Some(expected) = opts.only_if_version {
        if current != Some(expected) {
            return Err(conflict(spec, expected, current));
        }
    }
    let old = match current {
        Some(ver) => load(&*tx, &tp, &pk, ver)?,
        None => None,
    };
    let cursor = cursor::encode(Source::Current(0), &pk);
    if let (true, Some(ver), Some((deleted, existing, config_version))) = (opts.if_not_exists, current, &old) {
        return Ok(Stored {
            object: existing.clone(),
            version: ver,
            cursor,
            deleted: *deleted,
            config_version: *config_version,
        });
    }
    let live = old.as_ref().filter(|(deleted, _, _)| !deleted).map(|(_, o, _)| o);
    let version = write_version(tx, spec, &tp, &pk, &obj, false, live, opts.version)?;
    Ok(Stored { object: obj, version, cursor, deleted: false, config_version: spec.config_version })
}

/// An update or delete without `first` acts on every match (TDG: `User(delete: true)` deletes
/// every User), as far as the hard limits let it: past them it fails and changes nothing.
const EVERY_MATCH: i64 = i64::MAX;

pub(crate) fn update(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    filter: &[Condition],
    updaters: &[Updater],
    opts: &UpdateOptions,
    normalize: &mut dyn FnMut(Value) -> Result<Value, StorageError>,
) -> Result<Vec<Stored>, StorageError> {
    spec.validate()?;
    if updaters.is_empty() {
        return Err(StorageError::user(format!("{}: update needs at least one updater", spec.name)));
    }
    updaters.iter().try_for_each(|u| u.check(spec))?;
    // With a version (TDG): the object as of that version (or the nearest older one) is the one
    // updated, and the result is stored as that version.
    let q = Query {
        first: Some(opts.first.unwrap_or(EVERY_MATCH)),
        after: opts.after.as_deref(),
        version: opts.version,
        all_versions: false,
        dont_skip_deleted: opts.dont_skip_deleted,
        limits: opts.hard_limits,
        operation: "update",
    };
    let page = scan::find(&*tx, spec, filter, &q)?;
    let tp = type_prefix(spec);
    let mut out = Vec::with_capacity(page.items.len());
    for item in page.items {
        if let Some(expected) = opts.only_if_version.filter(|e| *e != item.version) {
            return Err(conflict(spec, expected, Some(item.version)));
        }
        let mut obj = item.object.clone();
        for u in updaters {
            u.apply(&mut obj, &spec.name)?;
        }
        let obj = normalize(obj)?;
        let pk = primary_key(spec, &obj)?;
        let live = (!item.deleted).then_some(&item.object);
        let version = write_version(tx, spec, &tp, &pk, &obj, false, live, opts.version)?;
        out.push(Stored {
            object: obj,
            version,
            cursor: item.cursor,
            deleted: false,
            config_version: spec.config_version,
        });
    }
    Ok(out)
}

pub(crate) fn delete(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    filter: &[Condition],
    opts: &DeleteOptions,
) -> Result<Vec<Stored>, StorageError> {
    spec.validate()?;
    if opts.permanent_delete != opts.all_versions {
        return Err(StorageError::user(format!(
            "{}: permanent_delete and all_versions must be given together on delete",
            spec.name
        )));
    }
    // With a version (TDG): the objects as of that version; a tombstone is written as that
    // version, a permanent delete removes that version and every older one.
    let q = Query {
        first: Some(opts.first.unwrap_or(EVERY_MATCH)),
        after: opts.after.as_deref(),
        version: opts.version,
        all_versions: false,
        // a permanent delete also purges objects that are already soft-deleted
        dont_skip_deleted: opts.permanent_delete || opts.dont_skip_deleted,
        limits: opts.hard_limits,
        operation: "delete",
    };
    let page = scan::find(&*tx, spec, filter, &q)?;
    let tp = type_prefix(spec);
    let mut out = Vec::with_capacity(page.items.len());
    for item in page.items {
        if let Some(expected) = opts.only_if_version.filter(|e| *e != item.version) {
            return Err(conflict(spec, expected, Some(item.version)));
        }
        let pk = primary_key(spec, &item.object)?;
        let (version, config_version) = if opts.permanent_delete {
            purge(tx, spec, &tp, &pk, opts.version)?;
            (item.version, item.config_version)
        } else {
            let live = (!item.deleted).then_some(&item.object);
            (write_version(tx, spec, &tp, &pk, &item.object, true, live, opts.version)?, spec.config_version)
        };
        out.push(Stored { object: item.object, version, cursor: item.cursor, deleted: true, config_version });
    }
    Ok(out)
}

/// Removes the versions of object `pk` up to `upto` (every one: `None`) and their index
/// entries; its current entries too when no newer version stays.
fn purge(tx: &mut WriteTx<'_>, spec: &TypeSpec, tp: &[u8], pk: &[u8], upto: Option<u64>) -> Result<(), StorageError> {
    let run = [tp, pk].concat();
    let versions: Vec<_> = tx.scan_prefix(Keyspace::Objects, &run).collect::<Result<_, _>>()?;
    let mut newer_stays = false;
    // Newest first.
    for (k, v) in versions {
        let ver = decode_u64_desc(&k[run.len()..])
            .ok_or_else(|| StorageError::Corrupt(format!("bad object key of {}", spec.name)))?;
        if upto.is_some_and(|upto| ver > upto) {
            newer_stays = true;
            continue;
        }
        let (_, obj) = record::decode(&v)?;
        for i in 1..spec.indexes.len() {
            for key in index_keys(spec, i, &obj, usize::MAX, false).unwrap_or_default() {
                tx.remove(Keyspace::HistoryIndex, &history_key(tp, spec.key_id(i), &key, pk, ver));
                if !newer_stays {
                    tx.remove(Keyspace::CurrentIndex, &current_key(tp, spec.key_id(i), &key, pk));
                }
            }
        }
        tx.remove(Keyspace::Objects, &k);
    }
    if !newer_stays {
        tx.remove(Keyspace::CurrentIndex, &current_key(tp, 0, pk, pk));
    }
    Ok(())
}

/// Drops and rebuilds every index entry of the type from its stored versions.
pub(crate) fn reindex(tx: &mut WriteTx<'_>, spec: &TypeSpec) -> Result<u64, StorageError> {
    spec.validate()?;
    let tp = type_prefix(spec);
    for ks in [Keyspace::CurrentIndex, Keyspace::HistoryIndex] {
        let old: Vec<_> = tx.scan_prefix(ks, &tp).collect::<Result<_, _>>()?;
        for (k, _) in old {
            tx.remove(ks, &k);
        }
    }
    let versions: Vec<_> = tx.scan_prefix(Keyspace::Objects, &tp).collect::<Result<_, _>>()?;
    let (mut objects, mut last_pk) = (0u64, Vec::new());
    for (k, v) in versions {
        let split = k.len().checked_sub(8).filter(|s| *s >= tp.len());
        let Some(split) = split else {
            return Err(StorageError::Corrupt(format!("bad object key of {}", spec.name)));
        };
        let (pk, ver) = (&k[tp.len()..split], decode_u64_desc(&k[split..]).unwrap_or_default());
        let (deleted, obj) = record::decode(&v)?;
        let latest = pk != last_pk.as_slice();
        if latest {
            objects += 1;
            last_pk = pk.to_vec();
            if !deleted {
                tx.insert(Keyspace::CurrentIndex, &current_key(&tp, 0, pk, pk), &ver.to_be_bytes()[..]);
            }
        }
        for i in 1..spec.indexes.len() {
            for key in index_keys(spec, i, &obj, usize::MAX, false).unwrap_or_default() {
                if latest && !deleted {
                    tx.insert(
                        Keyspace::CurrentIndex,
                        &current_key(&tp, spec.key_id(i), &key, pk),
                        &ver.to_be_bytes()[..],
                    );
                }
                tx.insert(Keyspace::HistoryIndex, &history_key(&tp, spec.key_id(i), &key, pk, ver), &[][..]);
            }
        }
    }
    Ok(objects)
}
