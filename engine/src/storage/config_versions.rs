//! The configuration versions a data directory has run: every applied configuration (its files,
//! who applied it, when, how, what changed) and which one is active, in the store's metadata
//! (`Meta` keyspace): `config/active` (the version, u64 big-endian), `config/i/<version>` (what
//! is listed) and `config/f/<version>` (the files). Version numbers start at 1 and only grow.

use super::db::{Db, ReadView};
use super::error::StorageError;
use super::keyspace::Keyspace;
use super::tx::WriteTx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The files of a configuration by relative path.
pub type Files = BTreeMap<String, String>;

const ACTIVE: &[u8] = b"config/active";
const INFO: &[u8] = b"config/i/";
const FILES: &[u8] = b"config/f/";

/// Which files a version added, removed or changed, against the version before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Files that are new.
    pub added: Vec<String>,
    /// Files that are gone.
    pub removed: Vec<String>,
    /// Files whose contents changed.
    pub modified: Vec<String>,
}

impl Changes {
    /// The difference from `old` to `new`.
    pub fn between(old: &Files, new: &Files) -> Changes {
        let mut changes = Changes::default();
        for (name, text) in new {
            match old.get(name) {
                None => changes.added.push(name.clone()),
                Some(before) if before != text => changes.modified.push(name.clone()),
                Some(_) => {}
            }
        }
        changes.removed = old.keys().filter(|name| !new.contains_key(*name)).cloned().collect();
        changes
    }
}

/// What is recorded of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u64,
    /// The checksum of its files.
    pub checksum: String,
    /// When it was applied (RFC 3339).
    pub applied_at: String,
    /// Who applied it (the token's name, or `ferrogrid run` at a start).
    pub applied_by: String,
    /// How: `start`, `upload`, or `rollback to N`.
    pub how: String,
    /// Its files' changes against the version active before it.
    pub changed: Changes,
    /// The top-level sections of config.yml whose values changed.
    #[serde(default)]
    pub sections_changed: Vec<String>,
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("configuration versions: {e}"))
}

fn key(prefix: &[u8], version: u64) -> Vec<u8> {
    [prefix, &version.to_be_bytes()].concat()
}

/// The active version's number, if any was recorded.
pub fn active(db: &Db) -> Result<Option<u64>, StorageError> {
    let Some(bytes) = db.get(Keyspace::Meta, ACTIVE)? else { return Ok(None) };
    let bytes: [u8; 8] = bytes.as_ref().try_into().map_err(corrupt)?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// What is recorded of `version`.
pub fn info(db: &Db, version: u64) -> Result<Option<VersionInfo>, StorageError> {
    db.get(Keyspace::Meta, &key(INFO, version))?.map(|b| serde_json::from_slice(&b).map_err(corrupt)).transpose()
}

/// The files of `version`.
pub fn files(db: &Db, version: u64) -> Result<Option<Files>, StorageError> {
    db.get(Keyspace::Meta, &key(FILES, version))?.map(|b| serde_json::from_slice(&b).map_err(corrupt)).transpose()
}

/// Every recorded version, oldest first.
pub fn list(db: &Db) -> Result<Vec<VersionInfo>, StorageError> {
    let mut out = Vec::new();
    for item in db.scan_prefix(Keyspace::Meta, INFO) {
        let (_, value) = item?;
        out.push(serde_json::from_slice(&value).map_err(corrupt)?);
    }
    Ok(out)
}

/// The number the next recorded version gets.
pub fn next_number(db: &Db) -> Result<u64, StorageError> {
    let last = db.scan_prefix(Keyspace::Meta, INFO).last().transpose()?;
    let last = match last {
        Some((k, _)) => {
            let bytes: [u8; 8] = k.get(INFO.len()..).and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt("key"))?;
            u64::from_be_bytes(bytes)
        }
        None => 0,
    };
    Ok(last + 1)
}

/// Record `info` with its `files` and make it the active version, in `tx`.
pub fn record_in(tx: &mut WriteTx<'_>, info: &VersionInfo, files: &Files) -> Result<(), StorageError> {
    tx.insert(Keyspace::Meta, &key(INFO, info.version), serde_json::to_vec(info).map_err(corrupt)?);
    tx.insert(Keyspace::Meta, &key(FILES, info.version), serde_json::to_vec(files).map_err(corrupt)?);
    tx.insert(Keyspace::Meta, ACTIVE, &info.version.to_be_bytes()[..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn versions_are_recorded_listed_and_one_is_active() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        assert_eq!(active(&db).unwrap(), None);
        assert_eq!(next_number(&db).unwrap(), 1);
        let one = files(&[("config.yml", "a: 1"), ("f.rhai", "1")]);
        let two = files(&[("config.yml", "a: 2"), ("g.rhai", "2")]);
        for (version, these, before) in [(1, &one, Files::new()), (2, &two, one.clone())] {
            let info = VersionInfo {
                version,
                checksum: format!("c{version}"),
                applied_at: "2026-12-04T00:00:00Z".into(),
                applied_by: "test".into(),
                how: "upload".into(),
                changed: Changes::between(&before, these),
                sections_changed: vec![],
            };
            db.write(|tx| record_in(tx, &info, these)).unwrap();
        }
        assert_eq!(active(&db).unwrap(), Some(2));
        assert_eq!(next_number(&db).unwrap(), 3);
        let listed = list(&db).unwrap();
        assert_eq!(listed.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            listed[1].changed,
            Changes {
                added: vec!["g.rhai".into()],
                removed: vec!["f.rhai".into()],
                modified: vec!["config.yml".into()]
            }
        );
        assert_eq!(super::files(&db, 1).unwrap(), Some(one));
        assert_eq!(info(&db, 3).unwrap(), None);
    }
}
