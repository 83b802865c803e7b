//! The raft log in memory: entries by index, the last purged id, the vote
//! and the committed id. It is the whole log store in `-dev` mode and the
//! readable copy of the WAL otherwise (the WAL replays into it on open).
//!
//! Pure: no IO. Every mutation checks that the log stays consecutive (no
//! hole), which openraft relies on.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use openraft::{LogIdOptionExt, RaftLogId};

use super::types::{Entry, LogId, Vote};

/// A mutation that would break the log's shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogShapeError {
    /// An appended entry does not follow the last one.
    #[error("log entry {index} does not follow the last index (expected {expected})")]
    Hole { index: u64, expected: u64 },
}

/// The in-memory log.
#[derive(Debug, Clone, Default)]
pub struct MemLog {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl MemLog {
    /// The id of the last entry, or of the last purged one when the log is empty.
    pub fn last_log_id(&self) -> Option<LogId> {
        match self.entries.last_key_value() {
            Some((_, e)) => Some(*e.get_log_id()),
            None => self.last_purged,
        }
    }

    /// The id of the last purged entry, if any was purged.
    pub fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// Index the next appended entry must have.
    pub fn next_index(&self) -> u64 {
        self.last_log_id().next_index()
    }

    /// The last saved vote.
    pub fn vote(&self) -> Option<Vote> {
        self.vote
    }

    /// Records a vote (the caller persists it first).
    pub fn set_vote(&mut self, vote: Vote) {
        self.vote = Some(vote);
    }

    /// The last committed id recorded.
    pub fn committed(&self) -> Option<LogId> {
        self.committed
    }

    /// Records the committed id.
    pub fn set_committed(&mut self, committed: Option<LogId>) {
        self.committed = committed;
    }

    /// Number of entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks that `index` may be appended now.
    pub fn check_next(&self, index: u64) -> Result<(), LogShapeError> {
        let expected = self.next_index();
        if index != expected {
            return Err(LogShapeError::Hole { index, expected });
        }
        Ok(())
    }

    /// Appends one entry; it must follow the last one.
    pub fn append(&mut self, entry: Entry) -> Result<(), LogShapeError> {
        let index = entry.get_log_id().index;
        self.check_next(index)?;
        self.entries.insert(index, entry);
        Ok(())
    }

    /// Removes every entry at or after `since`.
    pub fn truncate(&mut self, since: u64) {
        self.entries.split_off(&since);
    }

    /// Removes every entry up to and including `upto`, which becomes the
    /// last purged id. Purging past the last entry empties the log (after a
    /// snapshot install); purging behind the last purge does nothing.
    pub fn purge(&mut self, upto: LogId) {
        if self.last_purged.is_some_and(|p| p.index >= upto.index) {
            return;
        }
        let keep = self.entries.split_off(&(upto.index + 1));
        self.entries = keep;
        self.last_purged = Some(upto);
    }

    /// Clones of the entries in `range`, in order.
    pub fn range<R: RangeBounds<u64>>(&self, range: R) -> Vec<Entry> {
        self.entries.range(range).map(|(_, e)| e.clone()).collect()
    }

    /// Every held entry, in order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};
    use proconsul_shared::Command;

    use super::*;

    /// A log id in `term` (leader node 1) at `index`.
    pub(crate) fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// A KV-set entry at `index` in `term`.
    pub(crate) fn kv_entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(Command::KvSet {
                key: format!("key/{index}"),
                value: index.to_le_bytes().to_vec(),
                flags: 0,
            }),
        }
    }

    fn indexes(log: &MemLog) -> Vec<u64> {
        log.entries().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn appends_must_be_consecutive() {
        let mut log = MemLog::default();
        assert_eq!(log.last_log_id(), None);
        assert_eq!(log.next_index(), 0);
        log.append(kv_entry(1, 0)).unwrap();
        log.append(kv_entry(1, 1)).unwrap();
        assert_eq!(
            log.append(kv_entry(1, 3)),
            Err(LogShapeError::Hole { index: 3, expected: 2 })
        );
        assert_eq!(
            log.append(kv_entry(1, 1)),
            Err(LogShapeError::Hole { index: 1, expected: 2 })
        );
        assert_eq!(indexes(&log), [0, 1]);
        assert_eq!(log.last_log_id(), Some(log_id(1, 1)));
    }

    #[test]
    fn truncate_then_append_replaces_the_tail() {
        let mut log = MemLog::default();
        for i in 0..5 {
            log.append(kv_entry(1, i)).unwrap();
        }
        log.truncate(3);
        assert_eq!(indexes(&log), [0, 1, 2]);
        log.append(kv_entry(2, 3)).unwrap();
        assert_eq!(log.last_log_id(), Some(log_id(2, 3)));
        assert_eq!(log.range(1..3).len(), 2);
    }

    #[test]
    fn purge_keeps_the_tail_and_remembers_the_id() {
        let mut log = MemLog::default();
        for i in 0..5 {
            log.append(kv_entry(1, i)).unwrap();
        }
        log.purge(log_id(1, 2));
        assert_eq!(indexes(&log), [3, 4]);
        assert_eq!(log.last_purged(), Some(log_id(1, 2)));
        log.purge(log_id(1, 1));
        assert_eq!(log.last_purged(), Some(log_id(1, 2)), "purge never goes back");

        log.purge(log_id(3, 10));
        assert!(log.is_empty());
        assert_eq!(
            log.last_log_id(),
            Some(log_id(3, 10)),
            "empty log reports the purged id"
        );
        assert_eq!(log.next_index(), 11);
        log.append(kv_entry(3, 11)).unwrap();
    }
}
