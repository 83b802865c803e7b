//! Blocking-query timing (BLOCKING.md §2), pure: how long a parked read
//! may wait. The randomness for the jitter is passed in.

use std::time::Duration;

use proconsul_shared::agent_info::AgentInfo;

use crate::blocking::WatchSet;

/// Consul's `default_query_time` when the agent reports none.
pub const DEFAULT_QUERY_TIME_MS: u64 = 300_000;
/// Consul's `max_query_time` when the agent reports none.
pub const MAX_QUERY_TIME_MS: u64 = 600_000;
/// The jitter is at most the wait divided by this.
pub const JITTER_FRACTION: u32 = 16;

/// A read whose result index has not passed the client's `?index` yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The client's `?index`: answer once the result index exceeds it.
    pub min_index: u64,
    /// The wait before jitter (`?wait`, defaulted and clamped).
    pub wait: Duration,
    /// What can change the answer.
    pub watch: WatchSet,
}

/// The wait for a blocking read: `?wait` when positive, else the agent's
/// default, never above the agent's maximum.
pub fn blocking_wait(wait_ns: Option<i64>, agent: &AgentInfo) -> Duration {
    let max_ms = if agent.max_query_time_ms == 0 {
        MAX_QUERY_TIME_MS
    } else {
        agent.max_query_time_ms
    };
    let default_ms = if agent.default_query_time_ms == 0 {
        DEFAULT_QUERY_TIME_MS
    } else {
        agent.default_query_time_ms
    };
    let max = Duration::from_millis(max_ms);
    let wait = match wait_ns {
        Some(ns) if ns > 0 => Duration::from_nanos(ns as u64),
        _ => Duration::from_millis(default_ms),
    };
    wait.min(max)
}

/// Consul's `RandomStagger(wait / 16)`: `random` modulo a sixteenth.
pub fn jitter(wait: Duration, random: u64) -> Duration {
    let range_ns = (wait / JITTER_FRACTION).as_nanos() as u64;
    if range_ns == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random % range_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_defaults_and_clamps() {
        let mut agent = crate::api::test_support::agent();
        agent.default_query_time_ms = 300_000;
        agent.max_query_time_ms = 600_000;
        assert_eq!(blocking_wait(None, &agent), Duration::from_secs(300));
        assert_eq!(blocking_wait(Some(0), &agent), Duration::from_secs(300));
        assert_eq!(blocking_wait(Some(-5), &agent), Duration::from_secs(300));
        assert_eq!(blocking_wait(Some(2_000_000_000), &agent), Duration::from_secs(2));
        assert_eq!(
            blocking_wait(Some(1_000), &agent),
            Duration::from_micros(1),
            "sub-ms waits stay short"
        );
        assert_eq!(blocking_wait(Some(3_600_000_000_000), &agent), Duration::from_secs(600));
        agent.default_query_time_ms = 0;
        agent.max_query_time_ms = 0;
        assert_eq!(
            blocking_wait(None, &agent),
            Duration::from_millis(DEFAULT_QUERY_TIME_MS)
        );
        assert_eq!(
            blocking_wait(Some(i64::MAX), &agent),
            Duration::from_millis(MAX_QUERY_TIME_MS)
        );
    }

    #[test]
    fn jitter_stays_below_a_sixteenth() {
        let wait = Duration::from_secs(300);
        let bound = Duration::from_millis(18_750);
        for random in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
            assert!(jitter(wait, random) < bound);
        }
        assert_eq!(jitter(wait, 0), Duration::ZERO);
        assert_eq!(jitter(Duration::from_nanos(10), u64::MAX), Duration::ZERO);
    }
}
