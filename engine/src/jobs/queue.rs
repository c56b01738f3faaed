//! The persistent job queue (the `Jobs` keyspace): `p<id>` pending jobs, `f<id>` failed jobs
//! (TDG's failed-jobs queue). A job's key is its UUIDv7 id all its life, so pending jobs scan in
//! the order pushed and a failed job is found from its id.

use crate::parked::Shelf;
use crate::storage::{Db, Keyspace, ReadView, StorageError, WriteTx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PENDING: u8 = b'p';
const FAILED: u8 = b'f';
/// Where the failed jobs are.
const FAILED_SHELF: Shelf = Shelf::new(Keyspace::Jobs, &[FAILED], "job record");

/// One job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Job id (stays the same when a failed job is tried again).
    pub id: String,
    /// The pipeline or function it runs.
    pub name: String,
    /// Its `param`.
    pub args: Value,
    /// Runs that failed.
    pub attempts: u32,
    /// When it was pushed (ISO 8601 UTC).
    pub created_at: String,
    /// The last error (failed jobs).
    pub error: Option<String>,
    /// When it last failed.
    pub failed_at: Option<String>,
}

fn key(kind: u8, id: &uuid::Uuid) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(id.as_bytes());
    k
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("job record: {e}"))
}

fn encode(job: &Job) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(job).map_err(corrupt)
}

/// The job queue of one database, and the bell the runner waits on.
pub struct Jobs {
    db: Db,
    /// Rung when there may be new pending jobs.
    bell: tokio::sync::watch::Sender<u64>,
}

impl Jobs {
    /// The queue in `db`.
    pub fn new(db: Db) -> Jobs {
        Jobs { db, bell: tokio::sync::watch::Sender::new(0) }
    }

    fn new_job(name: &str, args: Value) -> (uuid::Uuid, Job) {
        let id = uuid::Uuid::now_v7();
        let job = Job {
            id: id.to_string(),
            name: name.to_string(),
            args,
            attempts: 0,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            error: None,
            failed_at: None,
        };
        (id, job)
    }

    /// Stage a new pending job in `tx` (committed with whatever else `tx` holds); call
    /// [`Jobs::ring`] after the commit.
    pub fn stage_in(&self, tx: &mut WriteTx<'_>, name: &str, args: Value) -> Result<(), StorageError> {
        let (id, job) = Self::new_job(name, args);
        tx.insert(Keyspace::Jobs, &key(PENDING, &id), encode(&job)?);
        Ok(())
    }

    /// Push a job now (outside an object's processing: tasks, services, jobs).
    pub fn push(&self, name: &str, args: Value) -> Result<(), StorageError> {
        self.db.write(|tx| self.stage_in(tx, name, args))?;
        self.ring();
        Ok(())
    }

    /// Tell the runner that there may be new jobs.
    pub fn ring(&self) {
        self.bell.send_modify(|rings| *rings += 1);
    }

    /// The bell: changes at each ring.
    pub fn bell(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bell.subscribe()
    }

    /// Up to `n` pending jobs, oldest first, leaving out the keys in `running`. (Always from the
    /// start: a job committed late may sort before one that already ran.)
    pub fn pending(
        &self,
        running: &std::collections::HashSet<Vec<u8>>,
        n: usize,
    ) -> Result<Vec<(Vec<u8>, Job)>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(Keyspace::Jobs, &[PENDING]) {
            if out.len() >= n {
                break;
            }
            let (k, bytes) = item?;
            if running.contains(k.as_ref()) {
                continue;
            }
            match crate::storage::from_stored(&bytes) {
                Ok(job) => out.push((k.to_vec(), job)),
                // One damaged record must not stop the queue: it stays for an operator to see.
                Err(e) => tracing::error!(key = %hex::encode(&k), error = %e, "skipping an unreadable pending job"),
            }
        }
        Ok(out)
    }

    fn count(&self, kind: u8) -> Result<usize, StorageError> {
        let mut n = 0;
        for item in self.db.scan_prefix(Keyspace::Jobs, &[kind]) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Pending jobs.
    pub fn pending_count(&self) -> Result<usize, StorageError> {
        self.count(PENDING)
    }

    /// Failed jobs.
    pub fn failed_count(&self) -> Result<usize, StorageError> {
        self.count(FAILED)
    }

    /// The pending job `key` ran well: gone.
    pub fn done(&self, key: &[u8]) -> Result<(), StorageError> {
        self.db.write(|tx| {
            tx.remove(Keyspace::Jobs, key);
            Ok::<_, StorageError>(())
        })
    }

    /// The pending job `key` failed: it moves to the failed jobs with the error.
    pub fn failed(&self, key: &[u8], mut job: Job, error: String) -> Result<(), StorageError> {
        job.attempts += 1;
        job.error = Some(error);
        job.failed_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let mut failed_key = key.to_vec();
        failed_key[0] = FAILED;
        let bytes = encode(&job)?;
        self.db.write(|tx| {
            tx.remove(Keyspace::Jobs, key);
            tx.insert(Keyspace::Jobs, &failed_key, bytes);
            Ok::<_, StorageError>(())
        })
    }

    /// Move the failed jobs `ids` back to the pending jobs (`to_pending`) or delete them, in one
    /// commit; how many were there. A job keeps its key (its id) all its life, so its place is
    /// found from the id.
    fn take_failed(&self, ids: &[&str], to_pending: bool) -> Result<usize, StorageError> {
        let moved = FAILED_SHELF.take(&self.db, ids, |tx, job: Job| {
            if to_pending {
                let uuid = uuid::Uuid::parse_str(&job.id).map_err(|e| StorageError::Corrupt(format!("job id: {e}")))?;
                tx.insert(Keyspace::Jobs, &key(PENDING, &uuid), encode(&job)?);
            }
            Ok::<_, StorageError>(())
        })?;
        if moved > 0 && to_pending {
            self.ring();
        }
        Ok(moved)
    }

    /// Put the failed jobs `ids` back with the pending ones in one commit; how many.
    pub fn retry_ids(&self, ids: &[&str]) -> Result<usize, StorageError> {
        self.take_failed(ids, true)
    }
}

impl crate::parked::ParkedQueue for Jobs {
    type Item = Job;

    fn shelf(&self) -> (&Db, Shelf) {
        (&self.db, FAILED_SHELF)
    }

    fn delete_ids(&self, ids: &[&str]) -> Result<crate::parked::Taken, crate::repair::RepairError> {
        Ok(crate::parked::Taken { taken: self.take_failed(ids, false)?, left: 0 })
    }
}

impl crate::parked::Parked for Job {
    fn id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> &str {
        &self.created_at
    }

    /// The id, name, args or error.
    fn contains(&self, needle: &str) -> bool {
        use crate::parked::found;
        [self.id.as_str(), &self.name].iter().any(|f| found(f, needle))
            || found(&self.args.to_string(), needle)
            || self.error.as_deref().is_some_and(|e| found(e, needle))
    }
}
