//! The audit log (TDG 2.11): security events with time, subject, source address, action,
//! object, outcome and severity, appended to storage (keyspace `Audit`, keys ordered by time)
//! and read back with filters. Through the API it can only be read or cleared as a whole (which
//! is itself recorded); entries older than `remove_older_than_n_hours` are removed by a pass
//! every minute.
//!
//! The settings come from the configuration's `audit_log` section; an operator may override
//! them at run time (`PUT /admin/api/audit/settings`, stored: it survives restarts) until the
//! override is removed (`DELETE`). Changes of the settings and clears are recorded whatever the
//! settings say.

use super::SecurityError;
use crate::storage::{Db, Keyspace, ReadView};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Event severities, from least to most important (TDG's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Routine: every authenticated read of the admin API.
    Verbose,
    /// Changes: tokens, roles, configuration, operator actions on queues, tasks and jobs.
    Info,
    /// Refusals: invalid, expired or blocked tokens, missing rights.
    Warning,
    /// Alarms: the audit log cleared, lock-outs.
    Alarm,
}

/// `audit_log` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AuditSettings {
    /// Record events (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The least severity recorded (default INFO): VERBOSE, INFO, WARNING or ALARM.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Remove entries older than this many hours (default: keep them).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub remove_older_than_n_hours: Option<u64>,
}

fn default_true() -> bool {
    true
}

fn default_severity() -> Severity {
    Severity::Info
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { enabled: true, severity: Severity::Info, remove_older_than_n_hours: None }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its id (ordered by time).
    #[serde(default)]
    pub id: String,
    /// When.
    pub time: DateTime<Utc>,
    /// How important.
    pub severity: Severity,
    /// Who: a token's name, or `-` when unknown.
    pub subject: String,
    /// The client's address.
    pub source: String,
    /// What was attempted: the route's action (`tokens_admin`), `authenticate`, `graphql_data`,
    /// `admin_graphql`, `audit_settings_changed`, `audit_log_cleared`, `request` (VERBOSE).
    pub action: String,
    /// What it was done to (a path, a token name, ids).
    pub object: String,
    /// `ok`, `refused` or `failed`, with the status.
    pub outcome: String,
    /// More detail.
    #[serde(default)]
    pub message: String,
}

/// The client's address, as GraphQL request data (for the events its resolvers record).
#[derive(Debug, Clone)]
pub struct RequestSource(pub String);

/// The refusals a GraphQL request has recorded (request data): a relation field refused for each
/// of a thousand parents is one event, not a thousand.
#[derive(Debug, Default)]
pub struct Refusals(pub std::sync::Mutex<std::collections::HashSet<String>>);

impl Refusals {
    /// Whether `what` is refused for the first time in this request.
    pub fn first(&self, what: &str) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(what.to_string())
    }
}

/// What to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this time on.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Only this subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Only this severity and above.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Only entries whose action, object, outcome or message contain this text.
    #[serde(default)]
    pub text: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[serde(default)]
    pub first: Option<usize>,
    /// After this entry id (the last of the previous page).
    #[serde(default)]
    pub after: Option<String>,
}

/// The settings key of the run-time override.
const SETTINGS_KEY: &[u8] = b"audit/settings";

/// Events waiting for the writer thread, at most (beyond: dropped and counted).
const QUEUE: usize = 65_536;

/// Longest object, message or subject kept, in bytes.
const FIELD_MAX: usize = 256;

/// Refusals of callers who gave no valid credentials, recorded one by one from each source for
/// each reason in a minute; the rest of that minute's are counted and told of in one event.
const REFUSALS_EACH: u32 = 10;
/// The minute of [`REFUSALS_EACH`].
const REFUSAL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Sources counted one by one at most; refusals from more are counted together.
const REFUSAL_SOURCES: usize = 10_000;
/// The source the refusals beyond [`REFUSAL_SOURCES`] are counted under.
const OTHER_SOURCES: &str = "other sources";

/// One source's refusals for one reason in the current minute.
#[derive(Debug)]
struct RefusalWindow {
    started: DateTime<Utc>,
    recorded: u32,
    counted: u64,
    last: DateTime<Utc>,
    /// One of the counted refusals, for the summary's action and object.
    sample: Option<Event>,
}

/// The audit log. Events are handed to a writer thread (`ferrogrid-audit`), which appends them
/// in batches: recording never blocks the caller (often a reactor thread) on storage.
pub struct AuditLog {
    db: Db,
    /// The active configuration's settings.
    configured: Box<dyn Fn() -> AuditSettings + Send + Sync>,
    /// The operator's override, if any.
    overridden: ArcSwap<Option<AuditSettings>>,
    sequence: AtomicU32,
    queue: Sender<(Vec<u8>, Event)>,
    /// Events queued, and events written or given up on.
    queued: AtomicU64,
    done: Arc<AtomicU64>,
    dropped: AtomicU64,
    /// Refusals of unknown callers this minute, by source and reason.
    refusals: std::sync::Mutex<std::collections::HashMap<(String, String), RefusalWindow>>,
}

/// The writer thread: append queued events, a batch per commit.
fn write_events(db: Db, rx: Receiver<(Vec<u8>, Event)>, done: Arc<AtomicU64>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(999));
        // A panic fails this batch only: the writer goes on, and the batch counts as done.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.write(|tx| {
                for (k, event) in &batch {
                    let bytes = serde_json::to_vec(event).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
                    tx.insert(Keyspace::Audit, k, bytes);
                }
                Ok::<_, SecurityError>(())
            })
        }));
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, events = batch.len(), "writing audit events failed"),
            Err(_) => tracing::error!(events = batch.len(), "writing audit events panicked"),
        }
        done.fetch_add(batch.len() as u64, Ordering::Release);
    }
}

/// What a client sends (a path, a name) is kept short: a flood of long requests must not fill
/// the log (nor the memory of the refusals counted).
fn clip(event: &mut Event) {
    for field in [&mut event.object, &mut event.message, &mut event.subject] {
        if field.len() > FIELD_MAX {
            let mut end = FIELD_MAX;
            while !field.is_char_boundary(end) {
                end -= 1;
            }
            field.truncate(end);
            field.push('…');
        }
    }
}

/// The event telling of the refusals `window` counted from `source` for `reason` (none when it
/// counted none).
fn summary((source, reason): &(String, String), window: &RefusalWindow) -> Option<Event> {
    let sample = window.sample.as_ref().filter(|_| window.counted > 0)?;
    Some(Event {
        id: String::new(),
        time: window.last,
        severity: sample.severity,
        subject: sample.subject.clone(),
        source: source.clone(),
        action: sample.action.clone(),
        object: sample.object.clone(),
        outcome: sample.outcome.clone(),
        message: format!(
            "{reason}: {} more refusals from {source} from {} to {}, counted, not recorded one by one",
            window.counted,
            window.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            window.last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    })
}

fn key(time: DateTime<Utc>, sequence: u32) -> Vec<u8> {
    let nanos = time.timestamp_nanos_opt().unwrap_or(i64::MAX).max(0) as u64;
    [nanos.to_be_bytes().as_slice(), sequence.to_be_bytes().as_slice()].concat()
}

fn key_of_id(id: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(id).ok()?;
    (bytes.len() == 12).then_some(bytes)
}

impl Event {
    /// An event happening now (its id is given when it is recorded).
    pub fn now(
        severity: Severity,
        subject: &str,
        source: String,
        action: &str,
        object: String,
        outcome: String,
        message: String,
    ) -> Event {
        Event {
            id: String::new(),
            time: Utc::now(),
            severity,
            subject: subject.to_string(),
            source,
            action: action.to_string(),
            object,
            outcome,
            message,
        }
    }
}

impl AuditLog {
    /// Open the audit log over `db`; `configured` answers the active configuration's settings.
    pub fn open(db: Db, configured: Box<dyn Fn() -> AuditSettings + Send + Sync>) -> Result<AuditLog, SecurityError> {
        let overridden = match db.get(Keyspace::Tokens, SETTINGS_KEY)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| SecurityError::Corrupt(e.to_string()))?),
            None => None,
        };
        // Unbounded, with the bound kept by counting: a bounded channel would allocate all its
        // slots up front (megabytes for an idle log).
        let (queue, rx) = crossbeam_channel::unbounded();
        let done = Arc::new(AtomicU64::new(0));
        let (writer_db, writer_done) = (db.clone(), done.clone());
        std::thread::Builder::new()
            .name("ferrogrid-audit".into())
            .spawn(move || write_events(writer_db, rx, writer_done))
            .map_err(|e| SecurityError::Io { path: "the audit writer thread".into(), source: e })?;
        Ok(AuditLog {
            db,
            configured,
            overridden: ArcSwap::from_pointee(overridden),
            sequence: AtomicU32::new(0),
            queue,
            queued: AtomicU64::new(0),
            done,
            dropped: AtomicU64::new(0),
            refusals: std::sync::Mutex::default(),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> AuditSettings {
        match self.overridden.load().as_ref() {
            Some(s) => s.clone(),
            None => (self.configured)(),
        }
    }

    /// Whether the settings in force come from an operator's override.
    pub fn is_overridden(&self) -> bool {
        self.overridden.load().is_some()
    }

    /// Override the configuration's settings (`None`: go back to them).
    pub fn set_override(&self, settings: Option<AuditSettings>) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            match &settings {
                Some(s) => tx.insert(
                    Keyspace::Tokens,
                    SETTINGS_KEY,
                    serde_json::to_vec(s).map_err(|e| SecurityError::Corrupt(e.to_string()))?,
                ),
                None => tx.remove(Keyspace::Tokens, SETTINGS_KEY),
            }
            Ok::<_, SecurityError>(())
        })?;
        self.db.sync()?;
        self.overridden.store(Arc::new(settings));
        Ok(())
    }

    /// Clear the log for `subject` (from `source`): the clear is the first entry of the new log.
    /// Answers how many entries went.
    pub fn clear_by(&self, subject: &str, source: String) -> Result<usize, SecurityError> {
        let removed = self.remove_before(None)?;
        self.record_always(Event::now(
            Severity::Alarm,
            subject,
            source,
            "audit_log_cleared",
            "audit log".into(),
            "ok".into(),
            format!("{removed} entries removed"),
        ));
        Ok(removed)
    }

    /// [`AuditLog::set_override`] for `subject` (from `source`), recorded whatever the settings
    /// now say.
    pub fn set_override_by(
        &self,
        settings: Option<AuditSettings>,
        subject: &str,
        source: String,
    ) -> Result<(), SecurityError> {
        if settings.as_ref().is_some_and(|s| s.remove_older_than_n_hours == Some(0)) {
            return Err(SecurityError::Invalid(
                "remove_older_than_n_hours: at least 1 (or null: keep everything)".into(),
            ));
        }
        let described = match &settings {
            Some(s) => serde_json::to_string(s).unwrap_or_default(),
            None => "back to the configuration's".into(),
        };
        self.set_override(settings)?;
        self.record_always(Event::now(
            Severity::Alarm,
            subject,
            source,
            "audit_settings_changed",
            "audit log settings".into(),
            "ok".into(),
            described,
        ));
        Ok(())
    }

    /// Whether an event of `severity` is recorded now.
    pub fn records(&self, severity: Severity) -> bool {
        let s = self.settings();
        s.enabled && severity >= s.severity
    }

    /// Append `event` when its severity is recorded: queued for the writer thread, on disk with
    /// the store's next flush (within `flush_every_ms`). A flood of refusals must not wait on
    /// the disk, and auditing never fails the request it describes: a failure is logged, and
    /// an event that finds the queue full is dropped and counted ([`AuditLog::dropped`]).
    pub fn record(&self, event: Event) {
        if self.records(event.severity) {
            self.append(event);
        }
    }

    /// Record the refusal of a caller who gave no valid credentials (`event.subject` unknown):
    /// the first [`REFUSALS_EACH`] of a minute from its source for its reason (`event.message`)
    /// one by one, the others counted and told of in one event once the minute is over. A flood
    /// of requests without a token must not fill the disk with their log.
    pub fn record_refusal(&self, event: Event) {
        if !self.records(event.severity) {
            return;
        }
        let now = event.time;
        let (record, told) = {
            let mut windows = self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut key = (event.source.clone(), event.message.clone());
            if !windows.contains_key(&key) && windows.len() >= REFUSAL_SOURCES {
                key.0 = OTHER_SOURCES.into();
            }
            let fresh = || RefusalWindow { started: now, recorded: 0, counted: 0, last: now, sample: None };
            let window = windows.entry(key.clone()).or_insert_with(fresh);
            let mut told = None;
            if now - window.started >= REFUSAL_WINDOW {
                told = summary(&key, window);
                *window = fresh();
            }
            let record = window.recorded < REFUSALS_EACH;
            if record {
                window.recorded += 1;
            } else {
                window.counted += 1;
                window.last = now;
                if window.sample.is_none() {
                    let mut sample = event.clone();
                    clip(&mut sample);
                    window.sample = Some(sample);
                }
            }
            (record, told)
        };
        if let Some(told) = told {
            self.append(told);
        }
        if record {
            self.append(event);
        }
    }

    /// Tell of the refusals counted in minutes that are over at `now` (all of them: `None`, at
    /// a stop) and forget those minutes.
    pub fn flush_refusals(&self, now: Option<DateTime<Utc>>) {
        let told: Vec<Event> = {
            let mut windows = self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let over = |w: &RefusalWindow| now.is_none_or(|now| now - w.started >= REFUSAL_WINDOW);
            let keys: Vec<(String, String)> = windows.iter().filter(|(_, w)| over(w)).map(|(k, _)| k.clone()).collect();
            keys.into_iter().filter_map(|k| windows.remove(&k).and_then(|w| summary(&k, &w))).collect()
        };
        for event in told {
            self.append(event);
        }
    }

    /// Append `event` whatever the settings: changes to the audit log itself (its settings, a
    /// clear) are always recorded, so turning it off or down leaves a trace.
    pub fn record_always(&self, event: Event) {
        self.append(event);
    }

    fn append(&self, mut event: Event) {
        clip(&mut event);
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let k = key(event.time, sequence);
        event.id = hex::encode(&k);
        let queued = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let waiting = queued.saturating_sub(self.done.load(Ordering::Acquire));
        let sent = if waiting > QUEUE as u64 { Err((k, event)) } else { self.queue.send((k, event)).map_err(|e| e.0) };
        if let Err((_, event)) = sent {
            self.done.fetch_add(1, Ordering::Release);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            // Logged for the first drop and then every 1000th, not for each.
            if dropped % 1000 == 0 {
                tracing::error!(action = %event.action, dropped = dropped + 1, "the audit queue is full; events are dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait (up to 10 s) until every event recorded before this call is written.
    pub fn written(&self) {
        self.written_within(std::time::Duration::from_secs(10));
    }

    /// [`AuditLog::written`], waiting at most `wait`.
    pub fn written_within(&self, wait: std::time::Duration) {
        let target = self.queued.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + wait;
        while self.done.load(Ordering::Acquire) < target && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Entries matching `q`, newest first.
    pub fn list(&self, q: &AuditQuery) -> Result<Vec<Event>, SecurityError> {
        self.written();
        let first = q.first.unwrap_or(100).clamp(1, 1000);
        let lower = q.from.map(|t| key(t, 0));
        let mut upper = q.to.map(|t| key(t, 0));
        if let Some(after) = &q.after {
            let k = key_of_id(after)
                .ok_or_else(|| SecurityError::Invalid(format!("after: \"{after}\" is not an entry id")))?;
            upper = Some(upper.map_or(k.clone(), |u| u.min(k)));
        }
        let text = q.text.as_ref().map(|t| t.to_lowercase());
        let mut out = Vec::new();
        let lo = lower.as_deref().map_or(Bound::Unbounded, Bound::Included);
        let hi = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for item in self.db.range(Keyspace::Audit, lo, hi, true) {
            let (_, value) = item?;
            let event: Event = serde_json::from_slice(&value).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
            if q.subject.as_ref().is_some_and(|s| *s != event.subject)
                || q.severity.is_some_and(|s| event.severity < s)
                || text.as_ref().is_some_and(|t| {
                    ![&event.action, &event.object, &event.outcome, &event.message, &event.subject]
                        .iter()
                        .any(|f| f.to_lowercase().contains(t.as_str()))
                })
            {
                continue;
            }
            out.push(event);
            if out.len() >= first {
                break;
            }
        }
        Ok(out)
    }

    /// Remove entries before `before` (`None`: now; events recorded while it runs stay);
    /// answers how many.
    pub fn remove_before(&self, before: Option<DateTime<Utc>>) -> Result<usize, SecurityError> {
        self.written();
        let upper = Some(key(before.unwrap_or_else(Utc::now), 0));
        let hi = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut removed = 0;
        loop {
            // In batches, so one commit stays small.
            let keys: Vec<Vec<u8>> = self
                .db
                .range(Keyspace::Audit, Bound::Unbounded, hi, false)
                .take(1000)
                .map(|item| item.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                return Ok(removed);
            }
            self.db.write(|tx| {
                for k in &keys {
                    tx.remove(Keyspace::Audit, k);
                }
                Ok::<_, SecurityError>(())
            })?;
            removed += keys.len();
        }
    }

    /// The retention pass: remove what `remove_older_than_n_hours` no longer keeps.
    pub fn expire(&self, now: DateTime<Utc>) -> Result<usize, SecurityError> {
        let Some(hours) = self.settings().remove_older_than_n_hours else { return Ok(0) };
        let keep =
            chrono::TimeDelta::try_hours(i64::try_from(hours).unwrap_or(i64::MAX)).unwrap_or(chrono::TimeDelta::MAX);
        match now.checked_sub_signed(keep) {
            Some(before) => self.remove_before(Some(before)),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: DateTime<Utc>, severity: Severity, subject: &str, action: &str) -> Event {
        Event {
            id: String::new(),
            time,
            severity,
            subject: subject.into(),
            source: "127.0.0.1".into(),
            action: action.into(),
            object: "/x".into(),
            outcome: "ok 200".into(),
            message: String::new(),
        }
    }

    #[test]
    fn events_are_kept_by_severity_listed_newest_first_filtered_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(Db::open(dir.path().join("db")).unwrap(), Box::new(AuditSettings::default)).unwrap();
        let now = Utc::now();
        let hour = chrono::TimeDelta::try_hours(1).unwrap();
        log.record(event(now - hour * 3, Severity::Info, "old", "token_created"));
        log.record(event(now - hour, Severity::Warning, "ann", "token_refused"));
        log.record(event(now, Severity::Info, "bob", "repair_retry"));
        log.record(event(now, Severity::Verbose, "bob", "read"));
        let all = log.list(&AuditQuery::default()).unwrap();
        assert_eq!(
            all.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
            vec!["bob", "ann", "old"],
            "VERBOSE is below INFO"
        );
        let warn = log.list(&AuditQuery { severity: Some(Severity::Warning), ..Default::default() }).unwrap();
        assert_eq!(warn.len(), 1);
        let text = log.list(&AuditQuery { text: Some("RETRY".into()), ..Default::default() }).unwrap();
        assert_eq!(text[0].subject, "bob");
        let page =
            log.list(&AuditQuery { first: Some(1), after: Some(all[0].id.clone()), ..Default::default() }).unwrap();
        assert_eq!(page[0].subject, "ann");
        let range = log.list(&AuditQuery { from: Some(now - hour * 2), to: Some(now), ..Default::default() }).unwrap();
        assert_eq!(range.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(), vec!["ann"]);
        log.set_override(Some(AuditSettings { remove_older_than_n_hours: Some(2), ..Default::default() })).unwrap();
        assert_eq!(log.expire(now).unwrap(), 1);
        assert_eq!(log.list(&AuditQuery::default()).unwrap().len(), 2);
        log.set_override(Some(AuditSettings { enabled: false, ..Default::default() })).unwrap();
        log.record(event(now, Severity::Alarm, "eve", "x"));
        assert_eq!(log.list(&AuditQuery::default()).unwrap().len(), 2, "disabled: nothing recorded");
        log.set_override(None).unwrap();
        assert!(log.records(Severity::Info) && !log.is_overridden());
        assert!(log.list(&AuditQuery { after: Some("zz".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn a_flood_of_refusals_is_recorded_ten_a_minute_a_source_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(Db::open(dir.path().join("db")).unwrap(), Box::new(AuditSettings::default)).unwrap();
        let start = Utc::now();
        let refused = |at: DateTime<Utc>, source: &str, reason: &str| {
            let mut e = event(at, Severity::Warning, "-", "authenticate");
            (e.source, e.outcome, e.message) = (source.into(), "refused 401".into(), reason.into());
            e
        };
        let second = chrono::TimeDelta::seconds(1);
        for i in 0..100 {
            log.record_refusal(refused(start + second * (i % 30), "10.0.0.1", "invalid_token"));
        }
        for _ in 0..3 {
            log.record_refusal(refused(start, "10.0.0.1", "missing_token"));
            log.record_refusal(refused(start, "10.0.0.2", "invalid_token"));
        }
        let listed = |text: &str| {
            log.list(&AuditQuery { text: Some(text.into()), first: Some(1000), ..Default::default() }).unwrap()
        };
        assert_eq!(listed("").len(), 16, "10 of the first, 3 and 3 of the others");
        // Not over yet: nothing told; over: one event for the 90.
        log.flush_refusals(Some(start + second * 59));
        assert_eq!(listed("").len(), 16);
        log.flush_refusals(Some(start + second * 60));
        let told = listed("more refusals");
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].message.starts_with("invalid_token: 90 more refusals from 10.0.0.1"), "{}", told[0].message);
        assert_eq!((told[0].source.as_str(), told[0].severity), ("10.0.0.1", Severity::Warning));
        // A new minute records ten again; the next refusal after it tells of the minute before.
        let later = start + second * 61;
        for _ in 0..12 {
            log.record_refusal(refused(later, "10.0.0.1", "invalid_token"));
        }
        log.record_refusal(refused(later + second * 60, "10.0.0.1", "invalid_token"));
        let told = listed("more refusals");
        assert_eq!(told.len(), 2);
        assert!(told[0].message.starts_with("invalid_token: 2 more"), "{}", told[0].message);
        // At a stop every count is told.
        log.record_refusal(refused(later + second * 60, "10.0.0.1", "invalid_token"));
        for _ in 0..10 {
            log.record_refusal(refused(later + second * 61, "10.0.0.1", "invalid_token"));
        }
        log.flush_refusals(None);
        assert_eq!(listed("more refusals").len(), 3);
        // Below the severity recorded: nothing, not even counted.
        log.set_override(Some(AuditSettings { severity: Severity::Alarm, ..Default::default() })).unwrap();
        log.record_refusal(refused(later, "10.0.0.9", "invalid_token"));
        log.flush_refusals(None);
        assert!(listed("10.0.0.9").is_empty());
    }
}
