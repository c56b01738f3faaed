//! Opaque cursors: URL-safe base64 of the scan source and the key position inside it.

use super::error::StorageError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

const CURSOR_FORMAT: u8 = 1;

/// Which keys a scan walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Current-index entries of an index (latest live versions).
    Current(u8),
    /// Every version: history-index entries, or object versions for the primary index.
    History(u8),
}

impl Source {
    fn bytes(self) -> [u8; 2] {
        match self {
            Source::Current(i) => [0, i],
            Source::History(i) => [1, i],
        }
    }
}

/// Encodes a position (a key relative to the scan prefix) of a scan over `source`.
pub(crate) fn encode(source: Source, rel_key: &[u8]) -> String {
    let mut raw = Vec::with_capacity(3 + rel_key.len());
    raw.push(CURSOR_FORMAT);
    raw.extend_from_slice(&source.bytes());
    raw.extend_from_slice(rel_key);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode`] for the same `source`; returns the relative key.
pub(crate) fn decode(cursor: &str, source: Source, type_name: &str) -> Result<Vec<u8>, StorageError> {
    let bad = |why: &str| StorageError::user(format!("{type_name}: invalid cursor \"after\": {why}"));
    let raw = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad("not a cursor"))?;
    match raw.as_slice() {
        [CURSOR_FORMAT, a, b, rest @ ..] => {
            if [*a, *b] != source.bytes() {
                return Err(bad("it belongs to a query with another index or version mode"));
            }
            Ok(rest.to_vec())
        }
        _ => Err(bad("not a cursor")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let c = encode(Source::Current(2), b"\x02abc\x00\x01");
        assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(decode(&c, Source::Current(2), "User").unwrap(), b"\x02abc\x00\x01");
        let e = decode(&c, Source::History(2), "User").unwrap_err().to_string();
        assert!(e.starts_with("User: invalid cursor"), "{e}");
        assert!(decode("!!!", Source::Current(2), "User").is_err());
    }
}
