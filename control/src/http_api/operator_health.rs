//! Autopilot health, pure: whether each server is healthy, the cluster's
//! failure tolerance, and since when each server's health has been stable.
//!
//! A server is healthy when all of these hold (Consul autopilot's rules;
//! thresholds in [`HealthThresholds`]):
//! * gossip says it is alive;
//! * it answered the leader's probe, knows a leader, and the probe's round
//!   trip (our stand-in for Consul's last contact) is within
//!   `last_contact_ms_max`;
//! * its last log index trails the leader's by at most `trailing_logs_max`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::raft::types::NodeId;

/// Most servers whose health history is kept.
pub const HEALTH_HISTORY_SERVERS_MAX: usize = 64;

/// When a server counts as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthThresholds {
    /// Longest probe round trip (Consul's `LastContactThreshold` is 200 ms
    /// of follower contact; a probe on a loaded host needs more room).
    pub last_contact_ms_max: u64,
    /// Most log entries a server may trail the leader by (Consul's
    /// `MaxTrailingLogs` default).
    pub trailing_logs_max: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            last_contact_ms_max: 500,
            trailing_logs_max: 250,
        }
    }
}

/// What health is judged from, for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthInputs {
    pub serf_alive: bool,
    /// `None`: the server did not answer the probe.
    pub last_contact_ms: Option<u64>,
    pub knows_leader: bool,
    pub last_index: u64,
    pub leader_last_index: u64,
}

/// Whether one server is healthy.
pub fn server_healthy(inputs: &HealthInputs, thresholds: &HealthThresholds) -> bool {
    let contact_ok = inputs
        .last_contact_ms
        .is_some_and(|ms| ms <= thresholds.last_contact_ms_max);
    let trailing = inputs.leader_last_index.saturating_sub(inputs.last_index);
    inputs.serf_alive && contact_ok && inputs.knows_leader && trailing <= thresholds.trailing_logs_max
}

/// How many voters may fail with quorum kept: healthy voters beyond a
/// quorum of all voters, never negative.
pub fn failure_tolerance(voters: usize, healthy_voters: usize) -> usize {
    let quorum = voters / 2 + 1;
    healthy_voters.saturating_sub(quorum)
}

/// Since when each server has had its current health: the first time it
/// was seen with it. Bounded to [`HEALTH_HISTORY_SERVERS_MAX`] servers.
#[derive(Debug, Default)]
pub struct HealthHistory {
    seen: Mutex<BTreeMap<NodeId, (bool, SystemTime)>>,
}

impl HealthHistory {
    /// Records `healthy` for `id` at `now` and answers since when it has held.
    pub fn stable_since(&self, id: NodeId, healthy: bool, now: SystemTime) -> SystemTime {
        let mut seen = self.seen.lock().expect("health history lock");
        if let Some((was, since)) = seen.get(&id) {
            if *was == healthy {
                return *since;
            }
        } else if seen.len() >= HEALTH_HISTORY_SERVERS_MAX {
            return now;
        }
        seen.insert(id, (healthy, now));
        now
    }

    /// Forgets servers no longer in the configuration.
    pub fn retain(&self, ids: &[NodeId]) {
        self.seen
            .lock()
            .expect("health history lock")
            .retain(|id, _| ids.contains(id));
    }
}

/// `t` as RFC 3339 in UTC with seconds (`2026-11-22T21:30:09Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn healthy_inputs() -> HealthInputs {
        HealthInputs {
            serf_alive: true,
            last_contact_ms: Some(3),
            knows_leader: true,
            last_index: 1_000,
            leader_last_index: 1_000,
        }
    }

    #[test]
    fn each_rule_can_make_a_server_unhealthy() {
        let t = HealthThresholds::default();
        assert!(server_healthy(&healthy_inputs(), &t));
        let cases = [
            HealthInputs {
                serf_alive: false,
                ..healthy_inputs()
            },
            HealthInputs {
                last_contact_ms: None,
                ..healthy_inputs()
            },
            HealthInputs {
                last_contact_ms: Some(t.last_contact_ms_max + 1),
                ..healthy_inputs()
            },
            HealthInputs {
                knows_leader: false,
                ..healthy_inputs()
            },
            HealthInputs {
                last_index: 1_000 - t.trailing_logs_max - 1,
                ..healthy_inputs()
            },
        ];
        for c in cases {
            assert!(!server_healthy(&c, &t), "{c:?}");
        }
        let at_the_limit = HealthInputs {
            last_index: 1_000 - t.trailing_logs_max,
            last_contact_ms: Some(t.last_contact_ms_max),
            ..healthy_inputs()
        };
        assert!(server_healthy(&at_the_limit, &t));
    }

    #[test]
    fn failure_tolerance_counts_healthy_voters_beyond_quorum() {
        assert_eq!(failure_tolerance(3, 3), 1);
        assert_eq!(failure_tolerance(3, 2), 0);
        assert_eq!(failure_tolerance(3, 1), 0);
        assert_eq!(failure_tolerance(5, 5), 2);
        assert_eq!(failure_tolerance(1, 1), 0);
        assert_eq!(failure_tolerance(0, 0), 0);
    }

    #[test]
    fn stable_since_moves_only_when_health_changes() {
        let history = HealthHistory::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(5);
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(history.stable_since(1, true, t0), t0);
        assert_eq!(history.stable_since(1, true, t1), t0);
        assert_eq!(history.stable_since(1, false, t2), t2);
        history.retain(&[]);
        assert_eq!(
            history.stable_since(1, false, t2 + Duration::from_secs(1)),
            t2 + Duration::from_secs(1)
        );
        for id in 0..HEALTH_HISTORY_SERVERS_MAX as u64 {
            history.stable_since(100 + id, true, t0);
        }
        assert_eq!(
            history.stable_since(9_999, true, t2),
            t2,
            "full: answers now, keeps nothing"
        );
        assert_eq!(
            history.stable_since(9_999, true, t2 + Duration::from_secs(9)),
            t2 + Duration::from_secs(9)
        );
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_383_009)),
            "2026-11-22T21:30:09Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
