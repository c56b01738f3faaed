//! The stored form of one object version: `[format=2][flags][config version, u64 BE][JSON
//! bytes]` (flag bit 0: deleted). The configuration version is the one the version was written
//! under. Format 1 (`[1][flags][JSON]`, before versions were recorded) is still read, as
//! configuration version 0.

use super::error::StorageError;
use serde_json::Value;

const FORMAT_1: u8 = 1;
const FORMAT: u8 = 2;
const DELETED: u8 = 1;

/// Serialises an object version written under configuration version `config_version`.
pub(crate) fn encode(obj: &Value, deleted: bool, config_version: u64) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT);
    out.push(if deleted { DELETED } else { 0 });
    out.extend_from_slice(&config_version.to_be_bytes());
    serde_json::to_writer(&mut out, obj)
        .map_err(|e| StorageError::user(format!("object cannot be serialised: {e}")))?;
    Ok(out)
}

/// Decodes an object version: `(deleted, object)`.
pub(crate) fn decode(bytes: &[u8]) -> Result<(bool, Value), StorageError> {
    decode_full(bytes).map(|(deleted, obj, _)| (deleted, obj))
}

/// Decodes an object version: `(deleted, object, configuration version)`.
pub(crate) fn decode_full(bytes: &[u8]) -> Result<(bool, Value, u64), StorageError> {
    let (flags, config_version, json) = match bytes {
        [FORMAT, flags, rest @ ..] if rest.len() >= 8 => {
            let (version, json) = rest.split_at(8);
            let version: [u8; 8] = version.try_into().map_err(|_| StorageError::Corrupt("object record".into()))?;
            (*flags, u64::from_be_bytes(version), json)
        }
        [FORMAT_1, flags, json @ ..] => (*flags, 0, json),
        _ => return Err(StorageError::Corrupt("object record has an unknown format".into())),
    };
    let obj = super::from_stored(json).map_err(|e| StorageError::Corrupt(format!("object record: {e}")))?;
    Ok((flags & DELETED != 0, obj, config_version))
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
        let bytes = encode(&obj, true, 7).unwrap();
        let (deleted, back, config_version) = decode_full(&bytes).unwrap();
        assert!(deleted);
        assert_eq!(config_version, 7);
        // A record written before configuration versions were recorded.
        let old = [&[1u8, 0][..], br#"{"a":1}"#].concat();
        assert_eq!(decode_full(&old).unwrap(), (false, json!({"a": 1}), 0));
        assert_eq!(back, obj);
        let keys: Vec<&String> = back.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(back["a"].as_i64(), Some(i64::MAX));
        assert!(decode(b"\x09xx").is_err());
        assert!(decode_version(b"short").is_err());
    }
}
