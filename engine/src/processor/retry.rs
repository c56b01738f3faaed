//! The operator's repair-queue actions: list and read entries, try one or all again (processing
//! runs again with the current configuration), delete. An entry being processed is claimed and
//! left alone. Storage work runs on the blocking pool, never on a reactor thread.

use super::{Processor, State};
use crate::parked::ParkedFilter;
use crate::repair::{Entry, RepairError};
use ferrogrid_connectors::Outcome;
use serde_json::Value;
use std::sync::Arc;

/// Why a retry did not run.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such entry.
    #[error("repair-queue entry \"{0}\" not found")]
    NotFound(String),
    /// The entry is being processed right now.
    #[error("repair-queue entry \"{0}\" is being processed right now")]
    Busy(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Draining,
    /// The repair queue failed.
    #[error(transparent)]
    Repair(#[from] RepairError),
    /// A bug: the work panicked or was cancelled.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

/// Run storage work on the blocking pool: never on a reactor thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RetryError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RetryError::Internal(e.to_string()))
}

impl Processor {
    /// Retry one repair-queue entry now (optionally with an edited payload and who edited it)
    /// and return the outcome.
    pub async fn retry(self: &Arc<Self>, id: &str, edited: Option<(Value, String)>) -> Result<Outcome, RetryError> {
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        // The permit first: waiting for it is the only await before the job is queued, so a
        // caller that goes away meanwhile leaves nothing claimed or half-started.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Err(RetryError::Draining);
        };
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        if !self.claim(id) {
            return Err(RetryError::Busy(id.to_string()));
        }
        // Claimed: from here on the retry goes on in a task of its own, whether the caller
        // waits for it or not, so nothing is left claimed or half-started.
        let (engine, id) = (self.clone(), id.to_string());
        let retried = tokio::spawn(async move {
            let (rt, wanted) = (engine.rt.clone(), id.clone());
            let started = blocking(move || rt.repair.start_retry(&wanted, edited)).await;
            let entry = match started {
                Ok(Ok(Some(entry))) => entry,
                Ok(Ok(None)) => {
                    engine.release(&id);
                    return Err(RetryError::NotFound(id));
                }
                Ok(Err(e)) => {
                    engine.release(&id);
                    return Err(e.into());
                }
                Err(e) => {
                    engine.release(&id);
                    return Err(e);
                }
            };
            engine.submit(entry, permit).await.ok_or(RetryError::Draining)
        });
        retried.await.unwrap_or_else(|e| Err(RetryError::Internal(e.to_string())))
    }

    /// Entries matching `filter`, newest first, and the cursor of the next page.
    pub async fn list(&self, filter: ParkedFilter) -> Result<(Vec<Entry>, Option<String>), RetryError> {
        let rt = self.rt.clone();
        Ok(blocking(move || rt.repair.list(&filter)).await??)
    }

    /// Entry `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Entry>, RetryError> {
        let (rt, id) = (self.rt.clone(), id.to_string());
        Ok(blocking(move || rt.repair.get(&id)).await??)
    }

    /// Retry every failed entry matching `filter` in the background; returns how many.
    pub async fn retry_all(self: &Arc<Self>, filter: ParkedFilter) -> Result<usize, RetryError> {
        if self.state() == State::Draining {
            return Err(RetryError::Draining);
        }
        let rt = self.rt.clone();
        let matching = blocking(move || rt.repair.all_matching(&filter)).await??;
        let ids: Vec<String> = matching.into_iter().filter(|e| !e.is_unfinished()).map(|e| e.id).collect();
        let count = ids.len();
        // One retry at a time, in the background: the queue is worked through at the engine's
        // pace while new objects keep their permits (a waiter per entry would take every permit
        // freed), and a shutdown stops it between two entries.
        let engine = self.clone();
        actix_rt::spawn(async move {
            for id in ids {
                if engine.state() == State::Draining {
                    return;
                }
                if let Err(e) = engine.retry(&id, None).await {
                    tracing::debug!(id, error = %e, "retry skipped");
                }
            }
        });
        Ok(count)
    }

    /// Delete entry `id`; false if there is none. An entry being processed is not deleted.
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<bool, RetryError> {
        if !self.claim(id) {
            return Err(RetryError::Busy(id.to_string()));
        }
        // Claimed: the deletion goes on in a task of its own, which releases the claim.
        let (engine, id) = (self.clone(), id.to_string());
        let deleted = tokio::spawn(async move {
            let (rt, wanted) = (engine.rt.clone(), id.clone());
            let deleted = blocking(move || rt.repair.delete(&wanted)).await;
            engine.release(&id);
            Ok(deleted??)
        });
        deleted.await.unwrap_or_else(|e| Err(RetryError::Internal(e.to_string())))
    }

    /// Delete every entry matching `filter` except those being processed; returns how many.
    pub async fn delete_matching(self: &Arc<Self>, filter: ParkedFilter) -> Result<usize, RetryError> {
        let rt = self.rt.clone();
        let matching = blocking(move || rt.repair.all_matching(&filter)).await??;
        // Each is claimed before it is deleted, so that one being processed (accepted or retried
        // since the listing) is left alone; the deletion goes on in a task of its own, which
        // releases the claims.
        let claimed: Vec<String> = matching.into_iter().map(|e| e.id).filter(|id| self.claim(id)).collect();
        let processor = self.clone();
        let deleted = tokio::spawn(async move {
            let (rt, ids) = (processor.rt.clone(), claimed.clone());
            let deleted = blocking(move || {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                rt.repair.delete_ids(&ids)
            })
            .await;
            for id in &claimed {
                processor.release(id);
            }
            Ok(deleted??)
        });
        deleted.await.unwrap_or_else(|e| Err(RetryError::Internal(e.to_string())))
    }
}
