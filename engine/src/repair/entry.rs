//! One repair-queue entry and its lifecycle.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// TDG's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Accepted and waiting (no error), or failed on its first processing (error set).
    New,
    /// Being processed again after an operator's retry.
    #[serde(rename = "In Progress")]
    InProgress,
    /// An operator's retry failed again.
    Reworked,
}

/// One past attempt, kept in the entry's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// When it ended (failure) or started (retry).
    pub at: String,
    /// What happened: `failed`, `retried`, `edited`.
    pub event: String,
    /// The error, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Stage that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Function that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Who asked for a retry or edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The payload before an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_payload: Option<Value>,
}

/// Why processing an object failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The stage: `input`, `connector routing`, `classifier`, `routing`, `storage`, `validation`, `output`.
    pub stage: &'static str,
    /// The function that failed, when a script failed.
    pub function: Option<String>,
    /// The routing key the object had when it failed.
    pub routing_key: Option<String>,
    /// The error text.
    pub error: String,
    /// The aggregate type and primary key the object had become when it failed (validation,
    /// storage), when they are known: the journal records them, so a stored object's failed
    /// updates can be found from it.
    pub object: Option<Box<(String, Value)>>,
}

/// A repair-queue entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Object id (UUIDv7).
    pub id: String,
    /// Status.
    pub status: Status,
    /// Input that received the object.
    pub input: String,
    /// Kind of source (`http`, ...).
    pub source: String,
    /// Routing key at the time of failure.
    pub routing_key: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// The stage that failed.
    pub stage: Option<String>,
    /// The function that failed.
    pub function: Option<String>,
    /// Processing attempts that ended in failure.
    pub attempts: u32,
    /// When the object was accepted.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// The object as received (or as last edited by an operator).
    pub payload: Value,
    /// Past attempts, newest last, bounded by `repair_queue.history_size`.
    #[serde(default)]
    pub history: Vec<Attempt>,
    /// The version to store it with (`POST /http?version=N`); none: a new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The intake-log segment holding this entry's record (for its done marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_segment: Option<u64>,
    /// Set while the entry lives only in the intake log (a fresh object being processed): the
    /// commit that ends its processing writes a done marker or the entry, then settles it. None
    /// for an entry read from the repair queue.
    #[serde(skip)]
    pub unsettled: Option<std::sync::Arc<crate::storage::Unsettled>>,
    /// The size of its intake-log record, when it was just received (for the journal).
    #[serde(skip)]
    pub size: Option<u64>,
}

/// Now as an ISO-8601 UTC string with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl crate::storage::LogRecord for Entry {
    fn id(&self) -> &str {
        &self.id
    }
    fn segment(&self) -> Option<u64> {
        self.wal_segment
    }
    fn set_segment(&mut self, segment: u64) {
        self.wal_segment = Some(segment);
    }
    fn set_size(&mut self, bytes: usize) {
        self.size = Some(bytes as u64);
    }
}

impl Entry {
    /// A fresh entry for a just-received object.
    pub fn new(id: String, input: &str, source: &str, payload: Value) -> Entry {
        let at = now();
        Entry {
            id,
            status: Status::New,
            input: input.to_string(),
            source: source.to_string(),
            routing_key: None,
            error: None,
            stage: None,
            function: None,
            attempts: 0,
            created_at: at.clone(),
            updated_at: at,
            payload,
            history: Vec::new(),
            version: None,
            wal_segment: None,
            unsettled: None,
            size: None,
        }
    }

    /// Whether processing had not finished (to be resumed at start).
    pub fn is_unfinished(&self) -> bool {
        self.status == Status::InProgress || (self.status == Status::New && self.error.is_none())
    }

    fn push_history(&mut self, attempt: Attempt, history_size: usize) {
        self.history.push(attempt);
        if self.history.len() > history_size {
            let excess = self.history.len() - history_size;
            self.history.drain(..excess);
        }
    }

    /// Record a failed attempt.
    pub fn record_failure(&mut self, failure: &Failure, history_size: usize) {
        let at = now();
        self.status = if self.status == Status::InProgress { Status::Reworked } else { Status::New };
        self.attempts += 1;
        self.error = Some(failure.error.clone());
        self.stage = Some(failure.stage.to_string());
        self.function = failure.function.clone();
        if failure.routing_key.is_some() {
            self.routing_key = failure.routing_key.clone();
        }
        self.updated_at = at.clone();
        self.push_history(
            Attempt {
                at,
                event: "failed".into(),
                error: Some(failure.error.clone()),
                stage: Some(failure.stage.to_string()),
                function: failure.function.clone(),
                by: None,
                previous_payload: None,
            },
            history_size,
        );
    }

    /// Mark an operator's retry, optionally replacing the payload (`(new payload, who)`).
    pub fn start_retry(&mut self, edited: Option<(Value, String)>, history_size: usize) {
        let at = now();
        self.status = Status::InProgress;
        self.updated_at = at.clone();
        let (event, by, previous) = match edited {
            Some((payload, by)) => {
                let previous = std::mem::replace(&mut self.payload, payload);
                ("edited", Some(by), Some(previous))
            }
            None => ("retried", None, None),
        };
        self.push_history(
            Attempt {
                at,
                event: event.into(),
                error: None,
                stage: None,
                function: None,
                by,
                previous_payload: previous,
            },
            history_size,
        );
    }
}
