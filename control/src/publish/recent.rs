//! The most recent deltas, encoded, for servers to stream to client agents
//! (and to lagging readers) without touching the shared-memory ring. Bounded
//! by count and bytes; older deltas fall off the front, and a reader that
//! asks for an index no longer held gets a snapshot instead.

use std::collections::VecDeque;
use std::sync::Arc;

/// Most deltas kept.
pub const RECENT_DELTAS_MAX: usize = 65_536;
/// Most encoded bytes kept.
pub const RECENT_DELTA_BYTES_MAX: usize = 64 * 1024 * 1024;

/// An encoded delta and its raft index.
pub type EncodedDelta = (u64, Arc<[u8]>);

/// A bounded window of consecutive published deltas.
#[derive(Debug, Default)]
pub struct RecentDeltas {
    deltas: VecDeque<EncodedDelta>,
    bytes: usize,
    /// Index of the last delta that fell off (or the base of a reset):
    /// deltas after it are all held.
    floor: u64,
}

/// The answer to "what came after index N".
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Every delta after N, in order (possibly none).
    Deltas(Vec<EncodedDelta>),
    /// N is older than the window: start again from a snapshot.
    TooOld,
}

impl RecentDeltas {
    /// Appends the delta at `index`. Indexes must increase.
    pub fn push(&mut self, index: u64, bytes: Arc<[u8]>) {
        if let Some((last, _)) = self.deltas.back() {
            assert!(index > *last, "recent deltas must increase: {index} after {last}");
        }
        self.bytes += bytes.len();
        self.deltas.push_back((index, bytes));
        while self.deltas.len() > RECENT_DELTAS_MAX || self.bytes > RECENT_DELTA_BYTES_MAX {
            let (i, b) = self.deltas.pop_front().expect("non-empty while over a bound");
            self.bytes -= b.len();
            self.floor = i;
        }
    }

    /// Forgets everything: the state was replaced at `index` (a snapshot
    /// install), so only a snapshot brings a reader past it.
    pub fn reset(&mut self, index: u64) {
        self.deltas.clear();
        self.bytes = 0;
        self.floor = index;
    }

    /// The deltas after `index`, at most `count_max` of them.
    pub fn since(&self, index: u64, count_max: usize) -> Since {
        if index < self.floor {
            return Since::TooOld;
        }
        let start = self.deltas.partition_point(|(i, _)| *i <= index);
        Since::Deltas(self.deltas.iter().skip(start).take(count_max).cloned().collect())
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Arc<[u8]> {
        vec![0u8; n].into()
    }

    #[test]
    fn since_returns_the_deltas_after_an_index() {
        let mut r = RecentDeltas::default();
        for i in 1..=5 {
            r.push(i, bytes(8));
        }
        let Since::Deltas(d) = r.since(2, 100) else { panic!() };
        assert_eq!(d.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(r.since(5, 100), Since::Deltas(vec![]));
        let Since::Deltas(d) = r.since(0, 2) else { panic!() };
        assert_eq!(d.len(), 2, "bounded by count_max");
    }

    #[test]
    fn the_window_is_bounded_and_old_readers_need_a_snapshot() {
        let mut r = RecentDeltas::default();
        for i in 1..=(RECENT_DELTAS_MAX as u64 + 10) {
            r.push(i, bytes(1));
        }
        assert_eq!(r.len(), RECENT_DELTAS_MAX);
        assert_eq!(r.since(5, 10), Since::TooOld);
        assert!(matches!(r.since(10, 10), Since::Deltas(d) if d[0].0 == 11));
        let mut r = RecentDeltas::default();
        r.push(1, bytes(RECENT_DELTA_BYTES_MAX));
        r.push(2, bytes(10));
        assert_eq!(r.len(), 1, "bounded by bytes");
        assert_eq!(r.since(0, 10), Since::TooOld);
    }

    #[test]
    fn a_reset_sends_everyone_older_to_a_snapshot() {
        let mut r = RecentDeltas::default();
        r.push(1, bytes(1));
        r.reset(50);
        assert_eq!(r.since(1, 10), Since::TooOld);
        assert_eq!(r.since(50, 10), Since::Deltas(vec![]));
        r.push(51, bytes(1));
        assert!(matches!(r.since(50, 10), Since::Deltas(d) if d.len() == 1));
    }

    #[test]
    #[should_panic(expected = "must increase")]
    fn indexes_must_increase() {
        let mut r = RecentDeltas::default();
        r.push(2, bytes(1));
        r.push(2, bytes(1));
    }
}
