//! The embedded default [`Store`]: sled 0.34, made durable with fdatasync (sled's own flush
//! only issues `sync_file_range`), blob-file and directory fsyncs.

use super::config::StorageConfig;
use super::error::StorageError;
use super::store::{RawIter, Store};
use sled::IVec;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long `open` waits for sled's directory lock (another handle of this process may be
/// closing).
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// sled behind the [`Store`] trait.
pub struct SledStore {
    tree: sled::Db,
    disk: Mutex<DiskSync>,
}

/// Whether the sled database in `path` was created with compression (its `conf` file says);
/// `None` when there is none yet (or it cannot be read: sled decides then).
fn created_with_compression(path: &Path) -> Option<bool> {
    // Text lines, then a binary checksum.
    let bytes = std::fs::read(path.join("conf")).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|l| l.strip_prefix("use_compression:"))
        .and_then(|v| v.trim().parse().ok())
}

impl SledStore {
    /// Open (creating if needed) the sled database in `path`, and make its files durable once.
    pub fn open(path: &Path, config: &StorageConfig) -> Result<SledStore, StorageError> {
        std::fs::create_dir_all(path)?;
        let flush_every = (config.flush_every_ms > 0).then_some(config.flush_every_ms);
        let compression = match created_with_compression(path) {
            Some(existing) => {
                if existing != config.compression {
                    tracing::info!(
                        path = %path.display(),
                        compression = existing,
                        "--compress-storage applies when a data directory is created; this one keeps the setting it was created with"
                    );
                }
                existing
            }
            None => config.compression,
        };
        let sled_config = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity_mb.saturating_mul(1024 * 1024))
            .flush_every_ms(flush_every)
            .use_compression(compression)
            .compression_factor(1);
        let tree = open_sled(&sled_config, path)?;
        tree.flush()?;
        for f in ["db", "conf"] {
            let p = path.join(f);
            if p.exists() {
                File::open(&p)?.sync_all()?;
            }
        }
        sync_dir(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let disk = DiskSync::new(path)?;
        Ok(SledStore { tree, disk: Mutex::new(disk) })
    }
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, StorageError> {
        Ok(self.tree.get(key)?)
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RawIter<'_> {
        Box::new(self.tree.range::<Vec<u8>, _>((lower, upper)).map(|r| r.map_err(StorageError::from)))
    }

    fn apply(&self, mut writes: Vec<(Vec<u8>, Option<IVec>)>) -> Result<(), StorageError> {
        if writes.len() == 1 {
            // One key is atomic without a batch; sled 0.34 writes its log buffer out twice for
            // every batch, so this keeps single-key commits (accepting an object, recording a
            // failure) off the disk path.
            if let Some((k, v)) = writes.pop() {
                match v {
                    Some(v) => self.tree.insert(k, v)?,
                    None => self.tree.remove(k)?,
                };
            }
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        Ok(self.tree.apply_batch(batch)?)
    }

    fn make_durable(&self) -> Result<(), StorageError> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner).flush(&self.tree)
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.tree.size_on_disk()?)
    }
}

fn sync_dir(path: &Path) -> Result<(), StorageError> {
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}

/// Opens sled, waiting up to [`LOCK_WAIT`] for the directory lock: after a `Db` of this process
/// is dropped, sled's background threads can hold the data file for a moment.
pub(crate) fn open_sled(config: &sled::Config, path: &Path) -> Result<sled::Db, StorageError> {
    let started = Instant::now();
    loop {
        match config.open() {
            Ok(tree) => return Ok(tree),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StorageError::Unavailable(format!(
                        "data directory {} is in use by another process or handle ({e})",
                        path.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The file-system side of a flush.
struct DiskSync {
    dir: PathBuf,
    data_file: File,
    /// Entries of the directory at the last flush (to fsync it only when they changed).
    dir_entries: HashMap<OsString, u64>,
    /// Blob files already fsynced, with their length then.
    blobs: HashMap<OsString, u64>,
}

/// `name -> length` of the entries of `dir` (empty when it does not exist).
fn list(dir: &Path) -> Result<HashMap<OsString, u64>, StorageError> {
    let mut out = HashMap::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in rd {
        let entry = entry?;
        match entry.metadata() {
            Ok(m) => out.insert(entry.file_name(), m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
    }
    Ok(out)
}

impl DiskSync {
    fn new(dir: &Path) -> Result<DiskSync, StorageError> {
        let data_file = File::open(dir.join("db"))?;
        Ok(DiskSync { dir: dir.to_path_buf(), data_file, dir_entries: list(dir)?, blobs: HashMap::new() })
    }

    fn flush(&mut self, tree: &sled::Db) -> Result<(), StorageError> {
        // 1. Blobs (values too large for a log segment) are written by sled without fsync. They
        //    exist before the log records that point to them, so make them durable first.
        let blob_dir = self.dir.join("blobs");
        let now = list(&blob_dir)?;
        let mut new_blob = false;
        for (name, len) in &now {
            if self.blobs.get(name) != Some(len) {
                match File::open(blob_dir.join(name)) {
                    Ok(f) => f.sync_all()?,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                }
                new_blob = true;
            }
        }
        self.blobs = now;
        if new_blob {
            File::open(&blob_dir)?.sync_all()?;
        }
        // 2. sled writes its IO buffers and issues sync_file_range (no device cache flush).
        tree.flush()?;
        // 3. fdatasync: data and the metadata needed to read it, through the device cache.
        self.data_file.sync_data()?;
        // 4. The directory, when files were created, renamed or removed (snapshots).
        let entries = list(&self.dir)?;
        let names_changed =
            entries.len() != self.dir_entries.len() || entries.keys().any(|k| !self.dir_entries.contains_key(k));
        if names_changed {
            File::open(&self.dir)?.sync_all()?;
        }
        self.dir_entries = entries;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &SledStore, key: &[u8], value: &[u8]) {
        store.apply(vec![(key.to_vec(), Some(IVec::from(value)))]).unwrap();
        store.make_durable().unwrap();
    }

    #[test]
    fn compression_is_decided_when_the_directory_is_created() {
        for created_with in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            {
                let store =
                    SledStore::open(&path, &StorageConfig { compression: created_with, ..StorageConfig::default() })
                        .unwrap();
                put(&store, b"k", b"v");
            }
            assert_eq!(created_with_compression(&path), Some(created_with));
            // Opened with the other setting, it keeps its own (sled would refuse a switch).
            let store =
                SledStore::open(&path, &StorageConfig { compression: !created_with, ..StorageConfig::default() })
                    .unwrap();
            assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            put(&store, b"k2", b"v2");
            drop(store);
            assert_eq!(created_with_compression(&path), Some(created_with));
        }
    }
}
