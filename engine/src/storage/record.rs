//! The stored form of one object version: `[format=1][flags][JSON bytes]` (flag bit 0: deleted).

use super::error::StorageError;
use serde_json::Value;

const FORMAT: u8 = 1;
const DELETED: u8 = 1;

/// Serialises an object version.
pub(crate) fn encode(obj: &Value, deleted: bool) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT);
    out.push(if deleted { DELETED } else { 0 });
    serde_json::to_writer(&mut out, obj)
        .map_err(|e| StorageError::user(format!("object cannot be serialised: {e}")))?;
    Ok(out)
}

/// Decodes an object version: `(deleted, object)`.
pub(crate) fn decode(bytes: &[u8]) -> Result<(bool, Value), StorageError> {
    match bytes {
        [FORMAT, flags, json @ ..] => {
            let obj = serde_json::from_slice(json).map_err(|e| StorageError::Corrupt(format!("object record: {e}")))?;
            Ok((flags & DELETED != 0, obj))
        }
        _ => Err(StorageError::Corrupt("object record has an unknown format".into())),
    }
}

/// Decodes an 8-byte big-endian version (the value of current-index entries).
pub(crate) fn decode_version(bytes: &[u8]) -> Result<u64, StorageError> {
    let arr: [u8; 8] =
        bytes.try_into().map_err(|_| StorageError::Corrupt("index entry does not hold a version".into()))?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_key_order_and_large_integers() {
        let obj = json!({"z": 1, "a": i64::MAX, "m": [1.5, "x"]});
        let bytes = encode(&obj, true).unwrap();
        let (deleted, back) = decode(&bytes).unwrap();
        assert!(deleted);
        assert_eq!(back, obj);
        let keys: Vec<&String> = back.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(back["a"].as_i64(), Some(i64::MAX));
        assert!(decode(b"\x09xx").is_err());
        assert!(decode_version(b"short").is_err());
    }
}
