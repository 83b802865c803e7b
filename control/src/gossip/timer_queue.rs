//! A bounded queue of foca timers ordered by due time (ms on the caller's
//! clock), fired in due order, ties in submission order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foca::Timer;

use super::identity::NodeIdentity;

/// Pending foca timers.
#[derive(Debug)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    next_sequence: u64,
    timers_max: usize,
    dropped_total: u64,
}

#[derive(Debug)]
struct Entry {
    due_ms: u64,
    sequence: u64,
    timer: Timer<NodeIdentity>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.due_ms, self.sequence) == (other.due_ms, other.sequence)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        (self.due_ms, self.sequence).cmp(&(other.due_ms, other.sequence))
    }
}

impl TimerQueue {
    /// An empty queue holding at most `timers_max` timers.
    pub fn new(timers_max: usize) -> TimerQueue {
        assert!(timers_max > 0, "timers_max must be > 0");
        TimerQueue {
            heap: BinaryHeap::new(),
            next_sequence: 0,
            timers_max,
            dropped_total: 0,
        }
    }

    /// Schedules `timer` at `due_ms`; returns false (and counts it) when full.
    pub fn push(&mut self, due_ms: u64, timer: Timer<NodeIdentity>) -> bool {
        if self.heap.len() >= self.timers_max {
            self.dropped_total += 1;
            tracing::error!(
                timers_max = self.timers_max,
                "gossip: timer queue full, dropping a foca timer"
            );
            return false;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.heap.push(Reverse(Entry {
            due_ms,
            sequence,
            timer,
        }));
        true
    }

    /// Removes and returns the earliest timer due at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Timer<NodeIdentity>> {
        if self.heap.peek()?.0.due_ms > now_ms {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry.timer)
    }

    /// Due time of the earliest timer.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(entry)| entry.due_ms)
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Timers refused because the queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_due_order_then_submission_order() {
        let mut queue = TimerQueue::new(8);
        queue.push(30, Timer::PeriodicGossip(3));
        queue.push(10, Timer::PeriodicGossip(1));
        queue.push(10, Timer::PeriodicGossip(2));
        assert_eq!(queue.next_due_ms(), Some(10));
        assert_eq!(queue.pop_due(5), None);
        assert_eq!(queue.pop_due(10), Some(Timer::PeriodicGossip(1)));
        assert_eq!(queue.pop_due(10), Some(Timer::PeriodicGossip(2)));
        assert_eq!(queue.pop_due(29), None);
        assert_eq!(queue.pop_due(100), Some(Timer::PeriodicGossip(3)));
        assert!(queue.is_empty());
    }

    #[test]
    fn refuses_beyond_the_cap() {
        let mut queue = TimerQueue::new(2);
        assert!(queue.push(1, Timer::PeriodicGossip(0)));
        assert!(queue.push(1, Timer::PeriodicGossip(0)));
        assert!(!queue.push(1, Timer::PeriodicGossip(0)));
        assert_eq!((queue.len(), queue.dropped_total()), (2, 1));
    }
}
