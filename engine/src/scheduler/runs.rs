//! Task runs and task state on disk (the `Tasks` keyspace): `run/<task>\0<run id>` -> the run,
//! `state/<task>` -> when it last fired and whether an operator stopped it.

use crate::storage::{Db, Keyspace, ReadView, StorageError};
use serde::{Deserialize, Serialize};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, waiting for a worker.
    Pending,
    /// Its pipeline is running.
    Running,
    /// The pipeline returned.
    Completed,
    /// The pipeline failed (or the engine stopped during the run).
    Failed,
    /// An operator stopped it.
    Stopped,
}

/// One run of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRun {
    /// Run id (UUIDv7, time-ordered).
    pub id: String,
    /// The task.
    pub task: String,
    /// The task's kind.
    pub kind: String,
    /// Where the run is.
    pub status: RunStatus,
    /// When it started (ISO 8601 UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The pipeline's value as JSON text, cut to 1,000 characters.
    pub result: Option<String>,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

impl TaskRun {
    /// Whether the run has ended.
    pub fn finished(&self) -> bool {
        !matches!(self.status, RunStatus::Pending | RunStatus::Running)
    }
}

/// What the scheduler remembers of a task across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskState {
    /// When the task last fired on its schedule (periodical tasks).
    pub last_fired_at: Option<String>,
    /// The schedule it last fired on: a slot of another schedule missed since is not caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_on: Option<String>,
    /// An operator stopped it: it is not scheduled until started again.
    pub stopped: bool,
}

fn run_prefix(task: &str) -> Vec<u8> {
    let mut key = format!("run/{task}").into_bytes();
    key.push(0);
    key
}

fn run_key(task: &str, id: &str) -> Vec<u8> {
    let mut key = run_prefix(task);
    key.extend_from_slice(id.as_bytes());
    key
}

fn state_key(task: &str) -> Vec<u8> {
    format!("state/{task}").into_bytes()
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("task record: {e}"))
}

/// Task runs and states of one database.
#[derive(Clone)]
pub struct RunStore {
    db: Db,
}

impl RunStore {
    /// The store in `db`.
    pub fn new(db: Db) -> RunStore {
        RunStore { db }
    }

    /// Write (create or update) a run.
    pub fn put(&self, run: &TaskRun) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(run).map_err(corrupt)?;
        self.db.write(|tx| {
            tx.insert(Keyspace::Tasks, &run_key(&run.task, &run.id), bytes);
            Ok(())
        })
    }

    /// The runs of `task`, newest first.
    pub fn list(&self, task: &str) -> Result<Vec<TaskRun>, StorageError> {
        let mut runs = Vec::new();
        for item in self.db.scan_prefix(Keyspace::Tasks, &run_prefix(task)) {
            let (_, bytes) = item?;
            runs.push(crate::storage::from_stored::<TaskRun>(&bytes).map_err(corrupt)?);
        }
        runs.reverse();
        Ok(runs)
    }

    /// Keep the newest `keep` finished runs of `task`; delete the older ones.
    pub fn trim(&self, task: &str, keep: usize) -> Result<(), StorageError> {
        let old: Vec<TaskRun> = self.list(task)?.into_iter().filter(TaskRun::finished).skip(keep).collect();
        if old.is_empty() {
            return Ok(());
        }
        self.db.write(|tx| {
            for run in &old {
                tx.remove(Keyspace::Tasks, &run_key(&run.task, &run.id));
            }
            Ok(())
        })
    }

    /// Delete the finished run `id` of any task; `Ok(false)` when there is none. A run that has
    /// not ended cannot be forgotten.
    pub fn forget(&self, id: &str) -> Result<Result<bool, String>, StorageError> {
        for item in self.db.scan_prefix(Keyspace::Tasks, b"run/") {
            let (key, bytes) = item?;
            let run: TaskRun = crate::storage::from_stored(&bytes).map_err(corrupt)?;
            if run.id == id {
                if !run.finished() {
                    return Ok(Err(format!("run \"{id}\" of task \"{}\" has not ended", run.task)));
                }
                let key = key.to_vec();
                self.db.write(|tx| {
                    tx.remove(Keyspace::Tasks, &key);
                    Ok::<_, StorageError>(())
                })?;
                return Ok(Ok(true));
            }
        }
        Ok(Ok(false))
    }

    /// Mark the runs that had not ended when the engine stopped as failed.
    pub fn fail_unfinished(&self, at: &str) -> Result<usize, StorageError> {
        let mut failed = 0;
        for item in self.db.scan_prefix(Keyspace::Tasks, b"run/") {
            let (_, bytes) = item?;
            let mut run: TaskRun = crate::storage::from_stored(&bytes).map_err(corrupt)?;
            if !run.finished() {
                run.status = RunStatus::Failed;
                run.finished_at = Some(at.to_string());
                run.error = Some("the engine stopped during the run".into());
                self.put(&run)?;
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// The remembered state of `task`.
    pub fn state(&self, task: &str) -> Result<TaskState, StorageError> {
        match self.db.get(Keyspace::Tasks, &state_key(task))? {
            Some(bytes) => crate::storage::from_stored(&bytes).map_err(corrupt),
            None => Ok(TaskState::default()),
        }
    }

    /// Remember the state of `task`.
    pub fn set_state(&self, task: &str, state: &TaskState) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(state).map_err(corrupt)?;
        self.db.write(|tx| {
            tx.insert(Keyspace::Tasks, &state_key(task), bytes);
            Ok(())
        })
    }
}
