//! One atomic write: pending puts/removes over the committed state, version allocation, commit
//! as a single sled batch.

use super::db::{full_bounds, is_empty_range, strip, Db, KvIter, ReadView, META_VERSION_HWM};
use super::error::StorageError;
use super::keyspace::Keyspace;
use super::sequence::SeqRange;
use sled::IVec;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::iter::Peekable;
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

/// State guarded by the process-wide write mutex.
pub(crate) struct WriteState {
    /// Last version handed out (never decreases, survives restarts through the meta key).
    pub(crate) last_version: u64,
    /// Sequence ranges reserved on disk and not used up yet.
    pub(crate) seq: HashMap<String, SeqRange>,
}

impl WriteState {
    pub(crate) fn new(last_version: u64) -> Self {
        WriteState { last_version, seq: HashMap::new() }
    }
}

/// An open write transaction (see [`Db::write`]). Reads through [`ReadView`] see the committed
/// state plus this transaction's pending writes.
pub struct WriteTx<'a> {
    pub(crate) db: &'a Db,
    pub(crate) state: &'a mut WriteState,
    pending: BTreeMap<Vec<u8>, Option<IVec>>,
    pub(crate) staged_seq: HashMap<String, SeqRange>,
    pub(crate) seq_reserved: bool,
    version_hwm: Option<u64>,
    /// Called once the transaction ends: `true` after its commit, `false` when it is dropped
    /// uncommitted (its closure failed, or applying the batch did).
    on_end: Vec<Box<dyn FnOnce(bool) + Send>>,
}

impl<'a> WriteTx<'a> {
    pub(crate) fn new(db: &'a Db, state: &'a mut WriteState) -> Self {
        WriteTx {
            db,
            state,
            pending: BTreeMap::new(),
            staged_seq: HashMap::new(),
            seq_reserved: false,
            version_hwm: None,
            on_end: Vec::new(),
        }
    }

    /// Run `f` when this transaction ends, with whether it committed: in-memory state that
    /// follows what is on disk (counters) is changed in step with the commit. `f` runs under the
    /// write lock, so it must be quick and must not write.
    pub fn on_end(&mut self, f: impl FnOnce(bool) + Send + 'static) {
        self.on_end.push(Box::new(f));
    }

    /// Stages `key = value` in `ks`.
    pub fn insert(&mut self, ks: Keyspace, key: &[u8], value: impl Into<IVec>) {
        self.pending.insert(ks.key(key), Some(value.into()));
    }

    /// Stages the removal of `key` from `ks`.
    pub fn remove(&mut self, ks: Keyspace, key: &[u8]) {
        self.pending.insert(ks.key(key), None);
    }

    /// Number of staged puts/removes.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The database this transaction writes to.
    pub fn db(&self) -> &Db {
        self.db
    }

    /// A new version: `max(now in ns since the epoch, last + 1)`; persisted as the high-water mark
    /// with this transaction, so versions never go backwards, even after a restart with a clock
    /// that went back.
    pub fn next_version(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let v = now.max(self.state.last_version.saturating_add(1));
        self.state.last_version = v;
        self.version_hwm = Some(v);
        v
    }

    /// A version given by the caller (explicit versions): later [`WriteTx::next_version`]s are
    /// above it, so an object written with it is not overtaken by an older automatic one.
    pub fn observe_version(&mut self, v: u64) {
        if v > self.state.last_version {
            self.state.last_version = v;
            self.version_hwm = Some(v);
        }
    }

    pub(crate) fn commit(mut self) -> Result<(), StorageError> {
        if let Some(v) = self.version_hwm {
            self.insert(Keyspace::Meta, META_VERSION_HWM, v.to_be_bytes().to_vec());
        }
        if !self.pending.is_empty() {
            let writes = std::mem::take(&mut self.pending).into_iter().collect();
            self.db.inner.store.apply(writes)?;
        }
        self.state.seq.extend(self.staged_seq.drain());
        for f in std::mem::take(&mut self.on_end) {
            f(true);
        }
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        for f in std::mem::take(&mut self.on_end) {
            f(false);
        }
    }
}

impl ReadView for WriteTx<'_> {
    fn get(&self, ks: Keyspace, key: &[u8]) -> Result<Option<IVec>, StorageError> {
        let full = ks.key(key);
        match self.pending.get(&full) {
            Some(v) => Ok(v.clone()),
            None => self.db.inner.store.get(&full),
        }
    }

    fn range<'b>(&'b self, ks: Keyspace, lower: Bound<&[u8]>, upper: Bound<&[u8]>, reverse: bool) -> KvIter<'b> {
        let (lo, hi) = full_bounds(ks, lower, upper);
        if is_empty_range(&lo, &hi) {
            return Box::new(std::iter::empty());
        }
        let base = self.db.inner.store.range(lo.clone(), hi.clone());
        let pend = self.pending.range::<Vec<u8>, _>((lo, hi));
        let (base, pend): (BaseIter<'b>, PendIter<'b>) =
            if reverse { (Box::new(base.rev()), Box::new(pend.rev())) } else { (Box::new(base), Box::new(pend)) };
        let merge = Merge { base: base.peekable(), pend: pend.peekable(), reverse };
        Box::new(merge.map(|r| r.map(|(k, v)| (strip(k), v))))
    }
}

type BaseIter<'b> = Box<dyn Iterator<Item = Result<(IVec, IVec), StorageError>> + 'b>;
type PendIter<'b> = Box<dyn Iterator<Item = (&'b Vec<u8>, &'b Option<IVec>)> + 'b>;

/// Merges committed entries with pending writes (pending wins; pending removals hide entries).
struct Merge<'b> {
    base: Peekable<BaseIter<'b>>,
    pend: Peekable<PendIter<'b>>,
    reverse: bool,
}

enum Next {
    Base,
    Pending,
    PendingOverBase,
}

impl Iterator for Merge<'_> {
    type Item = Result<(IVec, IVec), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let which = match (self.base.peek(), self.pend.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(_), None) => Next::Base,
                (None, Some(_)) => Next::Pending,
                (Some(Ok((bk, _))), Some((pk, _))) => match bk.as_ref().cmp(pk.as_slice()) {
                    Ordering::Equal => Next::PendingOverBase,
                    Ordering::Less if self.reverse => Next::Pending,
                    Ordering::Greater if !self.reverse => Next::Pending,
                    _ => Next::Base,
                },
            };
            match which {
                Next::Base => return self.base.next(),
                Next::Pending | Next::PendingOverBase => {
                    if matches!(which, Next::PendingOverBase) {
                        self.base.next();
                    }
                    let (k, v) = self.pend.next()?;
                    if let Some(v) = v {
                        return Some(Ok((IVec::from(k.as_slice()), v.clone())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::temp_db;
    use super::*;

    fn pairs(it: KvIter<'_>) -> Vec<(String, String)> {
        it.map(|r| {
            let (k, v) = r.unwrap();
            (String::from_utf8(k.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
        })
        .collect()
    }

    #[test]
    fn tx_reads_see_own_pending_writes_in_both_directions() {
        let (_d, db) = temp_db();
        db.write(|tx| {
            for k in ["a", "c", "e"] {
                tx.insert(Keyspace::Jobs, k.as_bytes(), k.as_bytes());
            }
            Ok::<_, StorageError>(())
        })
        .unwrap();
        db.write(|tx| {
            tx.insert(Keyspace::Jobs, b"b", &b"new"[..]);
            tx.insert(Keyspace::Jobs, b"c", &b"c2"[..]);
            tx.insert(Keyspace::Jobs, b"c", &b"c3"[..]);
            tx.remove(Keyspace::Jobs, b"e");
            assert_eq!(tx.get(Keyspace::Jobs, b"c")?.unwrap().as_ref(), b"c3", "second put wins");
            assert_eq!(tx.get(Keyspace::Jobs, b"e")?, None);
            let fwd = pairs(tx.range(Keyspace::Jobs, Bound::Unbounded, Bound::Unbounded, false));
            let want = [("a", "a"), ("b", "new"), ("c", "c3")];
            assert_eq!(fwd, want.map(|(a, b)| (a.to_string(), b.to_string())));
            let back = pairs(tx.range(Keyspace::Jobs, Bound::Unbounded, Bound::Unbounded, true));
            let mut rev = want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec();
            rev.reverse();
            assert_eq!(back, rev);
            // not visible outside before commit
            assert_eq!(db.get(Keyspace::Jobs, b"b")?, None);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        assert_eq!(db.get(Keyspace::Jobs, b"c").unwrap().unwrap().as_ref(), b"c3");
        assert_eq!(db.get(Keyspace::Jobs, b"e").unwrap(), None);
    }

    #[test]
    fn failed_closure_applies_nothing() {
        let (_d, db) = temp_db();
        let r: Result<(), StorageError> = db.write(|tx| {
            tx.insert(Keyspace::OutputQueue, b"x", &b"1"[..]);
            Err(StorageError::user("boom"))
        });
        assert!(r.is_err());
        assert_eq!(db.get(Keyspace::OutputQueue, b"x").unwrap(), None);
    }

    #[test]
    fn versions_are_strictly_increasing_and_survive_reopen_with_a_future_mark() {
        let dir = tempfile::tempdir().unwrap();
        let future = {
            let db = Db::open(dir.path()).unwrap();
            let (a, b) = db.write(|tx| Ok::<_, StorageError>((tx.next_version(), tx.next_version()))).unwrap();
            assert!(b > a);
            // pretend an earlier run had a clock one hour ahead
            let future = b + 3_600_000_000_000;
            db.write(|tx| {
                tx.insert(Keyspace::Meta, META_VERSION_HWM, future.to_be_bytes().to_vec());
                Ok::<_, StorageError>(())
            })
            .unwrap();
            future
        };
        let db = Db::open(dir.path()).unwrap();
        let v = db.write(|tx| Ok::<_, StorageError>(tx.next_version())).unwrap();
        assert_eq!(v, future + 1, "never goes backwards after a restart");
    }
}
