//! Lock-delay (sans-IO): after a session is invalidated, the keys it held
//! cannot be acquired (`?acquire=` answers `false`) until its `LockDelay`
//! has passed. Like Consul, this is kept outside the replicated state: each
//! server records the delay when it applies the invalidation, with its own
//! monotonic clock, and the leader consults it before proposing a lock.
//! Consul caps a delay at 60 s ([`LOCK_DELAY_NS_MAX`]).

use std::collections::HashMap;

/// The longest lock-delay applied (Consul's `MaxLockDelay`).
pub const LOCK_DELAY_NS_MAX: u64 = 60_000_000_000;

/// Most keys under lock-delay at once. Beyond, expired entries are dropped
/// first, then the ones that end soonest (a delay is cut short rather than
/// memory growing without bound).
pub const LOCK_DELAYS_MAX: usize = 262_144;

/// Keys under lock-delay with the monotonic millisecond their delay ends.
#[derive(Debug, Clone)]
pub struct LockDelays {
    until_ms: HashMap<String, u64>,
    capacity: usize,
}

impl LockDelays {
    pub fn new(capacity: usize) -> LockDelays {
        assert!(capacity > 0, "a lock-delay table holds at least one key");
        LockDelays {
            until_ms: HashMap::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.until_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until_ms.is_empty()
    }

    /// Puts `key` under a delay of `delay_ns` (capped at
    /// [`LOCK_DELAY_NS_MAX`]) from `now_ms`. A zero delay records nothing;
    /// a longer delay already recorded is kept.
    pub fn record(&mut self, key: &str, delay_ns: u64, now_ms: u64) {
        let delay_ms = delay_ns.min(LOCK_DELAY_NS_MAX) / 1_000_000;
        if delay_ms == 0 {
            return;
        }
        let until = now_ms.saturating_add(delay_ms);
        if let Some(existing) = self.until_ms.get_mut(key) {
            *existing = (*existing).max(until);
            return;
        }
        if self.until_ms.len() >= self.capacity {
            self.prune(now_ms);
        }
        if self.until_ms.len() >= self.capacity {
            self.evict_soonest();
        }
        self.until_ms.insert(key.to_string(), until);
        debug_assert!(self.until_ms.len() <= self.capacity);
    }

    /// Whether `key` is still under lock-delay at `now_ms`.
    pub fn is_delayed(&self, key: &str, now_ms: u64) -> bool {
        self.until_ms.get(key).is_some_and(|until| *until > now_ms)
    }

    /// Drops every delay that ended at or before `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        self.until_ms.retain(|_, until| *until > now_ms);
    }

    fn evict_soonest(&mut self) {
        let soonest = self
            .until_ms
            .iter()
            .min_by_key(|(_, until)| **until)
            .map(|(k, _)| k.clone());
        if let Some(key) = soonest {
            self.until_ms.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_delayed_for_the_lock_delay_only() {
        let mut d = LockDelays::new(16);
        d.record("k", 15_000_000_000, 1_000);
        assert!(d.is_delayed("k", 1_000));
        assert!(d.is_delayed("k", 15_999));
        assert!(!d.is_delayed("k", 16_000));
        assert!(!d.is_delayed("other", 1_000));
    }

    #[test]
    fn zero_delay_records_nothing_and_long_delays_are_capped() {
        let mut d = LockDelays::new(16);
        d.record("zero", 0, 0);
        assert!(d.is_empty());
        d.record("long", 3_600_000_000_000, 0);
        assert!(d.is_delayed("long", 59_999));
        assert!(!d.is_delayed("long", 60_000), "capped at 60 s");
    }

    #[test]
    fn a_longer_delay_already_recorded_is_kept() {
        let mut d = LockDelays::new(16);
        d.record("k", 30_000_000_000, 0);
        d.record("k", 1_000_000_000, 0);
        assert!(d.is_delayed("k", 29_000));
    }

    #[test]
    fn capacity_drops_expired_then_soonest() {
        let mut d = LockDelays::new(2);
        d.record("a", 1_000_000_000, 0);
        d.record("b", 10_000_000_000, 0);
        d.record("c", 10_000_000_000, 2_000);
        assert_eq!(d.len(), 2);
        assert!(!d.is_delayed("a", 2_000), "the expired one went first");
        d.record("e", 20_000_000_000, 3_000);
        assert_eq!(d.len(), 2);
        assert!(!d.is_delayed("b", 3_000), "then the one ending soonest");
        assert!(d.is_delayed("c", 3_000) && d.is_delayed("e", 3_000));
    }
}
