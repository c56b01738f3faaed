//! Persisted sequences (`sequence::next`, auto-increment): numbers are reserved on disk in
//! ranges, so a crash may skip numbers but never hands one out twice.

use super::db::{Db, ReadView};
use super::error::StorageError;
use super::keyspace::Keyspace;
use super::tx::WriteTx;

/// A reserved range: `next..limit` are free; `limit` is what the disk holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqRange {
    next: i64,
    limit: i64,
}

impl WriteTx<'_> {
    /// The next number of sequence `name` (starting at the configured `sequence_start`, 1 by default). The reservation is part of this
    /// transaction; sync before using the number outside the database.
    pub fn sequence_next(&mut self, name: &str) -> Result<i64, StorageError> {
        let cached = self.staged_seq.get(name).or_else(|| self.state.seq.get(name)).copied();
        let mut range = match cached {
            Some(r) if r.next < r.limit => r,
            _ => {
                let start = match self.get(Keyspace::Sequences, name.as_bytes())? {
                    Some(v) => {
                        let arr: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                            StorageError::Corrupt(format!("sequence \"{name}\" has a bad high-water mark"))
                        })?;
                        i64::from_be_bytes(arr)
                    }
                    None => self.db.inner.sequence_start.load(std::sync::atomic::Ordering::Relaxed),
                };
                let limit = start
                    .checked_add(self.db.inner.sequence_range.load(std::sync::atomic::Ordering::Relaxed))
                    .ok_or_else(|| StorageError::user(format!("sequence \"{name}\" is exhausted")))?;
                self.insert(Keyspace::Sequences, name.as_bytes(), limit.to_be_bytes().to_vec());
                self.seq_reserved = true;
                SeqRange { next: start, limit }
            }
        };
        let v = range.next;
        range.next += 1;
        self.staged_seq.insert(name.to_string(), range);
        Ok(v)
    }
}

impl Db {
    /// The next number of sequence `name` in its own transaction; when a new range had to be
    /// reserved it is synced to disk before the number is returned.
    pub fn sequence_next(&self, name: &str) -> Result<i64, StorageError> {
        let (v, reserved) = self.write(|tx| {
            let v = tx.sequence_next(name)?;
            Ok::<_, StorageError>((v, tx.seq_reserved))
        })?;
        if reserved {
            self.sync()?;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sequences_count_up_and_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = HashSet::new();
        for round in 0..3 {
            let db = Db::open(dir.path()).unwrap();
            for _ in 0..150 {
                assert!(seen.insert(db.sequence_next("orders").unwrap()), "repeat in round {round}");
            }
            let other = db.sequence_next("invoices").unwrap();
            if round == 0 {
                assert_eq!(other, 1, "sequences are independent");
            }
        }
        assert_eq!(seen.len(), 450);
        assert!(seen.contains(&1) && seen.contains(&150));
    }

    #[test]
    fn numbers_from_a_failed_transaction_are_not_lost_nor_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let r: Result<i64, StorageError> = db.write(|tx| {
            tx.sequence_next("s")?;
            Err(StorageError::user("rolled back"))
        });
        assert!(r.is_err());
        // the rolled-back reservation was not applied; the number is handed out again once
        assert_eq!(db.sequence_next("s").unwrap(), 1);
        let two_in_one =
            db.write(|tx| Ok::<_, StorageError>((tx.sequence_next("s")?, tx.sequence_next("s")?))).unwrap();
        assert_eq!(two_in_one, (2, 3));
    }
}
