//! Which offsets of a partition may be committed: an offset is committed only when it and every
//! offset before it (as consumed here) have been accepted, whatever order acceptance ends in.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug)]
struct Partition {
    in_flight: BTreeSet<i64>,
    /// One past the highest offset accepted.
    high: i64,
    /// The last offset handed out to be stored.
    stored: i64,
}

/// In-flight offsets per (topic, partition).
#[derive(Debug, Default)]
pub struct Progress {
    partitions: HashMap<(String, i32), Partition>,
}

impl Progress {
    /// `offset` of `topic`/`partition` was consumed and is being accepted.
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) {
        // A partition starts where its first message is: nothing before it is ours to commit.
        let p = self.partitions.entry((topic.to_string(), partition)).or_insert_with(|| Partition {
            in_flight: BTreeSet::new(),
            high: offset,
            stored: offset,
        });
        p.in_flight.insert(offset);
    }

    /// `offset` is accepted. Returns the next offset to consume that may now be committed (all
    /// before it accepted), when it moved forward.
    pub fn accepted(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        // A partition forgotten at a revocation: its new owner commits for it.
        let p = self.partitions.get_mut(&(topic.to_string(), partition))?;
        if !p.in_flight.remove(&offset) {
            return None;
        }
        p.high = p.high.max(offset + 1);
        let committable = p.in_flight.first().copied().unwrap_or(p.high);
        (committable > p.stored).then(|| {
            p.stored = committable;
            committable
        })
    }

    /// The partitions were revoked: forget them.
    pub fn forget(&mut self, revoked: &[(String, i32)]) {
        for key in revoked {
            self.partitions.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_below_the_oldest_in_flight_offset() {
        let mut p = Progress::default();
        for offset in 5..9 {
            p.started("t", 0, offset);
        }
        assert_eq!(p.accepted("t", 0, 6), None, "5 is still in flight");
        assert_eq!(p.accepted("t", 0, 8), None);
        assert_eq!(p.accepted("t", 0, 5), Some(7), "5 and 6 done, 7 in flight");
        assert_eq!(p.accepted("t", 0, 7), Some(9));
        assert_eq!(p.accepted("t", 0, 7), None, "twice is once");
    }

    #[test]
    fn partitions_are_independent_and_forgotten_ones_commit_nothing() {
        let mut p = Progress::default();
        p.started("t", 0, 0);
        p.started("t", 1, 10);
        p.started("u", 0, 3);
        assert_eq!(p.accepted("t", 1, 10), Some(11));
        p.forget(&[("t".to_string(), 0)]);
        assert_eq!(p.accepted("t", 0, 0), None);
        assert_eq!(p.accepted("u", 0, 3), Some(4));
    }

    #[test]
    fn an_offset_never_accepted_holds_the_partition_back() {
        let mut p = Progress::default();
        p.started("t", 0, 1);
        p.started("t", 0, 2);
        assert_eq!(p.accepted("t", 0, 2), None, "1 was never accepted (the engine stopped)");
    }
}
