//! openraft timing and snapshot settings per mode.

use openraft::{Config, SnapshotPolicy};

use super::limits::{REPLICATION_LAG_LOGS_MAX, SNAPSHOT_EVERY_LOGS, SNAPSHOT_LOGS_KEPT};

/// Timers in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Shortest wait for a heartbeat before standing for election.
    pub election_timeout_ms_min: u64,
    /// Longest such wait (each wait is random in between).
    pub election_timeout_ms_max: u64,
}

/// `-dev`: a single in-memory server leads well under a second after start.
pub const DEV_TIMERS: Timers = Timers {
    heartbeat_ms: 50,
    election_timeout_ms_min: 150,
    election_timeout_ms_max: 300,
};

/// Servers with a data directory, tuned for loopback/LAN round trips.
///
/// openraft 0.9 derives the leader lease from `election_timeout_max`: a
/// follower that last heard from the leader (committed vote) stands for
/// election only after lease + its own random election timeout, i.e.
/// 750–1000 ms of silence here (was 1500–2000 ms with 100/500/1000), and
/// voters refuse a candidate while their lease (500 ms) runs. Silence means
/// 15+ missed heartbeats, which leaves room for a loaded 2-core machine and
/// a slow fsync; a leader's crash is noticed in under a second.
pub const SERVER_TIMERS: Timers = Timers {
    heartbeat_ms: 50,
    election_timeout_ms_min: 250,
    election_timeout_ms_max: 500,
};

/// How long followers wait, after the leader's last message, before one
/// stands for election, at the shortest and longest (openraft 0.9: leader
/// lease, which is `election_timeout_max`, plus the random election
/// timeout).
pub fn leader_silence_ms_range(timers: Timers) -> (u64, u64) {
    let lease_ms = timers.election_timeout_ms_max;
    (
        lease_ms + timers.election_timeout_ms_min,
        lease_ms + timers.election_timeout_ms_max,
    )
}

/// The validated openraft configuration for `dev` or server mode.
pub fn raft_config(dev: bool) -> anyhow::Result<Config> {
    let timers = if dev { DEV_TIMERS } else { SERVER_TIMERS };
    let (silence_ms_min, silence_ms_max) = leader_silence_ms_range(timers);
    tracing::debug!(
        heartbeat_ms = timers.heartbeat_ms,
        silence_ms_min,
        silence_ms_max,
        "raft timers: followers elect after this much leader silence"
    );
    let config = Config {
        cluster_name: "proconsul".into(),
        heartbeat_interval: timers.heartbeat_ms,
        election_timeout_min: timers.election_timeout_ms_min,
        election_timeout_max: timers.election_timeout_ms_max,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_LOGS),
        max_in_snapshot_log_to_keep: SNAPSHOT_LOGS_KEPT,
        replication_lag_threshold: REPLICATION_LAG_LOGS_MAX,
        ..Config::default()
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid raft configuration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_and_server_configs_validate_with_their_timers() {
        let dev = raft_config(true).unwrap();
        assert_eq!(dev.heartbeat_interval, 50);
        assert_eq!((dev.election_timeout_min, dev.election_timeout_max), (150, 300));
        let server = raft_config(false).unwrap();
        assert_eq!(server.heartbeat_interval, 50);
        assert_eq!((server.election_timeout_min, server.election_timeout_max), (250, 500));
        for c in [dev, server] {
            assert_eq!(c.snapshot_policy, SnapshotPolicy::LogsSinceLast(10_000));
            assert!(c.replication_lag_threshold > SNAPSHOT_EVERY_LOGS);
            assert!(c.heartbeat_interval * 3 <= c.election_timeout_min);
        }
    }

    #[test]
    fn a_crashed_server_leader_is_replaced_within_a_second_but_not_after_a_few_lost_heartbeats() {
        let (shortest, longest) = leader_silence_ms_range(SERVER_TIMERS);
        assert_eq!((shortest, longest), (750, 1000));
        assert!(shortest >= 15 * SERVER_TIMERS.heartbeat_ms, "room for lost heartbeats");
        assert!(longest <= 1000, "failover under a second of leader silence");
    }
}
