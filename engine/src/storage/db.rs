//! The database handle over a [`Store`] (sled by default): generic keyspace reads ([`ReadView`]), atomic writes
//! ([`Db::write`]) and group-committed durability ([`Db::sync`]).

use super::config::StorageConfig;
use super::error::StorageError;
use super::flusher::Flusher;
use super::keycodec::prefix_successor;
use super::keyspace::Keyspace;
use super::sled_store::SledStore;
use super::store::Store;
use super::tx::{WriteState, WriteTx};
use sled::IVec;
use std::future::Future;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Meta key of the persisted version high-water mark (u64 big-endian).
pub(crate) const META_VERSION_HWM: &[u8] = b"version_hwm";
/// Meta key of the on-disk format of this component.
const META_FORMAT: &[u8] = b"format";
/// 2: Date/Time/DateTime keys are fixed-width UTC, Decimal keys numeric.
const FORMAT: u8 = 2;

/// Iterator over `(key, value)` pairs of one keyspace; keys are relative to the keyspace.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(IVec, IVec), StorageError>> + 'a>;

/// Reads of keyspaces; implemented by [`Db`] (committed state) and [`WriteTx`] (committed state
/// plus the transaction's own pending writes).
pub trait ReadView {
    /// The value of `key` in `ks`.
    fn get(&self, ks: Keyspace, key: &[u8]) -> Result<Option<IVec>, StorageError>;

    /// Entries of `ks` within the bounds, in key order (`reverse`: descending).
    fn range<'a>(&'a self, ks: Keyspace, lower: Bound<&[u8]>, upper: Bound<&[u8]>, reverse: bool) -> KvIter<'a>;

    /// Entries of `ks` whose key starts with `prefix`, in key order.
    fn scan_prefix<'a>(&'a self, ks: Keyspace, prefix: &[u8]) -> KvIter<'a> {
        let upper = prefix_successor(prefix);
        let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range(ks, Bound::Included(prefix), upper, false)
    }
}

/// Handle to the one sled database of a data directory. Cheap to clone; closing happens when
/// the last clone is dropped (the flusher stops, sled flushes).
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) write: Mutex<WriteState>,
    pub(crate) flusher: Flusher,
    /// First number of a new sequence.
    pub(crate) sequence_start: AtomicI64,
    /// Sequence numbers reserved per write of a high-water mark.
    pub(crate) sequence_range: AtomicI64,
    path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flusher.stop();
        if let Err(e) = self.store.make_durable() {
            tracing::error!(path = %self.path.display(), error = %e, "final flush of the storage failed");
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.inner.path).finish()
    }
}

/// `[ks] ++ key` bounds; an unbounded side becomes the keyspace boundary.
pub(crate) fn full_bounds(ks: Keyspace, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lower {
        Bound::Included(k) => Bound::Included(ks.key(k)),
        Bound::Excluded(k) => Bound::Excluded(ks.key(k)),
        Bound::Unbounded => Bound::Included(vec![ks.byte()]),
    };
    let hi = match upper {
        Bound::Included(k) => Bound::Included(ks.key(k)),
        Bound::Excluded(k) => Bound::Excluded(ks.key(k)),
        Bound::Unbounded => Bound::Excluded(vec![ks.byte() + 1]),
    };
    (lo, hi)
}

/// Whether the bounds select nothing (BTreeMap::range panics on such bounds).
pub(crate) fn is_empty_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

/// Strips the keyspace byte of a full key (no copy for large keys).
pub(crate) fn strip(key: IVec) -> IVec {
    key.subslice(1, key.len().saturating_sub(1))
}

impl Db {
    /// Opens (creating if needed) the database in directory `path` with default tuning.
    pub fn open(path: impl AsRef<Path>) -> Result<Db, StorageError> {
        Self::open_with(path, &StorageConfig::default())
    }

    /// Opens (creating if needed) the sled database in directory `path`.
    pub fn open_with(path: impl AsRef<Path>, config: &StorageConfig) -> Result<Db, StorageError> {
        let path = path.as_ref().to_path_buf();
        let store = SledStore::open(&path, config)?;
        Db::with_store(Arc::new(store), path, config)
    }

    /// A database over any [`Store`] (`path` names it in messages).
    pub fn with_store(store: Arc<dyn Store>, path: PathBuf, config: &StorageConfig) -> Result<Db, StorageError> {
        match store.get(&Keyspace::Meta.key(META_FORMAT))? {
            None => store.apply(vec![(Keyspace::Meta.key(META_FORMAT), Some(IVec::from(&[FORMAT])))])?,
            Some(v) if v.as_ref() == [FORMAT] => {}
            Some(v) => {
                return Err(StorageError::Corrupt(format!(
                    "{}: storage format {:?} is not supported (expected {FORMAT})",
                    path.display(),
                    v.as_ref()
                )))
            }
        }
        let last_version = match store.get(&Keyspace::Meta.key(META_VERSION_HWM))? {
            Some(v) => super::record::decode_version(&v)?,
            None => 0,
        };
        store.make_durable()?;
        let flusher = Flusher::start(store.clone())?;
        tracing::info!(path = %path.display(), last_version, "storage opened");
        let inner = Inner {
            store,
            write: Mutex::new(WriteState::new(last_version)),
            flusher,
            sequence_start: AtomicI64::new(config.sequence_start),
            sequence_range: AtomicI64::new(config.sequence_range.max(1)),
            path,
        };
        Ok(Db { inner: Arc::new(inner) })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Change the sequence settings (a configuration applied while running, or read from the
    /// store after it opened): the first number of sequences not started yet, and how many
    /// numbers each reservation takes from now on.
    pub fn set_sequences(&self, start: i64, range: i64) {
        self.inner.sequence_start.store(start, Ordering::Relaxed);
        self.inner.sequence_range.store(range.max(1), Ordering::Relaxed);
    }

    /// Runs `f` as one atomic write: `f` reads through the [`WriteTx`] (seeing its own pending
    /// writes) and stages puts/removes; they are applied as one sled batch when `f` returns `Ok`,
    /// and not at all when it returns `Err`. Writers are serialised by one process-wide mutex.
    /// The write is visible at once but durable only after [`Db::sync`].
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
        E: From<StorageError>,
    {
        let mut state = self.inner.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tx = WriteTx::new(self, &mut state);
        let out = f(&mut tx)?;
        tx.commit().map_err(E::from)?;
        Ok(out)
    }

    /// Writes each of `writes` (`None`: a removal) on its own, outside [`Db::write`]'s
    /// serialisation and without a batch: for keyspaces that no transaction reads or writes (the
    /// journal). Each key is atomic, the whole is not; durable with the next [`Db::sync`].
    pub fn put_each(&self, writes: Vec<(Keyspace, Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StorageError> {
        for (ks, key, value) in writes {
            self.inner.store.apply(vec![(ks.key(&key), value.map(IVec::from))])?;
        }
        Ok(())
    }

    /// Makes every write that returned before this call durable (group commit: concurrent
    /// callers share one flush). See README for the exact guarantee.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.inner.flusher.sync()
    }

    /// Async form of [`Db::sync`]: the writes that returned before this call are covered; the
    /// future resolves when they are durable. It does not block a reactor thread.
    pub fn sync_async(&self) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        self.inner.flusher.sync_async()
    }

    /// Number of group-commit flushes completed since open (for metrics).
    pub fn flush_count(&self) -> u64 {
        self.inner.flusher.flush_count()
    }

    /// Approximate on-disk size of the database in bytes.
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.inner.store.size_on_disk()
    }
}

impl ReadView for Db {
    fn get(&self, ks: Keyspace, key: &[u8]) -> Result<Option<IVec>, StorageError> {
        self.inner.store.get(&ks.key(key))
    }

    fn range<'a>(&'a self, ks: Keyspace, lower: Bound<&[u8]>, upper: Bound<&[u8]>, reverse: bool) -> KvIter<'a> {
        let (lo, hi) = full_bounds(ks, lower, upper);
        if is_empty_range(&lo, &hi) {
            return Box::new(std::iter::empty());
        }
        let iter = self.inner.store.range(lo, hi);
        let map = |r: Result<(IVec, IVec), StorageError>| r.map(|(k, v)| (strip(k), v));
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::temp_db;
    use super::*;

    fn keys(it: KvIter<'_>) -> Vec<Vec<u8>> {
        it.map(|r| r.unwrap().0.to_vec()).collect()
    }

    #[test]
    fn generic_keyspace_reads_and_writes() {
        let (_d, db) = temp_db();
        db.write(|tx| {
            for k in [&b"a1"[..], b"a2", b"a3", b"b1"] {
                tx.insert(Keyspace::Jobs, k, k.to_vec());
            }
            tx.insert(Keyspace::Tasks, b"a1", b"other keyspace".to_vec());
            Ok::<_, StorageError>(())
        })
        .unwrap();
        assert_eq!(db.get(Keyspace::Jobs, b"a2").unwrap().unwrap().as_ref(), b"a2");
        assert_eq!(db.get(Keyspace::Jobs, b"zz").unwrap(), None);
        assert_eq!(keys(db.scan_prefix(Keyspace::Jobs, b"a")), [b"a1", b"a2", b"a3"]);
        let rev = db.range(Keyspace::Jobs, Bound::Excluded(b"a1"), Bound::Unbounded, true);
        assert_eq!(keys(rev), [&b"b1"[..], b"a3", b"a2"]);
        let all_tasks = db.range(Keyspace::Tasks, Bound::Unbounded, Bound::Unbounded, false);
        assert_eq!(keys(all_tasks), [b"a1"]);
        let empty = db.range(Keyspace::Jobs, Bound::Included(b"b"), Bound::Excluded(b"a"), false);
        assert_eq!(keys(empty).len(), 0);
    }

    #[test]
    fn reopen_after_drop_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path()).unwrap();
            db.write(|tx| {
                tx.insert(Keyspace::Tokens, b"t", b"secret".to_vec());
                Ok::<_, StorageError>(())
            })
            .unwrap();
        }
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(db.get(Keyspace::Tokens, b"t").unwrap().unwrap().as_ref(), b"secret");
    }
}
