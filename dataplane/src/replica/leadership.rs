//! Leadership as the data plane sees it (pure): from the ring heartbeat
//! while attached, "unknown and growing" once the control plane is gone or
//! silent for longer than [`HEARTBEAT_STALE_MS`].

use std::time::Instant;

use proconsul_shared::shm::ring::Heartbeat;

use crate::replica::version::LeaderInfo;

/// A heartbeat older than this means the control plane is lost.
pub const HEARTBEAT_STALE_MS: u64 = 2_000;
/// Changes in reported contact age smaller than this are not worth a new
/// version (they would publish on every heartbeat of a follower).
pub const CONTACT_PUBLISH_STEP_MS: u64 = 250;

/// How the applier is connected to the control plane.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// No control plane since `since`.
    Detached {
        /// When the control plane was lost.
        since: Instant,
    },
    /// Attached at wall clock `attached_unix_ms`, with the ring's latest
    /// heartbeat (a ring never stamped counts from the attach time).
    Attached {
        /// The ring's latest heartbeat.
        heartbeat: Heartbeat,
        /// Wall clock at attach time.
        attached_unix_ms: u64,
    },
}

/// Leadership at `now` (`now_unix_ms` is the same instant on the wall clock
/// the control plane stamps heartbeats with).
pub fn assess(link: Link, now: Instant, now_unix_ms: u64) -> LeaderInfo {
    match link {
        Link::Detached { since } => LeaderInfo::lost(since),
        Link::Attached {
            heartbeat,
            attached_unix_ms,
        } => {
            let beat_ms = if heartbeat.unix_ms == 0 {
                attached_unix_ms
            } else {
                heartbeat.unix_ms
            };
            let age_ms = now_unix_ms.saturating_sub(beat_ms);
            if age_ms > HEARTBEAT_STALE_MS {
                // Silent control plane: report the age and let it grow.
                LeaderInfo {
                    known_leader: false,
                    last_contact_ms: age_ms,
                    observed_at: now,
                    growing: true,
                }
            } else {
                LeaderInfo {
                    known_leader: heartbeat.leader_known,
                    last_contact_ms: heartbeat.last_contact_ms,
                    observed_at: now,
                    growing: false,
                }
            }
        }
    }
}

/// Whether `next` differs enough from the published `prev` to publish.
pub fn worth_publishing(prev: &LeaderInfo, next: &LeaderInfo) -> bool {
    if prev.known_leader != next.known_leader || prev.growing != next.growing {
        return true;
    }
    if next.growing {
        // Readers extrapolate growth themselves.
        return false;
    }
    prev.last_contact_ms.abs_diff(next.last_contact_ms) >= CONTACT_PUBLISH_STEP_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn attached(beat_unix_ms: u64, leader_known: bool, last_contact_ms: u64) -> Link {
        Link::Attached {
            heartbeat: Heartbeat {
                unix_ms: beat_unix_ms,
                leader_known,
                last_contact_ms,
            },
            attached_unix_ms: 1_000_000,
        }
    }

    #[test]
    fn fresh_heartbeat_reports_the_control_planes_view() {
        let t0 = Instant::now();
        let info = assess(attached(1_000_500, true, 40), t0, 1_001_000);
        assert!(info.known_leader && !info.growing);
        assert_eq!(info.last_contact_ms, 40);
        let follower = assess(attached(1_000_500, false, 900), t0, 1_001_000);
        assert!(!follower.known_leader);
        assert_eq!(follower.last_contact_ms, 900);
    }

    #[test]
    fn stale_heartbeat_means_leader_lost_and_growing() {
        let t0 = Instant::now();
        let info = assess(attached(1_000_000, true, 0), t0, 1_000_000 + HEARTBEAT_STALE_MS + 1);
        assert!(!info.known_leader && info.growing);
        assert_eq!(info.last_contact_ms, HEARTBEAT_STALE_MS + 1);
        let later = info.status_at(t0 + Duration::from_millis(100));
        assert_eq!(later.last_contact_ms, HEARTBEAT_STALE_MS + 101);
    }

    #[test]
    fn unstamped_ring_counts_from_the_attach_time() {
        let t0 = Instant::now();
        let young = assess(attached(0, false, 0), t0, 1_000_000 + HEARTBEAT_STALE_MS);
        assert!(!young.growing, "within the grace period nothing is lost yet");
        let old = assess(attached(0, false, 0), t0, 1_000_000 + HEARTBEAT_STALE_MS + 1);
        assert!(old.growing && !old.known_leader);
    }

    #[test]
    fn detached_is_unknown_and_growing_from_the_loss() {
        let t0 = Instant::now();
        let info = assess(Link::Detached { since: t0 }, t0 + Duration::from_secs(1), 0);
        assert!(!info.known_leader);
        assert_eq!(info.status_at(t0 + Duration::from_millis(700)).last_contact_ms, 700);
    }

    #[test]
    fn publishing_threshold() {
        let t0 = Instant::now();
        let a = LeaderInfo {
            known_leader: true,
            last_contact_ms: 10,
            observed_at: t0,
            growing: false,
        };
        let small = LeaderInfo {
            last_contact_ms: 10 + CONTACT_PUBLISH_STEP_MS - 1,
            ..a
        };
        let big = LeaderInfo {
            last_contact_ms: 10 + CONTACT_PUBLISH_STEP_MS,
            ..a
        };
        assert!(!worth_publishing(&a, &small));
        assert!(worth_publishing(&a, &big));
        assert!(worth_publishing(&a, &LeaderInfo::lost(t0)));
        let lost = LeaderInfo::lost(t0);
        let lost_later = LeaderInfo {
            last_contact_ms: 5_000,
            ..lost
        };
        assert!(
            !worth_publishing(&lost, &lost_later),
            "growth is extrapolated by readers"
        );
    }
}
