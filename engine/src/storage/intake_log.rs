//! The intake log: what makes an acknowledgement durable without waiting for sled's flush.
//!
//! Every accepted object is appended to this log (the log knows its records only as
//! [`LogRecord`]s) together with the storage write that puts it into the repair queue
//! ([`Staged`]); the flusher thread inserts the writes of all pending records into sled (each a
//! fresh key written on its own, so no request thread takes the storage's write lock), then
//! appends their records and `fdatasync`s once for all of them (group commit); the input answers
//! once its record is on disk.
//! About once a second the log moves to a new segment and a checkpointer makes sled durable
//! (`Db::sync`) and deletes the older segments: their records are in sled for good by then.
//!
//! Recovery (at start): a logged entry that sled lost (a crash before sled's flush) is put back
//! into the repair queue, unless sled holds its *done marker* — written in the same atomic batch
//! that stored, routed or deleted the entry — so nothing acknowledged is lost and nothing is
//! processed twice.
//!
//! Record format: `[u32 length][u32 crc32][JSON entry]`, little-endian; a torn or corrupt tail
//! ends a segment.

use super::{Db, Keyspace, ReadView, StorageError, WriteTx};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the log moves to a new segment (and older ones are checkpointed away).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How often the removal of refused records is tried.
const REMOVAL_ATTEMPTS: u32 = 4;
/// Largest record accepted (the HTTP body limit is far below).
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// What the intake log keeps: a JSON record with a UUID and the segment it was logged in.
pub trait LogRecord: Serialize + DeserializeOwned {
    /// Its id, a UUID: the key of the record where it lives in storage.
    fn id(&self) -> &str;
    /// The segment that holds its record, once logged.
    fn segment(&self) -> Option<u64>;
    /// Note the segment that holds its record.
    fn set_segment(&mut self, segment: u64);
}

/// Problems of the intake log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeLogError {
    /// Reading or writing the log failed; acknowledgements stop until restart.
    #[error("intake log {path}: {message}")]
    Io {
        /// File or folder.
        path: String,
        /// What failed.
        message: String,
    },
    /// The log was closed (shutdown).
    #[error("the intake log is closed")]
    Closed,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> IntakeLogError + '_ {
    move |e| IntakeLogError::Io { path: path.display().to_string(), message: e.to_string() }
}

type Waiter = tokio::sync::oneshot::Sender<Result<(), IntakeLogError>>;

/// The storage write that goes with a record: a fresh key, inserted into sled by the flusher
/// before the records are flushed.
#[derive(Debug)]
pub struct Staged {
    /// Where.
    pub keyspace: Keyspace,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
}

struct Pending {
    /// The segment records appended now belong to.
    segment: u64,
    bytes: Vec<u8>,
    staged: Vec<Staged>,
    /// The ids of the pending records (for done markers when they are refused).
    ids: Vec<Option<[u8; 16]>>,
    waiters: Vec<Waiter>,
    closed: bool,
    failed: Option<IntakeLogError>,
}

struct LogState {
    dir: PathBuf,
    db: Db,
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The intake log of one data directory.
#[derive(Clone)]
pub struct IntakeLog {
    shared: Arc<LogState>,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.log"))
}

fn segments(dir: &Path) -> Result<Vec<u64>, IntakeLogError> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let name = item.map_err(io_error(dir))?.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse::<u64>().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Every intact record of segment `n`.
fn read_segment<R: LogRecord>(dir: &Path, n: u64) -> Result<Vec<R>, IntakeLogError> {
    let path = segment_path(dir, n);
    let mut bytes = Vec::new();
    File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_error(&path))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if len > MAX_RECORD {
            break;
        }
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let Some(body) = bytes.get(at + 8..at + 8 + len) else { break };
        if crc32fast::hash(body) != crc {
            break;
        }
        match serde_json::from_slice::<R>(body) {
            Ok(mut record) => {
                record.set_segment(n);
                out.push(record);
            }
            Err(_) => break,
        }
        at += 8 + len;
    }
    if at < bytes.len() {
        // A torn tail is what a crash mid-append leaves; anything else is damage to the disk.
        tracing::warn!(
            segment = n,
            read = at,
            size = bytes.len(),
            "intake log: a segment ends in a torn or corrupt record; the bytes after it are skipped"
        );
    }
    Ok(out)
}

fn encode<R: LogRecord>(record: &R, out: &mut Vec<u8>) -> Result<(), IntakeLogError> {
    let body = serde_json::to_vec(record)
        .map_err(|e| IntakeLogError::Io { path: format!("record {}", record.id()), message: e.to_string() })?;
    let len = u32::try_from(body.len()).ok().filter(|&len| len as usize <= MAX_RECORD).ok_or_else(|| {
        IntakeLogError::Io { path: format!("record {}", record.id()), message: "record too large".into() }
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), IntakeLogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

/// The key of a done marker: segment then entry id.
fn done_key(segment: u64, id: &[u8; 16]) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&segment.to_be_bytes());
    key[8..].copy_from_slice(id);
    key
}

impl IntakeLog {
    /// Open the log in `dir`: put back (with `put`) the records that sled lost — neither in
    /// keyspace `live` under their id nor done — make that durable, drop the old segments and
    /// start a new one with its flusher and checkpointer. Returns the log and how many records
    /// were recovered.
    pub fn open<R: LogRecord>(
        dir: &Path,
        db: &Db,
        live: Keyspace,
        put: impl Fn(&mut WriteTx<'_>, &R),
    ) -> Result<(IntakeLog, usize), IntakeLogError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let old = segments(dir)?;
        let mut recovered = 0;
        for &n in &old {
            for entry in read_segment::<R>(dir, n)? {
                let Ok(id) = uuid::Uuid::parse_str(entry.id()) else { continue };
                let storage_error = |e: StorageError| IntakeLogError::Io {
                    path: dir.display().to_string(),
                    message: format!("reading {live:?} during recovery: {e}"),
                };
                let known = db.get(live, id.as_bytes()).map_err(storage_error)?.is_some()
                    || db.get(Keyspace::Done, &done_key(n, id.as_bytes())).map_err(storage_error)?.is_some();
                if !known {
                    db.write(|tx| {
                        put(tx, &entry);
                        Ok::<_, StorageError>(())
                    })
                    .map_err(|e| IntakeLogError::Io { path: dir.display().to_string(), message: e.to_string() })?;
                    recovered += 1;
                }
            }
        }
        db.sync().map_err(|e| IntakeLogError::Io { path: dir.display().to_string(), message: e.to_string() })?;
        for &n in &old {
            let path = segment_path(dir, n);
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
        // The segments must be gone for good before their done markers are.
        sync_dir(dir)?;
        clear_done_markers(db, u64::MAX);
        let first = old.last().map_or(1, |n| n + 1);
        let file =
            OpenOptions::new().create(true).append(true).open(segment_path(dir, first)).map_err(io_error(dir))?;
        sync_dir(dir)?;
        let wal = IntakeLog {
            shared: Arc::new(LogState {
                dir: dir.to_path_buf(),
                db: db.clone(),
                pending: Mutex::new(Pending {
                    segment: first,
                    bytes: Vec::new(),
                    staged: Vec::new(),
                    ids: Vec::new(),
                    waiters: Vec::new(),
                    closed: false,
                    failed: None,
                }),
                wake: Condvar::new(),
            }),
        };
        let (sealed_tx, sealed_rx) = std::sync::mpsc::channel::<u64>();
        let flusher = wal.clone();
        std::thread::Builder::new()
            .name("ferrogrid-intake-log".into())
            .spawn(move || flusher.flush_loop(file, first, sealed_tx))
            .map_err(io_error(dir))?;
        let checkpoint_db = db.clone();
        let checkpoint_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("ferrogrid-checkpoint".into())
            .spawn(move || {
                for sealed in sealed_rx {
                    checkpoint(&checkpoint_db, &checkpoint_dir, sealed);
                }
            })
            .map_err(io_error(dir))?;
        Ok((wal, recovered))
    }

    /// Log `record`: under the log's lock, tag it with the current segment, let `stage` say
    /// the storage write that goes with it, and queue both; the flusher inserts the write into
    /// sled before it flushes the record, so a record is always in sled before its segment can be
    /// checkpointed. The future resolves once the record is on disk (and the write in sled).
    /// `stage` is given the record serialised (JSON, as it is logged). A log that failed or was
    /// closed refuses the record at once, before `stage` runs.
    pub fn append<R: LogRecord, E: From<IntakeLogError>>(
        &self,
        record: &mut R,
        stage: impl FnOnce(&R, &[u8]) -> Result<Staged, E>,
    ) -> Result<impl std::future::Future<Output = Result<(), IntakeLogError>> + Send + 'static, E> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = pending.failed.clone() {
                return Err(e.into());
            }
            if pending.closed {
                return Err(IntakeLogError::Closed.into());
            }
            // Serialised once (with its segment), for the log and for `stage`.
            record.set_segment(pending.segment);
            let mut bytes = Vec::new();
            encode(record, &mut bytes)?;
            let staged = stage(record, &bytes[8..])?;
            pending.bytes.extend_from_slice(&bytes);
            pending.ids.push(uuid::Uuid::parse_str(record.id()).ok().map(|u| *u.as_bytes()));
            pending.staged.push(staged);
            pending.waiters.push(tx);
            self.shared.wake.notify_one();
        }
        Ok(async move { rx.await.unwrap_or(Err(IntakeLogError::Closed)) })
    }

    /// Flush what is pending and stop the flusher (shutdown).
    pub fn close(&self) {
        let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.closed = true;
        self.shared.wake.notify_one();
    }

    fn flush_loop(&self, mut file: File, mut segment: u64, sealed: std::sync::mpsc::Sender<u64>) {
        let dir = self.shared.dir.clone();
        let mut written = false;
        let mut last_rotation = Instant::now();
        loop {
            let rotation_due = |written: bool, pending_empty: bool| {
                (written || !pending_empty) && last_rotation.elapsed() >= CHECKPOINT_EVERY
            };
            let (bytes, staged, ids, waiters, closed, new_file) = {
                let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
                while pending.bytes.is_empty() && !pending.closed && !rotation_due(written, true) {
                    let (guard, _) = self
                        .shared
                        .wake
                        .wait_timeout(pending, CHECKPOINT_EVERY)
                        .unwrap_or_else(PoisonError::into_inner);
                    pending = guard;
                }
                // Rotate under the lock: what is pending now still goes to `segment`, everything
                // appended after it is tagged with the next one.
                let mut new_file = None;
                if !pending.closed && rotation_due(written, pending.bytes.is_empty()) {
                    match OpenOptions::new().create(true).append(true).open(segment_path(&dir, segment + 1)) {
                        Ok(f) => {
                            pending.segment = segment + 1;
                            new_file = Some(f);
                        }
                        Err(e) => tracing::warn!(error = %e, "intake log rotation failed; will retry"),
                    }
                    last_rotation = Instant::now();
                }
                (
                    std::mem::take(&mut pending.bytes),
                    std::mem::take(&mut pending.staged),
                    std::mem::take(&mut pending.ids),
                    std::mem::take(&mut pending.waiters),
                    pending.closed,
                    new_file,
                )
            };
            if !bytes.is_empty() {
                let path = segment_path(&dir, segment);
                // The storage writes first, each on its own (fresh keys: no group commit needed,
                // and a single-key write spares sled's log-buffer writes); their records after.
                let keys: Vec<(Keyspace, Vec<u8>)> = staged.iter().map(|s| (s.keyspace, s.key.clone())).collect();
                let inserted = self.shared.db.insert_each(staged.into_iter().map(|s| (s.keyspace, s.key, s.value)));
                let result = match inserted {
                    Ok(()) => file.write_all(&bytes).and_then(|()| file.sync_data()).map_err(io_error(&path)),
                    Err(e) => Err(IntakeLogError::Io { path: "storage".into(), message: e.to_string() }),
                };
                if result.is_err() {
                    // Refused to their clients: nothing of them may stay, and their records (which
                    // may have reached the disk all the same) are marked done, so that recovery
                    // does not bring them back.
                    // Tried a few times: a refused object left in the repair queue would be
                    // processed at the next start although its client was told no.
                    let mut removed = Ok(());
                    for attempt in 0..REMOVAL_ATTEMPTS {
                        if attempt > 0 {
                            std::thread::sleep(Duration::from_millis(100 << attempt));
                        }
                        removed = self.shared.db.write(|tx| {
                            for (keyspace, key) in &keys {
                                tx.remove(*keyspace, key);
                            }
                            for id in ids.iter().flatten() {
                                tx.insert(Keyspace::Done, &done_key(segment, id), Vec::new());
                            }
                            Ok::<_, StorageError>(())
                        });
                        if removed.is_ok() {
                            break;
                        }
                    }
                    if let Err(e) = removed {
                        let refused: Vec<String> =
                            ids.iter().flatten().map(|id| uuid::Uuid::from_bytes(*id).to_string()).collect();
                        tracing::error!(error = %e, ?refused, "intake log: removing refused records from storage failed; their clients were refused, yet these entries stay and are processed at the next start");
                    }
                }
                if result.is_ok() {
                    crate::metrics::metrics().intake_log_flushes.inc();
                }
                if let Err(e) = &result {
                    tracing::error!(error = %e, "intake log write failed; new objects are refused until restart");
                    self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).failed = Some(e.clone());
                }
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
                written = true;
            }
            if let Some(next) = new_file {
                file = next;
                if let Err(e) = sync_dir(&dir) {
                    tracing::warn!(error = %e, "intake log: syncing the folder failed");
                }
                let _ = sealed.send(segment);
                segment += 1;
                written = false;
            }
            if closed {
                return;
            }
        }
    }
}

/// Make sled durable, then forget segments up to `sealed` and their done markers. Every record
/// of a sealed segment was inserted into sled before it was appended, so after `Db::sync` the
/// log is no longer needed for them.
fn checkpoint(db: &Db, dir: &Path, sealed: u64) {
    if let Err(e) = db.sync() {
        tracing::error!(error = %e, "checkpoint: storage flush failed; keeping the intake log");
        return;
    }
    let Ok(all) = segments(dir) else { return };
    for n in all.into_iter().filter(|n| *n <= sealed) {
        if let Err(e) = std::fs::remove_file(segment_path(dir, n)) {
            tracing::warn!(error = %e, segment = n, "checkpoint: removing an old intake-log segment failed");
        }
    }
    // A done marker may only go once its segment is gone for good: were the marker's removal
    // durable and the unlink not, an OS crash would bring the record back without its marker.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(error = %e, "checkpoint: syncing the intake-log folder failed; keeping the done markers");
        return;
    }
    clear_done_markers(db, sealed);
}

/// Remove the done markers of segments up to `upto` (their log records are gone).
fn clear_done_markers(db: &Db, upto: u64) {
    let upper = upto.saturating_add(1).to_be_bytes();
    let bound = if upto == u64::MAX { Bound::Unbounded } else { Bound::Excluded(&upper[..]) };
    let keys: Vec<Vec<u8>> = db
        .range(Keyspace::Done, Bound::Unbounded, bound, false)
        .filter_map(|item| item.ok().map(|(k, _)| k.to_vec()))
        .collect();
    if keys.is_empty() {
        return;
    }
    let result = db.write(|tx| {
        for key in &keys {
            tx.remove(Keyspace::Done, key);
        }
        Ok::<_, StorageError>(())
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "checkpoint: removing done markers failed");
    }
}

/// Stage the done marker of `record` (when it came through the log) in `tx`.
pub fn mark_done<R: LogRecord>(tx: &mut WriteTx<'_>, record: &R) {
    if let (Some(segment), Ok(id)) = (record.segment(), uuid::Uuid::parse_str(record.id())) {
        tx.insert(Keyspace::Done, &done_key(segment, id.as_bytes()), Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A record as the repair queue's entries are: an id, a payload, the segment.
    #[derive(Debug, Serialize, Deserialize)]
    struct Note {
        id: String,
        text: String,
        #[serde(skip)]
        segment: Option<u64>,
    }

    impl LogRecord for Note {
        fn id(&self) -> &str {
            &self.id
        }
        fn segment(&self) -> Option<u64> {
            self.segment
        }
        fn set_segment(&mut self, segment: u64) {
            self.segment = Some(segment);
        }
    }

    fn note(text: impl Into<String>) -> Note {
        Note { id: uuid::Uuid::now_v7().to_string(), text: text.into(), segment: None }
    }

    fn uuid_of(note: &Note) -> uuid::Uuid {
        uuid::Uuid::parse_str(&note.id).unwrap()
    }

    /// Where the notes live: the repair queue's keyspace, by id.
    fn put(tx: &mut WriteTx<'_>, note: &Note) {
        tx.insert(Keyspace::RepairQueue, uuid_of(note).as_bytes(), note.text.as_bytes().to_vec());
    }

    /// The storage write of a note: itself, by id.
    fn staged(note: &Note, _json: &[u8]) -> Result<Staged, IntakeLogError> {
        Ok(Staged {
            keyspace: Keyspace::RepairQueue,
            key: uuid_of(note).as_bytes().to_vec(),
            value: note.text.as_bytes().to_vec(),
        })
    }

    fn open(dir: &Path, db: &Db) -> (IntakeLog, usize) {
        IntakeLog::open(&dir.join("wal"), db, Keyspace::RepairQueue, put).unwrap()
    }

    fn live(db: &Db, note: &Note) -> bool {
        db.get(Keyspace::RepairQueue, uuid_of(note).as_bytes()).unwrap().is_some()
    }

    #[actix_rt::test]
    async fn lost_records_come_back_and_done_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        // Write a log by hand: three records, as if acknowledged before a crash that lost sled's state.
        std::fs::create_dir_all(&wal_dir).unwrap();
        let notes: Vec<Note> = (0..3).map(|i| note(format!("n{i}"))).collect();
        let mut bytes = Vec::new();
        for n in &notes {
            encode(n, &mut bytes).unwrap();
        }
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // a torn tail
        std::fs::write(segment_path(&wal_dir, 7), &bytes).unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        // Record 1 was processed (done marker), record 2 is still in sled.
        db.write(|tx| {
            tx.insert(Keyspace::Done, &done_key(7, uuid_of(&notes[1]).as_bytes()), Vec::new());
            put(tx, &notes[2]);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        let (wal, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 1, "only the record sled lost comes back");
        assert!(live(&db, &notes[0]));
        assert!(!live(&db, &notes[1]), "a done record is not processed twice");
        assert_eq!(segments(&wal_dir).unwrap(), vec![8], "old segments are gone, a new one is open");
        assert_eq!(db.scan_prefix(Keyspace::Done, &[]).count(), 0);
        let mut n = note("x");
        wal.append(&mut n, staged).unwrap().await.unwrap();
        assert_eq!(n.segment, Some(8));
        assert!(live(&db, &n), "the flusher put it into storage before it answered");
        let logged = read_segment::<Note>(&wal_dir, 8).unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!((logged[0].text.as_str(), logged[0].segment), ("x", Some(8)));
        wal.close();
    }

    #[actix_rt::test]
    async fn many_appends_share_flushes_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        let mut notes: Vec<Note> = (0..200).map(|i| note(format!("n{i}"))).collect();
        let futures: Vec<_> = notes.iter_mut().map(|n| wal.append(n, staged).unwrap()).collect();
        for f in futures {
            f.await.unwrap();
        }
        assert!(notes.iter().all(|n| live(&db, n)), "in storage once logged");
        // As if sled lost them (a crash before its flush): the log brings them back.
        db.write(|tx| {
            for n in &notes {
                tx.remove(Keyspace::RepairQueue, uuid_of(n).as_bytes());
            }
            Ok::<_, StorageError>(())
        })
        .unwrap();
        db.sync().unwrap();
        let wal_dir = dir.path().join("wal");
        let logged: usize =
            segments(&wal_dir).unwrap().iter().map(|n| read_segment::<Note>(&wal_dir, *n).unwrap().len()).sum();
        assert_eq!(logged, 200);
        wal.close();
        drop((wal, db));
        // On reopen every logged record that storage lost is recovered.
        let db = Db::open(dir.path().join("db")).unwrap();
        let (_, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 200);
        assert!(notes.iter().all(|n| live(&db, n)));
    }

    #[actix_rt::test]
    async fn a_closed_log_refuses_before_anything_is_inserted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        wal.close();
        let mut n = note("x");
        let mut inserted = false;
        let result = wal.append(&mut n, |n: &Note, json: &[u8]| {
            inserted = true;
            staged(n, json)
        });
        assert!(matches!(result, Err(IntakeLogError::Closed)));
        assert!(!inserted, "a refused object must not reach the repair queue");
    }
}
