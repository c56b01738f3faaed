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
