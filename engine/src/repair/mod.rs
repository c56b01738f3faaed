//! The persistent repair queue (TDG 2.8). An accepted object is in the intake log before its
//! input acknowledges it; while it is processed it lives only there (claimed by being in flight),
//! and the commit that stores or routes it marks its record done. On failure it is written here,
//! with the error, the stage and function that failed, the attempts and the original payload,
//! and stays until an operator retries or deletes it. An entry retried or resumed from here is
//! removed in the same atomic commit that stores or routes it.
//!
//! Keys are UUIDv7 ids (time-ordered), so listing newest first is a reverse range scan. The
//! entries are kept, found, filtered and taken out by the [`Shelf`] all parked work shares.

mod entry;

pub use entry::{Attempt, Entry, Failure, Status};

use crate::metrics::metrics;
use crate::parked::{ParkedFilter, Shelf, Taken};
use crate::storage::{Db, DoneBatch, Keyspace, ReadView, StorageError, WriteTx};
use serde_json::Value;

/// How often writing a fresh object's failure is tried again.
const FAIL_ATTEMPTS: u32 = 3;

/// Where the entries are.
const SHELF: Shelf = Shelf::new(Keyspace::RepairQueue, &[], "repair-queue entry");

/// Problems of the repair queue.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored entry could not be decoded (internal).
    #[error("repair entry {id}: {message}")]
    Corrupt {
        /// Entry id.
        id: String,
        /// Decoder message.
        message: String,
    },
    /// A request named an id that is not a repair-queue id.
    #[error("\"{0}\" is not a repair-queue id")]
    BadId(String),
    /// A bad cursor or filter.
    #[error("{0}")]
    BadRequest(String),
    /// The entry was deleted while its object was being processed; nothing was committed.
    #[error("repair-queue entry \"{0}\" was deleted while its object was being processed")]
    Gone(String),
    /// The intake log refused the entry (it failed or the engine is shutting down).
    #[error(transparent)]
    IntakeLog(#[from] crate::storage::IntakeLogError),
    /// The entry is being processed (its status says so: its claim), so it is left alone.
    #[error("repair-queue entry \"{0}\" is being processed right now")]
    Busy(String),
}

/// What a notification mail tells of an entry (`Keyspace::Notify`).
fn notice(entry: &Entry) -> Vec<u8> {
    let summary = serde_json::json!({
        "id": entry.id, "input": entry.input, "routing_key": entry.routing_key,
        "stage": entry.stage, "error": entry.error.as_deref().map(crate::journal::clip), "at": entry.updated_at,
    });
    serde_json::to_vec(&summary).unwrap_or_default()
}

/// The repair queue of one database.
#[derive(Clone)]
pub struct RepairQueue {
    db: Db,
    history_size: usize,
}

/// Whether new entries are noted for a notification mail (someone is subscribed). One for the
/// process: a configuration apply builds a new queue, and it must note from its first failure.
static NOTIFYING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Meta key of the number of the next note.
const NOTE_COUNTER: &[u8] = b"notifier/next_note";

/// The key of note number `n` of entry `id`: in the order of the commits that wrote them, as
/// the notifier tells of the notes up to the last one it read and then removes those. (An
/// entry's id is taken when its object arrives, so two failures commit in another order than
/// their ids': keyed by id, a note committed just after the notifier read could sort before the
/// last one it read and be removed untold.) The mark byte sorts them after notes keyed by id
/// alone, as earlier versions wrote them.
fn note_key(n: u64, id: &[u8; 16]) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(0xFF);
    key.extend_from_slice(&n.to_be_bytes());
    key.extend_from_slice(id);
    key
}

fn key_of(id: &str) -> Result<[u8; 16], RepairError> {
    uuid::Uuid::parse_str(id).map(|u| *u.as_bytes()).map_err(|_| RepairError::BadId(id.to_string()))
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Entry, RepairError> {
    crate::storage::from_stored(bytes).map_err(|e| RepairError::Corrupt {
        id: uuid::Uuid::from_slice(key).map(|u| u.to_string()).unwrap_or_else(|_| hex::encode(key)),
        message: e.to_string(),
    })
}

fn encode(entry: &Entry) -> Vec<u8> {
    // Entries hold only JSON-representable data; serialising them cannot fail.
    serde_json::to_vec(entry).unwrap_or_default()
}

impl RepairQueue {
    /// The queue stored in `db`; sets the depth gauge from what is on disk.
    pub fn open(db: Db, history_size: usize) -> Result<RepairQueue, RepairError> {
        let queue = RepairQueue { db, history_size: history_size.max(1) };
        queue.refresh_depth()?;
        Ok(queue)
    }

    /// Note new entries for a notification mail from now on (`true`), or not.
    pub fn set_notifying(&self, on: bool) {
        NOTIFYING.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stage the note of a new entry for the notification mail, when someone subscribed. Notes
    /// are keyed in the order of their commits (see [`note_key`]).
    fn note_in(&self, tx: &mut WriteTx<'_>, entry: &Entry) -> Result<(), RepairError> {
        if NOTIFYING.load(std::sync::atomic::Ordering::Relaxed) {
            let next = match tx.get(Keyspace::Meta, NOTE_COUNTER)? {
                Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| RepairError::Storage(StorageError::Corrupt("the notifier's note counter".into())))?,
                None => 0,
            };
            tx.insert(Keyspace::Meta, NOTE_COUNTER, next.wrapping_add(1).to_be_bytes().to_vec());
            tx.insert(Keyspace::Notify, &note_key(next, &key_of(&entry.id)?), notice(entry));
        }
        Ok(())
    }

    /// Set the depth gauge from what is stored (after recovery put entries back).
    pub fn refresh_depth(&self) -> Result<(), RepairError> {
        let mut depth = 0i64;
        for item in self.db.scan_prefix(Keyspace::RepairQueue, &[]) {
            item?;
            depth += 1;
        }
        metrics().repair_depth.set(depth);
        Ok(())
    }

    /// A new entry for a received object (not written yet).
    pub fn new_entry(input: &str, source: &str, payload: Value) -> Entry {
        Entry::new(uuid::Uuid::now_v7().to_string(), input, source, payload)
    }

    /// Stage `entry` in `tx` (as new or updated).
    pub fn put_in(&self, tx: &mut WriteTx<'_>, entry: &Entry) -> Result<(), RepairError> {
        tx.insert(Keyspace::RepairQueue, &key_of(&entry.id)?, encode(entry));
        Ok(())
    }

    /// Write a new entry (durable only after `Db::sync`). It is noted for the notification mail
    /// when it fails ([`RepairQueue::fail`]).
    pub fn add(&self, entry: &Entry) -> Result<(), RepairError> {
        self.db.write(|tx| self.put_in(tx, entry))?;
        metrics().repair_depth.inc();
        Ok(())
    }

    /// Stage the end of `entry` in `tx`: for a fresh object (only in the intake log), its done
    /// marker in `done`; for an entry of the queue, its removal and the done marker of its
    /// intake-log record. An entry that is not there any more (deleted meanwhile) fails the
    /// commit, so a deleted object is neither stored nor routed.
    pub fn complete_in(&self, tx: &mut WriteTx<'_>, entry: &Entry, done: &mut DoneBatch) -> Result<(), RepairError> {
        if entry.unsettled.is_some() {
            done.add(entry);
            return Ok(());
        }
        let key = key_of(&entry.id)?;
        if tx.get(Keyspace::RepairQueue, &key)?.is_none() {
            return Err(RepairError::Gone(entry.id.clone()));
        }
        tx.remove(Keyspace::RepairQueue, &key);
        crate::storage::mark_done(tx, entry);
        Ok(())
    }

    /// Call after a commit that removed entries staged with [`RepairQueue::complete_in`].
    pub fn removed(&self, count: usize) {
        metrics().repair_depth.sub(count as i64);
    }

    /// The entry `id`.
    pub fn get(&self, id: &str) -> Result<Option<Entry>, RepairError> {
        key_of(id)?;
        Ok(SHELF.get(&self.db, id)?)
    }

    /// Change entry `id` and stage `also` (given the changed entry) in the same commit.
    fn modify_with(
        &self,
        id: &str,
        change: impl FnOnce(&mut Entry),
        also: impl FnOnce(&mut WriteTx<'_>, &Entry) -> Result<(), RepairError>,
    ) -> Result<Option<Entry>, RepairError> {
        let key = key_of(id)?;
        self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::RepairQueue, &key)? else {
                return Ok(None);
            };
            let mut entry = decode(&key, &bytes)?;
            change(&mut entry);
            tx.insert(Keyspace::RepairQueue, &key, encode(&entry));
            also(tx, &entry)?;
            Ok::<_, RepairError>(Some(entry))
        })
    }

    /// Record that processing `id` failed, and stage `also` (given the updated entry) in the
    /// same commit. Returns the updated entry (None if it was deleted).
    pub fn fail(
        &self,
        entry: &Entry,
        failure: &Failure,
        mut also: impl FnMut(&mut WriteTx<'_>, &Entry) -> Result<(), RepairError>,
    ) -> Result<Option<Entry>, RepairError> {
        let Some(unsettled) = &entry.unsettled else {
            // An entry that had not failed before (recovered from the intake log at a start)
            // enters the queue now: noted as new.
            let first = std::cell::Cell::new(false);
            return self.modify_with(
                &entry.id,
                |entry| {
                    first.set(entry.error.is_none());
                    entry.record_failure(failure, self.history_size);
                },
                |tx, entry| {
                    if first.get() {
                        self.note_in(tx, entry)?;
                    }
                    also(tx, entry)
                },
            );
        };
        // Settled already: its commit went through (a panic after it failed the whole batch), so
        // it must not come into the queue as well.
        if unsettled.is_settled() {
            return Ok(None);
        }
        // A fresh object: its entry comes into the queue now, with the failure; that settles
        // its intake-log record. Tried a few times: until it is written the record holds its
        // intake-log segment (and every later one) until the next start.
        let mut failed = entry.clone();
        failed.unsettled = None;
        failed.record_failure(failure, self.history_size);
        let key = key_of(&failed.id)?;
        let mut attempt = 0;
        loop {
            let written = self.db.write(|tx| {
                tx.insert(Keyspace::RepairQueue, &key, encode(&failed));
                self.note_in(tx, &failed)?;
                also(tx, &failed)
            });
            match written {
                Ok(()) => break,
                Err(e) if attempt >= FAIL_ATTEMPTS => return Err(e),
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(id = %failed.id, error = %e, attempt, "writing a failed object to the repair queue failed; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(50 << attempt));
                }
            }
        }
        unsettled.settle();
        Ok(Some(failed))
    }

    /// Claim `id` for an operator's retry, optionally with an edited payload (`by` says who): in
    /// one commit, an entry that is not being processed becomes `In Progress` (its claim, kept
    /// in storage: a restart resumes it); one being processed is [`RepairError::Busy`]. `None`
    /// when there is no such entry.
    pub fn start_retry(&self, id: &str, edited: Option<(Value, String)>) -> Result<Option<Entry>, RepairError> {
        let key = key_of(id)?;
        self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::RepairQueue, &key)? else {
                return Ok(None);
            };
            let mut entry = decode(&key, &bytes)?;
            if entry.is_unfinished() {
                return Err(RepairError::Busy(id.to_string()));
            }
            entry.start_retry(edited, self.history_size);
            tx.insert(Keyspace::RepairQueue, &key, encode(&entry));
            Ok(Some(entry))
        })
    }

    /// Entries matching `filter`, newest first, and the cursor to continue after the last one.
    pub fn list(&self, filter: &ParkedFilter) -> Result<(Vec<Entry>, Option<String>), RepairError> {
        SHELF.page(&self.db, filter).map_err(RepairError::BadRequest)
    }

    /// Every entry matching `filter` (all pages), oldest first.
    pub fn all_matching(&self, filter: &ParkedFilter) -> Result<Vec<Entry>, RepairError> {
        Ok(SHELF.all(&self.db, filter)?)
    }

    /// Entries whose processing had not finished when the engine stopped: `New` without an
    /// error, and `In Progress`. They are processed again at start.
    pub fn unfinished(&self) -> Result<Vec<Entry>, RepairError> {
        let all: Vec<Entry> = SHELF.all(&self.db, &ParkedFilter::default())?;
        Ok(all.into_iter().filter(Entry::is_unfinished).collect())
    }

    /// Delete entry `id`; false if there was none, [`RepairError::Busy`] while it is being
    /// processed.
    pub fn delete(&self, id: &str) -> Result<bool, RepairError> {
        key_of(id)?;
        let taken = self.take(&[id])?;
        if taken.left > 0 {
            return Err(RepairError::Busy(id.to_string()));
        }
        Ok(taken.taken > 0)
    }

    /// Delete every entry matching `filter` but those being processed; returns how many.
    pub fn delete_matching(&self, filter: &ParkedFilter) -> Result<usize, RepairError> {
        let entries = self.all_matching(filter)?;
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        Ok(self.take(&ids)?.taken)
    }

    /// Take entries off the queue in one commit, each with the done marker of its intake-log
    /// record (so that it does not come back from the log); an entry being processed stays.
    fn take(&self, ids: &[&str]) -> Result<Taken, RepairError> {
        let taken = SHELF.take_if(
            &self.db,
            ids,
            |entry: &Entry| !entry.is_unfinished(),
            |tx, entry: Entry| {
                crate::storage::mark_done(tx, &entry);
                Ok::<_, RepairError>(())
            },
        )?;
        metrics().repair_depth.sub(taken.taken as i64);
        Ok(taken)
    }
}

impl crate::parked::ParkedQueue for RepairQueue {
    type Item = Entry;

    fn shelf(&self) -> (&Db, Shelf) {
        (&self.db, SHELF)
    }

    fn delete_ids(&self, ids: &[&str]) -> Result<Taken, RepairError> {
        self.take(ids)
    }
}

impl crate::parked::Parked for Entry {
    fn id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> &str {
        &self.created_at
    }

    /// The id, status, source, input, routing key, error, stage, function or payload.
    fn contains(&self, needle: &str) -> bool {
        use crate::parked::found;
        let status = match self.status {
            Status::New => "New",
            Status::InProgress => "In Progress",
            Status::Reworked => "Reworked",
        };
        [self.id.as_str(), status, &self.source, &self.input].iter().any(|f| found(f, needle))
            || [&self.routing_key, &self.error, &self.stage, &self.function]
                .iter()
                .any(|f| f.as_deref().is_some_and(|f| found(f, needle)))
            || found(&self.payload.to_string(), needle)
    }
}

#[cfg(test)]
mod tests;
