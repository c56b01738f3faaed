//! The contract between inputs and the engine: an input hands a received object to an [`Intake`],
//! which makes it durable (the repair queue) before the input acknowledges it to its peer.

use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (what trait methods here return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One object as an input received it, before any pipeline ran.
#[derive(Debug, Clone)]
pub struct Received {
    /// Name of the input in `connector.input`.
    pub input: String,
    /// Kind of source (`http`, `soap`, `kafka`), shown in the repair queue.
    pub source: &'static str,
    /// The object as received.
    pub payload: Value,
    /// An explicit version to store it with (`POST /http?version=N`); `None`: a new version.
    pub version: Option<u64>,
}

/// How long the input waits before answering its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until the object is durably accepted (in the repair queue, on disk).
    Durable,
    /// Until processing has ended (stored, routed or kept in the repair queue).
    Outcome,
}

/// What processing made of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Stored as an aggregate.
    Stored,
    /// Sent to a connector output.
    Routed,
    /// Kept in the repair queue with an error.
    Repair,
    /// Accepted and on disk, but the engine shut down before processing ended; it is processed
    /// at the next start.
    Pending,
}

/// The answer of a synchronous request (`?sync=true`).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Object id (the repair-queue id).
    pub id: String,
    /// What happened.
    pub status: OutcomeStatus,
    /// The routing key the object ended with.
    pub routing_key: Option<String>,
    /// The aggregate type it was stored as.
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// The version written.
    pub version: Option<u64>,
    /// Why it is in the repair queue.
    pub error: Option<String>,
}

/// The answer of an intake.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Object id (the repair-queue id).
    pub id: String,
    /// The outcome, when [`Wait::Outcome`] was asked for.
    pub outcome: Option<Outcome>,
}

/// Why an object was not accepted (the peer still has it and may send it again).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Too much work is queued: try again later.
    #[error("the engine is busy: too many objects in flight, retry later")]
    Busy,
    /// The engine is still starting.
    #[error("the engine is starting, retry later")]
    Starting,
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Draining,
    /// Storage failed; nothing was acknowledged.
    #[error("internal error: {0}")]
    Internal(String),
    /// The input may not post now (its token is blocked, expired, gone, or its role lacks
    /// `input_post`): nothing was acknowledged; try again once that is fixed.
    #[error("refused: {0}")]
    Refused(String),
}

/// The engine's entrance for received objects.
pub trait Intake: Send + Sync + 'static {
    /// Make `received` durable and schedule its processing; resolves according to `wait`.
    fn accept(&self, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>>;
}

/// An in-memory intake for the inputs' tests: records what it receives; answers `Busy` when
/// told to; a waited-for outcome says stored as `User` version 7 under routing key `User`.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Recorder {
    /// What was received, in order.
    pub got: std::sync::Mutex<Vec<Received>>,
    /// Refuse everything as busy.
    pub busy: bool,
}

#[cfg(test)]
impl Intake for Recorder {
    fn accept(&self, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        if self.busy {
            return Box::pin(async { Err(IntakeError::Busy) });
        }
        let mut got = self.got.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        got.push(received);
        let id = format!("id-{}", got.len());
        let outcome = (wait == Wait::Outcome).then(|| Outcome {
            id: id.clone(),
            status: OutcomeStatus::Stored,
            routing_key: Some("User".into()),
            type_name: Some("User".into()),
            version: Some(7),
            error: None,
        });
        Box::pin(async move { Ok(Accepted { id, outcome }) })
    }
}
