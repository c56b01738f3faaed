//! The find engine: walks the planned range of current or history entries (forward or
//! backward from a cursor), loads object versions, applies version rules and filters, enforces
//! hard limits and builds the page.

use super::config::HardLimits;
use super::cursor::{self, Source};
use super::db::{KvIter, ReadView};
use super::error::StorageError;
use super::filter::{matches, resolve, Condition};
use super::keycodec::{decode_u64_desc, prefix_successor};
use super::keys::{index_keys, index_prefix, key_len, object_key, type_prefix};
use super::keyspace::Keyspace;
use super::options::{FindOptions, Page, Stored, DEFAULT_FIRST};
use super::plan::{plan, Plan};
use super::record;
use super::spec::TypeSpec;
use sled::IVec;
use std::ops::Bound;

/// What to scan and how (built from `FindOptions` or the options of update/delete).
pub(crate) struct Query<'a> {
    pub(crate) first: Option<i64>,
    pub(crate) after: Option<&'a str>,
    pub(crate) version: Option<u64>,
    pub(crate) all_versions: bool,
    pub(crate) dont_skip_deleted: bool,
    pub(crate) limits: HardLimits,
    /// `find`, `update` or `delete` (for hard-limit messages).
    pub(crate) operation: &'static str,
}

impl<'a> Query<'a> {
    pub(crate) fn from_find(o: &'a FindOptions) -> Query<'a> {
        Query {
            first: o.first,
            after: o.after.as_deref(),
            version: o.version,
            all_versions: o.all_versions,
            dont_skip_deleted: o.dont_skip_deleted,
            limits: o.hard_limits,
            operation: "find",
        }
    }
}

/// The version of object `pk` as of `as_of` (the newest version <= as_of), if any.
pub(crate) fn version_as_of<V: ReadView + ?Sized>(
    view: &V,
    tp: &[u8],
    pk: &[u8],
    as_of: u64,
) -> Result<Option<u64>, StorageError> {
    let start = object_key(tp, pk, as_of);
    let mut run = tp.to_vec();
    run.extend_from_slice(pk);
    let end = prefix_successor(&run);
    let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    match view.range(Keyspace::Objects, Bound::Included(&start), upper, false).next() {
        Some(r) => {
            let (k, _) = r?;
            Ok(decode_u64_desc(&k[k.len().saturating_sub(8)..]))
        }
        None => Ok(None),
    }
}

/// Loads one object version: `(deleted, object, configuration version)`.
pub(crate) fn load<V: ReadView + ?Sized>(
    view: &V,
    tp: &[u8],
    pk: &[u8],
    version: u64,
) -> Result<Option<(bool, serde_json::Value, u64)>, StorageError> {
    match view.get(Keyspace::Objects, &object_key(tp, pk, version))? {
        Some(bytes) => Ok(Some(record::decode_full(&bytes)?)),
        None => Ok(None),
    }
}

/// Runs a query; results are in index order (also for backward pages).
pub(crate) fn find<V: ReadView + ?Sized>(
    view: &V,
    spec: &TypeSpec,
    filter: &[Condition],
    q: &Query<'_>,
) -> Result<Page, StorageError> {
    spec.validate()?;
    let conds = resolve(spec, filter)?;
    let first = q.first.unwrap_or(DEFAULT_FIRST);
    let mut page = Page::default();
    let plan = plan(spec, &conds);
    let history = q.all_versions || q.version.is_some() || q.dont_skip_deleted;
    let as_of = q.version.unwrap_or(u64::MAX);
    let idx = spec.key_id(plan.idx);
    let source = if history { Source::History(idx) } else { Source::Current(idx) };
    let tp = type_prefix(spec);
    let (ks, prefix) = match source {
        Source::Current(i) => (Keyspace::CurrentIndex, index_prefix(&tp, i)),
        Source::History(0) => (Keyspace::Objects, tp.clone()),
        Source::History(i) => (Keyspace::HistoryIndex, index_prefix(&tp, i)),
    };
    let join = |rel: &[u8]| [prefix.as_slice(), rel].concat();
    let mut lower = join(&plan.lower);
    let mut upper = match &plan.upper {
        Some(u) => Some(join(u)),
        None => prefix_successor(&prefix),
    };
    let reverse = first < 0;
    if let Some(after) = q.after {
        let pos = join(&cursor::decode(after, source, &spec.name)?);
        if reverse {
            upper = Some(upper.map_or(pos.clone(), |u| u.min(pos)));
        } else {
            let mut next = pos;
            next.push(0);
            lower = lower.max(next);
        }
    }
    if first == 0 || plan.is_empty() {
        return Ok(page);
    }
    let want = first.unsigned_abs();
    let multikey = spec.indexes[plan.idx].multikey;
    let upper_b = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let entries = match plan.exact.as_deref() {
        // A whole primary key: the one entry it can be, read by its key instead of walked to.
        Some(pk) if source == Source::Current(0) && q.after.is_none() => exact_entry(view, ks, join(pk), &plan, pk),
        _ => view.range(ks, Bound::Included(&lower), upper_b, reverse),
    };
    for entry in entries {
        let (k, v) = entry?;
        page.scanned += 1;
        if page.scanned > q.limits.scanned {
            return Err(limit_error("scanned", q.limits.scanned, q, spec));
        }
        let rel = &k[prefix.len()..];
        let Some(c) = candidate(view, spec, &tp, source, plan.idx, rel, &v, as_of, q.all_versions)? else {
            continue;
        };
        if c.deleted && !q.dont_skip_deleted {
            continue;
        }
        if multikey && !is_first_entry(spec, &plan, &c) {
            continue;
        }
        if !conds.iter().all(|r| matches(spec, r, &c.object)) {
            continue;
        }
        page.items.push(Stored {
            object: c.object,
            version: c.version,
            cursor: cursor::encode(source, rel),
            deleted: c.deleted,
            config_version: c.config_version,
        });
        if page.items.len() as u64 > q.limits.returned {
            return Err(limit_error("returned", q.limits.returned, q, spec));
        }
        if page.items.len() as u64 == want {
            break;
        }
    }
    if reverse {
        page.items.reverse();
    }
    Ok(page)
}

/// The entry at `key` (the current primary entry of `pk`) as the walk of `plan` would find it:
/// none when `plan`'s range (narrowed by other conditions) leaves `pk` out.
fn exact_entry<'a, V: ReadView + ?Sized>(
    view: &'a V,
    ks: Keyspace,
    key: Vec<u8>,
    plan: &Plan,
    pk: &[u8],
) -> KvIter<'a> {
    if !plan.contains(pk) {
        return Box::new(std::iter::empty());
    }
    match view.get(ks, &key) {
        Ok(Some(value)) => Box::new(std::iter::once(Ok((IVec::from(key), value)))),
        Ok(None) => Box::new(std::iter::empty()),
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

fn limit_error(limit: &'static str, max: u64, q: &Query<'_>, spec: &TypeSpec) -> StorageError {
    StorageError::HardLimit { limit, max, operation: q.operation, type_name: spec.name.clone() }
}

struct Candidate {
    key: Vec<u8>,
    version: u64,
    deleted: bool,
    object: serde_json::Value,
    config_version: u64,
}

/// Decodes an entry and loads the object version it stands for; `None` when the entry does not
/// stand for a result (a version newer than `as_of`, not the as-of version, or purged meanwhile).
#[allow(clippy::too_many_arguments)]
fn candidate<V: ReadView + ?Sized>(
    view: &V,
    spec: &TypeSpec,
    tp: &[u8],
    source: Source,
    pos: usize,
    rel: &[u8],
    value: &[u8],
    as_of: u64,
    all_versions: bool,
) -> Result<Option<Candidate>, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("short index entry of {}", spec.name));
    let (key, pk, version, record) = match source {
        Source::Current(i) => {
            let klen = if i == 0 { rel.len() } else { key_len(spec, pos, rel)? };
            (&rel[..klen], if i == 0 { rel } else { &rel[klen..] }, record::decode_version(value)?, None)
        }
        Source::History(i) => {
            let split = rel.len().checked_sub(8).ok_or_else(corrupt)?;
            let version = decode_u64_desc(&rel[split..]).ok_or_else(corrupt)?;
            let (key, pk) = if i == 0 {
                (&rel[..split], &rel[..split])
            } else {
                let klen = key_len(spec, pos, rel)?;
                (&rel[..klen], rel.get(klen..split).ok_or_else(corrupt)?)
            };
            if version > as_of {
                return Ok(None);
            }
            if !all_versions && version_as_of(view, tp, pk, as_of)? != Some(version) {
                return Ok(None);
            }
            (key, pk, version, (i == 0).then_some(value))
        }
    };
    let decoded = match record {
        Some(bytes) => Some(record::decode_full(bytes)?),
        None => load(view, tp, pk, version)?,
    };
    Ok(decoded.map(|(deleted, object, config_version)| Candidate {
        key: key.to_vec(),
        version,
        deleted,
        object,
        config_version,
    }))
}

/// A multikey object has several entries in the scanned range; only the one at its smallest key
/// in range yields it, whichever way the scan goes, so it appears once per query and has one
/// place among the pages, forward and backward.
fn is_first_entry(spec: &TypeSpec, plan: &Plan, c: &Candidate) -> bool {
    let Ok(keys) = index_keys(spec, plan.idx, &c.object, usize::MAX, false) else {
        return true;
    };
    keys.iter().find(|k| plan.contains(k)).is_none_or(|k| *k == c.key)
}
