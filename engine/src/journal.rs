//! The object journal (TDG's logger role, keyed by domain object): every object's path —
//! received (input, size), the pipeline steps with their time, the routing key, how processing
//! ended (stored as a version, sent to an output, or kept in the repair queue with the error),
//! each attempt of its output-processor deliveries, and what operators did to it.
//!
//! Events are queued and written by a thread of their own in batches (keyspace `Journal`:
//! `[object id][time ns][sequence]` -> event; keyspace `JournalIndex`: the object's routing key,
//! type and primary key -> its id), so that recording one costs the ingest path a channel send;
//! a full queue drops events (counted), never an object. They are durable with the store's
//! next flush: a crash may lose the last ones, not an object.
//!
//! Retention follows TDG's `logger` section: at most `max_msg_in_log` events (and
//! `max_log_size` bytes); past that, with `rotate_log`, the oldest objects' events go,
//! `delete_by_n_msg` at a time, or else new events are not recorded.

use crate::storage::{Db, Keyspace, ReadView, StorageError};
use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, Sender};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Events waiting for the writer at most; more are dropped (and counted).
const QUEUE: u64 = 200_000;
/// Events per write at most.
const BATCH: usize = 2000;

/// `logger` (TDG 2.16.1.8): how much of the journal is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LoggerConfig {
    /// When full, remove the oldest objects' events (default true); `false`: record nothing new.
    #[serde(default = "default_true")]
    pub rotate_log: bool,
    /// Events kept at most (default 1,000,000); `0` turns the journal off.
    #[serde(default = "default_max_msg")]
    pub max_msg_in_log: u64,
    /// Bytes of events kept at most (default: no limit but the count).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_log_size: Option<u64>,
    /// Events removed at once when full (default: a tenth of `max_msg_in_log`, at least one
    /// object's).
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

struct Note {
    key: Vec<u8>,
    value: Vec<u8>,
    index: Vec<Vec<u8>>,
    limits: Limits,
}

/// The journal of a data directory.
pub struct Journal {
    db: Db,
    queue: Sender<Note>,
    sequence: AtomicU32,
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

fn id_bytes(id: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(id).ok().map(|u| *u.as_bytes())
}

/// The time in a v7 id (milliseconds since the epoch), `None` for another kind of id.
fn id_millis(id: &[u8; 16]) -> Option<i64> {
    let u = uuid::Uuid::from_bytes(*id);
    (u.get_version_num() == 7).then(|| {
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&id[..6]);
        i64::from_be_bytes(ms)
    })
}

/// The smallest v7 id of millisecond `ms`.
fn id_at(ms: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&ms.max(0).to_be_bytes()[2..]);
    id
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

fn index_key(kind: u8, parts: &[&[u8]], id: &[u8; 16]) -> Vec<u8> {
    let mut key = vec![kind];
    for part in parts {
        key.extend_from_slice(part);
        key.push(0);
    }
    key.extend_from_slice(id);
    key
}

/// The index entries of an event: its routing key, its type, its type and primary key.
fn index_keys(id: &[u8; 16], event: &Map<String, Value>) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    if let Some(rk) = event.get("routing_key").and_then(Value::as_str) {
        keys.push(index_key(b'r', &[rk.as_bytes()], id));
    }
    if let Some(t) = event.get("type").and_then(Value::as_str) {
        keys.push(index_key(b't', &[t.as_bytes()], id));
        if let Some(k) = event.get("key").filter(|k| !k.is_null()) {
            keys.push(index_key(b'k', &[t.as_bytes(), canonical(k).as_bytes()], id));
        }
    }
    keys
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
        Ok(Journal { db, queue, sequence: AtomicU32::new(0), queued: AtomicU64::new(0), done, dropped })
    }

    /// Record that `kind` happened to the object `id` now, with `detail` (its `routing_key`,
    /// `type` and `key` make it findable by them). Never fails nor waits.
    pub fn note(&self, settings: &LoggerConfig, id: &str, kind: &str, mut detail: Map<String, Value>) {
        if settings.max_msg_in_log == 0 {
            return;
        }
        let Some(object) = id_bytes(id) else { return };
        let now = Utc::now();
        detail.insert("at".into(), Value::String(now.to_rfc3339_opts(SecondsFormat::Micros, true)));
        detail.insert("kind".into(), Value::String(kind.to_string()));
        let nanos = now.timestamp_nanos_opt().unwrap_or(0).max(0) as u64;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let key = [object.as_slice(), &nanos.to_be_bytes(), &sequence.to_be_bytes()].concat();
        let index = index_keys(&object, &detail);
        let Ok(value) = serde_json::to_vec(&Value::Object(detail)) else { return };
        let queued = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let waiting = queued.saturating_sub(self.done.load(Ordering::Acquire));
        let note = Note { key, value, index, limits: Limits::of(settings) };
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
        let target = self.queued.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.done.load(Ordering::Acquire) < target && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Events dropped (the queue full, or the journal full without `rotate_log`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The events of the object `id`, oldest first (none for an id it does not know).
    pub fn timeline(&self, id: &str) -> Result<Vec<Value>, StorageError> {
        self.written();
        let Some(object) = id_bytes(id) else { return Ok(Vec::new()) };
        let mut events = Vec::new();
        for item in self.db.scan_prefix(Keyspace::Journal, &object) {
            let (_, bytes) = item?;
            if let Ok(event) = serde_json::from_slice::<Value>(&bytes) {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// The objects matching `q`, newest first: `[{id, events}]`.
    pub fn search(&self, q: &JournalQuery) -> Result<Vec<Value>, StorageError> {
        self.written();
        let first = q.first.unwrap_or(50).clamp(1, 500);
        let from = q.from.map(|t| t.timestamp_millis());
        let to = q.to.map(|t| t.timestamp_millis());
        let in_time = |id: &[u8; 16]| {
            let ms = id_millis(id);
            from.is_none_or(|f| ms.is_some_and(|m| m >= f)) && to.is_none_or(|t| ms.is_some_and(|m| m < t))
        };
        let mut ids: Vec<[u8; 16]> = Vec::new();
        let push = |ids: &mut Vec<[u8; 16]>, id: [u8; 16]| {
            if in_time(&id) && ids.last() != Some(&id) && !ids.contains(&id) {
                ids.push(id);
            }
            ids.len() >= first
        };
        if let Some(id) = &q.id {
            if let Some(id) = id_bytes(id) {
                push(&mut ids, id);
            }
        } else {
            // An index when a filter names one (newest first: ids are ordered by time).
            let prefix = match (&q.type_name, &q.key, &q.routing_key) {
                (Some(t), Some(k), _) => {
                    let key = serde_json::from_str::<Value>(k).unwrap_or_else(|_| Value::String(k.clone()));
                    Some(index_key(b'k', &[t.as_bytes(), canonical(&key).as_bytes()], &[0; 16])[..].to_vec())
                }
                (Some(t), None, _) => Some(index_key(b't', &[t.as_bytes()], &[0; 16]).to_vec()),
                (None, _, Some(rk)) => Some(index_key(b'r', &[rk.as_bytes()], &[0; 16]).to_vec()),
                (None, Some(_), None) => None,
                (None, None, None) => None,
            };
            match prefix {
                Some(mut prefix) => {
                    prefix.truncate(prefix.len() - 16);
                    // The prefix ends with its 0 separator: everything under it sorts below it with 1.
                    let mut upper = prefix.clone();
                    if let Some(last) = upper.last_mut() {
                        *last = 1;
                    }
                    let range = self.db.range(
                        Keyspace::JournalIndex,
                        Bound::Included(&prefix[..]),
                        Bound::Excluded(&upper[..]),
                        true,
                    );
                    for item in range {
                        let (k, _) = item?;
                        let Ok(id) = <[u8; 16]>::try_from(&k[k.len() - 16..]) else { continue };
                        if push(&mut ids, id) {
                            break;
                        }
                    }
                }
                None => {
                    let upper = to.map(|t| id_at(t).to_vec());
                    let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                    for item in self.db.range(Keyspace::Journal, Bound::Unbounded, upper, true) {
                        let (k, _) = item?;
                        let Ok(id) = <[u8; 16]>::try_from(&k[..16]) else { continue };
                        if from.is_some_and(|f| id_millis(&id).is_some_and(|m| m < f)) {
                            break;
                        }
                        if push(&mut ids, id) {
                            break;
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for id in ids {
            let id = uuid::Uuid::from_bytes(id).to_string();
            let events = self.timeline(&id)?;
            // The routing key and route filters narrow by the object's last word on them.
            let last = |field: &str| events.iter().rev().find_map(|e| e.get(field).cloned());
            if q.routing_key.as_ref().is_some_and(|rk| last("routing_key").as_ref().and_then(Value::as_str) != Some(rk))
            {
                continue;
            }
            if !events.is_empty() {
                out.push(json!({"id": id, "events": events}));
            }
        }
        Ok(out)
    }
}

/// The writer thread's state: how much the journal holds.
struct Writer {
    db: Db,
    dropped: Arc<AtomicU64>,
    events: u64,
    bytes: u64,
}

impl Writer {
    fn new(db: Db, dropped: Arc<AtomicU64>) -> Writer {
        Writer { db, dropped, events: 0, bytes: 0 }
    }

    fn run(mut self, rx: Receiver<Note>, done: Arc<AtomicU64>) {
        // What the journal holds from before this start.
        for item in self.db.scan_prefix(Keyspace::Journal, &[]) {
            match item {
                Ok((_, v)) => {
                    self.events += 1;
                    self.bytes += v.len() as u64;
                }
                Err(e) => tracing::error!(error = %e, "counting the object journal failed"),
            }
        }
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(BATCH - 1));
            let n = batch.len() as u64;
            // A panic fails this batch only: the writer goes on.
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
        let adding_bytes: u64 = batch.iter().map(|n| n.value.len() as u64).sum();
        if self.full(&limits, batch.len() as u64, adding_bytes) {
            if limits.rotate {
                self.rotate(&limits, batch.len() as u64, adding_bytes)?;
            } else {
                // Full and not rotated: what does not fit is not recorded.
                let room = limits.max.saturating_sub(self.events) as usize;
                let lost = batch.len().saturating_sub(room);
                batch.truncate(room);
                if lost > 0 {
                    self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                    crate::metrics::metrics().journal_dropped.inc_by(lost as u64);
                }
            }
        }
        let (events, bytes) = (batch.len() as u64, batch.iter().map(|n| n.value.len() as u64).sum::<u64>());
        self.db.write(|tx| {
            for note in &batch {
                tx.insert(Keyspace::Journal, &note.key, note.value.clone());
                for index in &note.index {
                    tx.insert(Keyspace::JournalIndex, index, Vec::new());
                }
            }
            Ok::<_, StorageError>(())
        })?;
        self.events += events;
        self.bytes += bytes;
        crate::metrics::metrics().journal_events.set(i64::try_from(self.events).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Remove the oldest objects' events: `delete_by` at least, and enough for `adding` more.
    fn rotate(&mut self, limits: &Limits, adding: u64, adding_bytes: u64) -> Result<(), StorageError> {
        let (mut events, mut bytes) = (0u64, 0u64);
        let mut doomed: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
        let mut last: Option<[u8; 16]> = None;
        let enough = |events: u64, bytes: u64, w: &Writer| {
            events >= limits.delete_by
                && w.events.saturating_sub(events) + adding <= limits.max
                && limits.max_bytes.is_none_or(|m| w.bytes.saturating_sub(bytes) + adding_bytes <= m)
        };
        for item in self.db.scan_prefix(Keyspace::Journal, &[]) {
            let (k, v) = item?;
            let Ok(id) = <[u8; 16]>::try_from(&k[..16.min(k.len())]) else { continue };
            // Whole objects only: stop at the first event of the next object once it is enough.
            if last != Some(id) && enough(events, bytes, self) {
                break;
            }
            last = Some(id);
            let index = match serde_json::from_slice::<Value>(&v) {
                Ok(Value::Object(event)) => index_keys(&id, &event),
                _ => Vec::new(),
            };
            events += 1;
            bytes += v.len() as u64;
            doomed.push((k.to_vec(), index));
        }
        self.db.write(|tx| {
            for (key, index) in &doomed {
                tx.remove(Keyspace::Journal, key);
                for i in index {
                    tx.remove(Keyspace::JournalIndex, i);
                }
            }
            Ok::<_, StorageError>(())
        })?;
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
    fn events_are_found_by_id_routing_key_type_key_and_time_and_rotated_by_object() {
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

        // 16 events held; 8 more rotate the oldest objects out, whole (two events each).
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
        assert!(users.iter().all(|o| o["id"] != ids[0]), "its index entries went too");

        // Without rotation, a full journal records nothing new.
        let keep = LoggerConfig { rotate_log: false, max_msg_in_log: 20, ..LoggerConfig::default() };
        let before = journal.dropped();
        for _ in 0..10 {
            journal.note(&keep, &uuid::Uuid::now_v7().to_string(), "received", Map::new());
        }
        journal.written();
        assert!(journal.dropped() > before, "dropped, not written");
        // Off: nothing recorded.
        let off = LoggerConfig { max_msg_in_log: 0, ..LoggerConfig::default() };
        let id = uuid::Uuid::now_v7().to_string();
        journal.note(&off, &id, "received", Map::new());
        assert!(journal.timeline(&id).unwrap().is_empty());
    }
}
