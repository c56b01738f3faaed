//! Keyspaces: the first byte of every key in the one sled tree.

/// A keyspace of the database. The byte values are part of the on-disk format: never change or
/// reuse one; add new variants with new bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Keyspace {
    /// Object versions: `[type][pk][!version]` -> record.
    Objects = 0x01,
    /// Current-index entries (latest live version only): `[type][index#][key][pk]` -> version.
    CurrentIndex = 0x02,
    /// History-index entries (every version, secondary indexes): `[type][index#][key][pk][!version]`.
    HistoryIndex = 0x03,
    /// Repair queue entries (owned by the engine's repair module).
    RepairQueue = 0x10,
    /// Output queue entries (owned by the output processor).
    OutputQueue = 0x11,
    /// Jobs.
    Jobs = 0x12,
    /// Tasks and their runs.
    Tasks = 0x13,
    /// Sequence high-water marks: `[name]` -> i64.
    Sequences = 0x14,
    /// Access tokens.
    Tokens = 0x15,
    /// Storage metadata (version high-water mark, format version).
    Meta = 0x16,
    /// Shared key-value storage of scripts (`shared::set/get`).
    Shared = 0x17,
    /// Done markers of intake-log records: `[segment][entry id]` (see `storage::intake_log`).
    Done = 0x18,
    /// The audit log: `[time ns, big-endian][sequence]` -> entry (see `security::audit`).
    Audit = 0x19,
    /// Repair-queue entries no notification mail has told of yet: `[entry id]` -> a summary
    /// (see `crate::notifier`).
    Notify = 0x1A,
    /// The object journal: `[time ns][sequence]` -> a page of events, JSON lines (see
    /// `crate::journal`).
    Journal = 0x1B,
}

impl Keyspace {
    /// Every keyspace, in byte order.
    pub const ALL: [Keyspace; 15] = [
        Keyspace::Objects,
        Keyspace::CurrentIndex,
        Keyspace::HistoryIndex,
        Keyspace::RepairQueue,
        Keyspace::OutputQueue,
        Keyspace::Jobs,
        Keyspace::Tasks,
        Keyspace::Sequences,
        Keyspace::Tokens,
        Keyspace::Meta,
        Keyspace::Shared,
        Keyspace::Done,
        Keyspace::Audit,
        Keyspace::Notify,
        Keyspace::Journal,
    ];

    /// The key prefix byte of this keyspace.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The keyspace of a prefix byte.
    pub fn from_byte(b: u8) -> Option<Keyspace> {
        Self::ALL.iter().copied().find(|k| k.byte() == b)
    }

    /// `[byte] ++ key`: the full key in the sled tree.
    pub(crate) fn key(self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(key.len() + 1);
        out.push(self.byte());
        out.extend_from_slice(key);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for ks in Keyspace::ALL {
            assert!(seen.insert(ks.byte()), "duplicate byte {}", ks.byte());
            assert_eq!(Keyspace::from_byte(ks.byte()), Some(ks));
        }
        assert_eq!(Keyspace::from_byte(0xEE), None);
        assert_eq!(Keyspace::Meta.key(b"x"), vec![0x16, b'x']);
    }
}
