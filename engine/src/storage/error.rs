//! The storage error type, classified so callers can act on it (user data / conflict / internal).

/// How a caller should react to a [`StorageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong (bad filter, bad updater, type mismatch, hard limit):
    /// retrying the same request gives the same error.
    UserData,
    /// An optimistic-lock conflict (`only_if_version`): re-read and retry.
    Conflict,
    /// I/O error, corruption or a bug: log and alert.
    Internal,
    /// What the request needs is not ready yet (an index being built): the same request
    /// succeeds later.
    NotReady,
}

/// Every error of the storage component.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `only_if_version` did not match the current version of the object.
    #[error("conflict in {type_name}: only_if_version {expected} but the current version is {}", actual.map_or_else(|| "none (no such object)".to_string(), |v| v.to_string()))]
    Conflict {
        /// Type of the object.
        type_name: String,
        /// The version the caller expected.
        expected: u64,
        /// The version actually stored (None: the object does not exist or is deleted).
        actual: Option<u64>,
    },
    /// A hard limit of a request was exceeded.
    #[error("hard limit \"{limit}\" ({max}) exceeded in {operation} {type_name}")]
    HardLimit {
        /// `scanned` or `returned`.
        limit: &'static str,
        /// The configured maximum.
        max: u64,
        /// `find`, `update` or `delete`.
        operation: &'static str,
        /// Type that was queried.
        type_name: String,
    },
    /// Bad filter, option, updater, object or key value; the message names type/field/index.
    #[error("{0}")]
    UserData(String),
    /// Corrupt stored data (a record or key that cannot be decoded).
    #[error("storage corruption: {0}")]
    Corrupt(String),
    /// The underlying sled database failed.
    #[error("storage engine error: {0}")]
    Sled(#[from] sled::Error),
    /// A file-system operation failed (fsync of data files, directories).
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The storage is shut down or unusable (for example after a failed fsync).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The request names an index that is still being built from the stored objects.
    #[error("index \"{index}\" of {type_name} is being built from the stored objects ({done} versions so far); it answers once it is built (GET /admin/api/indexes)")]
    IndexBuilding {
        /// The type.
        type_name: String,
        /// The index.
        index: String,
        /// Stored versions indexed so far.
        done: u64,
    },
}

impl StorageError {
    /// Shorthand for a [`StorageError::UserData`] error.
    pub fn user(msg: impl Into<String>) -> Self {
        StorageError::UserData(msg.into())
    }

    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            StorageError::Conflict { .. } => ErrorClass::Conflict,
            StorageError::HardLimit { .. } | StorageError::UserData(_) => ErrorClass::UserData,
            StorageError::Corrupt(_) | StorageError::Sled(_) | StorageError::Io(_) | StorageError::Unavailable(_) => {
                ErrorClass::Internal
            }
            StorageError::IndexBuilding { .. } => ErrorClass::NotReady,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_limit_and_type() {
        let e = StorageError::HardLimit { limit: "scanned", max: 2000, operation: "find", type_name: "User".into() };
        assert_eq!(e.to_string(), "hard limit \"scanned\" (2000) exceeded in find User");
        assert_eq!(e.class(), ErrorClass::UserData);
        let c = StorageError::Conflict { type_name: "User".into(), expected: 3, actual: Some(4) };
        assert_eq!(c.to_string(), "conflict in User: only_if_version 3 but the current version is 4");
        assert_eq!(c.class(), ErrorClass::Conflict);
        let io = StorageError::from(std::io::Error::other("disk gone"));
        assert_eq!(io.class(), ErrorClass::Internal);
    }
}
