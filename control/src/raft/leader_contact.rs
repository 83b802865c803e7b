//! How long ago this server last knew a leader, for `X-Consul-KnownLeader`
//! and `X-Consul-LastContact`. Pure: the caller passes the time.

use std::sync::Mutex;
use std::time::Instant;

/// Remembers when a leader was last known.
#[derive(Debug)]
pub struct LeaderContact {
    started: Instant,
    last_known: Mutex<Option<Instant>>,
}

impl LeaderContact {
    /// Starts tracking at `now`, with no leader known yet.
    pub fn new(now: Instant) -> LeaderContact {
        LeaderContact {
            started: now,
            last_known: Mutex::new(None),
        }
    }

    /// Records what the raft metrics say at `now` and answers
    /// `(known_leader, last_contact_ms)`: `(true, 0)` while a leader is
    /// known (this server or another; per-follower contact times come with
    /// the cluster transport), otherwise `false` and the milliseconds since
    /// a leader was last known (or since start).
    pub fn observe(&self, now: Instant, leader_known: bool) -> (bool, u64) {
        let mut last_known = self.last_known.lock().expect("leader contact lock poisoned");
        if leader_known {
            *last_known = Some(now);
            return (true, 0);
        }
        let since = last_known.unwrap_or(self.started);
        (false, now.saturating_duration_since(since).as_millis() as u64)
    }

    /// Milliseconds since a leader was last known, `None` if never.
    pub fn last_contact_ms(&self, now: Instant) -> Option<u64> {
        let last_known = self.last_known.lock().expect("leader contact lock poisoned");
        last_known.map(|t| now.saturating_duration_since(t).as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_from_start_then_from_the_last_known_leader() {
        let t0 = Instant::now();
        let c = LeaderContact::new(t0);
        assert_eq!(c.last_contact_ms(t0), None);
        assert_eq!(c.observe(t0 + Duration::from_millis(40), false), (false, 40));
        assert_eq!(c.observe(t0 + Duration::from_millis(100), true), (true, 0));
        assert_eq!(c.last_contact_ms(t0 + Duration::from_millis(130)), Some(30));
        assert_eq!(c.observe(t0 + Duration::from_millis(350), false), (false, 250));
        assert_eq!(c.observe(t0 + Duration::from_millis(360), true), (true, 0));
    }
}
