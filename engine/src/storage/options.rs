//! Options and results of repository operations (TDG semantics; see README).

use super::config::HardLimits;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Page size when `first` is not given (as in TDG).
pub const DEFAULT_FIRST: i64 = 10;

/// Options of `find` / `get`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct FindOptions {
    /// Page size (default 10); negative: the page before `after`, still returned in index order.
    pub first: Option<i64>,
    /// Cursor of an item of a previous page of the same query: continue after (before) it.
    pub after: Option<String>,
    /// Every object as of the newest version <= this one.
    pub version: Option<u64>,
    /// Every version of every matching object (newest first per object), not just the latest.
    pub all_versions: bool,
    /// Include deleted objects (their tombstone version, `deleted: true`).
    pub dont_skip_deleted: bool,
    /// TDG's routing inside a replica set (`read`: any member, `write`: the master): accepted,
    /// and the same on one node, which has every object.
    pub mode: Option<ReadMode>,
    /// TDG: prefer a replica. Accepted; one node has none.
    pub prefer_replica: bool,
    /// TDG: spread reads over the replica set. Accepted; one node has nothing to spread over.
    pub balance: bool,
    /// Limits set by the engine from its configuration, not by the request.
    #[serde(skip)]
    pub hard_limits: HardLimits,
}

/// TDG's `mode` option of reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Any member of the replica set.
    Read,
    /// The master.
    Write,
}

/// Options of `put`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct PutOptions {
    /// Optimistic lock: fail with a conflict unless the current version is exactly this one.
    pub only_if_version: Option<u64>,
    /// Do nothing when a live object with this primary key exists (the existing one is returned).
    pub if_not_exists: bool,
    /// Write with this version (TDG's explicit versions): newer than the object's latest version
    /// it becomes the current one; older, it lands in history and the current state stays;
    /// equal to a stored version, it replaces that version.
    pub version: Option<u64>,
}

/// Options of `update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct UpdateOptions {
    /// At most this many matching objects are updated (default: every match, within the hard
    /// limits).
    pub first: Option<i64>,
    /// Continue after this cursor (as in `find`).
    pub after: Option<String>,
    /// Optimistic lock: every matched object must have exactly this current version.
    pub only_if_version: Option<u64>,
    /// Write the new versions with this version (see [`PutOptions::version`]).
    pub version: Option<u64>,
    /// Match deleted objects too (their last state; the update makes them live again).
    pub dont_skip_deleted: bool,
    /// Limits set by the engine from its configuration.
    #[serde(skip)]
    pub hard_limits: HardLimits,
}

/// Options of `delete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct DeleteOptions {
    /// At most this many matching objects are deleted (default: every match, within the hard
    /// limits).
    pub first: Option<i64>,
    /// Continue after this cursor (as in `find`).
    pub after: Option<String>,
    /// Optimistic lock: every matched object must have exactly this current version.
    pub only_if_version: Option<u64>,
    /// Required together with `permanent_delete`.
    pub all_versions: bool,
    /// Remove every version and index entry instead of writing a tombstone.
    pub permanent_delete: bool,
    /// Write the tombstones with this version (see [`PutOptions::version`]).
    pub version: Option<u64>,
    /// Match objects that are deleted already too.
    pub dont_skip_deleted: bool,
    /// Limits set by the engine from its configuration.
    #[serde(skip)]
    pub hard_limits: HardLimits,
}

/// One object version as returned by the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// The object (for a deleted object: its last state).
    pub object: Value,
    /// Its version.
    pub version: u64,
    /// Opaque position for `after` (pagination).
    pub cursor: String,
    /// Whether this version is a tombstone.
    pub deleted: bool,
    /// The configuration version it was written under (0: before versions were recorded).
    #[serde(default)]
    pub config_version: u64,
}

/// A page of results, in index order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The objects.
    pub items: Vec<Stored>,
    /// Index entries read to build the page.
    pub scanned: u64,
}
