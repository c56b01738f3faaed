//! The object journal (TDG's logger role, keyed by domain object): every object's path —
//! received (input, size), the pipeline steps with their time, the routing key, how processing
//! ended (stored as a version, sent to an output, or kept in the repair queue with the error),
//! each attempt of its output-processor deliveries, and what operators did to it.
//!
//! Events are queued and written by a thread of their own in pages: each write is one key of
//! keyspace `Journal` (`[time ns][sequence]`) holding up to [`PAGE`] events as JSON lines, each
//! with its object's `id`, compressed with zstd (the lines shrink five- to tenfold, and so do
//! the disk and the store's cache they take). One store write per page keeps the cost to the
//! ingest path at a channel send and a few hundred bytes of JSON; reading pays instead: a
//! timeline reads the pages written since the object was received (ids are time-ordered UUIDs),
//! a search the newest pages back, each page looked through as text before any line is parsed.
//! A full queue drops events (counted), never an object. Pages are durable with the store's next
//! flush: a crash may lose the last ones, not an object.
//!
//! Retention follows TDG's `logger` section: at most `max_msg_in_log` events (and
//! `max_log_size` bytes); past that, with `rotate_log`, the oldest pages go, `delete_by_n_msg`
//! events at least at a time, or else new events are not recorded.

use crate::processor::{ParkedItem, Queue};
use crate::storage::{Db, Keyspace, ReadView, StorageError};
use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Events waiting for the writer at most; more are dropped (and counted).
const QUEUE: u64 = 50_000;
/// Events in one page at most.
const PAGE: usize = 512;
/// A page is written at the latest this long after its first event.
const PAGE_WAIT: Duration = Duration::from_millis(200);
/// A search or a timeline reads this many bytes of pages (unpacked) at most, in all: about
/// 3,000,000 events of the common kinds (a stored object's is 250-350 bytes).
const SCAN_BYTES: usize = 1 << 30;
/// The longest error text an event keeps.
const ERROR_MAX: usize = 2048;

/// `logger` (TDG 2.16.1.8): how much of the journal is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LoggerConfig {
    /// When full, remove the oldest pages of events (default true); `false`: record nothing new.
    #[serde(default = "default_true")]
    pub rotate_log: bool,
    /// Events kept at most (default 1,000,000); `0` turns the journal off.
    #[serde(default = "default_max_msg")]
    pub max_msg_in_log: u64,
    /// Bytes of pages kept at most, as stored (compressed; default: no limit but the count).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_log_size: Option<u64>,
    /// Events removed at once when full (default: a tenth of `max_msg_in_log`; whole pages).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub delete_by_n_msg: Option<u64>,
}

fn default_true() -> bool {
    true
}

fn default_max_msg() -> u64 {
    1_000_000
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig { rotate_log: true, max_msg_in_log: default_max_msg(), max_log_size: None, delete_by_n_msg: None }
    }
}

/// The limits one event was recorded under (the configuration's at that time).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max: u64,
    max_bytes: Option<u64>,
    rotate: bool,
    delete_by: u64,
}

impl Limits {
    fn of(c: &LoggerConfig) -> Limits {
        Limits {
            max: c.max_msg_in_log,
            max_bytes: c.max_log_size,
            rotate: c.rotate_log,
            delete_by: c.delete_by_n_msg.unwrap_or(c.max_msg_in_log / 10).max(1),
        }
    }
}

/// An event on its way to the writer, which packs lines into pages.
struct Note {
    /// The event as its JSON line (without the newline), made on the recording thread.
    line: Vec<u8>,
    limits: Limits,
}

/// An event as recorded: the object's id first (`line_id` reads it at the line's start, where no
/// field of the detail can be mistaken for it), what happened (`detail`'s fields, which must not
/// be `id`, `at` or `kind`), the time and the kind.
#[derive(Serialize)]
struct Line<'a, T: Serialize + ?Sized> {
    id: &'a str,
    #[serde(flatten)]
    detail: &'a T,
    at: String,
    kind: &'a str,
}

/// `error` as an event keeps it: at most `ERROR_MAX` bytes, cut at a character and marked `…`.
pub fn clip(error: &str) -> std::borrow::Cow<'_, str> {
    if error.len() <= ERROR_MAX {
        return std::borrow::Cow::Borrowed(error);
    }
    let mut end = ERROR_MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &error[..end]))
}

/// The journal of a data directory.
pub struct Journal {
    db: Db,
    queue: Sender<Note>,
    queued: AtomicU64,
    done: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal { .. }")
    }
}

/// A search of the journal: objects matching every filter given, newest first.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct JournalQuery {
    /// One object's id.
    pub id: Option<String>,
    /// Objects that ended with this routing key.
    pub routing_key: Option<String>,
    /// Objects stored as this type.
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// ... with this primary key (JSON: `1`, `"a"`, `[1, 2]`; text that is not JSON is a string).
    pub key: Option<String>,
    /// Objects received at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Objects received before this time.
    pub to: Option<DateTime<Utc>>,
    /// How many objects at most (default 50, at most 500).
    pub first: Option<usize>,
}

impl JournalQuery {
    /// How many objects the search answers at most: `first`, 50 by default, within 1..=500.
    pub fn limit(&self) -> usize {
        self.first.unwrap_or(50).clamp(1, 500)
    }
}

/// The time in a v7 id (milliseconds since the epoch), `None` for another kind of id.
fn id_millis(id: &str) -> Option<i64> {
    let u = uuid::Uuid::parse_str(id).ok()?;
    let (secs, nanos) = u.get_timestamp()?.to_unix();
    Some(i64::try_from(secs).ok()?.saturating_mul(1000) + i64::from(nanos / 1_000_000))
}

/// The first byte of a compressed page: then its event count (u32, big-endian), its length
/// unpacked (u32) and a zstd frame of the JSON lines. (A page that starts with `{` is the lines
/// as they are, as the first journal wrote them.)
const PACKED: u8 = 1;
/// The most a page unpacks to: 512 events of a few KB each, with room to spare.
const UNPACKED_MAX: usize = 64 << 20;
/// zstd's level for pages: its fastest; JSON lines of events still shrink five- to tenfold.
const PACK_LEVEL: i32 = 1;

/// A page of `events` JSON lines as stored.
fn pack(lines: &[u8], events: u64) -> Vec<u8> {
    let (Ok(count), Ok(len)) = (u32::try_from(events), u32::try_from(lines.len())) else { return lines.to_vec() };
    match zstd::block::compress(lines, PACK_LEVEL) {
        Ok(frame) => [[PACKED].as_slice(), &count.to_be_bytes(), &len.to_be_bytes(), frame.as_slice()].concat(),
        Err(_) => lines.to_vec(),
    }
}

/// A stored page's JSON lines (`None`: not a page this journal can read).
fn unpack(stored: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    match stored.first() {
        Some(&PACKED) if stored.len() >= 9 => {
            let len = u32::from_be_bytes(stored[5..9].try_into().ok()?) as usize;
            // A damaged header must not ask for more memory than a page can take.
            if len > UNPACKED_MAX {
                return None;
            }
            zstd::block::decompress(&stored[9..], len).ok().map(std::borrow::Cow::Owned)
        }
        Some(b'{') => Some(std::borrow::Cow::Borrowed(stored)),
        _ => None,
    }
}

/// How many events a stored page holds, without unpacking it.
fn events_in(stored: &[u8]) -> u64 {
    match stored.first() {
        Some(&PACKED) if stored.len() >= 9 => {
            stored[1..5].try_into().map_or(0, |b: [u8; 4]| u64::from(u32::from_be_bytes(b)))
        }
        _ => stored.iter().filter(|b| **b == b'\n').count() as u64,
    }
}

/// The key of a page first written at `nanos`.
fn page_key(nanos: u64, sequence: u32) -> Vec<u8> {
    [nanos.to_be_bytes().as_slice(), &sequence.to_be_bytes()].concat()
}

/// The first key of the pages written at or after `millis`.
fn page_key_at(millis: i64) -> Vec<u8> {
    page_key(u64::try_from(millis.max(0)).unwrap_or(0).saturating_mul(1_000_000), 0)
}

/// JSON with every map's keys sorted: one text per value, whatever order it was written in.
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k]))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The object id of an event line (the text after its `"id":"`), without parsing it.
fn line_id(line: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = b"{\"id\":\"";
    const MARK: &[u8] = b"\"id\":\"";
    // Lines begin with the id since 2026-12-05; pages written before have it after the detail.
    let at = if line.starts_with(HEAD) {
        HEAD.len()
    } else {
        line.windows(MARK.len()).position(|w| w == MARK)? + MARK.len()
    };
    let rest = &line[at..];
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(&rest[..end])
}

/// The events of a page that hold `needle` (all of them for an empty one).
fn lines_with<'a>(page: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = Map<String, Value>> + 'a {
    let wanted = needle.is_empty() || page.windows(needle.len()).any(|w| w == needle);
    page.split(|b| *b == b'\n')
        .filter(move |line| {
            wanted && !line.is_empty() && (needle.is_empty() || line.windows(needle.len()).any(|w| w == needle))
        })
        .filter_map(|line| match crate::storage::from_stored::<Value>(line) {
            Ok(Value::Object(event)) => Some(event),
            _ => None,
        })
}

impl Journal {
    /// The journal over `db`, with its writer thread.
    pub fn open(db: Db) -> std::io::Result<Journal> {
        let (queue, rx) = crossbeam_channel::unbounded();
        let done = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (writer_db, writer_done, writer_dropped) = (db.clone(), done.clone(), dropped.clone());
        std::thread::Builder::new()
            .name("ferrogrid-journal".into())
            .spawn(move || Writer::new(writer_db, writer_dropped).run(rx, writer_done))?;
        Ok(Journal { db, queue, queued: AtomicU64::new(0), done, dropped })
    }

    /// Record that `kind` happened to the object `id` now, with `detail` (a search finds it by
    /// its `routing_key`, `type` and `key`; an `error` is clipped). Never fails nor waits.
    pub fn note(&self, settings: &LoggerConfig, id: &str, kind: &str, mut detail: Map<String, Value>) {
        if settings.max_msg_in_log == 0 {
            return;
        }
        if let Some(Value::String(error)) = detail.get_mut("error") {
            if let std::borrow::Cow::Owned(clipped) = clip(error) {
                *error = clipped;
            }
        }
        for own in ["id", "at", "kind"] {
            detail.shift_remove(own);
        }
        self.record(settings, id, kind, &detail);
    }

    /// [`Journal::note`] with the detail as any serialisable map-like value (a struct whose
    /// fields are the event's): no `Map` built on the hot path. The caller clips an `error`
    /// with [`clip`]; the detail has no `id`, `at` or `kind` of its own.
    pub fn record<T: Serialize + ?Sized>(&self, settings: &LoggerConfig, id: &str, kind: &str, detail: &T) {
        if settings.max_msg_in_log == 0 {
            return;
        }
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let line = match serde_json::to_vec(&Line { detail, id, at, kind }) {
            Ok(line) => line,
            Err(e) => {
                // A detail that is not a map (a programming error): dropped and counted.
                tracing::warn!(error = %e, kind, "a journal event could not be written as JSON");
                self.dropped.fetch_add(1, Ordering::Relaxed);
                crate::metrics::metrics().journal_dropped.inc();
                return;
            }
        };
        let queued = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let waiting = queued.saturating_sub(self.done.load(Ordering::Acquire));
        let note = Note { line, limits: Limits::of(settings) };
        if waiting > QUEUE || self.queue.send(note).is_err() {
            self.done.fetch_add(1, Ordering::Release);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            crate::metrics::metrics().journal_dropped.inc();
            if dropped % 10_000 == 0 {
                tracing::warn!(dropped = dropped + 1, "the object journal's queue is full; events are dropped");
            }
        }
    }

    /// Wait (up to 10 s) until every event recorded before this call is written.
    pub fn written(&self) {
        self.written_within(Duration::from_secs(10));
    }

    /// [`Journal::written`], waiting at most `wait`.
    pub fn written_within(&self, wait: Duration) {
        let target = self.queued.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + wait;
        while self.done.load(Ordering::Acquire) < target && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Events dropped (the queue full, or the journal full without `rotate_log`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The events of the objects `ids` in pages from `since` (ms) on, oldest first, by id: each
    /// page read once, each line's id looked up before the line is parsed, until `budget`
    /// unpacked bytes are read — from `since` on (`newest_first` false: one object's timeline
    /// starts there), or from the newest page back (a search's objects: a budget spent leaves
    /// out the oldest events, not the newest objects).
    fn events_of(
        &self,
        ids: &[String],
        since: i64,
        budget: usize,
        newest_first: bool,
    ) -> Result<HashMap<String, Vec<Value>>, StorageError> {
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        let wanted: HashSet<&[u8]> = ids.iter().map(|id| id.as_bytes()).collect();
        // A page written a little before the object's id was made holds none of it; a clock step
        // back of a few seconds is allowed for.
        let lower = page_key_at(since - 5_000);
        let mut read = 0usize;
        for item in self.db.range(Keyspace::Journal, Bound::Included(&lower), Bound::Unbounded, newest_first) {
            let (_, stored) = item?;
            let Some(page) = unpack(&stored) else { continue };
            read += page.len();
            if read > budget {
                break;
            }
            let lines = page.split(|b| *b == b'\n');
            let lines: Box<dyn Iterator<Item = &[u8]>> =
                if newest_first { Box::new(lines.rev()) } else { Box::new(lines) };
            for line in lines {
                let Some(id) = line_id(line).filter(|id| wanted.contains(id)) else { continue };
                if let Ok(event @ Value::Object(_)) = crate::storage::from_stored::<Value>(line) {
                    out.entry(String::from_utf8_lossy(id).into_owned()).or_default().push(event);
                }
            }
        }
        if newest_first {
            for events in out.values_mut() {
                events.reverse();
            }
        }
        Ok(out)
    }

    /// The events of the object `id`, oldest first (none for an id it does not know).
    pub fn timeline(&self, id: &str) -> Result<Vec<Value>, StorageError> {
        self.written();
        let Some(since) = id_millis(id) else { return Ok(Vec::new()) };
        let id = id.to_string();
        Ok(self.events_of(std::slice::from_ref(&id), since, SCAN_BYTES, false)?.remove(&id).unwrap_or_default())
    }

    /// The objects matching `q`, newest first: `[{id, events}]`.
    pub fn search(&self, q: &JournalQuery) -> Result<Vec<Value>, StorageError> {
        self.written();
        let first = q.limit();
        let from = q.from.map(|t| t.timestamp_millis());
        let to = q.to.map(|t| t.timestamp_millis());
        let in_time = |id: &str| {
            let ms = id_millis(id);
            from.is_none_or(|f| ms.is_some_and(|m| m >= f)) && to.is_none_or(|t| ms.is_some_and(|m| m < t))
        };
        let key = q.key.as_ref().map(|k| serde_json::from_str::<Value>(k).unwrap_or_else(|_| Value::String(k.clone())));
        let matches = |e: &Map<String, Value>| {
            q.routing_key.as_deref().is_none_or(|rk| e.get("routing_key").and_then(Value::as_str) == Some(rk))
                && q.type_name.as_deref().is_none_or(|t| e.get("type").and_then(Value::as_str) == Some(t))
                && key.as_ref().is_none_or(|k| e.get("key").is_some_and(|v| canonical(v) == canonical(k)))
        };
        // A needle that every matching line holds, to skip pages and lines without parsing.
        let needle = match (&q.routing_key, &q.type_name) {
            (Some(rk), _) => format!("\"routing_key\":{}", Value::String(rk.clone())),
            (None, Some(t)) => format!("\"type\":{}", Value::String(t.clone())),
            (None, None) => String::new(),
        };
        let mut ids: Vec<String> = Vec::new();
        let mut read = 0usize;
        if let Some(id) = &q.id {
            // Only a time-ordered id says where its pages start.
            if id_millis(id).is_some() && in_time(id) {
                ids.push(id.clone());
            }
        } else {
            // Newest pages first; a page later than `to` can still hold older objects' events.
            let mut seen = HashSet::new();
            // A page is written after every event it holds, so the pages written before `from`
            // (less a clock step back of a few seconds) hold none received since. (Not the
            // page's last event's time: an event is stamped before it is queued, so a page can
            // end with an event older than one in an earlier page.)
            let lower = from.map(|f| page_key_at(f - 5_000));
            let lower = lower.as_deref().map_or(Bound::Unbounded, Bound::Included);
            'pages: for item in self.db.range(Keyspace::Journal, lower, Bound::Unbounded, true) {
                let (_, stored) = item?;
                let Some(page) = unpack(&stored) else { continue };
                read += page.len();
                // Half the budget for finding objects, the rest for reading their events.
                if read > SCAN_BYTES / 2 {
                    break;
                }
                let mut found: Vec<(String, i64)> = Vec::new();
                for event in lines_with(&page, needle.as_bytes()) {
                    let Some(id) = event.get("id").and_then(Value::as_str) else { continue };
                    if !seen.contains(id) && in_time(id) && matches(&event) {
                        found.push((id.to_string(), id_millis(id).unwrap_or(0)));
                    }
                }
                // Within a page, newest object first.
                found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
                for (id, _) in found {
                    if seen.insert(id.clone()) {
                        ids.push(id);
                        if ids.len() >= first {
                            break 'pages;
                        }
                    }
                }
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let since = ids.iter().filter_map(|id| id_millis(id)).min().unwrap_or(0);
        let mut events = self.events_of(&ids, since, SCAN_BYTES.saturating_sub(read), true)?;
        // An object named by id is found only when one of its events has every other filter too.
        let found = |events: &Vec<Value>| events.iter().any(|e| e.as_object().is_some_and(&matches));
        Ok(ids
            .into_iter()
            .filter_map(|id| events.remove(&id).filter(|e| found(e)).map(|e| json!({"id": id, "events": e})))
            .collect())
    }
}

/// Record an operator's `action` on the object `id` (on its delivery `delivery`, if any; why
/// it was refused, if it was).
pub fn operator(
    rt: &crate::runtime::Runtime,
    id: &str,
    action: &str,
    by: &str,
    delivery: Option<&str>,
    error: Option<&str>,
) {
    let mut event = Map::new();
    event.insert("action".into(), json!(action));
    event.insert("by".into(), json!(by));
    if let Some(delivery) = delivery {
        event.insert("delivery".into(), json!(delivery));
    }
    if let Some(error) = error {
        event.insert("error".into(), json!(error));
    }
    rt.journal.note(&rt.config.logger, id, "operator", event);
}

/// What an operator's action on a parked item is recorded against: the object, and for a
/// delivery the delivery and its output.
pub struct Target {
    object: String,
    delivery: Option<(String, String)>,
}

impl Target {
    /// The target of an action on the item `id` of `queue` (`None`: there is no such item, or it
    /// belongs to no object, and nothing is recorded).
    pub async fn of(repairs: &crate::processor::Repairs, queue: Queue, id: &str) -> Option<Target> {
        match repairs.get(queue, id).await.ok()?? {
            ParkedItem::Entry(_) => Some(Target { object: id.to_string(), delivery: None }),
            ParkedItem::Delivery(d) => Some(Target { object: d.source?, delivery: Some((d.id, d.output)) }),
            ParkedItem::Job(_) => None,
        }
    }

    /// Record that `by` did `action` (refused with `error`, if it was).
    pub fn record(&self, rt: &crate::runtime::Runtime, action: &str, by: &str, error: Option<&str>) {
        match &self.delivery {
            Some((delivery, output)) => {
                operator(rt, &self.object, &format!("{action} to {output}"), by, Some(delivery), error)
            }
            None => operator(rt, &self.object, action, by, None, error),
        }
    }
}

/// The writer thread's state: how much the journal holds.
struct Writer {
    db: Db,
    dropped: Arc<AtomicU64>,
    events: u64,
    bytes: u64,
    sequence: u32,
}

impl Writer {
    fn new(db: Db, dropped: Arc<AtomicU64>) -> Writer {
        Writer { db, dropped, events: 0, bytes: 0, sequence: 0 }
    }

    fn run(mut self, rx: Receiver<Note>, done: Arc<AtomicU64>) {
        // What the journal holds from before this start.
        for item in self.db.scan_prefix(Keyspace::Journal, &[]) {
            match item {
                Ok((_, v)) => {
                    self.events += events_in(&v);
                    self.bytes += v.len() as u64;
                }
                Err(e) => tracing::error!(error = %e, "counting the object journal failed"),
            }
        }
        while let Ok(first) = rx.recv() {
            // A page: what comes within PAGE_WAIT, up to PAGE events — and a tenth of the journal
            // at most, so that rotating never takes all of it.
            let limit = PAGE.min(usize::try_from(first.limits.max / 10).unwrap_or(PAGE).max(1));
            let deadline = std::time::Instant::now() + PAGE_WAIT;
            let mut batch = vec![first];
            while batch.len() < limit {
                match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                    Ok(note) => batch.push(note),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            let n = batch.len() as u64;
            // A panic fails this page only: the writer goes on.
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(batch)));
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "writing journal events failed"),
                Err(_) => tracing::error!("writing journal events panicked"),
            }
            done.fetch_add(n, Ordering::Release);
        }
    }

    fn full(&self, limits: &Limits, adding: u64, adding_bytes: u64) -> bool {
        self.events + adding > limits.max || limits.max_bytes.is_some_and(|m| self.bytes + adding_bytes > m)
    }

    fn write(&mut self, mut batch: Vec<Note>) -> Result<(), StorageError> {
        let Some(limits) = batch.last().map(|n| n.limits) else { return Ok(()) };
        if limits.max == 0 {
            return Ok(());
        }
        let mut page = Vec::with_capacity(batch.len() * 320);
        let mut ends = Vec::with_capacity(batch.len());
        for note in &batch {
            page.extend_from_slice(&note.line);
            page.push(b'\n');
            ends.push(page.len());
        }
        let events = ends.len() as u64;
        let mut stored = pack(&page, events);
        if let Some(m) = limits.max_bytes {
            // A page holds a tenth of `max_log_size` at most too, so that rotating never takes
            // all of it; an event that alone is over that is not recorded (and counted).
            if stored.len() as u64 > (m / 10).max(1) && batch.len() > 1 {
                let second = batch.split_off(batch.len() / 2);
                // Both halves are tried: a failure of one loses only its own events.
                let first = self.write(batch);
                return first.and(self.write(second));
            }
            if stored.len() as u64 > (m / 10).max(1) {
                self.dropped.fetch_add(events, Ordering::Relaxed);
                crate::metrics::metrics().journal_dropped.inc_by(events);
                return Ok(());
            }
        }
        let mut kept = events;
        if self.full(&limits, events, stored.len() as u64) {
            if limits.rotate {
                self.rotate(&limits, events, stored.len() as u64)?;
            } else {
                // Full and not rotated: what does not fit (in count, or in bytes as stored) is
                // not recorded.
                let room = limits.max.saturating_sub(self.events);
                let byte_room = limits.max_bytes.map_or(u64::MAX, |m| m.saturating_sub(self.bytes));
                kept = events.min(room);
                loop {
                    stored = if kept == 0 { Vec::new() } else { pack(&page[..ends[kept as usize - 1]], kept) };
                    if kept == 0 || stored.len() as u64 <= byte_room {
                        break;
                    }
                    kept -= (kept / 8).max(1);
                }
                let lost = events - kept;
                if lost > 0 {
                    self.dropped.fetch_add(lost, Ordering::Relaxed);
                    crate::metrics::metrics().journal_dropped.inc_by(lost);
                }
            }
        }
        batch.clear();
        if stored.is_empty() {
            return Ok(());
        }
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0).max(0) as u64;
        self.sequence = self.sequence.wrapping_add(1);
        let bytes = stored.len() as u64;
        self.db.put_each(vec![(Keyspace::Journal, page_key(nanos, self.sequence), Some(stored))])?;
        self.events += kept;
        self.bytes += bytes;
        crate::metrics::metrics().journal_events.set(i64::try_from(self.events).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Remove the oldest pages: `delete_by` events at least, and enough for `adding` more.
    fn rotate(&mut self, limits: &Limits, adding: u64, adding_bytes: u64) -> Result<(), StorageError> {
        let (mut events, mut bytes) = (0u64, 0u64);
        let mut doomed = Vec::new();
        for item in self.db.scan_prefix(Keyspace::Journal, &[]) {
            let enough = events >= limits.delete_by
                && self.events.saturating_sub(events) + adding <= limits.max
                && limits.max_bytes.is_none_or(|m| self.bytes.saturating_sub(bytes) + adding_bytes <= m);
            if enough {
                break;
            }
            let (k, v) = item?;
            events += events_in(&v);
            bytes += v.len() as u64;
            doomed.push((Keyspace::Journal, k.to_vec(), None));
        }
        self.db.put_each(doomed)?;
        self.events = self.events.saturating_sub(events);
        self.bytes = self.bytes.saturating_sub(bytes);
        tracing::debug!(events, bytes, "rotated the object journal");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::temp_db;

    fn detail(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn pages_are_stored_compressed_and_uncompressed_pages_still_read() {
        let lines: Vec<u8> = (0..100)
            .flat_map(|i| format!("{{\"id\":\"{i}\",\"kind\":\"processed\",\"status\":\"stored\"}}\n").into_bytes())
            .collect();
        let stored = pack(&lines, 100);
        assert_eq!(stored[0], PACKED);
        assert!(stored.len() * 4 < lines.len(), "{} of {}", stored.len(), lines.len());
        assert_eq!(events_in(&stored), 100);
        assert_eq!(unpack(&stored).as_deref(), Some(lines.as_slice()));
        // A page as the first journal wrote it.
        assert_eq!(events_in(&lines), 100);
        assert_eq!(unpack(&lines).as_deref(), Some(lines.as_slice()));
        // Damaged: not read (and no panic).
        assert!(unpack(&stored[..stored.len() - 3]).is_none());
        assert!(unpack(&[PACKED, 0, 0]).is_none());
        let mut huge = stored.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(unpack(&huge).is_none(), "a header asking for 4 GiB is not believed");
        assert!(unpack(b"").is_none());

        let (_dir, db) = temp_db();
        let journal = Journal::open(db.clone()).unwrap();
        let id = uuid::Uuid::now_v7().to_string();
        journal.note(&LoggerConfig::default(), &id, "received", detail(json!({"input": "http"})));
        journal.written();
        let pages: Vec<_> = db.scan_prefix(Keyspace::Journal, &[]).map(|item| item.unwrap().1).collect();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0][0], PACKED);
        assert_eq!(journal.timeline(&id).unwrap().len(), 1);
    }

    /// An event's id is the one at the start of its line, whatever its detail holds (a failed
    /// object's key may be `{"id": ...}`); a detail's own `id`, `at` or `kind` is not kept.
    /// Lines written before the id came first are still found by it.
    #[test]
    fn an_event_is_found_by_its_own_id_whatever_its_detail_holds() {
        let (_dir, db) = temp_db();
        let journal = Journal::open(db).unwrap();
        let (id, other) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
        let settings = LoggerConfig::default();
        journal.note(&settings, &id, "processed", detail(json!({"key": {"id": other}, "status": "repair"})));
        journal.note(&settings, &id, "operator", detail(json!({"id": other, "at": "then", "kind": "x", "by": "a"})));
        journal.written();
        let events = journal.timeline(&id).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["key"]["id"], json!(other));
        assert_eq!(
            (&events[1]["id"], &events[1]["kind"], &events[1]["by"]),
            (&json!(id), &json!("operator"), &json!("a"))
        );
        assert!(journal.timeline(&other).unwrap().is_empty());
        let old = format!("{{\"input\":\"http\",\"id\":\"{id}\",\"at\":\"t\",\"kind\":\"received\"}}");
        assert_eq!(line_id(old.as_bytes()), Some(id.as_bytes()));
    }

    /// The stored pages of `db`'s journal: (events, bytes as stored) each.
    fn pages(db: &Db) -> Vec<(u64, u64)> {
        db.scan_prefix(Keyspace::Journal, &[])
            .map(|item| item.map(|(_, v)| (events_in(&v), v.len() as u64)).unwrap())
            .collect()
    }

    /// An event's detail that compresses little (random hex).
    fn noisy() -> Map<String, Value> {
        detail(json!({"error": format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())}))
    }

    #[test]
    fn byte_and_count_limits_hold_as_stored_and_pages_stay_a_tenth_of_them() {
        // Not rotated: what does not fit in max_log_size bytes (as stored) is not recorded.
        let (_dir, db) = temp_db();
        let journal = Journal::open(db.clone()).unwrap();
        let capped = LoggerConfig { rotate_log: false, max_log_size: Some(3_000), ..LoggerConfig::default() };
        let before = journal.dropped();
        for _ in 0..200 {
            journal.note(&capped, &uuid::Uuid::now_v7().to_string(), "received", noisy());
        }
        journal.written();
        let held = pages(&db);
        assert!(held.iter().map(|p| p.1).sum::<u64>() <= 3_000, "{held:?}");
        assert!(held.iter().all(|p| p.1 <= 300 || p.0 == 1), "a page is a tenth of max_log_size: {held:?}");
        assert!(journal.dropped() > before && !held.is_empty(), "{held:?}");

        // Rotated: the oldest pages go, the newest event is kept, the bytes stay within the limit.
        let (_dir, db) = temp_db();
        let journal = Journal::open(db.clone()).unwrap();
        let rotated = LoggerConfig { max_log_size: Some(3_000), ..LoggerConfig::default() };
        let mut last = String::new();
        for _ in 0..200 {
            last = uuid::Uuid::now_v7().to_string();
            journal.note(&rotated, &last, "received", noisy());
        }
        journal.written();
        let held = pages(&db);
        assert!(held.iter().map(|p| p.1).sum::<u64>() <= 3_000, "{held:?}");
        assert_eq!(journal.timeline(&last).unwrap().len(), 1);

        // A page holds a tenth of max_msg_in_log at most.
        let (_dir, db) = temp_db();
        let journal = Journal::open(db.clone()).unwrap();
        let few = LoggerConfig { max_msg_in_log: 30, ..LoggerConfig::default() };
        for _ in 0..30 {
            journal.note(&few, &uuid::Uuid::now_v7().to_string(), "received", noisy());
        }
        journal.written();
        let held = pages(&db);
        assert!(held.iter().all(|p| p.0 <= 3), "{held:?}");
        assert_eq!(held.iter().map(|p| p.0).sum::<u64>(), 30);
    }

    #[test]
    fn a_long_error_is_cut_on_a_character_boundary() {
        let (_dir, db) = temp_db();
        let journal = Journal::open(db).unwrap();
        let id = uuid::Uuid::now_v7().to_string();
        journal.note(&LoggerConfig::default(), &id, "processed", detail(json!({"error": "é".repeat(3_000)})));
        let events = journal.timeline(&id).unwrap();
        let error = events[0]["error"].as_str().unwrap();
        assert!(error.ends_with('…') && error.len() <= ERROR_MAX + '…'.len_utf8(), "{}", error.len());
        assert!(error.trim_end_matches('…').chars().all(|c| c == 'é'));
    }

    /// Events are stamped before they are queued: a page can end with an event older than the
    /// events of the page before it. A search from a time still reads that page before.
    #[test]
    fn a_search_from_a_time_reads_every_page_written_since_whatever_their_last_event() {
        let (_dir, db) = temp_db();
        let journal = Journal::open(db.clone()).unwrap();
        let now = Utc::now().timestamp_millis();
        let at = |millis: i64| {
            let t = DateTime::<Utc>::from_timestamp_millis(millis).unwrap();
            let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                t.timestamp() as u64,
                t.timestamp_subsec_nanos(),
            ));
            (id.to_string(), t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        let ((x, x_at), (slow, slow_at)) = (at(now), at(now - 1_000));
        let line = |id: &str, at: &str| {
            format!("{{\"id\":\"{id}\",\"input\":\"http\",\"at\":\"{at}\",\"kind\":\"received\"}}\n")
        };
        let page = |millis: i64| page_key_at(millis);
        db.put_each(vec![
            (Keyspace::Journal, page(now + 10), Some(line(&x, &x_at).into_bytes())),
            (Keyspace::Journal, page(now + 20), Some(line(&slow, &slow_at).into_bytes())),
        ])
        .unwrap();
        let from = DateTime::<Utc>::from_timestamp_millis(now - 100).unwrap();
        let found = journal.search(&JournalQuery { from: Some(from), ..Default::default() }).unwrap();
        assert_eq!(found.iter().map(|o| o["id"].as_str().unwrap()).collect::<Vec<_>>(), [x.as_str()]);
    }

    #[test]
    fn events_are_found_by_id_routing_key_type_key_and_time_and_rotated_by_page() {
        let (_dir, db) = temp_db();
        let journal = Journal::open(db).unwrap();
        let settings = LoggerConfig { max_msg_in_log: 20, delete_by_n_msg: Some(4), ..LoggerConfig::default() };
        let mut ids = Vec::new();
        for i in 0..8 {
            let id = uuid::Uuid::now_v7().to_string();
            let rk = if i % 2 == 0 { "User" } else { "Book" };
            journal.note(&settings, &id, "received", detail(json!({"input": "http", "size": 10 + i})));
            journal.note(
                &settings,
                &id,
                "stored",
                detail(json!({"routing_key": rk, "type": rk, "key": i, "version": 1})),
            );
            ids.push(id);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let events = journal.timeline(&ids[3]).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["kind"], "received");
        assert_eq!(events[1]["type"], "Book");

        let found = journal.search(&JournalQuery { routing_key: Some("User".into()), ..Default::default() }).unwrap();
        let found: Vec<&str> = found.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(found, [&ids[6], &ids[4], &ids[2], &ids[0]], "newest first");
        let by_key = journal
            .search(&JournalQuery { type_name: Some("Book".into()), key: Some("3".into()), ..Default::default() })
            .unwrap();
        assert_eq!(by_key.len(), 1);
        assert_eq!(by_key[0]["id"], ids[3]);
        let since = ids[5].parse::<uuid::Uuid>().unwrap();
        let (secs, nanos) = since.get_timestamp().unwrap().to_unix();
        let from = DateTime::<Utc>::from_timestamp(secs as i64, nanos).unwrap();
        let recent = journal.search(&JournalQuery { from: Some(from), ..Default::default() }).unwrap();
        assert_eq!(recent.len(), 3, "objects 5, 6, 7");
        assert_eq!(journal.search(&JournalQuery { id: Some(ids[0].clone()), ..Default::default() }).unwrap().len(), 1);

        // 16 events held; 8 more rotate the oldest page out.
        for i in 8..12 {
            let id = uuid::Uuid::now_v7().to_string();
            journal.note(&settings, &id, "received", detail(json!({"input": "http"})));
            journal.note(&settings, &id, "stored", detail(json!({"routing_key": "User", "type": "User", "key": i})));
            ids.push(id);
        }
        journal.written();
        assert!(journal.timeline(&ids[0]).unwrap().is_empty(), "the oldest object went");
        assert_eq!(journal.timeline(&ids[11]).unwrap().len(), 2);
        let held: usize = ids.iter().map(|id| journal.timeline(id).unwrap().len()).sum();
        assert!(held <= 20, "{held}");
        let users = journal.search(&JournalQuery { type_name: Some("User".into()), ..Default::default() }).unwrap();
        assert!(users.iter().all(|o| o["id"] != ids[0]), "not found any more");

        // Without rotation, a full journal records nothing new.
        let keep = LoggerConfig { rotate_log: false, max_msg_in_log: 20, ..LoggerConfig::default() };
        let before = journal.dropped();
        for _ in 0..25 {
            journal.note(&keep, &uuid::Uuid::now_v7().to_string(), "received", Map::new());
        }
        journal.written();
        assert!(journal.dropped() > before, "dropped, not written");
        let all = journal.search(&JournalQuery { first: Some(500), ..Default::default() }).unwrap();
        let held: usize = all.iter().map(|o| o["events"].as_array().map_or(0, Vec::len)).sum();
        assert!(held <= 20, "the journal stays within max_msg_in_log: {held}");
        // Off: nothing recorded.
        let off = LoggerConfig { max_msg_in_log: 0, ..LoggerConfig::default() };
        let id = uuid::Uuid::now_v7().to_string();
        journal.note(&off, &id, "received", Map::new());
        assert!(journal.timeline(&id).unwrap().is_empty());
    }
}
