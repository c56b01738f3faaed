//! Versioned objects (TDG semantics): find, get, put, update, delete over a
//! [`TypeSpec`]. Reads take any [`ReadView`] (the database, or a write transaction to see its own
//! writes); writes take the [`WriteTx`] so the engine can combine them with its own writes in one
//! atomic commit. The `Db::*_object(s)` wrappers open their own transaction.

use super::db::{Db, ReadView};
use super::error::StorageError;
use super::filter::{Condition, Op};
use super::options::{DeleteOptions, FindOptions, Page, PutOptions, Stored, UpdateOptions};
use super::scan::{self, Query};
use super::spec::TypeSpec;
use super::tx::WriteTx;
use super::updater::Updater;
use super::write;
use serde_json::Value;

/// Objects matching all conditions, one page in the order of the index used.
pub fn find<V: ReadView + ?Sized>(
    view: &V,
    spec: &TypeSpec,
    filter: &[Condition],
    opts: &FindOptions,
) -> Result<Page, StorageError> {
    scan::find(view, spec, filter, &Query::from_find(opts))
}

/// The first object whose key in index `index` equals `key` (all parts for the primary key).
pub fn get<V: ReadView + ?Sized>(
    view: &V,
    spec: &TypeSpec,
    index: &str,
    key: &[Value],
    opts: &FindOptions,
) -> Result<Option<Stored>, StorageError> {
    let idx = spec
        .index_position(index)
        .ok_or_else(|| StorageError::user(format!("{} has no index \"{index}\"", spec.name)))?;
    if let Some(done) = spec.building(idx) {
        return Err(spec.not_ready(idx, done));
    }
    // A whole primary key is read at its key by the find itself (`Plan::exact`).
    let cond = [Condition::new(index, Op::Eq, Value::Array(key.to_vec()))];
    let opts = FindOptions { first: Some(1), after: None, ..opts.clone() };
    Ok(find(view, spec, &cond, &opts)?.items.pop())
}

/// Stores `obj` as a new version (see [`PutOptions`] for `only_if_version` / `if_not_exists`).
pub fn put(tx: &mut WriteTx<'_>, spec: &TypeSpec, obj: Value, opts: &PutOptions) -> Result<Stored, StorageError> {
    write::put(tx, spec, obj, opts)
}

/// Applies `updaters` to the matching objects (up to `first`), each getting a new version.
pub fn update(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    filter: &[Condition],
    updaters: &[Updater],
    opts: &UpdateOptions,
) -> Result<Vec<Stored>, StorageError> {
    write::update(tx, spec, filter, updaters, opts, &mut Ok)
}

/// [`update`], passing every updated object through `normalize` (the engine validates it
/// against the model) before it is written; an error aborts the whole update.
pub fn update_validated(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    filter: &[Condition],
    updaters: &[Updater],
    opts: &UpdateOptions,
    normalize: &mut dyn FnMut(Value) -> Result<Value, StorageError>,
) -> Result<Vec<Stored>, StorageError> {
    write::update(tx, spec, filter, updaters, opts, normalize)
}

/// Deletes the matching objects (up to `first`): a tombstone version each, or with
/// `permanent_delete` + `all_versions` every version and index entry.
pub fn delete(
    tx: &mut WriteTx<'_>,
    spec: &TypeSpec,
    filter: &[Condition],
    opts: &DeleteOptions,
) -> Result<Vec<Stored>, StorageError> {
    write::delete(tx, spec, filter, opts)
}

/// Rebuilds all index entries of a type (after its indexes changed); returns the number of
/// objects. Runs as one transaction that holds the whole type's keys in memory.
pub fn reindex(tx: &mut WriteTx<'_>, spec: &TypeSpec) -> Result<u64, StorageError> {
    write::reindex(tx, spec)
}

impl Db {
    /// [`put`] in its own transaction.
    pub fn put_object(&self, spec: &TypeSpec, obj: Value, opts: &PutOptions) -> Result<Stored, StorageError> {
        self.write(|tx| put(tx, spec, obj, opts))
    }

    /// [`update`] in its own transaction.
    pub fn update_objects(
        &self,
        spec: &TypeSpec,
        filter: &[Condition],
        updaters: &[Updater],
        opts: &UpdateOptions,
    ) -> Result<Vec<Stored>, StorageError> {
        self.write(|tx| update(tx, spec, filter, updaters, opts))
    }

    /// [`delete`] in its own transaction.
    pub fn delete_objects(
        &self,
        spec: &TypeSpec,
        filter: &[Condition],
        opts: &DeleteOptions,
    ) -> Result<Vec<Stored>, StorageError> {
        self.write(|tx| delete(tx, spec, filter, opts))
    }
}
