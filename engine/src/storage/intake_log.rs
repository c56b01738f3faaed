//! The intake log: what makes an acknowledgement durable without waiting for sled's flush.
//!
//! Every accepted object is appended to this log (the log knows its records only as
//! [`LogRecord`]s); the flusher thread appends the pending records and `fdatasync`s once for all
//! of them (group commit); the input answers once its record is on disk. Nothing goes into sled
//! at intake: while its object is processed, a record lives only here, and the commit that ends
//! its processing settles it — a stored or routed object with a *done marker* (one sled key per
//! commit and segment, listing the ids: [`DoneBatch`]), a failed one by its repair-queue entry,
//! written then with the error. Each record is held by an [`Unsettled`] until that commit is
//! applied.
//! About once a second the log moves to a new segment; a checkpointer waits until every record
//! of a sealed segment and of all segments before it is settled, makes sled durable (`Db::sync`)
//! and deletes those segments and their done markers. A record never settled (its object was in
//! flight at shutdown, or its failure could not be written) keeps its segment and every later one
//! until the next start.
//!
//! Recovery (at start): a logged record that is neither in the repair queue under its id nor
//! done is put into the repair queue as unfinished (then processed again), so nothing
//! acknowledged is lost and nothing is processed twice.
//!
//! Record format: `[u32 length][u32 crc32][JSON entry]`, little-endian; a torn or corrupt tail
//! ends a segment.

use super::{Db, Keyspace, ReadView, StorageError, WriteTx};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Note the size of its record (for those that tell it).
    fn set_size(&mut self, _bytes: usize) {}
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

/// Who waits for a record to be on disk.
struct Waiter {
    /// The thread that appended it and the runtime that thread runs: the waiters of one thread
    /// are told from one task on its runtime, so a flush wakes each runtime once, not once per
    /// record (waking a runtime from another thread is a system call).
    on: Option<(std::thread::ThreadId, tokio::runtime::Handle)>,
    tx: tokio::sync::oneshot::Sender<Result<(), IntakeLogError>>,
}

impl Waiter {
    fn new(tx: tokio::sync::oneshot::Sender<Result<(), IntakeLogError>>) -> Self {
        let on = tokio::runtime::Handle::try_current().ok().map(|handle| (std::thread::current().id(), handle));
        Waiter { on, tx }
    }
}

/// Tell `waiters` how their flush ended: those of each appending thread together, on its
/// runtime; those that appended outside a runtime from here. A thread is taken to run one
/// runtime (the intake appends from the task that awaits, on the same runtime).
fn tell(waiters: Vec<Waiter>, result: &Result<(), IntakeLogError>) {
    type Group =
        (std::thread::ThreadId, tokio::runtime::Handle, Vec<tokio::sync::oneshot::Sender<Result<(), IntakeLogError>>>);
    let mut groups: Vec<Group> = Vec::new();
    for Waiter { on, tx } in waiters {
        match on {
            Some((thread, handle)) => match groups.iter_mut().find(|group| group.0 == thread) {
                Some(group) => group.2.push(tx),
                None => groups.push((thread, handle, vec![tx])),
            },
            None => {
                let _ = tx.send(result.clone());
            }
        }
    }
    for (_, handle, senders) in groups {
        let result = result.clone();
        // A runtime that has shut down drops the task, and with it the senders: its waiters,
        // gone with it, would hear "closed".
        handle.spawn(async move {
            for tx in senders {
                let _ = tx.send(result.clone());
            }
        });
    }
}

struct Pending {
    /// The segment records appended now belong to.
    segment: u64,
    bytes: Vec<u8>,
    /// The ids of the pending records (for done markers when they are refused).
    ids: Vec<Option<[u8; 16]>>,
    waiters: Vec<Waiter>,
    closed: bool,
    failed: Option<IntakeLogError>,
    /// The flusher waits for records: an append wakes it (only then: a wake is a system call).
    flusher_waiting: bool,
}

struct LogState {
    dir: PathBuf,
    db: Db,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Records not settled yet, by segment.
    unsettled: Arc<Counts>,
}

/// Unsettled records by segment.
type Counts = Mutex<BTreeMap<u64, usize>>;

/// A logged record whose processing has not ended in a commit yet: its segment is kept (and
/// not checkpointed away) until [`Unsettled::settle`]. Dropped unsettled (the engine stopped
/// first), it keeps the segment until the next start, whose recovery decides.
pub struct Unsettled {
    segment: u64,
    counts: Arc<Counts>,
    settled: AtomicBool,
}

impl Unsettled {
    /// The segment holding the record.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Whether [`Unsettled::settle`] was called.
    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// The commit that ends the record's processing is applied (a done marker, or its entry in
    /// the repair queue): its segment no longer needs it. Once only; later calls do nothing.
    pub fn settle(&self) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.segment) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.segment);
            }
        }
    }
}

impl std::fmt::Debug for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsettled")
            .field("segment", &self.segment)
            .field("settled", &self.settled.load(Ordering::Relaxed))
            .finish()
    }
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
        match super::from_stored::<R>(body) {
            Ok(mut record) => {
                record.set_segment(n);
                out.push(record);
            }
            // Whole (its checksum holds) but not a record this build reads: the ones after it
            // are still read, so one such record does not cost the segment's rest.
            Err(e) => tracing::error!(
                segment = n,
                at,
                error = %e,
                "intake log: skipping a whole record that does not decode"
            ),
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

/// Numbers the batch markers of this process (every marker is cleared at start).
static BATCH_MARKERS: AtomicU64 = AtomicU64::new(0);

/// The done markers of one commit: for each segment, one key `[segment][batch number]` whose
/// value is the ids (16 bytes each) of the records the commit settles, rather than a key each.
#[derive(Debug, Default)]
pub struct DoneBatch {
    ids: BTreeMap<u64, Vec<u8>>,
}

impl DoneBatch {
    /// Note that `record` (logged: it knows its segment) is done.
    pub fn add<R: LogRecord>(&mut self, record: &R) {
        if let (Some(segment), Ok(id)) = (record.segment(), uuid::Uuid::parse_str(record.id())) {
            self.ids.entry(segment).or_default().extend_from_slice(id.as_bytes());
        }
    }

    /// Stage the markers in `tx`.
    pub fn stage(self, tx: &mut WriteTx<'_>) {
        for (segment, ids) in self.ids {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&segment.to_be_bytes());
            key[8..].copy_from_slice(&BATCH_MARKERS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
            tx.insert(Keyspace::Done, &key, ids);
        }
    }
}

/// Every record marked done: single markers (`[segment][id]`, empty value) and batch markers
/// (`[segment][batch number]`, the ids as value).
fn done_set(db: &Db) -> Result<HashSet<(u64, [u8; 16])>, StorageError> {
    let mut done = HashSet::new();
    for item in db.scan_prefix(Keyspace::Done, &[]) {
        let (key, value) = item?;
        let Some(segment) = key.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes) else {
            continue;
        };
        match key.len() {
            24 => {
                if let Ok(id) = <[u8; 16]>::try_from(&key[8..]) {
                    done.insert((segment, id));
                }
            }
            16 => {
                for id in value.chunks_exact(16) {
                    if let Ok(id) = <[u8; 16]>::try_from(id) {
                        done.insert((segment, id));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(done)
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
        let storage_error = |e: StorageError| IntakeLogError::Io {
            path: dir.display().to_string(),
            message: format!("reading {live:?} during recovery: {e}"),
        };
        let done = if old.is_empty() { HashSet::new() } else { done_set(db).map_err(storage_error)? };
        for &n in &old {
            for entry in read_segment::<R>(dir, n)? {
                let Ok(id) = uuid::Uuid::parse_str(entry.id()) else { continue };
                let known = done.contains(&(n, *id.as_bytes()))
                    || db.get(live, id.as_bytes()).map_err(storage_error)?.is_some();
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
                    ids: Vec::new(),
                    waiters: Vec::new(),
                    closed: false,
                    failed: None,
                    flusher_waiting: false,
                }),
                wake: Condvar::new(),
                unsettled: Arc::default(),
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
        let unsettled = wal.shared.unsettled.clone();
        std::thread::Builder::new()
            .name("ferrogrid-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_db, &checkpoint_dir, &unsettled, &sealed_rx))
            .map_err(io_error(dir))?;
        Ok((wal, recovered))
    }

    /// Log `record`: under the log's lock, tag it with the current segment and queue it. The
    /// future resolves once the record is on disk; the [`Unsettled`] holds its segment until the
    /// commit that ends its processing settles it. A log that failed or was closed refuses the
    /// record at once.
    pub fn append<R: LogRecord>(
        &self,
        record: &mut R,
    ) -> Result<
        (impl std::future::Future<Output = Result<(), IntakeLogError>> + Send + 'static, Unsettled),
        IntakeLogError,
    > {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let segment = {
            let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = pending.failed.clone() {
                return Err(e);
            }
            if pending.closed {
                return Err(IntakeLogError::Closed);
            }
            record.set_segment(pending.segment);
            let at = pending.bytes.len();
            if let Err(e) = encode(record, &mut pending.bytes) {
                pending.bytes.truncate(at);
                return Err(e);
            }
            record.set_size(pending.bytes.len() - at);
            pending.ids.push(uuid::Uuid::parse_str(record.id()).ok().map(|u| *u.as_bytes()));
            pending.waiters.push(Waiter::new(tx));
            // Counted under the log's lock: the flusher cannot seal this segment in between.
            *self
                .shared
                .unsettled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(pending.segment)
                .or_default() += 1;
            if pending.flusher_waiting {
                self.shared.wake.notify_one();
            }
            pending.segment
        };
        let unsettled = Unsettled { segment, counts: self.shared.unsettled.clone(), settled: AtomicBool::new(false) };
        Ok((async move { rx.await.unwrap_or(Err(IntakeLogError::Closed)) }, unsettled))
    }

    /// Why the log refuses every record until a restart (a write or its disk wait failed), if it
    /// does.
    pub fn failed(&self) -> Option<IntakeLogError> {
        self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).failed.clone()
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
            let (bytes, ids, waiters, closed, new_file, failed) = {
                let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
                while pending.bytes.is_empty() && !pending.closed && !rotation_due(written, true) {
                    pending.flusher_waiting = true;
                    let (mut guard, _) = self
                        .shared
                        .wake
                        .wait_timeout(pending, CHECKPOINT_EVERY)
                        .unwrap_or_else(PoisonError::into_inner);
                    guard.flusher_waiting = false;
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
                    std::mem::take(&mut pending.ids),
                    std::mem::take(&mut pending.waiters),
                    pending.closed,
                    new_file,
                    pending.failed.clone(),
                )
            };
            if let (false, Some(e)) = (bytes.is_empty(), failed) {
                // Appended before the failure was known: not written after the bytes of a write
                // that failed (recovery would stop at those), refused.
                tell(waiters, &Err(e));
            } else if !bytes.is_empty() {
                let path = segment_path(&dir, segment);
                let flush_started = Instant::now();
                let result = write_durably(&mut file, &bytes, &dir).map_err(io_error(&path));
                if let Err(e) = &result {
                    // Refused from now on, before the retries below take their time.
                    tracing::error!(error = %e, "intake log write failed; new objects are refused until restart");
                    self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).failed = Some(e.clone());
                }
                if result.is_err() {
                    // Refused to their clients: their records (which may have reached the disk
                    // all the same) are marked done, so that recovery does not bring them back.
                    // Tried a few times: a refused object recovered at the next start would be
                    // processed although its client was told no.
                    let mut marked = Ok(());
                    for attempt in 0..REMOVAL_ATTEMPTS {
                        if attempt > 0 {
                            std::thread::sleep(Duration::from_millis(100 << attempt));
                        }
                        marked = self.shared.db.write(|tx| {
                            for id in ids.iter().flatten() {
                                tx.insert(Keyspace::Done, &done_key(segment, id), Vec::new());
                            }
                            Ok::<_, StorageError>(())
                        });
                        if marked.is_ok() {
                            marked = self.shared.db.sync();
                        }
                        if marked.is_ok() {
                            break;
                        }
                    }
                    if let Err(e) = marked {
                        let refused: Vec<String> =
                            ids.iter().flatten().map(|id| uuid::Uuid::from_bytes(*id).to_string()).collect();
                        tracing::error!(error = %e, ?refused, "intake log: marking refused records done failed; their clients were refused, yet, if their records reached the disk, they are processed at the next start");
                    }
                }
                if result.is_ok() {
                    let metrics = crate::metrics::metrics();
                    metrics.intake_log_flushes.inc();
                    metrics.intake_log_flush_seconds.observe(flush_started.elapsed().as_secs_f64());
                }
                tell(waiters, &result);
                written = true;
            }
            if let Some(next) = new_file {
                file = next;
                if let Err(e) = sync_dir(&dir) {
                    // The new segment's name may not survive a power cut: nothing is
                    // acknowledged from it.
                    tracing::error!(error = %e, "intake log: syncing the folder failed; new objects are refused until restart");
                    self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).failed = Some(e);
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

/// Writes `bytes` at the end of `file` and waits for them to be on disk. A test build's failpoint
/// `intake-log-write` (a process's one log), or `intake-log-write:FOLDER` (the log's folder in its
/// name, so that logs side by side in unit tests have their own), fails it, 200 ms later (as a
/// disk gives up).
fn write_durably(file: &mut File, bytes: &[u8], dir: &Path) -> std::io::Result<()> {
    #[cfg(feature = "failpoints")]
    if fail::eval("intake-log-write", |_| ()).is_some()
        || fail::eval(&format!("intake-log-write:{}", dir.display()), |_| ()).is_some()
    {
        std::thread::sleep(Duration::from_millis(200));
        return Err(std::io::Error::other("injected by the failpoint intake-log-write"));
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = dir;
    file.write_all(bytes)?;
    file.sync_data()
}

/// The checkpointer: as segments are sealed, forget each one as soon as every record of it and
/// of the segments before it is settled.
fn checkpoint_loop(db: &Db, dir: &Path, unsettled: &Counts, sealed_rx: &std::sync::mpsc::Receiver<u64>) {
    let mut sealed = 0u64;
    let mut done_upto = 0u64;
    loop {
        match sealed_rx.recv_timeout(CHECKPOINT_EVERY) {
            Ok(n) => sealed = sealed.max(n),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // The first segment with a record in flight, and everything after it, stays.
        let first_unsettled =
            unsettled.lock().unwrap_or_else(PoisonError::into_inner).keys().next().copied().unwrap_or(u64::MAX);
        let upto = sealed.min(first_unsettled.saturating_sub(1));
        if upto > done_upto {
            if let Some(forgotten) = checkpoint(db, dir, upto) {
                done_upto = forgotten;
            }
        }
    }
}

/// Make sled durable, then forget segments up to `upto` and their done markers. Every record of
/// them is settled (done, or in the repair queue) by a commit applied before this `Db::sync`,
/// so the log is no longer needed for them. Returns the segment up to which everything is
/// forgotten: below the first one whose file could not be removed (its markers stay with it).
fn checkpoint(db: &Db, dir: &Path, upto: u64) -> Option<u64> {
    if let Err(e) = db.sync() {
        tracing::error!(error = %e, "checkpoint: storage flush failed; keeping the intake log");
        return None;
    }
    let all = segments(dir).ok()?;
    let mut forgotten = upto;
    for n in all.into_iter().filter(|n| *n <= upto) {
        if let Err(e) = std::fs::remove_file(segment_path(dir, n)) {
            tracing::warn!(error = %e, segment = n, "checkpoint: removing an old intake-log segment failed");
            forgotten = forgotten.min(n.saturating_sub(1));
        }
    }
    // A done marker may only go once its segment is gone for good: were the marker's removal
    // durable and the unlink not, an OS crash would bring the record back without its marker.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(error = %e, "checkpoint: syncing the intake-log folder failed; keeping the done markers");
        return None;
    }
    if forgotten > 0 {
        clear_done_markers(db, forgotten);
    }
    Some(forgotten)
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
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        extra: serde_json::Value,
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
        Note { id: uuid::Uuid::now_v7().to_string(), text: text.into(), extra: serde_json::Value::Null, segment: None }
    }

    fn uuid_of(note: &Note) -> uuid::Uuid {
        uuid::Uuid::parse_str(&note.id).unwrap()
    }

    /// Where the notes live: the repair queue's keyspace, by id.
    fn put(tx: &mut WriteTx<'_>, note: &Note) {
        tx.insert(Keyspace::RepairQueue, uuid_of(note).as_bytes(), note.text.as_bytes().to_vec());
    }

    fn open(dir: &Path, db: &Db) -> (IntakeLog, usize) {
        IntakeLog::open(&dir.join("wal"), db, Keyspace::RepairQueue, put).unwrap()
    }

    fn live(db: &Db, note: &Note) -> bool {
        db.get(Keyspace::RepairQueue, uuid_of(note).as_bytes()).unwrap().is_some()
    }

    /// Commit the done markers of `notes` as the storage actor does (one key per segment) and
    /// settle them.
    fn finish(db: &Db, notes: &[(&Note, &Unsettled)]) {
        db.write(|tx| {
            let mut done = DoneBatch::default();
            for (note, _) in notes {
                done.add(*note);
            }
            done.stage(tx);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        for (_, unsettled) in notes {
            unsettled.settle();
        }
    }

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let started = Instant::now();
        while !ok() {
            assert!(started.elapsed() < Duration::from_secs(20), "waited 20 s for: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn deep_and_undecodable_records_do_not_cost_the_rest_of_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        std::fs::create_dir_all(&wal_dir).unwrap();
        // Deeper than serde_json's own limit (128), as deep as a script may make a value.
        let mut deep = note("deep");
        for _ in 0..ferrogrid_sandbox::MAX_VALUE_DEPTH {
            deep.extra = serde_json::json!({ "a": deep.extra });
        }
        let after = note("after");
        let mut bytes = Vec::new();
        encode(&deep, &mut bytes).unwrap();
        // A whole record (its checksum holds) that is no `Note`.
        let body = br#"{"neither":"id nor text"}"#;
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        bytes.extend_from_slice(body);
        encode(&after, &mut bytes).unwrap();
        std::fs::write(segment_path(&wal_dir, 3), &bytes).unwrap();
        let read: Vec<Note> = read_segment(&wal_dir, 3).unwrap();
        let ids: Vec<&str> = read.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, [deep.id.as_str(), after.id.as_str()]);
        assert!(read[0].extra == deep.extra, "the deep record reads back whole");
    }

    #[actix_rt::test]
    async fn lost_records_come_back_and_done_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        // Write a log by hand: four records, as if acknowledged before a crash.
        std::fs::create_dir_all(&wal_dir).unwrap();
        let notes: Vec<Note> = (0..4).map(|i| note(format!("n{i}"))).collect();
        let mut bytes = Vec::new();
        for n in &notes {
            encode(n, &mut bytes).unwrap();
        }
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // a torn tail
        std::fs::write(segment_path(&wal_dir, 7), &bytes).unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        // Record 1 was deleted by an operator (a single marker), record 2 failed (it is in the
        // repair queue), record 3 was stored (a batch marker).
        db.write(|tx| {
            tx.insert(Keyspace::Done, &done_key(7, uuid_of(&notes[1]).as_bytes()), Vec::new());
            put(tx, &notes[2]);
            let mut done = DoneBatch::default();
            let mut stored = Note { segment: Some(7), ..note("n3") };
            stored.id.clone_from(&notes[3].id);
            done.add(&stored);
            done.stage(tx);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        let (wal, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 1, "only the record nothing settled comes back");
        assert!(live(&db, &notes[0]));
        assert!(!live(&db, &notes[1]), "a done record is not processed twice");
        assert!(!live(&db, &notes[3]), "a record done in a batch is not processed twice");
        assert_eq!(segments(&wal_dir).unwrap(), vec![8], "old segments are gone, a new one is open");
        assert_eq!(db.scan_prefix(Keyspace::Done, &[]).count(), 0);
        let mut n = note("x");
        let (durable, unsettled) = wal.append(&mut n).unwrap();
        durable.await.unwrap();
        assert_eq!((n.segment, unsettled.segment()), (Some(8), 8));
        assert!(!live(&db, &n), "nothing goes into storage at intake");
        let logged = read_segment::<Note>(&wal_dir, 8).unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!((logged[0].text.as_str(), logged[0].segment), ("x", Some(8)));
        wal.close();
    }

    #[actix_rt::test]
    async fn many_appends_share_flushes_and_unsettled_ones_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        let flushes = crate::metrics::metrics().intake_log_flushes.get();
        let mut notes: Vec<Note> = (0..200).map(|i| note(format!("n{i}"))).collect();
        let mut held = Vec::new();
        let mut futures = Vec::new();
        for n in notes.iter_mut() {
            let (durable, unsettled) = wal.append(n).unwrap();
            futures.push(durable);
            held.push(unsettled);
        }
        for f in futures {
            f.await.unwrap();
        }
        assert!(crate::metrics::metrics().intake_log_flushes.get() - flushes < 200, "records share flushes");
        // The first half is stored (done markers), the rest was in flight at the crash.
        let half: Vec<(&Note, &Unsettled)> = notes.iter().zip(&held).take(100).collect();
        finish(&db, &half);
        db.sync().unwrap();
        wal.close();
        drop((wal, db));
        let db = Db::open(dir.path().join("db")).unwrap();
        let (_, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 100, "every unsettled record comes back, no done one");
        assert!(notes[100..].iter().all(|n| live(&db, n)));
        assert!(notes[..100].iter().all(|n| !live(&db, n)));
    }

    #[test]
    fn waiters_on_other_runtimes_and_outside_any_are_each_told() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        // Two threads with a runtime each (told from a task on their own runtime) and one
        // without (told by the flusher itself).
        let on_runtime: Vec<_> = (0..2)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    rt.block_on(async {
                        let mut waiting = Vec::new();
                        for i in 0..50 {
                            let (durable, _) = wal.append(&mut note(format!("t{t}-{i}"))).unwrap();
                            waiting.push(durable);
                        }
                        for durable in waiting {
                            durable.await.unwrap();
                        }
                    });
                })
            })
            .collect();
        let (durable, _) = wal.append(&mut note("outside")).unwrap();
        let outside = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(durable)
        });
        for thread in on_runtime {
            thread.join().unwrap();
        }
        outside.join().unwrap().unwrap();
        wal.close();
    }

    #[actix_rt::test]
    async fn a_segment_stays_until_its_records_are_settled() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        let mut slow = note("slow");
        let (durable, slow_unsettled) = wal.append(&mut slow).unwrap();
        durable.await.unwrap();
        let mut quick = note("quick");
        let (durable, quick_unsettled) = wal.append(&mut quick).unwrap();
        durable.await.unwrap();
        finish(&db, &[(&quick, &quick_unsettled)]);
        let first = slow_unsettled.segment();
        // Later records go to later segments (rotation about once a second).
        let mut later = note("later");
        wait_until("a rotation", || segments(&wal_dir).unwrap().last() > Some(&first));
        let (durable, later_unsettled) = wal.append(&mut later).unwrap();
        durable.await.unwrap();
        finish(&db, &[(&later, &later_unsettled)]);
        wait_until("a checkpoint after the rotation", || segments(&wal_dir).unwrap().len() > 1);
        std::thread::sleep(CHECKPOINT_EVERY * 3);
        assert!(segments(&wal_dir).unwrap().contains(&first), "a segment with a record in flight stays");
        assert!(db.scan_prefix(Keyspace::Done, &[]).count() >= 2, "its done markers stay with it");
        // Settled (it failed: its entry is in the repair queue now), the segment goes.
        db.write(|tx| {
            put(tx, &slow);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        slow_unsettled.settle();
        wait_until("the checkpoint of the first segment", || !segments(&wal_dir).unwrap().contains(&first));
        wal.close();
        drop((wal, db));
        let db = Db::open(dir.path().join("db")).unwrap();
        let (_, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 0, "nothing settled comes back");
        assert!(live(&db, &slow));
        assert!(!live(&db, &quick) && !live(&db, &later));
    }

    #[actix_rt::test]
    async fn a_closed_log_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        wal.close();
        let mut n = note("x");
        assert!(matches!(wal.append(&mut n), Err(IntakeLogError::Closed)));
        assert!(!live(&db, &n), "a refused object must not reach the repair queue");
    }

    /// A write fails (the failpoint, for this folder only: tests run side by side); what was
    /// appended while it failed is refused too, not written after its bytes and acknowledged, and
    /// nothing refused comes back at the next start.
    #[cfg(feature = "failpoints")]
    #[actix_rt::test]
    async fn a_failed_write_refuses_what_was_appended_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (wal, _) = open(dir.path(), &db);
        let (first, _) = wal.append(&mut note("first")).unwrap();
        first.await.unwrap();
        let failpoint = format!("intake-log-write:{}", dir.path().join("wal").display());
        fail::cfg(&failpoint, "1*return").unwrap();
        let (failing, _) = wal.append(&mut note("failing")).unwrap();
        // The flusher is in the failed write now (it takes 200 ms), or about to be.
        std::thread::sleep(Duration::from_millis(50));
        let meanwhile = wal.append(&mut note("meanwhile"));
        assert!(failing.await.is_err(), "the failed write's record is refused");
        match meanwhile {
            Ok((durable, _)) => assert!(durable.await.is_err(), "appended during the failure: refused"),
            Err(IntakeLogError::Io { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(matches!(wal.append(&mut note("after")), Err(IntakeLogError::Io { .. })));
        fail::remove(&failpoint);
        wal.close();
        drop(wal);
        let (_, recovered) = open(dir.path(), &db);
        assert_eq!(recovered, 1, "only the acknowledged record comes back");
    }
}
