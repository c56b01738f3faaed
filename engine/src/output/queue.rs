//! The persistent output queue (the `OutputQueue` keyspace): `p<output>\0<id>` deliveries
//! waiting for their output (scanned per output, oldest first), `f<id>` parked deliveries (the
//! output repair queue). A delivery's id is a UUIDv7 that stays the same all its life.

use crate::config::{OutputProcessorRoute, QueueFull};
use crate::metrics::metrics;
use crate::parked::{ParkedFilter, Shelf};
use crate::storage::{Db, Keyspace, ReadView, StorageError, WriteTx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

const PENDING: u8 = b'p';
const PARKED: u8 = b'f';
/// Where the parked deliveries are.
const PARKED_SHELF: Shelf = Shelf::new(Keyspace::OutputQueue, &[PARKED], "output queue record");

/// Status of a delivery (TDG's output repair statuses).
pub const NEW: &str = "New";
/// Tried again by an operator, not yet sent.
pub const IN_PROGRESS: &str = "In Progress";
/// Parked: the preprocessing pipeline failed.
pub const PREPROCESSING_ERROR: &str = "Preprocessing error";
/// Parked: the output could not send it.
pub const SENDING_ERROR: &str = "Sending error";
/// Status of a delivery whose output the configuration no longer has.
pub const OUTPUT_REMOVED: &str = "Output removed";

/// One object on its way to one output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Delivery id (UUIDv7).
    pub id: String,
    /// The output it goes to.
    pub output: String,
    /// The routing key it was stored under.
    pub routing_key: String,
    /// The id of the object it came from (its journal's), when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The aggregate type stored (none for an object handed over from the repair queue).
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// Version of the stored object (likewise).
    pub version: Option<u64>,
    /// Preprocessing pipeline.
    pub pipeline: Option<String>,
    /// The object as stored (`store_strategy: copy`); null with a `reference`.
    pub object: Value,
    /// `store_strategy: reference`: `{"index": primary index, "key": its value}`; the current
    /// version is read when it is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Value>,
    /// Status: `New`, `In Progress`, or (parked) `Sending error`, `Preprocessing error`,
    /// `Rereplicated (Sending error)`, `Rereplicated (Preprocessing error)`.
    pub status: String,
    /// Failed attempts.
    pub attempts: u32,
    /// The last error, with the peer's answer.
    pub error: Option<String>,
    /// Not to be tried before this time (Unix milliseconds).
    pub next_at_ms: i64,
    /// When it was queued (ISO 8601 UTC).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl Delivery {
    /// Whether an operator tried it again.
    fn retried(&self) -> bool {
        self.status == IN_PROGRESS || self.status.starts_with("Rereplicated")
    }

    /// The id as a UUID.
    pub fn uuid(&self) -> Result<uuid::Uuid, StorageError> {
        uuid::Uuid::parse_str(&self.id).map_err(|e| StorageError::Corrupt(format!("delivery id {}: {e}", self.id)))
    }
}

/// At most this many deliveries waiting for a retry are passed over in one read of an output's
/// due deliveries.
pub const NOT_DUE_SCANNED: usize = 10_000;

fn pending_prefix(output: &str) -> Vec<u8> {
    let mut k = vec![PENDING];
    k.extend_from_slice(output.as_bytes());
    k.push(0);
    k
}

fn pending_key(output: &str, id: &uuid::Uuid) -> Vec<u8> {
    let mut k = pending_prefix(output);
    k.extend_from_slice(id.as_bytes());
    k
}

fn parked_key(id: &uuid::Uuid) -> Vec<u8> {
    let mut k = vec![PARKED];
    k.extend_from_slice(id.as_bytes());
    k
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("output queue record: {e}"))
}

fn encode(d: &Delivery) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(d).map_err(corrupt)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a delivery keeps of its object (`store_strategy`).
#[derive(Debug, Clone)]
pub enum Content {
    /// The object itself.
    Copy(Value),
    /// `{"index": primary index, "key": its value}`: the current version is read when sent.
    Reference(Value),
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Deliveries waiting per output, kept in step with the commits that add and remove them (the
/// bound `max_queue_size` is checked against it, and the depth gauges read it).
#[derive(Default)]
struct Depths {
    inner: Mutex<DepthState>,
}

#[derive(Default)]
struct DepthState {
    waiting: HashMap<String, usize>,
    /// Outputs whose queue was full at the last delivery for them (logged once each time).
    full: HashSet<String>,
}

impl Depths {
    fn lock(&self) -> std::sync::MutexGuard<'_, DepthState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One more waiting for `output` unless `limit` already wait; false when full.
    fn reserve(&self, output: &str, limit: usize) -> bool {
        let mut state = self.lock();
        let waiting = state.waiting.get(output).copied().unwrap_or(0);
        if waiting >= limit {
            if state.full.insert(output.to_string()) {
                tracing::warn!(
                    output,
                    waiting,
                    limit,
                    "output queue full: new deliveries to it are parked or dropped (on_queue_full) until it has room"
                );
            }
            return false;
        }
        if state.full.remove(output) {
            tracing::info!(output, waiting, limit, "output queue has room again");
        }
        *state.waiting.entry(output.to_string()).or_default() += 1;
        true
    }

    /// `delta` more (or fewer) waiting for `output`.
    fn change(&self, output: &str, delta: isize) {
        let mut state = self.lock();
        let waiting = state.waiting.entry(output.to_string()).or_default();
        *waiting = waiting.saturating_add_signed(delta);
    }

    /// `delta` more (or fewer) waiting for `output` once `tx` commits.
    fn change_at_commit(self: &Arc<Self>, tx: &mut WriteTx<'_>, output: &str, delta: isize) {
        let (depths, output) = (self.clone(), output.to_string());
        tx.on_end(move |committed| {
            if committed {
                depths.change(&output, delta);
            }
        });
    }

    fn get(&self, output: &str) -> usize {
        self.lock().waiting.get(output).copied().unwrap_or(0)
    }
}

/// The delivery id at the end of a key.
fn id_of_key(key: &[u8]) -> Option<uuid::Uuid> {
    key.len().checked_sub(16).and_then(|at| uuid::Uuid::from_slice(&key[at..]).ok())
}

/// The output a pending key belongs to.
fn output_of_pending(key: &[u8]) -> Option<&str> {
    let end = key.len().checked_sub(17)?;
    (key.first() == Some(&PENDING) && key.get(end) == Some(&0))
        .then(|| std::str::from_utf8(&key[1..end]).ok())
        .flatten()
}

/// The output queue of one database, and the bell the senders wait on.
pub struct OutputQueue {
    db: Db,
    bell: tokio::sync::watch::Sender<u64>,
    depths: Arc<Depths>,
}

impl OutputQueue {
    /// The queue in `db`; counts what waits for each output.
    pub fn open(db: Db) -> Result<OutputQueue, StorageError> {
        let depths = Arc::new(Depths::default());
        for item in db.scan_prefix(Keyspace::OutputQueue, &[PENDING]) {
            let (key, _) = item?;
            match output_of_pending(&key) {
                Some(output) => depths.change(output, 1),
                None => tracing::error!(key = %hex::encode(&key), "an output queue key of an unknown shape"),
            }
        }
        Ok(OutputQueue { db, bell: tokio::sync::watch::Sender::new(0), depths })
    }

    /// Stage the delivery of an object to every output of `route` in `tx` (`stored`: its type
    /// and version when it was stored); call [`OutputQueue::ring`] after the commit. A delivery
    /// to an output with `max_queue_size` waiting is parked or dropped (`on_queue_full`).
    pub fn stage_in(
        &self,
        tx: &mut WriteTx<'_>,
        route: &OutputProcessorRoute,
        (routing_key, source): (&str, Option<&str>),
        stored: Option<(&str, u64)>,
        content: Content,
    ) -> Result<(), StorageError> {
        let (object, reference) = match content {
            Content::Copy(object) => (object, None),
            Content::Reference(reference) => (Value::Null, Some(reference)),
        };
        let at = now();
        for (pipeline, output) in route.targets() {
            let id = uuid::Uuid::now_v7();
            let mut delivery = Delivery {
                id: id.to_string(),
                output: output.to_string(),
                routing_key: routing_key.to_string(),
                source: source.map(str::to_string),
                type_name: stored.map(|(t, _)| t.to_string()),
                version: stored.map(|(_, v)| v),
                pipeline: pipeline.map(str::to_string),
                object: object.clone(),
                reference: reference.clone(),
                status: NEW.to_string(),
                attempts: 0,
                error: None,
                next_at_ms: 0,
                created_at: at.clone(),
                updated_at: at.clone(),
            };
            let name = output.to_string();
            if self.depths.reserve(output, route.max_queue_size) {
                tx.insert(Keyspace::OutputQueue, &pending_key(output, &id), encode(&delivery)?);
                // Counted at once (the bound holds within this transaction too), uncounted if it
                // does not commit.
                let depths = self.depths.clone();
                tx.on_end(move |committed| {
                    if !committed {
                        depths.change(&name, -1);
                    }
                });
                continue;
            }
            let park = route.on_queue_full == QueueFull::Park;
            if park {
                delivery.status = SENDING_ERROR.to_string();
                delivery.error = Some(format!(
                    "not queued: output \"{output}\" already had max_queue_size = {} deliveries waiting",
                    route.max_queue_size
                ));
                tx.insert(Keyspace::OutputQueue, &parked_key(&id), encode(&delivery)?);
            }
            tx.on_end(move |committed| {
                if committed {
                    metrics().output_queue_full.with_label_values(&[&name]).inc();
                    if park {
                        metrics().output_parked.with_label_values(&[&name]).inc();
                    } else {
                        tracing::debug!(output = %name, "delivery dropped: the output queue is full");
                    }
                }
            });
        }
        Ok(())
    }

    /// Deliveries waiting for `output` (not parked).
    pub fn depth(&self, output: &str) -> usize {
        self.depths.get(output)
    }

    /// When the oldest delivery waiting for `output` was queued (by its UUIDv7 id).
    pub fn oldest(&self, output: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, StorageError> {
        let Some(first) = self.db.scan_prefix(Keyspace::OutputQueue, &pending_prefix(output)).next() else {
            return Ok(None);
        };
        let (key, _) = first?;
        let at = id_of_key(&key).and_then(|id| id.get_timestamp()).and_then(|t| {
            let (secs, nanos) = t.to_unix();
            chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
        });
        Ok(at)
    }

    /// Set the depth and oldest-age gauges of `outputs`.
    pub fn set_gauges(&self, outputs: &[String]) {
        let now = chrono::Utc::now();
        for output in outputs {
            let depth = i64::try_from(self.depth(output)).unwrap_or(i64::MAX);
            metrics().output_queue_depth.with_label_values(&[output]).set(depth);
            let age = match self.oldest(output) {
                Ok(Some(at)) => (now - at).as_seconds_f64().max(0.0),
                Ok(None) => 0.0,
                Err(e) => {
                    tracing::error!(output, error = %e, "reading the output queue failed");
                    continue;
                }
            };
            metrics().output_queue_oldest_seconds.with_label_values(&[output]).set(age);
        }
    }

    /// The database (for tests that stage deliveries themselves).
    #[cfg(test)]
    pub(crate) fn db_for_tests(&self) -> &Db {
        &self.db
    }

    /// Tell the senders that there may be new deliveries.
    pub fn ring(&self) {
        self.bell.send_modify(|rings| *rings += 1);
    }

    /// The bell: changes at each ring.
    pub fn bell(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bell.subscribe()
    }

    /// Deliveries waiting for `output`, oldest first, at most `n`, leaving out `skip`.
    pub fn pending(&self, output: &str, skip: &HashSet<uuid::Uuid>, n: usize) -> Result<Vec<Delivery>, StorageError> {
        self.read(output, skip, n, None).map(|(out, _)| out)
    }

    /// Deliveries waiting for `output` that are due at `now_ms` (their retry time passed), oldest
    /// first, at most `n`, leaving out `skip`; and the earliest retry time of those passed over
    /// as not due. Deliveries waiting for a retry do not hold back newer ones (an output that
    /// sends in parallel); at most [`NOT_DUE_SCANNED`] of them are passed over in one read.
    pub fn due(
        &self,
        output: &str,
        skip: &HashSet<uuid::Uuid>,
        n: usize,
        now_ms: i64,
    ) -> Result<(Vec<Delivery>, Option<i64>), StorageError> {
        self.read(output, skip, n, Some(now_ms))
    }

    /// [`Self::pending`] (`due_at` none: every delivery), or [`Self::due`].
    fn read(
        &self,
        output: &str,
        skip: &HashSet<uuid::Uuid>,
        n: usize,
        due_at: Option<i64>,
    ) -> Result<(Vec<Delivery>, Option<i64>), StorageError> {
        /// A delivery's retry time, read without building the object it carries.
        #[derive(serde::Deserialize)]
        struct RetryAt {
            #[serde(default)]
            next_at_ms: i64,
        }
        let (mut out, mut next_due, mut passed) = (Vec::new(), None::<i64>, 0usize);
        for item in self.db.scan_prefix(Keyspace::OutputQueue, &pending_prefix(output)) {
            if out.len() >= n || passed >= NOT_DUE_SCANNED {
                break;
            }
            let (k, bytes) = item?;
            // Skipped by the id in the key, without decoding the record.
            if id_of_key(&k).is_some_and(|id| skip.contains(&id)) {
                continue;
            }
            if let Some(now_ms) = due_at {
                if let Ok(RetryAt { next_at_ms }) = crate::storage::from_stored::<RetryAt>(&bytes) {
                    if next_at_ms > now_ms {
                        passed += 1;
                        next_due = Some(next_due.map_or(next_at_ms, |t| t.min(next_at_ms)));
                        continue;
                    }
                }
            }
            match crate::storage::from_stored::<Delivery>(&bytes) {
                Ok(d) => out.push(d),
                Err(e) => tracing::error!(key = %hex::encode(&k), error = %e, "skipping an unreadable delivery"),
            }
        }
        Ok((out, next_due))
    }

    /// These deliveries were sent (or expired): gone, in one commit.
    pub fn done_all(&self, deliveries: &[Delivery]) -> Result<(), StorageError> {
        let keys = deliveries
            .iter()
            .map(|d| Ok((pending_key(&d.output, &d.uuid()?), d.output.as_str())))
            .collect::<Result<Vec<_>, StorageError>>()?;
        self.db.write(|tx| {
            for (key, output) in &keys {
                if tx.get(Keyspace::OutputQueue, key)?.is_some() {
                    tx.remove(Keyspace::OutputQueue, key);
                    self.depths.change_at_commit(tx, output, -1);
                }
            }
            Ok::<_, StorageError>(())
        })
    }

    /// `delivery` failed and is tried again at `next_at_ms`.
    pub fn reschedule(&self, mut delivery: Delivery, error: String, next_at_ms: i64) -> Result<(), StorageError> {
        delivery.attempts += 1;
        delivery.error = Some(error);
        delivery.next_at_ms = next_at_ms;
        delivery.updated_at = now();
        let key = pending_key(&delivery.output, &delivery.uuid()?);
        let bytes = encode(&delivery)?;
        self.db.write(|tx| {
            // Deleted by an operator meanwhile: stays deleted.
            if tx.get(Keyspace::OutputQueue, &key)?.is_some() {
                tx.insert(Keyspace::OutputQueue, &key, bytes);
            }
            Ok::<_, StorageError>(())
        })
    }

    /// `delivery` failed for good: parked in the output repair queue with `status`
    /// (`Sending error` / `Preprocessing error`, `Rereplicated (...)` after an operator's retry).
    pub fn park(&self, mut delivery: Delivery, status: &str, error: String) -> Result<(), StorageError> {
        let uuid = delivery.uuid()?;
        let pending = pending_key(&delivery.output, &uuid);
        delivery.status = if delivery.retried() { format!("Rereplicated ({status})") } else { status.to_string() };
        delivery.attempts += 1;
        delivery.error = Some(error);
        delivery.updated_at = now();
        let bytes = encode(&delivery)?;
        self.db.write(|tx| {
            if tx.get(Keyspace::OutputQueue, &pending)?.is_some() {
                tx.remove(Keyspace::OutputQueue, &pending);
                tx.insert(Keyspace::OutputQueue, &parked_key(&uuid), bytes);
                self.depths.change_at_commit(tx, &delivery.output, -1);
            }
            Ok::<_, StorageError>(())
        })
    }

    /// Parked deliveries, oldest first, matching `text` (case-insensitive, in the id, output,
    /// routing key, status, error or object).
    pub fn parked(&self, text: Option<&str>) -> Result<Vec<Delivery>, StorageError> {
        PARKED_SHELF.all(&self.db, &ParkedFilter::text(text))
    }

    /// Parked delivery `id`.
    pub fn get_parked(&self, id: &str) -> Result<Option<Delivery>, StorageError> {
        PARKED_SHELF.get(&self.db, id)
    }

    /// Move the parked deliveries `ids` back to their outputs (`In Progress`, due now) or delete
    /// them, in one commit; how many were there.
    fn take_parked(&self, ids: &[&str], retry: bool) -> Result<usize, StorageError> {
        let moved = PARKED_SHELF.take(&self.db, ids, |tx, mut d: Delivery| {
            if retry {
                let uuid = d.uuid()?;
                d.status = IN_PROGRESS.to_string();
                d.next_at_ms = 0;
                d.updated_at = now();
                tx.insert(Keyspace::OutputQueue, &pending_key(&d.output, &uuid), encode(&d)?);
                // An operator's retry is queued even beyond max_queue_size: it was asked for.
                self.depths.change_at_commit(tx, &d.output, 1);
            }
            Ok::<_, StorageError>(())
        })?;
        if moved > 0 && retry {
            self.ring();
        }
        Ok(moved)
    }

    /// Park what waits for an output that is not in `configured` (the configuration no longer
    /// has it: no actor sends to it): shown in the output repair queue, deleted or tried again
    /// there once the output is back. How many were parked.
    pub fn park_unconfigured(&self, configured: &[String]) -> Result<usize, StorageError> {
        let orphaned: Vec<String> = {
            let state = self.depths.lock();
            state.waiting.iter().filter(|(o, n)| **n > 0 && !configured.contains(o)).map(|(o, _)| o.clone()).collect()
        };
        let mut parked = 0;
        for output in orphaned {
            let waiting: Vec<Delivery> = self.pending(&output, &HashSet::new(), usize::MAX)?;
            for delivery in waiting {
                let error = format!("the output {output} is not in the configuration's output_processor any more");
                self.park(delivery, OUTPUT_REMOVED, error)?;
                parked += 1;
            }
            tracing::warn!(output = %output, parked, "deliveries to an output the configuration no longer has: parked");
        }
        Ok(parked)
    }

    /// Try parked delivery `id` again.
    pub fn retry(&self, id: &str) -> Result<bool, StorageError> {
        Ok(self.take_parked(&[id], true)? > 0)
    }

    /// Delete parked delivery `id`.
    pub fn delete(&self, id: &str) -> Result<bool, StorageError> {
        Ok(self.take_parked(&[id], false)? > 0)
    }

    /// Put the parked deliveries `ids` back to their outputs in one commit; how many.
    pub fn retry_ids(&self, ids: &[&str]) -> Result<usize, StorageError> {
        self.take_parked(ids, true)
    }
}

impl crate::parked::ParkedQueue for OutputQueue {
    type Item = Delivery;

    fn shelf(&self) -> (&Db, Shelf) {
        (&self.db, PARKED_SHELF)
    }

    fn delete_ids(&self, ids: &[&str]) -> Result<crate::parked::Taken, crate::repair::RepairError> {
        Ok(crate::parked::Taken { taken: self.take_parked(ids, false)?, left: 0 })
    }
}

impl crate::parked::Parked for Delivery {
    fn id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> &str {
        &self.created_at
    }

    /// The id, output, routing key, status, error or object.
    fn contains(&self, needle: &str) -> bool {
        use crate::parked::found;
        [self.id.as_str(), &self.output, &self.routing_key, &self.status].iter().any(|f| found(f, needle))
            || self.error.as_deref().is_some_and(|e| found(e, needle))
            || found(&self.object.to_string(), needle)
    }
}
