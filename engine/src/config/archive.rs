//! Uploaded configuration archives: [`unpack`] a zip or tar.gz into memory safely, and
//! [`pack_tar_gz`] a set of files for downloads and `ferrogrid apply`.
//!
//! Nothing is ever written to disk. Every limit is checked while reading, and reading stops at the
//! first violation: the number of files, the size of each file and of all of them (through
//! `Read::take`, so a lying header cannot make us read more), the compression ratio (against
//! compression bombs), and the names (no absolute paths, no `..`, no backslashes, no links or
//! special files, no duplicates).

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// The compression ratio is only checked above this many decompressed bytes, so small, highly
/// compressible text files are fine.
const RATIO_FLOOR: u64 = MIB;
/// Room for tar headers, padding and end-of-archive blocks on top of `max_total_bytes`: this much
/// plus [`STREAM_ALLOWANCE_PER_FILE`] per allowed file.
const STREAM_ALLOWANCE: u64 = MIB;
/// Per allowed file: a header block, padding, and perhaps a long-name or pax header.
const STREAM_ALLOWANCE_PER_FILE: u64 = 2 * KIB;
/// Read size while unpacking an entry.
const CHUNK: usize = 64 * 1024;
/// Never preallocate more than this for an entry on the word of its header.
const MAX_PREALLOCATION: u64 = MIB;
/// Unix file type bits and values (as in zip's external attributes).
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Limits on an uploaded archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most files (directories are not counted).
    pub max_files: usize,
    /// Most decompressed bytes of all files together.
    pub max_total_bytes: u64,
    /// Most decompressed bytes of one file.
    pub max_file_bytes: u64,
    /// Highest decompressed/compressed ratio (of a zip entry, of a whole tar.gz), checked above
    /// 1 MiB decompressed.
    pub max_ratio: u64,
}

impl Default for Limits {
    /// 1000 files, 64 MiB in all, 16 MiB per file, ratio 100.
    fn default() -> Limits {
        Limits { max_files: 1000, max_total_bytes: 64 * MIB, max_file_bytes: 16 * MIB, max_ratio: 100 }
    }
}

/// The format of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip file (stored or deflated entries).
    Zip,
    /// A gzip-compressed tar.
    TarGz,
}

impl Kind {
    /// The kind for an HTTP `Content-Type` (case-insensitive, parameters after `;` ignored), or
    /// `None` when it is not an archive type we take.
    pub fn from_content_type(ct: &str) -> Option<Kind> {
        let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/zip" | "application/x-zip-compressed" => Some(Kind::Zip),
            "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" | "application/x-gtar" => {
                Some(Kind::TarGz)
            }
            _ => None,
        }
    }
}

/// Why an archive was refused. Each message names the entry where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a zip, bad gzip, truncated, unsupported...: the library's message.
    #[error("malformed archive: {0}")]
    Malformed(String),
    /// More files than `max_files`.
    #[error("the archive has more than {limit} files")]
    TooManyFiles {
        /// `max_files`.
        limit: usize,
    },
    /// More decompressed bytes than `max_total_bytes`.
    #[error("the archive unpacks to more than {limit} bytes")]
    TooLarge {
        /// `max_total_bytes`.
        limit: u64,
    },
    /// One file is larger than `max_file_bytes`.
    #[error("entry {name:?} is larger than {limit} bytes")]
    FileTooLarge {
        /// The entry.
        name: String,
        /// `max_file_bytes`.
        limit: u64,
    },
    /// The compression ratio is above `max_ratio` (a compression bomb?).
    #[error("{} is compressed more than {limit} to 1", ratio_subject(.name))]
    Ratio {
        /// The entry (zip), or `None` for the whole archive (tar.gz).
        name: Option<String>,
        /// `max_ratio`.
        limit: u64,
    },
    /// An absolute path (`/x`, `C:...`).
    #[error("entry {0:?} has an absolute path")]
    AbsolutePath(String),
    /// A `..` path component.
    #[error("entry {0:?} has a '..' path component")]
    ParentDir(String),
    /// A symbolic or hard link.
    #[error("entry {0:?} is a link (links are not allowed)")]
    Link(String),
    /// A device, fifo, sparse file...: neither a regular file nor a directory.
    #[error("entry {0:?} is not a regular file or a directory")]
    Special(String),
    /// The same path twice (after normalisation), or a file where another entry needs a folder.
    #[error("entry {0:?} is duplicated or clashes with another entry")]
    Duplicate(String),
    /// Not UTF-8, empty, or containing a backslash or NUL.
    #[error("entry {0:?} has a bad name (empty, not UTF-8, or containing a backslash or NUL)")]
    BadName(String),
}

fn ratio_subject(name: &Option<String>) -> String {
    match name {
        Some(name) => format!("entry {name:?}"),
        None => "the archive".to_string(),
    }
}

/// Unpack `bytes` into (relative path with '/' separators -> contents). Directories are skipped.
/// When every file sits under one top folder (e.g. "myconf/config.yml", "myconf/model.avsc"),
/// that folder is stripped, so the files land at the root.
///
/// Nothing is written to disk; reading stops at the first violation of `limits` or of the naming
/// rules (see [`ArchiveError`]).
pub fn unpack(bytes: &[u8], kind: Kind, limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let files = match kind {
        Kind::Zip => unpack_zip(bytes, limits)?,
        Kind::TarGz => unpack_tar_gz(bytes, limits)?,
    };
    Ok(strip_top_folder(files.files))
}

/// A gzip-compressed tar of `files` (regular files, mode 0644, mtime 0, sorted by path), for
/// downloads and `ferrogrid apply`. A path that [`unpack`] would refuse, or that is not in its
/// normal form (`a/b`, no `./`, no trailing `/`), is an `InvalidInput` error.
pub fn pack_tar_gz(files: &BTreeMap<String, Vec<u8>>) -> io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, data) in files {
        match check_name(path.as_bytes()) {
            Ok(name) if !name.dir_marker && name.path == *path => {}
            Ok(_) => return Err(invalid_input(format!("{path:?} is not a normalised file path"))),
            Err(e) => return Err(invalid_input(e.to_string())),
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, path, data.as_slice())?;
    }
    let mut encoder = builder.into_inner()?;
    encoder.flush()?;
    encoder.finish()
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn malformed(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Malformed(e.to_string())
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// A checked entry name.
#[derive(Debug, PartialEq)]
struct Name {
    /// Relative, '/'-separated, without empty, `.` or `..` components; empty for the root itself.
    path: String,
    /// The raw name ends with '/' (a directory).
    dir_marker: bool,
}

/// Check and normalise a raw entry name.
fn check_name(raw: &[u8]) -> Result<Name, ArchiveError> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(ArchiveError::BadName(lossy(raw)));
    };
    if text.is_empty() || text.contains('\0') || text.contains('\\') {
        return Err(ArchiveError::BadName(text.to_string()));
    }
    let bytes = text.as_bytes();
    if bytes[0] == b'/' || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':') {
        return Err(ArchiveError::AbsolutePath(text.to_string()));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ArchiveError::ParentDir(text.to_string())),
            _ => parts.push(part),
        }
    }
    Ok(Name { path: parts.join("/"), dir_marker: text.ends_with('/') })
}

/// The files read so far and the running counts.
struct Collector<'a> {
    limits: &'a Limits,
    files: BTreeMap<String, Vec<u8>>,
    count: usize,
    total: u64,
}

impl<'a> Collector<'a> {
    fn new(limits: &'a Limits) -> Collector<'a> {
        Collector { limits, files: BTreeMap::new(), count: 0, total: 0 }
    }

    /// Count one more file named `path` (normalised), refusing too many files and duplicates.
    fn admit(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.count += 1;
        if self.count > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles { limit: self.limits.max_files });
        }
        if self.files.contains_key(path) {
            return Err(ArchiveError::Duplicate(path.to_string()));
        }
        // A file where another file needs a folder ("a" and "a/b"), either way round.
        let clashes_with_ancestor = path.match_indices('/').any(|(at, _)| self.files.contains_key(&path[..at]));
        let folder = format!("{path}/");
        let clashes_with_descendant =
            self.files.range(folder.clone()..).next().is_some_and(|(other, _)| other.starts_with(&folder));
        if clashes_with_ancestor || clashes_with_descendant {
            return Err(ArchiveError::Duplicate(path.to_string()));
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.limits.max_total_bytes.saturating_sub(self.total)
    }

    /// Most bytes the next file may have.
    fn allowance(&self) -> u64 {
        self.limits.max_file_bytes.min(self.remaining())
    }

    /// The error for a file `name` over its allowance: whichever limit binds first.
    fn size_error(&self, name: &str) -> ArchiveError {
        if self.limits.max_file_bytes <= self.remaining() {
            ArchiveError::FileTooLarge { name: name.to_string(), limit: self.limits.max_file_bytes }
        } else {
            ArchiveError::TooLarge { limit: self.limits.max_total_bytes }
        }
    }

    /// Refuse a file whose header already says it is too large.
    fn check_declared(&self, name: &str, declared: u64) -> Result<(), ArchiveError> {
        if declared > self.allowance() {
            return Err(self.size_error(name));
        }
        Ok(())
    }

    /// Read a file of at most its allowance (through `take`, whatever its header says), calling
    /// `check` with the bytes read so far after every chunk.
    fn read<R: Read>(
        &mut self,
        name: String,
        reader: R,
        size_hint: u64,
        mut check: impl FnMut(u64) -> Result<(), ArchiveError>,
        map_io: impl Fn(io::Error) -> ArchiveError,
    ) -> Result<(), ArchiveError> {
        let allowed = self.allowance();
        let mut limited = reader.take(allowed.saturating_add(1));
        let capacity = size_hint.min(allowed).min(MAX_PREALLOCATION);
        let mut data = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match limited.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(map_io(e)),
            };
            data.extend_from_slice(&chunk[..n]);
            let len = data.len() as u64;
            if len > allowed {
                return Err(self.size_error(&name));
            }
            check(len)?;
        }
        self.total += data.len() as u64;
        self.files.insert(name, data);
        Ok(())
    }
}

fn unpack_zip<'a>(bytes: &[u8], limits: &'a Limits) -> Result<Collector<'a>, ArchiveError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(malformed)?;
    refuse_hidden_zip_duplicates(&mut archive, bytes)?;
    let mut files = Collector::new(limits);
    for index in 0..archive.len() {
        let file = archive.by_index(index).map_err(malformed)?;
        let raw = file.name_raw().to_vec();
        let name = check_name(&raw)?;
        let file_type = file.unix_mode().map(|mode| mode & S_IFMT);
        match file_type {
            Some(S_IFLNK) => return Err(ArchiveError::Link(lossy(&raw))),
            None | Some(0 | S_IFREG | S_IFDIR) => {}
            Some(_) => return Err(ArchiveError::Special(lossy(&raw))),
        }
        if name.dir_marker || file_type == Some(S_IFDIR) {
            continue;
        }
        if name.path.is_empty() {
            return Err(ArchiveError::BadName(lossy(&raw)));
        }
        files.admit(&name.path)?;
        let declared = file.size();
        let ratio_budget = file.compressed_size().saturating_mul(limits.max_ratio);
        let path = name.path;
        let check_ratio = |size: u64| {
            if size > RATIO_FLOOR && size > ratio_budget {
                Err(ArchiveError::Ratio { name: Some(path.clone()), limit: limits.max_ratio })
            } else {
                Ok(())
            }
        };
        check_ratio(declared)?;
        files.check_declared(&path, declared)?;
        files.read(path.clone(), file, declared, check_ratio, malformed)?;
    }
    Ok(files)
}

/// The zip crate keys its entries by name, so of two central directory records with the same
/// name only one is visible through its API. Walk the central directory and refuse a record the
/// crate does not show.
fn refuse_hidden_zip_duplicates(
    archive: &mut zip::ZipArchive<io::Cursor<&[u8]>>,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    const RECORD_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    const FIXED_LEN: usize = 46;
    let mut visible = HashSet::with_capacity(archive.len());
    for index in 0..archive.len() {
        visible.insert(archive.by_index_raw(index).map_err(malformed)?.central_header_start());
    }
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let Ok(mut at) = usize::try_from(archive.central_directory_start()) else {
        return Ok(());
    };
    while at.saturating_add(FIXED_LEN) <= bytes.len() && bytes[at..at + 4] == RECORD_SIGNATURE {
        let name_len = u16_at(at + 28);
        let record_len = FIXED_LEN + name_len + u16_at(at + 30) + u16_at(at + 32);
        if !visible.contains(&(at as u64)) {
            let name_end = (at + FIXED_LEN + name_len).min(bytes.len());
            return Err(ArchiveError::Duplicate(lossy(&bytes[at + FIXED_LEN..name_end])));
        }
        at += record_len;
    }
    Ok(())
}

/// What tripped the [`GuardedReader`].
#[derive(Debug, Clone, Copy)]
enum Tripped {
    TooLarge,
    Ratio,
}

/// Counts the decompressed tar stream (headers included) and refuses, with an I/O error and a
/// note in `tripped`, to go past `cap` bytes or past `ratio_budget` bytes once above
/// [`RATIO_FLOOR`].
struct GuardedReader<'g, R> {
    inner: R,
    read: u64,
    cap: u64,
    ratio_budget: u64,
    tripped: &'g Cell<Option<Tripped>>,
}

impl<R: Read> Read for GuardedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tripped.get().is_some() {
            return Err(io::Error::other("archive limit exceeded"));
        }
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        let tripped = if self.read > RATIO_FLOOR && self.read > self.ratio_budget {
            Some(Tripped::Ratio)
        } else if self.read > self.cap {
            Some(Tripped::TooLarge)
        } else {
            None
        };
        if tripped.is_some() {
            self.tripped.set(tripped);
            return Err(io::Error::other("archive limit exceeded"));
        }
        Ok(n)
    }
}

fn unpack_tar_gz<'a>(bytes: &[u8], limits: &'a Limits) -> Result<Collector<'a>, ArchiveError> {
    let tripped = Cell::new(None);
    let allowance = STREAM_ALLOWANCE.saturating_add(STREAM_ALLOWANCE_PER_FILE.saturating_mul(limits.max_files as u64));
    let reader = GuardedReader {
        inner: flate2::read::GzDecoder::new(bytes),
        read: 0,
        cap: limits.max_total_bytes.saturating_add(allowance),
        ratio_budget: (bytes.len() as u64).saturating_mul(limits.max_ratio),
        tripped: &tripped,
    };
    // An I/O error means a tripped limit if the guard says so, else a malformed archive.
    let fail = |e: io::Error| match tripped.get() {
        Some(Tripped::TooLarge) => ArchiveError::TooLarge { limit: limits.max_total_bytes },
        Some(Tripped::Ratio) => ArchiveError::Ratio { name: None, limit: limits.max_ratio },
        None => malformed(e),
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Collector::new(limits);
    for entry in archive.entries().map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let entry_type = entry.header().entry_type();
        if entry_type == tar::EntryType::XGlobalHeader {
            // pax global metadata (e.g. the commit id `git archive` writes): not a file.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = check_name(&raw)?;
        match entry_type {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular => {}
            tar::EntryType::Symlink | tar::EntryType::Link => return Err(ArchiveError::Link(lossy(&raw))),
            _ => return Err(ArchiveError::Special(lossy(&raw))),
        }
        if name.path.is_empty() || name.dir_marker {
            return Err(ArchiveError::BadName(lossy(&raw)));
        }
        files.admit(&name.path)?;
        let declared = entry.size();
        files.check_declared(&name.path, declared)?;
        files.read(name.path, entry, declared, |_| Ok(()), fail)?;
    }
    // Read the rest of the stream (end-of-archive blocks, padding) through the guard too: this
    // checks the gzip trailer, and a stream of zeros after the end cannot hide a bomb.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(fail)?;
    Ok(files)
}

/// When every file sits under one top folder, strip it.
fn strip_top_folder(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let mut top: Option<&str> = None;
    for path in files.keys() {
        match (path.split_once('/'), top) {
            (None, _) => return files,
            (Some((first, _)), None) => top = Some(first),
            (Some((first, _)), Some(seen)) if first == seen => {}
            (Some(_), Some(_)) => return files,
        }
    }
    let Some(top) = top else {
        return files;
    };
    let cut = top.len() + 1;
    files.into_iter().map(|(path, data)| (path[cut..].to_string(), data)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tar::{EntryType, Header};
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    fn map(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(name, data)| (name.to_string(), data.to_vec())).collect()
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    /// A zip of (name, contents); a name ending with '/' is a directory.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            if name.ends_with('/') {
                zip.add_directory(*name, deflated()).unwrap();
            } else {
                zip.start_file(*name, deflated()).unwrap();
                zip.write_all(data).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    /// A tar.gz of raw entries: the name bytes go straight into the header (the tar builder would
    /// refuse the evil ones).
    fn tar_gz_raw(entries: &[(&[u8], EntryType, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        for (name, entry_type, data) in entries {
            let mut header = Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(*entry_type);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if matches!(entry_type, EntryType::Symlink | EntryType::Link) {
                header.set_link_name("config.yml").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Replace every occurrence of `from` in `bytes` by `to` (same length).
    fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut found = 0;
        for at in 0..=bytes.len() - from.len() {
            if &bytes[at..at + from.len()] == from {
                bytes[at..at + from.len()].copy_from_slice(to);
                found += 1;
            }
        }
        assert!(found > 0, "pattern not found");
    }

    /// Where the last central directory record of a zip starts (the only one, in the tests).
    fn central_record(zip: &[u8]) -> usize {
        zip.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap()
    }

    fn zip_err(bytes: &[u8]) -> ArchiveError {
        unpack(bytes, Kind::Zip, &Limits::default()).unwrap_err()
    }

    fn tar_err(bytes: &[u8]) -> ArchiveError {
        unpack(bytes, Kind::TarGz, &Limits::default()).unwrap_err()
    }

    fn sample() -> BTreeMap<String, Vec<u8>> {
        let long = format!("schemas/{}/model.avsc", "deep".repeat(40));
        let mut files = map(&[
            ("config.yml", b"connector: {}\n"),
            ("schemas/model.avsc", br#"{"type": "record"}"#),
            ("empty.txt", b""),
            ("scripts/\u{e9}t\u{e9}.rhai", b"let x = 1;"),
        ]);
        files.insert(long, vec![7; 3000]);
        files
    }

    #[test]
    fn kind_from_content_type() {
        assert_eq!(Kind::from_content_type("application/zip"), Some(Kind::Zip));
        assert_eq!(Kind::from_content_type("Application/X-Zip-Compressed; charset=binary"), Some(Kind::Zip));
        for ct in ["application/gzip", "application/x-gzip", "application/x-tar+gzip", "APPLICATION/X-GTAR ; q=1"] {
            assert_eq!(Kind::from_content_type(ct), Some(Kind::TarGz), "{ct}");
        }
        assert_eq!(Kind::from_content_type("application/json"), None);
        assert_eq!(Kind::from_content_type(""), None);
    }

    #[test]
    fn default_limits() {
        let limits = Limits::default();
        assert_eq!(limits.max_files, 1000);
        assert_eq!(limits.max_total_bytes, 64 * 1024 * 1024);
        assert_eq!(limits.max_file_bytes, 16 * 1024 * 1024);
        assert_eq!(limits.max_ratio, 100);
    }

    #[test]
    fn names_are_checked_and_normalised() {
        let ok = |raw: &str, path: &str, dir: bool| {
            assert_eq!(check_name(raw.as_bytes()).unwrap(), Name { path: path.to_string(), dir_marker: dir }, "{raw}")
        };
        ok("config.yml", "config.yml", false);
        ok("./config.yml", "config.yml", false);
        ok("././a//b/./c", "a/b/c", false);
        ok("dir/", "dir", true);
        ok("./", "", true);
        ok("a..b/c.", "a..b/c.", false);
        for raw in ["/etc/passwd", "C:/x", "c:x", "//server/share"] {
            assert!(matches!(check_name(raw.as_bytes()), Err(ArchiveError::AbsolutePath(_))), "{raw}");
        }
        for raw in ["..", "../x", "a/../../x", "a/.."] {
            assert!(matches!(check_name(raw.as_bytes()), Err(ArchiveError::ParentDir(_))), "{raw}");
        }
        for raw in [&b""[..], b"a\\b", b"..\\x", b"a\0b", b"\xff\xfe.yml"] {
            assert!(matches!(check_name(raw), Err(ArchiveError::BadName(_))), "{raw:?}");
        }
    }

    #[test]
    fn tar_gz_round_trip() {
        let files = sample();
        let packed = pack_tar_gz(&files).unwrap();
        assert_eq!(unpack(&packed, Kind::TarGz, &Limits::default()).unwrap(), files);
        assert_eq!(pack_tar_gz(&files).unwrap(), packed, "packing is deterministic");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&packed[..]));
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().entry_type(), EntryType::Regular);
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            assert_eq!(entry.header().mtime().unwrap(), 0);
            paths.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
        }
        assert_eq!(paths, files.keys().cloned().collect::<Vec<_>>(), "sorted by path");
    }

    #[test]
    fn pack_refuses_bad_paths() {
        for path in ["../x", "/etc/passwd", "a\\b", "./a", "a/", ""] {
            let err = pack_tar_gz(&map(&[(path, b"x")])).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}");
        }
    }

    #[test]
    fn zip_round_trip() {
        let files = sample();
        let entries: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let mut with_dirs = vec![("schemas/", &b""[..])];
        with_dirs.extend(entries);
        assert_eq!(unpack(&zip_of(&with_dirs), Kind::Zip, &Limits::default()).unwrap(), files);
    }

    #[test]
    fn top_folder_stripped() {
        let expected = map(&[("config.yml", b"a"), ("schemas/model.avsc", b"b")]);
        let zip = zip_of(&[
            ("myconf/", b""),
            ("myconf/config.yml", b"a"),
            ("myconf/schemas/", b""),
            ("myconf/schemas/model.avsc", b"b"),
        ]);
        assert_eq!(unpack(&zip, Kind::Zip, &Limits::default()).unwrap(), expected);
        let tar = tar_gz_raw(&[
            (b"./myconf/", EntryType::Directory, b""),
            (b"./myconf/config.yml", EntryType::Regular, b"a"),
            (b"./myconf/schemas/model.avsc", EntryType::Regular, b"b"),
        ]);
        assert_eq!(unpack(&tar, Kind::TarGz, &Limits::default()).unwrap(), expected);
    }

    #[test]
    fn top_folder_kept_when_not_shared() {
        let files = map(&[("a/config.yml", b"a"), ("b/model.avsc", b"b")]);
        assert_eq!(unpack(&pack_tar_gz(&files).unwrap(), Kind::TarGz, &Limits::default()).unwrap(), files);
        let files = map(&[("config.yml", b"a"), ("schemas/model.avsc", b"b")]);
        assert_eq!(unpack(&pack_tar_gz(&files).unwrap(), Kind::TarGz, &Limits::default()).unwrap(), files);
    }

    #[test]
    fn pax_global_header_ignored() {
        let tar = tar_gz_raw(&[
            (b"pax_global_header", EntryType::XGlobalHeader, b"52 comment=0123456789abcdef0123456789abcdef01234567\n"),
            (b"repo/config.yml", EntryType::Regular, b"a"),
        ]);
        assert_eq!(unpack(&tar, Kind::TarGz, &Limits::default()).unwrap(), map(&[("config.yml", b"a")]));
    }

    #[test]
    fn too_many_files() {
        let limits = Limits { max_files: 3, ..Limits::default() };
        let three = [("d/", &b""[..]), ("a", b"1"), ("d/b", b"2"), ("c", b"3")];
        assert_eq!(unpack(&zip_of(&three), Kind::Zip, &limits).unwrap().len(), 3, "directories are not counted");
        let four = [("a", &b"1"[..]), ("b", b"2"), ("c", b"3"), ("d", b"4")];
        assert!(matches!(unpack(&zip_of(&four), Kind::Zip, &limits), Err(ArchiveError::TooManyFiles { limit: 3 })));
        let tar = pack_tar_gz(&map(&four)).unwrap();
        assert!(matches!(unpack(&tar, Kind::TarGz, &limits), Err(ArchiveError::TooManyFiles { limit: 3 })));
    }

    fn zip_bomb() -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("bomb.bin", deflated()).unwrap();
        let zeros = vec![0u8; MIB as usize];
        for _ in 0..50 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_bomb_refused() {
        let bomb = zip_bomb();
        match zip_err(&bomb) {
            ArchiveError::Ratio { name: Some(name), limit: 100 } => assert_eq!(name, "bomb.bin"),
            other => panic!("unexpected {other:?}"),
        }
        let small = Limits { max_total_bytes: MIB, max_ratio: u64::MAX, ..Limits::default() };
        assert!(matches!(unpack(&bomb, Kind::Zip, &small), Err(ArchiveError::TooLarge { limit }) if limit == MIB));
        let small_file = Limits { max_file_bytes: MIB, max_ratio: u64::MAX, ..Limits::default() };
        assert!(matches!(
            unpack(&bomb, Kind::Zip, &small_file),
            Err(ArchiveError::FileTooLarge { name, limit }) if name == "bomb.bin" && limit == MIB
        ));
    }

    #[test]
    fn zip_lying_size_header_refused() {
        // 4 MiB of zeros whose headers claim 1000 bytes: the limits hold while reading.
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("liar.bin", deflated()).unwrap();
        zip.write_all(&vec![0u8; 4 * MIB as usize]).unwrap();
        let mut bytes = zip.finish().unwrap().into_inner();
        let claimed = 1000u32.to_le_bytes();
        bytes[22..26].copy_from_slice(&claimed);
        let central = central_record(&bytes);
        bytes[central + 24..central + 28].copy_from_slice(&claimed);
        let mut archive = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        assert_eq!(archive.by_index(0).unwrap().size(), 1000, "the header lies");
        match zip_err(&bytes) {
            ArchiveError::Ratio { name: Some(name), .. } => assert_eq!(name, "liar.bin"),
            other => panic!("unexpected {other:?}"),
        }
        let small_file = Limits { max_file_bytes: 2000, max_ratio: u64::MAX, ..Limits::default() };
        assert!(matches!(unpack(&bytes, Kind::Zip, &small_file), Err(ArchiveError::FileTooLarge { .. })));
    }

    #[test]
    fn small_compressible_files_pass_the_ratio() {
        let text = vec![b'a'; 512 * 1024];
        let files = map(&[("big.yml", &text)]);
        assert_eq!(unpack(&zip_of(&[("big.yml", &text)]), Kind::Zip, &Limits::default()).unwrap(), files);
        assert_eq!(unpack(&pack_tar_gz(&files).unwrap(), Kind::TarGz, &Limits::default()).unwrap(), files);
    }

    #[test]
    fn gzip_bomb_refused() {
        // 50 MiB of zeros: the tar reader sees an end-of-archive block at once, the rest of the
        // stream still goes through the guard.
        let bomb = gzip(&vec![0u8; 50 * MIB as usize]);
        assert!(matches!(tar_err(&bomb), ArchiveError::Ratio { name: None, limit: 100 }));
        let small = Limits { max_total_bytes: MIB, max_ratio: u64::MAX, ..Limits::default() };
        assert!(matches!(unpack(&bomb, Kind::TarGz, &small), Err(ArchiveError::TooLarge { limit }) if limit == MIB));
    }

    #[test]
    fn tar_size_limits() {
        let files = map(&[("a", &[1u8; 3000]), ("b", &[2u8; 3000])]);
        let tar = pack_tar_gz(&files).unwrap();
        let small_file = Limits { max_file_bytes: 2000, ..Limits::default() };
        assert!(matches!(
            unpack(&tar, Kind::TarGz, &small_file),
            Err(ArchiveError::FileTooLarge { name, limit: 2000 }) if name == "a"
        ));
        let small_total = Limits { max_total_bytes: 5000, ..Limits::default() };
        assert!(matches!(unpack(&tar, Kind::TarGz, &small_total), Err(ArchiveError::TooLarge { limit: 5000 })));
    }

    #[test]
    fn absolute_path_refused() {
        let tar = tar_gz_raw(&[(b"/etc/passwd", EntryType::Regular, b"x")]);
        assert!(matches!(tar_err(&tar), ArchiveError::AbsolutePath(name) if name == "/etc/passwd"));
        assert!(matches!(zip_err(&zip_of(&[("/etc/passwd", b"x")])), ArchiveError::AbsolutePath(_)));
        assert!(matches!(zip_err(&zip_of(&[("C:/Windows/x", b"x")])), ArchiveError::AbsolutePath(_)));
    }

    #[test]
    fn parent_dir_refused() {
        let tar = tar_gz_raw(&[(b"conf/../../evil.sh", EntryType::Regular, b"x")]);
        assert!(matches!(tar_err(&tar), ArchiveError::ParentDir(name) if name == "conf/../../evil.sh"));
        let tar = tar_gz_raw(&[(b"../", EntryType::Directory, b"")]);
        assert!(matches!(tar_err(&tar), ArchiveError::ParentDir(_)));
        assert!(matches!(zip_err(&zip_of(&[("../evil.sh", b"x")])), ArchiveError::ParentDir(_)));
    }

    #[test]
    fn backslash_refused() {
        assert!(matches!(zip_err(&zip_of(&[("..\\evil.sh", b"x")])), ArchiveError::BadName(_)));
        let tar = tar_gz_raw(&[(b"dir\\evil.sh", EntryType::Regular, b"x")]);
        assert!(matches!(tar_err(&tar), ArchiveError::BadName(_)));
    }

    #[test]
    fn links_refused() {
        let tar = tar_gz_raw(&[(b"config.yml", EntryType::Regular, b"a"), (b"link", EntryType::Symlink, b"")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Link(name) if name == "link"));
        let tar = tar_gz_raw(&[(b"config.yml", EntryType::Regular, b"a"), (b"hard", EntryType::Link, b"")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Link(name) if name == "hard"));
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_symlink("link", "/etc/passwd", deflated()).unwrap();
        let zip = zip.finish().unwrap().into_inner();
        assert!(matches!(zip_err(&zip), ArchiveError::Link(name) if name == "link"));
    }

    #[test]
    fn special_files_refused() {
        for entry_type in [EntryType::Char, EntryType::Block, EntryType::Fifo, EntryType::Continuous] {
            let tar = tar_gz_raw(&[(b"dev", entry_type, b"")]);
            assert!(matches!(tar_err(&tar), ArchiveError::Special(name) if name == "dev"), "{entry_type:?}");
        }
        // The zip writer keeps only permission bits, so patch the external attributes.
        let mut zip = zip_of(&[("fifo", b"")]);
        let central = central_record(&zip);
        zip[central + 38..central + 42].copy_from_slice(&(0o010_644u32 << 16).to_le_bytes());
        assert!(matches!(zip_err(&zip), ArchiveError::Special(name) if name == "fifo"));
    }

    #[test]
    fn duplicates_refused() {
        let tar = tar_gz_raw(&[(b"config.yml", EntryType::Regular, b"a"), (b"config.yml", EntryType::Regular, b"b")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Duplicate(name) if name == "config.yml"));
        let tar = tar_gz_raw(&[(b"config.yml", EntryType::Regular, b"a"), (b"./config.yml", EntryType::Regular, b"b")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Duplicate(name) if name == "config.yml"));
        let tar = tar_gz_raw(&[(b"a/b", EntryType::Regular, b"a"), (b"a", EntryType::Regular, b"b")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Duplicate(name) if name == "a"));
        let tar = tar_gz_raw(&[(b"a", EntryType::Regular, b"a"), (b"a/b/c", EntryType::Regular, b"b")]);
        assert!(matches!(tar_err(&tar), ArchiveError::Duplicate(name) if name == "a/b/c"));
        let zip = zip_of(&[("config.yml", b"a"), ("./config.yml", b"b")]);
        assert!(matches!(zip_err(&zip), ArchiveError::Duplicate(name) if name == "config.yml"));
        // The same name twice in the central directory (the zip writer refuses it, so patch).
        let mut zip = zip_of(&[("config.yml", b"a"), ("configXyml", b"b")]);
        patch(&mut zip, b"configXyml", b"config.yml");
        assert_eq!(zip::ZipArchive::new(Cursor::new(&zip[..])).unwrap().len(), 1, "the zip crate hides one");
        assert!(matches!(zip_err(&zip), ArchiveError::Duplicate(name) if name == "config.yml"));
    }

    #[test]
    fn non_utf8_name_refused() {
        let tar = tar_gz_raw(&[(b"conf\xff\xfe.yml", EntryType::Regular, b"x")]);
        assert!(matches!(tar_err(&tar), ArchiveError::BadName(name) if name == "conf\u{fffd}\u{fffd}.yml"));
        let mut zip = zip_of(&[("conf@@.yml", b"x")]);
        patch(&mut zip, b"conf@@.yml", b"conf\xff\xfe.yml");
        assert!(matches!(zip_err(&zip), ArchiveError::BadName(name) if name == "conf\u{fffd}\u{fffd}.yml"));
    }

    #[test]
    fn malformed_refused() {
        assert!(matches!(zip_err(b"this is not a zip file"), ArchiveError::Malformed(_)));
        assert!(matches!(tar_err(b"this is not gzip"), ArchiveError::Malformed(_)));
        let packed = pack_tar_gz(&sample()).unwrap();
        assert!(matches!(tar_err(&packed[..packed.len() / 2]), ArchiveError::Malformed(_)));
        let zip = zip_of(&[("config.yml", &[b'x'; 5000])]);
        assert!(matches!(zip_err(&zip[..zip.len() - 10]), ArchiveError::Malformed(_)));
        // Valid gzip, not a tar.
        assert!(matches!(tar_err(&gzip(&[b'x'; 2000])), ArchiveError::Malformed(_)));
        // A zip whose entry data is corrupt: the CRC check catches it.
        let mut zip = zip_of(&[("config.yml", b"hello hello hello")]);
        let at = zip.windows(5).position(|w| w == b"hello");
        assert!(at.is_none(), "deflated, not stored");
        let data_start = zip::ZipArchive::new(Cursor::new(&zip[..])).unwrap().by_index(0).unwrap().data_start();
        zip[data_start as usize + 2] ^= 0x55;
        assert!(matches!(zip_err(&zip), ArchiveError::Malformed(_)));
    }

    #[test]
    fn error_messages_name_the_entry() {
        assert_eq!(ArchiveError::ParentDir("../x".into()).to_string(), r#"entry "../x" has a '..' path component"#);
        assert_eq!(
            ArchiveError::Ratio { name: Some("bomb".into()), limit: 100 }.to_string(),
            r#"entry "bomb" is compressed more than 100 to 1"#
        );
        assert_eq!(
            ArchiveError::Ratio { name: None, limit: 100 }.to_string(),
            "the archive is compressed more than 100 to 1"
        );
    }
}
