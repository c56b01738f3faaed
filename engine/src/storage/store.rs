//! The backend seam: what the storage needs from an ordered key-value engine. [`Db`] (versions,
//! transactions, group commit, keyspaces) and the repository work over any [`Store`]; the
//! embedded default is sled ([`super::sled_store::SledStore`]). A networked backend for
//! scale-out implements the same five operations.
//!
//! [`Db`]: super::Db

use super::error::StorageError;
use sled::IVec;
use std::ops::Bound;

/// Entries of a key range, in key order (reversible).
pub type RawIter<'a> = Box<dyn DoubleEndedIterator<Item = Result<(IVec, IVec), StorageError>> + 'a>;

/// An ordered key-value store with atomic multi-key writes.
pub trait Store: Send + Sync + 'static {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, StorageError>;

    /// Entries with keys within the bounds.
    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RawIter<'_>;

    /// Apply every write (`None` removes) atomically: after a crash either all are there or none.
    /// Visible to readers on return; durable after the next [`Store::make_durable`].
    fn apply(&self, writes: Vec<(Vec<u8>, Option<IVec>)>) -> Result<(), StorageError>;

    /// Make everything applied so far durable (called by one flusher thread at a time).
    fn make_durable(&self) -> Result<(), StorageError>;

    /// Approximate size on disk in bytes.
    fn size_on_disk(&self) -> Result<u64, StorageError>;
}
