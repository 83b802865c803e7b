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

/// Servers with a data directory.
pub const SERVER_TIMERS: Timers = Timers {
    heartbeat_ms: 100,
    election_timeout_ms_min: 500,
    election_timeout_ms_max: 1000,
};

/// The validated openraft configuration for `dev` or server mode.
pub fn raft_config(dev: bool) -> anyhow::Result<Config> {
    let timers = if dev { DEV_TIMERS } else { SERVER_TIMERS };
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
        assert_eq!(server.heartbeat_interval, 100);
        assert_eq!((server.election_timeout_min, server.election_timeout_max), (500, 1000));
        for c in [dev, server] {
            assert_eq!(c.snapshot_policy, SnapshotPolicy::LogsSinceLast(10_000));
            assert!(c.replication_lag_threshold > SNAPSHOT_EVERY_LOGS);
            assert!(c.heartbeat_interval * 3 <= c.election_timeout_min);
        }
    }
}
