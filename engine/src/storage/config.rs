//! Configuration of the storage (sled tuning) and of the per-request hard limits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_cache_capacity_mb() -> u64 {
    256
}

fn default_flush_every_ms() -> u64 {
    500
}

fn default_compression() -> bool {
    false
}

fn default_sequence_start() -> i64 {
    1
}

fn default_sequence_range() -> i64 {
    100
}

fn default_scanned() -> u64 {
    2000
}

fn default_returned() -> u64 {
    100
}

/// Tuning of the embedded sled database.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StorageConfig {
    /// Size of sled's page cache in MiB.
    #[serde(default = "default_cache_capacity_mb")]
    pub cache_capacity_mb: u64,
    /// Interval of sled's own background flush in milliseconds (0 disables it). Writes that were
    /// not followed by an explicit `sync()` reach the disk at the latest after this interval.
    #[serde(default = "default_flush_every_ms")]
    pub flush_every_ms: u64,
    /// zstd compression (level 1) of what sled writes (`ferrogrid run --compress-storage`; off by
    /// default: it slows the storage actor's commits, docs/performance.md). Decided when a data
    /// directory is created; an existing one keeps what it was created with (sled refuses to
    /// switch), and a start with the other setting says so in the log.
    #[serde(default = "default_compression")]
    pub compression: bool,
    /// First number of a new sequence.
    #[serde(default = "default_sequence_start")]
    pub sequence_start: i64,
    /// Sequence numbers reserved on disk at a time (a crash may skip up to this many).
    #[serde(default = "default_sequence_range")]
    pub sequence_range: i64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            cache_capacity_mb: default_cache_capacity_mb(),
            flush_every_ms: default_flush_every_ms(),
            compression: default_compression(),
            sequence_start: default_sequence_start(),
            sequence_range: default_sequence_range(),
        }
    }
}

/// Limits of one repository request (TDG's `hard_limits` section).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HardLimits {
    /// Maximum number of index entries one request may read before it fails.
    #[serde(default = "default_scanned")]
    pub scanned: u64,
    /// Maximum number of objects one request may return before it fails.
    #[serde(default = "default_returned")]
    pub returned: u64,
}

impl Default for HardLimits {
    fn default() -> Self {
        HardLimits { scanned: default_scanned(), returned: default_returned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_keys_are_rejected() {
        let l: HardLimits = serde_json::from_str("{}").unwrap();
        assert_eq!(l, HardLimits { scanned: 2000, returned: 100 });
        let c: StorageConfig = serde_json::from_str(r#"{"flush_every_ms": 0}"#).unwrap();
        assert_eq!(c.cache_capacity_mb, 256);
        assert_eq!(c.flush_every_ms, 0);
        assert!(serde_json::from_str::<HardLimits>(r#"{"scaned": 1}"#).is_err());
    }
}
