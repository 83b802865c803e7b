//! Session TTL timers (sans-IO): a deadline per session with a TTL, in
//! milliseconds of a monotonic clock the caller supplies. A session is
//! invalidated when it is not renewed within [`SESSION_TTL_MULTIPLIER`] ×
//! TTL (Consul's `sessionTTLMultiplier`).

use std::collections::{BTreeSet, HashMap};

/// A session lives this many TTLs after its last renewal.
pub const SESSION_TTL_MULTIPLIER: u64 = 2;

/// After a session is reported expired, it is reported again this long
/// later if it is still armed (its destroy did not apply: no leader, a
/// full queue...).
pub const EXPIRY_RETRY_MS: u64 = 5_000;

/// A timer that could not be armed: the table is full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many session timers ({0} armed)")]
pub struct TimersFull(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Armed {
    ttl_ms: u64,
    deadline_ms: u64,
}

/// Deadlines by session ID, bounded by `capacity`.
#[derive(Debug, Clone)]
pub struct SessionTimers {
    armed: HashMap<String, Armed>,
    /// `(deadline_ms, id)`, the same entries as `armed`, earliest first.
    by_deadline: BTreeSet<(u64, String)>,
    capacity: usize,
}

impl SessionTimers {
    pub fn new(capacity: usize) -> SessionTimers {
        SessionTimers {
            armed: HashMap::new(),
            by_deadline: BTreeSet::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// The deadline of `id`, if armed.
    pub fn deadline_ms(&self, id: &str) -> Option<u64> {
        self.armed.get(id).map(|a| a.deadline_ms)
    }

    /// The earliest deadline.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.by_deadline.first().map(|(d, _)| *d)
    }

    /// Arms (or re-arms) `id` at `now_ms` + multiplier × `ttl_ms`.
    pub fn arm(&mut self, id: &str, ttl_ms: u64, now_ms: u64) -> Result<(), TimersFull> {
        if !self.armed.contains_key(id) && self.armed.len() >= self.capacity {
            return Err(TimersFull(self.armed.len()));
        }
        let deadline_ms = now_ms.saturating_add(ttl_ms.saturating_mul(SESSION_TTL_MULTIPLIER));
        self.set(id, Armed { ttl_ms, deadline_ms });
        Ok(())
    }

    /// Pushes the deadline of an armed `id` out to `now_ms` + multiplier ×
    /// its TTL. Returns whether it was armed.
    pub fn renew(&mut self, id: &str, now_ms: u64) -> bool {
        let Some(armed) = self.armed.get(id).copied() else {
            return false;
        };
        let deadline_ms = now_ms.saturating_add(armed.ttl_ms.saturating_mul(SESSION_TTL_MULTIPLIER));
        self.set(id, Armed { deadline_ms, ..armed });
        true
    }

    /// Forgets `id`. Returns whether it was armed.
    pub fn disarm(&mut self, id: &str) -> bool {
        match self.armed.remove(id) {
            Some(armed) => {
                let removed = self.by_deadline.remove(&(armed.deadline_ms, id.to_string()));
                debug_assert!(removed, "the deadline index mirrors the armed map");
                true
            }
            None => false,
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.armed.clear();
        self.by_deadline.clear();
    }

    /// The sessions whose deadline is at or before `now_ms`, earliest
    /// first. Each stays armed, its deadline moved to `now_ms` +
    /// [`EXPIRY_RETRY_MS`], until `disarm` (its destroy applied).
    pub fn expired(&mut self, now_ms: u64) -> Vec<String> {
        let due: Vec<String> = self
            .by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &due {
            if let Some(armed) = self.armed.get(id).copied() {
                self.set(
                    id,
                    Armed {
                        deadline_ms: now_ms.saturating_add(EXPIRY_RETRY_MS),
                        ..armed
                    },
                );
            }
        }
        due
    }

    fn set(&mut self, id: &str, armed: Armed) {
        if let Some(old) = self.armed.insert(id.to_string(), armed) {
            self.by_deadline.remove(&(old.deadline_ms, id.to_string()));
        }
        self.by_deadline.insert((armed.deadline_ms, id.to_string()));
        debug_assert_eq!(self.armed.len(), self.by_deadline.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_at_twice_the_ttl() {
        let mut t = SessionTimers::new(8);
        t.arm("a", 10_000, 1_000).unwrap();
        assert_eq!(t.deadline_ms("a"), Some(21_000));
        assert!(t.expired(20_999).is_empty(), "not before 2 x TTL");
        assert_eq!(t.expired(21_000), vec!["a".to_string()]);
    }

    #[test]
    fn renew_pushes_the_deadline_out() {
        let mut t = SessionTimers::new(8);
        t.arm("a", 10_000, 0).unwrap();
        assert!(t.renew("a", 15_000));
        assert_eq!(t.deadline_ms("a"), Some(35_000));
        assert!(t.expired(34_999).is_empty());
        assert_eq!(t.expired(35_000), vec!["a".to_string()]);
        assert!(!t.renew("unknown", 0), "an unarmed session is not armed by a renew");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expired_sessions_are_retried_until_disarmed() {
        let mut t = SessionTimers::new(8);
        t.arm("a", 10_000, 0).unwrap();
        t.arm("b", 20_000, 0).unwrap();
        assert_eq!(t.expired(25_000), vec!["a".to_string()]);
        assert!(t.expired(25_001).is_empty(), "reported once per retry period");
        assert_eq!(t.next_deadline_ms(), Some(25_000 + EXPIRY_RETRY_MS));
        assert!(t.disarm("a"));
        assert!(!t.disarm("a"));
        assert_eq!(t.expired(100_000), vec!["b".to_string()]);
    }

    #[test]
    fn capacity_is_bounded() {
        let mut t = SessionTimers::new(2);
        t.arm("a", 10_000, 0).unwrap();
        t.arm("b", 10_000, 0).unwrap();
        assert_eq!(t.arm("c", 10_000, 0), Err(TimersFull(2)));
        t.arm("a", 20_000, 0).expect("re-arming an armed session needs no room");
        assert_eq!(t.deadline_ms("a"), Some(40_000));
    }
}
