//! Ferrogrid storage: one sled database, keyspaces, atomic write transactions, group commit,
//! versioned objects with order-preserving (memcomparable) secondary indexes.
//!
//! The storage is schema-agnostic: the engine maps its domain model onto [`TypeSpec`] and calls
//! the versioned-object functions in [`objects`]. Other engine modules (repair queue, output queue,
//! jobs, ...) use [`Db`] with their own [`Keyspace`] through [`ReadView`] and [`Db::write`].
//!
//! See README.md for the key layout and the durability guarantee of [`Db::sync`].

pub mod catalog;
mod config;
pub mod config_versions;
mod cursor;
mod db;
mod error;
pub mod expire;
mod filter;
mod flusher;
mod intake_log;
mod keycodec;
mod keys;
mod keyspace;
mod options;
mod plan;
mod record;
mod scan;
mod sequence;
mod sled_store;
mod spec;
mod store;
mod tx;
mod updater;
mod write;

pub mod objects;

pub use self::config::{HardLimits, StorageConfig};
pub use self::db::{Db, KvIter, ReadView};
pub use self::error::{ErrorClass, StorageError};
pub use self::filter::{Condition, Op};
pub use self::intake_log::{mark_done, DoneBatch, IntakeLog, IntakeLogError, LogRecord, Unsettled};
pub use self::keyspace::Keyspace;
pub use self::options::{DeleteOptions, FindOptions, Page, PutOptions, Stored, UpdateOptions};
pub use self::sled_store::SledStore;
pub use self::spec::{Collation, IndexSpec, KeyKind, PartSpec, PathSeg, TypeSpec};
pub use self::store::{RawIter, Store};
pub use self::tx::WriteTx;
pub use self::updater::{Updater, UpdaterOp};
pub use sled::IVec;

/// Memcomparable encoding of single values, for engine modules that build their own ordered
/// keys (repair queue by time, jobs by id, ...).
pub mod codec {
    pub use super::keycodec::{
        encode_bool, encode_f64, encode_i64, encode_str, encode_str_prefix, encode_u64, encode_u64_desc,
        prefix_successor,
    };
}

/// Decodes a JSON record the engine stored itself (an object version, an intake-log record, a
/// repair-queue entry, a delivery, a job, a task run, a journal line). Those records hold payloads
/// as deep as an input (`max_depth`, at most 200) or a script (`sandbox.max_value_depth`, at most
/// 500) may make them, plus the record's own levels, so serde_json's own limit (128 levels)
/// would refuse some records the engine accepted and wrote; the writers bound the depth instead.
pub fn from_stored<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
pub(crate) mod test_util;
#[cfg(test)]
mod tests_durability;
#[cfg(test)]
mod tests_find;
#[cfg(test)]
mod tests_store;
#[cfg(test)]
mod tests_write;
