//! How long ago this server last heard from a leader, for
//! `X-Consul-KnownLeader` and `X-Consul-LastContact`. Pure: the caller
//! passes the time.

use std::sync::Mutex;
use std::time::Instant;

/// Who leads, as raft's metrics say, and for a follower when the leader's
/// last append (entries or heartbeat) arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderSeen {
    /// This server leads: contact is now.
    ThisServer,
    /// Another server leads; `last_append` is when its last accepted
    /// append arrived (`None`: none yet since start).
    Another { last_append: Option<Instant> },
    /// No leader is known.
    Nobody,
}

/// Remembers when a leader was last heard from.
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

    /// Records what raft says at `now` and answers `(known_leader,
    /// last_contact_ms)`: `(true, 0)` on the leader; on a follower the
    /// milliseconds since the leader's last append (or since start, before
    /// the first); without a leader `false` and the milliseconds since a
    /// leader was last heard from (or since start).
    pub fn observe(&self, now: Instant, seen: LeaderSeen) -> (bool, u64) {
        let mut last_known = self.last_known.lock().expect("leader contact lock poisoned");
        let since = |t: Option<Instant>| now.saturating_duration_since(t.unwrap_or(self.started)).as_millis() as u64;
        match seen {
            LeaderSeen::ThisServer => {
                *last_known = Some(now);
                (true, 0)
            }
            LeaderSeen::Another { last_append } => {
                if last_append > *last_known {
                    *last_known = last_append;
                }
                (true, since(*last_known))
            }
            LeaderSeen::Nobody => (false, since(*last_known)),
        }
    }

    /// Milliseconds since a leader was last heard from, `None` if never.
    pub fn last_contact_ms(&self, now: Instant) -> Option<u64> {
        let last_known = self.last_known.lock().expect("leader contact lock poisoned");
        last_known.map(|t| now.saturating_duration_since(t).as_millis() as u64)
    }
}

/// When a follower last accepted an append from the current leader
/// (stamped by the peer service; read for `X-Consul-LastContact`).
#[derive(Debug, Default)]
pub struct LeaderAppends {
    last: Mutex<Option<Instant>>,
}

impl LeaderAppends {
    /// An append from the leader was accepted at `now`.
    pub fn record(&self, now: Instant) {
        let mut last = self.last.lock().expect("leader appends lock poisoned");
        if Some(now) > *last {
            *last = Some(now);
        }
    }

    /// When the last accepted append arrived, `None` if none yet.
    pub fn last(&self) -> Option<Instant> {
        *self.last.lock().expect("leader appends lock poisoned")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_from_start_then_from_the_last_known_leader() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = LeaderContact::new(t0);
        assert_eq!(c.last_contact_ms(t0), None);
        assert_eq!(c.observe(t0 + ms(40), LeaderSeen::Nobody), (false, 40));
        assert_eq!(c.observe(t0 + ms(100), LeaderSeen::ThisServer), (true, 0));
        assert_eq!(c.last_contact_ms(t0 + ms(130)), Some(30));
        assert_eq!(c.observe(t0 + ms(350), LeaderSeen::Nobody), (false, 250));
        assert_eq!(c.observe(t0 + ms(360), LeaderSeen::ThisServer), (true, 0));
    }

    #[test]
    fn a_follower_counts_from_the_leaders_last_append() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = LeaderContact::new(t0);
        let before_any = LeaderSeen::Another { last_append: None };
        assert_eq!(c.observe(t0 + ms(30), before_any), (true, 30), "since start");
        let appended = LeaderSeen::Another {
            last_append: Some(t0 + ms(50)),
        };
        assert_eq!(c.observe(t0 + ms(80), appended), (true, 30));
        assert_eq!(
            c.observe(t0 + ms(1_050), appended),
            (true, 1_000),
            "a silent leader ages"
        );
        assert_eq!(c.last_contact_ms(t0 + ms(1_050)), Some(1_000));
        assert_eq!(c.observe(t0 + ms(1_100), LeaderSeen::Nobody), (false, 1_050));
        let stale = LeaderSeen::Another {
            last_append: Some(t0 + ms(10)),
        };
        assert_eq!(
            c.observe(t0 + ms(1_100), stale),
            (true, 1_050),
            "contact never goes back"
        );
    }

    #[test]
    fn appends_only_move_forward() {
        let t0 = Instant::now();
        let a = LeaderAppends::default();
        assert_eq!(a.last(), None);
        a.record(t0 + Duration::from_millis(20));
        a.record(t0 + Duration::from_millis(10));
        assert_eq!(a.last(), Some(t0 + Duration::from_millis(20)));
    }
}
