//! The index catalog: the key id of every index of every stored type, kept in the store's
//! metadata (`Meta` keyspace, `catalog/<type>`), so that what an index's entries mean never
//! depends on where the index stands in the model.
//!
//! [`migrate`] runs at start, before anything reads or writes objects. It matches the model's
//! indexes with the catalog by name and definition (parts, paths, kinds, collation, multikey):
//! - an index found there keeps its key id and its entries;
//! - a new index, or one whose definition changed, gets a free key id and is built from the
//!   stored versions;
//! - an index no longer in the model has its entries deleted in the background
//!   ([`drop_removed`]); its key id is not given out again until they are gone;
//! - a type stored before the catalog existed has all its secondary entries deleted and
//!   rebuilt, since nothing says which model wrote them.
//!
//! The work goes in bounded batches. Each batch commits together with the catalog's record of
//! how far it got, so a process killed midway resumes where the last commit ended. A freed key
//! id is never reused while entries remain under it. The primary index (key id 0) cannot change over stored objects: that is refused.

use super::db::{Db, ReadView};
use super::error::StorageError;
use super::keycodec::{decode_u64_desc, prefix_successor};
use super::keys::{current_key, history_key, index_keys, index_prefix, type_prefix, type_prefix_of};
use super::keyspace::Keyspace;
use super::record;
use super::spec::{IndexSpec, TypeSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::ops::Bound;

/// Object versions read (or index entries deleted) per commit.
const BATCH: usize = 2_000;

/// What the catalog records of one type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Catalog {
    /// The indexes, in the order of the model that wrote the catalog.
    indexes: Vec<Entry>,
    /// Key ids whose entries are still being deleted.
    #[serde(default)]
    dropping: Vec<u8>,
    /// Every secondary entry of the type is to be deleted (a store older than the catalog).
    #[serde(default)]
    drop_all_secondary: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    /// The definition: parts (paths, kinds, collations, nullability) and multikey, as JSON.
    definition: String,
    id: u8,
    /// Still being built: the last object key done (hex), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    building: Option<Building>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Building {
    /// The last object key (after the type prefix) whose versions are indexed, in hex.
    after: Option<String>,
    /// Object versions indexed so far.
    done: u64,
}

/// What [`migrate`] did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `(type, index)` of every index to build (the spec marks them `building`).
    pub building: Vec<(String, String)>,
    /// `(type, index entries deleted)` of every type whose old entries went.
    pub dropped: Vec<(String, u64)>,
}

fn definition(index: &IndexSpec) -> String {
    serde_json::to_string(&(&index.parts, index.multikey)).unwrap_or_default()
}

fn catalog_key(type_name: &str) -> Vec<u8> {
    [b"catalog/".as_slice(), type_name.as_bytes()].concat()
}

fn corrupt(type_name: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("index catalog of {type_name}: {e}"))
}

/// The catalog of `type_name` as the write `tx` sees it.
fn load_in(tx: &super::WriteTx<'_>, type_name: &str) -> Result<Option<Catalog>, StorageError> {
    tx.get(Keyspace::Meta, &catalog_key(type_name))?
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| corrupt(type_name, e)))
        .transpose()
}

fn load(db: &Db, type_name: &str) -> Result<Option<Catalog>, StorageError> {
    db.get(Keyspace::Meta, &catalog_key(type_name))?
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| corrupt(type_name, e)))
        .transpose()
}

fn save(tx: &mut super::WriteTx<'_>, type_name: &str, catalog: &Catalog) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(catalog).map_err(|e| corrupt(type_name, e))?;
    tx.insert(Keyspace::Meta, &catalog_key(type_name), bytes);
    Ok(())
}

/// Whether any version of the type is stored.
fn has_objects(db: &Db, tp: &[u8]) -> Result<bool, StorageError> {
    Ok(db.scan_prefix(Keyspace::Objects, tp).next().transpose()?.is_some())
}

/// The catalog the model's `spec` needs, from what was recorded (`None`: nothing yet).
fn plan(spec: &TypeSpec, old: Option<Catalog>, stored: bool) -> Result<Catalog, StorageError> {
    let fresh = |id: u8, index: &IndexSpec, build: bool| Entry {
        name: index.name.clone(),
        definition: definition(index),
        id,
        building: build.then(Building::default),
    };
    let Some(old) = old else {
        // No catalog: positions are the ids; entries written before the catalog are not trusted.
        let indexes = spec.indexes.iter().enumerate().map(|(i, index)| fresh(i as u8, index, stored && i > 0));
        return Ok(Catalog { indexes: indexes.collect(), dropping: Vec::new(), drop_all_secondary: stored });
    };
    let primary = spec.indexes.first().map(definition);
    if stored && old.indexes.first().map(|e| &e.definition) != primary.as_ref() {
        return Err(StorageError::user(format!(
            "{}: the primary index changed over stored objects; that migration is not supported",
            spec.name
        )));
    }
    let mut catalog =
        Catalog { indexes: Vec::new(), dropping: old.dropping, drop_all_secondary: old.drop_all_secondary };
    let mut unmatched: Vec<Entry> = old.indexes.into_iter().skip(1).collect();
    for (i, index) in spec.indexes.iter().enumerate() {
        if i == 0 {
            catalog.indexes.push(fresh(0, index, false));
            continue;
        }
        let wanted = definition(index);
        match unmatched.iter().position(|e| e.name == index.name && e.definition == wanted) {
            Some(at) => catalog.indexes.push(unmatched.remove(at)),
            None => catalog.indexes.push(fresh(0, index, stored)),
        }
    }
    // Indexes gone from the model: their entries go.
    catalog.dropping.extend(unmatched.iter().map(|e| e.id));
    // New indexes take the lowest key ids neither in use nor being emptied.
    for at in 1..catalog.indexes.len() {
        if catalog.indexes[at].id != 0 {
            continue;
        }
        let id = (1..=u8::MAX)
            .find(|id| !catalog.dropping.contains(id) && !catalog.indexes.iter().any(|e| e.id == *id))
            .ok_or_else(|| StorageError::user(format!("{}: no free index key id (255 in use)", spec.name)))?;
        catalog.indexes[at].id = id;
    }
    Ok(catalog)
}

/// Delete every key in `[lower, upper)` of the index keyspaces, a batch per commit, recording
/// the end (`done`) in the catalog with the last batch — in the catalog as stored then, read in
/// that commit (an apply may have changed it meanwhile), and in `catalog`; how many were
/// deleted.
/// Each batch first checks, in its commit, that the catalog still asks for the deletion
/// (`pending`): an operator's truncate or drop meanwhile may have freed the key id for a new
/// index, whose entries must not go.
fn delete_range(
    db: &Db,
    type_name: &str,
    catalog: &mut Catalog,
    lower: &[u8],
    upper: Option<&[u8]>,
    pending: impl Fn(Option<&Catalog>) -> bool,
    done: impl Fn(&mut Catalog),
) -> Result<u64, StorageError> {
    let mut deleted = 0u64;
    loop {
        let mut keys = Vec::new();
        for ks in [Keyspace::CurrentIndex, Keyspace::HistoryIndex] {
            let upper = upper.map_or(Bound::Unbounded, Bound::Excluded);
            for item in db.range(ks, Bound::Included(lower), upper, false).take(BATCH) {
                keys.push((ks, item?.0.to_vec()));
            }
        }
        let last = keys.len() < BATCH;
        if last {
            done(catalog);
        }
        let went = db.write(|tx| {
            let stored = load_in(tx, type_name)?;
            if !pending(stored.as_ref()) {
                return Ok::<_, StorageError>(false);
            }
            for (ks, key) in &keys {
                tx.remove(*ks, key);
            }
            if let (true, Some(mut stored)) = (last, stored) {
                done(&mut stored);
                save(tx, type_name, &stored)?;
            }
            Ok(true)
        })?;
        if !went {
            return Ok(deleted);
        }
        deleted += keys.len() as u64;
        if last {
            return Ok(deleted);
        }
    }
}

/// How far one step of a build got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Stored versions indexed so far.
    pub done: u64,
    /// The index is complete (and marked so in the catalog).
    pub finished: bool,
}

/// Index the next batch (at most `batch` stored versions) for index `at` of `spec`, from where
/// the catalog says the build got to, in one commit with the catalog's progress. The versions
/// are read inside that commit, so no write of an object can come between the read and the
/// entries (writes keep a building index up to date themselves).
pub fn build_step(db: &Db, spec: &TypeSpec, at: usize, batch: usize) -> Result<Step, StorageError> {
    let tp = type_prefix(spec);
    let end = prefix_successor(&tp);
    db.write(|tx| {
        let Some(mut catalog) = load_in(tx, &spec.name)? else {
            return Err(corrupt(&spec.name, "no catalog for a build"));
        };
        let Some(entry) = catalog.indexes.get(at) else {
            return Err(corrupt(&spec.name, format!("no index at {at}")));
        };
        let id = entry.id;
        let Some(progress) = entry.building.clone() else {
            return Ok(Step { done: 0, finished: true });
        };
        let after = progress.after.as_deref().map(hex::decode).transpose().map_err(|e| corrupt(&spec.name, e))?;
        let lower = after.as_ref().map(|a| [tp.as_slice(), a].concat());
        let lower_bound = lower.as_deref().map_or(Bound::Included(tp.as_slice()), Bound::Excluded);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = tx
            .range(Keyspace::Objects, lower_bound, upper, false)
            .take(batch)
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        // The newest version of an object comes first; one that continues the last batch's
        // object is not its newest.
        let mut last_pk: Option<Vec<u8>> =
            after.as_ref().and_then(|a| a.len().checked_sub(8).map(|split| a[..split].to_vec()));
        for (key, value) in &rows {
            let split = key.len().checked_sub(8).filter(|s| *s >= tp.len());
            let Some(split) = split else {
                return Err(corrupt(&spec.name, "a bad object key"));
            };
            let (pk, version) = (&key[tp.len()..split], decode_u64_desc(&key[split..]).unwrap_or_default());
            let (deleted, obj) = record::decode(value)?;
            let newest = last_pk.as_deref() != Some(pk);
            last_pk = Some(pk.to_vec());
            for k in index_keys(spec, at, &obj, usize::MAX, false).unwrap_or_default() {
                if newest && !deleted {
                    tx.insert(Keyspace::CurrentIndex, &current_key(&tp, id, &k, pk), &version.to_be_bytes()[..]);
                }
                tx.insert(Keyspace::HistoryIndex, &history_key(&tp, id, &k, pk, version), &[][..]);
            }
        }
        let done = progress.done + rows.len() as u64;
        let finished = rows.len() < batch;
        let last_key = rows.last().map(|(k, _)| hex::encode(&k[tp.len()..]));
        catalog.indexes[at].building =
            if finished { None } else { Some(Building { after: last_key.or(progress.after), done }) };
        save(tx, &spec.name, &catalog)?;
        Ok(Step { done, finished })
    })
}

/// Match the model's `specs` with the catalog, give each index its key id, delete the entries
/// the model's changes leave behind, and mark in each spec the indexes still to build (see the
/// module docs; [`build_step`] builds them). Returns the specs with their ids.
pub fn migrate(
    db: &Db,
    mut specs: HashMap<String, TypeSpec>,
) -> Result<(HashMap<String, TypeSpec>, Migration), StorageError> {
    let mut report = Migration::default();
    let mut names: Vec<String> = specs.keys().cloned().collect();
    names.sort();
    for name in names {
        let Some(spec) = specs.get_mut(&name) else { continue };
        spec.validate()?;
        let tp = type_prefix(spec);
        let stored = has_objects(db, &tp)?;
        let mut catalog = plan(spec, load(db, &name)?, stored)?;
        db.write(|tx| save(tx, &name, &catalog))?;
        let mut dropped = 0;
        if catalog.drop_all_secondary {
            let lower = index_prefix(&tp, 1);
            let upper = prefix_successor(&tp);
            dropped += delete_range(
                db,
                &name,
                &mut catalog,
                &lower,
                upper.as_deref(),
                |c| c.is_some_and(|c| c.drop_all_secondary),
                |c| c.drop_all_secondary = false,
            )?;
        }
        // Removed indexes' entries wait in `dropping` for [`drop_removed`], in the background:
        // their key ids are not given out again until they are gone.
        if dropped > 0 {
            report.dropped.push((name.clone(), dropped));
        }
        take_ids(spec, &catalog, &mut report)?;
    }
    Ok((specs, report))
}

/// Give `spec` the key ids of `catalog` and mark the indexes it still builds.
fn take_ids(spec: &mut TypeSpec, catalog: &Catalog, report: &mut Migration) -> Result<(), StorageError> {
    spec.ids = catalog.indexes.iter().map(|e| e.id).collect();
    spec.building =
        catalog.indexes.iter().enumerate().filter_map(|(at, e)| e.building.as_ref().map(|b| (at, b.done))).collect();
    for &(at, _) in &spec.building {
        report.building.push((spec.name.clone(), spec.indexes[at].name.clone()));
    }
    spec.validate()
}

/// What a model change means for the stored data, type by type (for the answer of an apply).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `type.index` of every index to build (new, or changed).
    pub build: Vec<String>,
    /// `type.index` of every index whose entries go (removed, or changed).
    pub drop: Vec<String>,
    /// Types the model adds (ready at once).
    pub new_types: Vec<String>,
    /// Types with stored objects that the model no longer has: kept, unlinked.
    pub unlinked_types: Vec<String>,
    /// Every problem that makes the change impossible over the stored data.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl Plan {
    /// Nothing changes in the stored data.
    pub fn is_empty(&self) -> bool {
        self.build.is_empty() && self.drop.is_empty() && self.new_types.is_empty() && self.unlinked_types.is_empty()
    }
}

/// The types that have a catalog (have been stored under some model).
fn cataloged(db: &Db) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for item in db.scan_prefix(Keyspace::Meta, b"catalog/") {
        let (key, _) = item?;
        if let Some(name) = key.strip_prefix(b"catalog/".as_slice()) {
            out.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(out)
}

/// The migration from the stored catalogs to the model's `specs`, changing nothing: what would
/// be built, dropped, added, unlinked, and why it cannot be done.
pub fn plan_change(db: &Db, specs: &HashMap<String, TypeSpec>) -> Result<Plan, StorageError> {
    let mut out = Plan::default();
    let mut names: Vec<&String> = specs.keys().collect();
    names.sort();
    for name in names {
        let spec = &specs[name];
        if let Err(e) = spec.validate() {
            out.problems.push(format!("types: {name}: {e}"));
            continue;
        }
        let old = load(db, name)?;
        let stored = has_objects(db, &type_prefix(spec))?;
        let Some(old) = old else {
            out.new_types.push(name.clone());
            continue;
        };
        let old_names: Vec<(String, String)> =
            old.indexes.iter().map(|e| (e.name.clone(), e.definition.clone())).collect();
        match plan(spec, Some(old), stored) {
            Err(e) => out.problems.push(format!("types: {e}")),
            Ok(catalog) => {
                for (at, entry) in catalog.indexes.iter().enumerate().skip(1) {
                    let kept = old_names.iter().any(|(n, d)| *n == entry.name && *d == entry.definition);
                    if !kept && stored {
                        out.build.push(format!("{name}.{}", spec.indexes[at].name));
                    }
                }
                for (old_name, old_def) in old_names.iter().skip(1) {
                    let kept = catalog.indexes.iter().any(|e| e.name == *old_name && e.definition == *old_def);
                    if !kept {
                        out.drop.push(format!("{name}.{old_name}"));
                    }
                }
            }
        }
    }
    for name in cataloged(db)? {
        if !specs.contains_key(&name) && has_objects(db, &type_prefix_of(&name))? {
            out.unlinked_types.push(name);
        }
    }
    Ok(out)
}

/// Move the catalog to the model's `specs` in one commit, with no entry deleted yet: indexes
/// to build are marked, removed indexes wait in `dropping` ([`drop_removed`] deletes their
/// entries). `with` stages more in the same commit (the configuration version's record).
/// `then` gets the specs with their key ids after the commit, under the write lock, so that no
/// write of an object comes between the new catalog and the specs writes follow.
pub fn switch(
    db: &Db,
    mut specs: HashMap<String, TypeSpec>,
    with: impl FnOnce(&mut super::WriteTx<'_>) -> Result<(), StorageError>,
    then: impl FnOnce(HashMap<String, TypeSpec>) + Send + 'static,
) -> Result<Migration, StorageError> {
    db.write(|tx| {
        with(tx)?;
        let mut report = Migration::default();
        let mut names: Vec<String> = specs.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(spec) = specs.get_mut(&name) else { continue };
            spec.validate()?;
            let old = load_in(tx, &name)?;
            let stored = has_objects(tx.db(), &type_prefix(spec))?;
            let mut catalog = plan(spec, old, stored)?;
            // A type stored before the catalog existed had its old entries deleted before the
            // switch ([`clear_uncataloged`]): only the build is left.
            catalog.drop_all_secondary = false;
            save(tx, &name, &catalog)?;
            take_ids(spec, &catalog, &mut report)?;
        }
        tx.on_end(move |committed| {
            if committed {
                then(specs);
            }
        });
        Ok(report)
    })
}

/// A type with stored data that the model no longer has (TDG's unlinked spaces): kept until an
/// operator truncates or drops it, or a model brings it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unlinked {
    /// The type's name.
    pub r#type: String,
    /// Stored object versions (current and history), counted up to [`UNLINKED_COUNT_CAP`].
    pub versions: u64,
    /// There are more versions than counted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// Versions of an unlinked type counted at most (the list stays cheap to ask for).
pub const UNLINKED_COUNT_CAP: u64 = 1_000_000;

/// Whether a catalog records the type `name` (stored under some model, and not dropped).
pub fn is_cataloged(db: &Db, name: &str) -> Result<bool, StorageError> {
    Ok(load(db, name)?.is_some())
}

/// The types with a catalog that `is_linked` says the model does not have.
pub fn unlinked(db: &Db, is_linked: impl Fn(&str) -> bool) -> Result<Vec<Unlinked>, StorageError> {
    let mut out = Vec::new();
    for name in cataloged(db)? {
        if is_linked(&name) {
            continue;
        }
        let mut versions = 0u64;
        for item in db.scan_prefix(Keyspace::Objects, &type_prefix_of(&name)).take(UNLINKED_COUNT_CAP as usize + 1) {
            item?;
            versions += 1;
        }
        let more = versions > UNLINKED_COUNT_CAP;
        out.push(Unlinked { r#type: name, versions: versions.min(UNLINKED_COUNT_CAP), more });
    }
    Ok(out)
}

/// Delete every stored version and index entry of the type `name`, a batch per commit; with
/// `drop`, its catalog goes too (the type is forgotten; a model that brings it back starts
/// afresh). How many keys were deleted. Only for a type no model in use has.
pub fn truncate(db: &Db, name: &str, drop: bool) -> Result<u64, StorageError> {
    let tp = type_prefix_of(name);
    let mut deleted = 0u64;
    for ks in [Keyspace::Objects, Keyspace::CurrentIndex, Keyspace::HistoryIndex] {
        loop {
            let keys: Vec<Vec<u8>> = db
                .scan_prefix(ks, &tp)
                .take(BATCH)
                .map(|item| item.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                break;
            }
            db.write(|tx| {
                for key in &keys {
                    tx.remove(ks, key);
                }
                Ok::<_, StorageError>(())
            })?;
            deleted += keys.len() as u64;
        }
    }
    db.write(|tx| {
        match (drop, load(db, name)?) {
            (true, _) => tx.remove(Keyspace::Meta, &catalog_key(name)),
            // Emptied: nothing is left to build or to delete.
            (false, Some(mut catalog)) => {
                catalog.dropping.clear();
                catalog.drop_all_secondary = false;
                for entry in &mut catalog.indexes {
                    entry.building = None;
                }
                save(tx, name, &catalog)?;
            }
            (false, None) => {}
        }
        Ok::<_, StorageError>(())
    })?;
    Ok(deleted)
}

/// Visit the current version (the newest, unless deleted) of every stored object of the type
/// `name`, in primary-key order, until `visit` returns `false`.
pub fn for_each_current(db: &Db, name: &str, mut visit: impl FnMut(&Value) -> bool) -> Result<(), StorageError> {
    let tp = type_prefix_of(name);
    let mut last_pk: Option<Vec<u8>> = None;
    for item in db.scan_prefix(Keyspace::Objects, &tp) {
        let (key, value) = item?;
        let Some(split) = key.len().checked_sub(8).filter(|s| *s >= tp.len()) else {
            return Err(corrupt(name, "a bad object key"));
        };
        let pk = &key[tp.len()..split];
        if last_pk.as_deref() == Some(pk) {
            continue;
        }
        last_pk = Some(pk.to_vec());
        let (deleted, obj) = record::decode(&value)?;
        if !deleted && !visit(&obj) {
            break;
        }
    }
    Ok(())
}

/// Delete the entries of every index the catalog marks as removed, a batch per commit; how
/// many entries went. Runs after a [`switch`], in the background.
pub fn drop_removed(db: &Db) -> Result<u64, StorageError> {
    let mut deleted = 0;
    // Until no catalog lists anything to delete: an apply meanwhile may add to a list.
    loop {
        let mut worked = false;
        for name in cataloged(db)? {
            let Some(mut catalog) = load(db, &name)? else { continue };
            let Some(&id) = catalog.dropping.first() else { continue };
            let tp = type_prefix_of(&name);
            let lower = index_prefix(&tp, id);
            let upper = prefix_successor(&lower);
            deleted += delete_range(
                db,
                &name,
                &mut catalog,
                &lower,
                upper.as_deref(),
                |c| c.is_some_and(|c| c.dropping.contains(&id)),
                |c| c.dropping.retain(|d| *d != id),
            )?;
            worked = true;
        }
        if !worked {
            return Ok(deleted);
        }
    }
}

/// Before a type that has stored objects but no catalog (stored before the catalog existed,
/// and not in the model since) comes into the model while running: delete its secondary index
/// entries, which no catalog says the meaning of, so that its indexes are built afresh. Nothing
/// reads or writes them meanwhile (the type is not in the active model). The types done.
pub fn clear_uncataloged(db: &Db, specs: &HashMap<String, TypeSpec>) -> Result<Vec<String>, StorageError> {
    let mut done = Vec::new();
    for (name, spec) in specs {
        let tp = type_prefix(spec);
        if load(db, name)?.is_some() || !has_objects(db, &tp)? {
            continue;
        }
        let lower = index_prefix(&tp, 1);
        let upper = prefix_successor(&tp);
        let mut scratch = Catalog::default();
        delete_range(db, name, &mut scratch, &lower, upper.as_deref(), |c| c.is_none(), |_| {})?;
        done.push(name.clone());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::user_spec;
    use crate::storage::{objects, Condition, FindOptions, Op, PutOptions};
    use serde_json::{json, Value};

    fn specs(spec: &TypeSpec) -> HashMap<String, TypeSpec> {
        HashMap::from([(spec.name.clone(), spec.clone())])
    }

    /// Build every index of `spec` still being built, to the end; how many versions each read.
    fn build_all(db: &Db, spec: &mut TypeSpec) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        while let Some(&(at, _)) = spec.building.first() {
            loop {
                let step = build_step(db, spec, at, BATCH)?;
                if step.finished {
                    out.push((spec.indexes[at].name.clone(), step.done));
                    break;
                }
            }
            spec.building.retain(|(i, _)| *i != at);
        }
        Ok(out)
    }

    /// Migrate, then build what is to build; the built `(index, versions read)`.
    fn migrate_and_build(db: &Db, spec: &TypeSpec) -> (TypeSpec, Migration, Vec<(String, u64)>) {
        let (mut s, report) = migrate(db, specs(spec)).unwrap();
        let mut spec = s.remove(&spec.name).unwrap();
        let built = build_all(db, &mut spec).unwrap();
        drop_removed(db).unwrap();
        assert!(spec.building.is_empty());
        (spec, report, built)
    }

    fn find(db: &Db, spec: &TypeSpec, index: &str, value: Value) -> Vec<i64> {
        let cond = [Condition::new(index, Op::Eq, value)];
        let page =
            objects::find(db, spec, &cond, &FindOptions { first: Some(1000), ..FindOptions::default() }).unwrap();
        let mut ids: Vec<i64> = page.items.iter().filter_map(|s| s.object["id"].as_i64()).collect();
        ids.sort_unstable();
        ids
    }

    fn find_err(db: &Db, spec: &TypeSpec, index: &str) -> StorageError {
        let cond = [Condition::new(index, Op::Eq, json!("x"))];
        objects::find(db, spec, &cond, &FindOptions::default()).unwrap_err()
    }

    fn put(db: &Db, spec: &TypeSpec, obj: Value) {
        db.write(|tx| objects::put(tx, spec, obj, &PutOptions::default())).unwrap();
    }

    /// A live switch to `spec`: the specs the repository would get.
    fn switched(db: &Db, spec: &TypeSpec) -> TypeSpec {
        let out = std::sync::Arc::new(std::sync::Mutex::new(None));
        let o = out.clone();
        switch(db, specs(spec), |_| Ok(()), move |s| *o.lock().unwrap() = Some(s)).unwrap();
        let got = out.lock().unwrap().take().unwrap();
        got["User"].clone()
    }

    #[test]
    fn a_deletion_that_ends_after_another_switch_keeps_that_switch_s_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let all = user_spec();
        let v1 = TypeSpec { indexes: all.indexes[0..3].to_vec(), ..all.clone() };
        let (v1, _, _) = migrate_and_build(&db, &v1);
        for id in 1..=3 {
            put(&db, &v1, json!({"id": id, "username": format!("u{id}"), "age": 40}));
        }
        // v2 removes username; its deletion starts from the catalog as v2 left it.
        let _ =
            switched(&db, &TypeSpec { indexes: vec![all.indexes[0].clone(), all.indexes[2].clone()], ..all.clone() });
        let mut stale = load(&db, "User").unwrap().unwrap();
        // v3 removes age meanwhile, and a User is stored without an age entry.
        let v3 = switched(&db, &TypeSpec { indexes: vec![all.indexes[0].clone()], ..all.clone() });
        put(&db, &v3, json!({"id": 4, "username": "u4", "age": 40}));
        // The v2 deletion ends: it must not write back v2's catalog (age "built").
        let tp = type_prefix_of("User");
        let id = stale.dropping[0];
        let (lower, upper) = (index_prefix(&tp, id), prefix_successor(&index_prefix(&tp, id)));
        delete_range(
            &db,
            "User",
            &mut stale,
            &lower,
            upper.as_deref(),
            |c| c.is_some_and(|c| c.dropping.contains(&id)),
            |c| c.dropping.retain(|d| *d != id),
        )
        .unwrap();
        // v4 brings age back: it is built again, and finds all four.
        let mut v4 =
            switched(&db, &TypeSpec { indexes: vec![all.indexes[0].clone(), all.indexes[2].clone()], ..all.clone() });
        assert!(!v4.building.is_empty(), "age is built again");
        build_all(&db, &mut v4).unwrap();
        assert_eq!(find(&db, &v4, "age", json!(40)), vec![1, 2, 3, 4]);
        // And every removed index's entries are gone in the end.
        drop_removed(&db).unwrap();
        assert!(load(&db, "User").unwrap().unwrap().dropping.is_empty());
    }

    #[test]
    fn a_type_stored_before_the_catalog_and_brought_back_live_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let mut old = user_spec();
        old.indexes.truncate(3);
        old.ids = vec![0, 1, 2];
        // Written before the catalog existed, not in a model since.
        for id in 1..=3 {
            put(&db, &old, json!({"id": id, "username": format!("u{id}"), "age": 40}));
        }
        let mut clean = user_spec();
        clean.indexes.truncate(3);
        assert_eq!(clear_uncataloged(&db, &specs(&clean)).unwrap(), vec!["User".to_string()]);
        let mut live = switched(&db, &clean);
        build_all(&db, &mut live).unwrap();
        assert_eq!(find(&db, &live, "age", json!(40)), vec![1, 2, 3]);
        let (mut restarted, _) = migrate(&db, specs(&clean)).unwrap();
        let restarted = restarted.remove("User").unwrap();
        assert!(restarted.building.is_empty());
        assert_eq!(find(&db, &restarted, "age", json!(40)), vec![1, 2, 3]);
    }

    #[test]
    fn an_index_added_removed_or_moved_answers_as_a_fresh_store_would() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        // The first model: id, username, age.
        let mut first = user_spec();
        first.indexes.truncate(3);
        let (first, report, _) = migrate_and_build(&db, &first);
        assert_eq!(report, Migration::default(), "an empty type is ready at once");
        for (id, name, age) in [(1, "ann", 30), (2, "bob", 40), (3, "cid", 30)] {
            put(&db, &first, json!({"id": id, "username": name, "age": age, "phones": [format!("p{id}")]}));
        }
        put(&db, &first, json!({"id": 1, "username": "ann", "age": 31, "phones": ["p1"]}));
        // The second model: age moved first, username gone, phones (multikey) added.
        let mut second = user_spec();
        second.indexes = vec![second.indexes[0].clone(), second.indexes[2].clone(), second.indexes[3].clone()];
        let (s, _) = migrate(&db, specs(&second)).unwrap();
        let building = s["User"].clone();
        assert_eq!(building.building, vec![(2, 0)], "phones is to build");
        assert!(
            matches!(find_err(&db, &building, "phones"), StorageError::IndexBuilding { ref index, .. } if index == "phones"),
            "a query naming it is told so, not answered partly"
        );
        let (second, report, built) = migrate_and_build(&db, &second);
        assert_eq!(built, vec![("phones".to_string(), 4)]);
        assert!(report.dropped.is_empty(), "the username entries went at the first migration");
        assert_eq!(find(&db, &second, "age", json!(30)), vec![3], "the moved index kept its entries");
        assert_eq!(find(&db, &second, "age", json!(31)), vec![1]);
        assert_eq!(find(&db, &second, "phones", json!("p2")), vec![2], "the new index was built");
        let history = objects::find(
            &db,
            &second,
            &[Condition::new("phones", Op::Eq, json!("p1"))],
            &FindOptions { all_versions: true, ..FindOptions::default() },
        )
        .unwrap();
        assert_eq!(history.items.len(), 2, "history entries for every version");
        // Starting again with the same model does nothing.
        let (_, again, built) = migrate_and_build(&db, &second);
        assert_eq!((again, built), (Migration::default(), vec![]));
    }

    #[test]
    fn a_store_older_than_the_catalog_is_reindexed_and_a_build_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        // Written without a catalog, under a model whose second index was `age` ...
        let mut old = user_spec();
        old.indexes = vec![old.indexes[0].clone(), old.indexes[2].clone()];
        for id in 0..(BATCH as i64 + 10) {
            put(&db, &old, json!({"id": id, "username": format!("u{id}"), "age": id % 7}));
        }
        // ... and started with one whose second index is `username`: positions would mix them.
        let mut new = user_spec();
        new.indexes.truncate(2);
        // A first start whose build stopped after one batch (as a SIGKILL would leave it).
        let tp = type_prefix(&new);
        let mut catalog = plan(&new, None, true).unwrap();
        db.write(|tx| save(tx, "User", &catalog)).unwrap();
        delete_range(
            &db,
            "User",
            &mut catalog,
            &index_prefix(&tp, 1),
            prefix_successor(&tp).as_deref(),
            |c| c.is_some_and(|c| c.drop_all_secondary),
            |c| c.drop_all_secondary = false,
        )
        .unwrap();
        let mut spec = new.clone();
        spec.ids = catalog.indexes.iter().map(|e| e.id).collect();
        let step = build_step(&db, &spec, 1, BATCH).unwrap();
        assert_eq!(step, Step { done: BATCH as u64, finished: false }, "one batch of two");
        // The next start resumes it.
        let (new, report, built) = migrate_and_build(&db, &new);
        assert_eq!(built, vec![("username".to_string(), BATCH as u64 + 10)]);
        assert!(report.dropped.is_empty(), "the old entries went before the stop: {report:?}");
        for id in [0, 5, BATCH as i64 - 1, BATCH as i64, BATCH as i64 + 9] {
            assert_eq!(find(&db, &new, "username", json!(format!("u{id}"))), vec![id], "user {id}");
        }
        // One current entry per object under the index's key id: none of the old `age` ones.
        let entries = db.scan_prefix(Keyspace::CurrentIndex, &index_prefix(&tp, new.key_id(1))).count();
        assert_eq!(entries, BATCH + 10);
    }
}
