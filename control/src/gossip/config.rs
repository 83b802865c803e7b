//! Gossip timings and limits per mode: [`GossipTimings::lan`] follows serf's
//! LAN defaults, [`GossipTimings::wan`] its WAN defaults (slower probes, more
//! patience), [`GossipTimings::fast`] shortens every timer for `-dev` and
//! tests.

use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

/// Largest UDP payload we ever produce or accept (stays under a 1500 B MTU).
pub const UDP_PACKET_BYTES_LIMIT: usize = 1400;

/// Timers and limits of the gossip layer. All durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipTimings {
    /// How often a random member is probed.
    pub probe_period_ms: u64,
    /// How long to wait for a direct ack before asking others to probe.
    pub probe_rtt_ms: u64,
    /// How long a suspect member has to refute before it is declared failed.
    pub suspect_to_failed_ms: u64,
    /// How often updates are pushed to random members besides probes.
    pub gossip_period_ms: u64,
    /// How often we ask a random member for more members.
    pub announce_period_ms: u64,
    /// How often we try to reach members we consider failed (heals partitions).
    pub announce_to_failed_period_ms: u64,
    /// How long failed and left members stay listed before they are reaped.
    pub reap_after_ms: u64,
    /// Largest gossip packet produced or accepted (≤ [`UDP_PACKET_BYTES_LIMIT`]).
    pub packet_bytes_max: usize,
    /// Most members tracked; newcomers beyond it are refused with a log line.
    pub members_max: usize,
    /// Largest push-pull (TCP full state) payload read or written.
    pub push_pull_bytes_max: usize,
    /// Most push-pull connections served at once; extra ones are closed.
    pub push_pull_connections_max: usize,
    /// Connect, read and write deadline of one push-pull exchange.
    pub push_pull_timeout_ms: u64,
    /// Most packets queued for sending; the oldest is dropped beyond it.
    pub outbound_packets_max: usize,
    /// Most pending foca timers; beyond it new timers are dropped (logged).
    pub timers_max: usize,
    /// Upper bound of the time `leave` waits for its announcement to spread.
    pub leave_propagate_ms_max: u64,
}

impl GossipTimings {
    /// serf/memberlist LAN-like defaults (1 s probes, 72 h reap).
    pub fn lan() -> GossipTimings {
        GossipTimings {
            probe_period_ms: 1_000,
            probe_rtt_ms: 500,
            suspect_to_failed_ms: 5_000,
            gossip_period_ms: 200,
            announce_period_ms: 30_000,
            announce_to_failed_period_ms: 30_000,
            reap_after_ms: 72 * 3_600 * 1_000,
            packet_bytes_max: UDP_PACKET_BYTES_LIMIT,
            members_max: 10_000,
            push_pull_bytes_max: 8 * 1024 * 1024,
            push_pull_connections_max: 16,
            push_pull_timeout_ms: 10_000,
            outbound_packets_max: 4_096,
            timers_max: 65_536,
            leave_propagate_ms_max: 5_000,
        }
    }

    /// serf/memberlist WAN-like defaults: 5 s probes with a 3 s round trip,
    /// 30 s to refute a suspicion, 500 ms gossip, 60 s announces.
    pub fn wan() -> GossipTimings {
        GossipTimings {
            probe_period_ms: 5_000,
            probe_rtt_ms: 3_000,
            suspect_to_failed_ms: 30_000,
            gossip_period_ms: 500,
            announce_period_ms: 60_000,
            announce_to_failed_period_ms: 30_000,
            push_pull_timeout_ms: 30_000,
            ..GossipTimings::lan()
        }
    }

    /// Short timers for `-dev` and tests (failure detected in about a second).
    pub fn fast() -> GossipTimings {
        GossipTimings {
            probe_period_ms: 150,
            probe_rtt_ms: 50,
            suspect_to_failed_ms: 600,
            gossip_period_ms: 50,
            announce_period_ms: 1_000,
            announce_to_failed_period_ms: 1_000,
            reap_after_ms: 60_000,
            leave_propagate_ms_max: 1_000,
            push_pull_timeout_ms: 2_000,
            ..GossipTimings::lan()
        }
    }

    /// Checks the invariants foca relies on; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.probe_rtt_ms == 0 || self.probe_period_ms <= self.probe_rtt_ms {
            return Err("gossip: probe_period_ms must be larger than probe_rtt_ms > 0".to_string());
        }
        if self.suspect_to_failed_ms == 0 || self.gossip_period_ms == 0 || self.announce_period_ms == 0 {
            return Err("gossip: suspect, gossip and announce periods must be > 0".to_string());
        }
        if self.announce_to_failed_period_ms == 0 || self.reap_after_ms == 0 {
            return Err("gossip: announce_to_failed_period_ms and reap_after_ms must be > 0".to_string());
        }
        if self.packet_bytes_max < 512 || self.packet_bytes_max > UDP_PACKET_BYTES_LIMIT {
            return Err(format!(
                "gossip: packet_bytes_max must be within 512..={UDP_PACKET_BYTES_LIMIT}"
            ));
        }
        let counts = [
            self.members_max,
            self.push_pull_bytes_max,
            self.push_pull_connections_max,
            self.outbound_packets_max,
            self.timers_max,
        ];
        if counts.contains(&0) || self.push_pull_timeout_ms == 0 {
            return Err("gossip: every limit must be > 0".to_string());
        }
        Ok(())
    }

    /// The foca configuration for these timings.
    pub fn foca_config(&self) -> foca::Config {
        let mut config = foca::Config::new_lan(NonZeroU32::new(32).expect("32 is not zero"));
        config.probe_period = Duration::from_millis(self.probe_period_ms);
        config.probe_rtt = Duration::from_millis(self.probe_rtt_ms);
        config.num_indirect_probes = NonZeroUsize::new(3).expect("3 is not zero");
        config.max_transmissions = NonZeroU8::new(10).expect("10 is not zero");
        config.suspect_to_down_after = Duration::from_millis(self.suspect_to_failed_ms);
        config.remove_down_after = Some(Duration::from_millis(self.reap_after_ms));
        config.max_packet_size = NonZeroUsize::new(self.packet_bytes_max.max(1)).expect("max(1) is not zero");
        config.notify_down_members = true;
        config.periodic_announce = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(self.announce_period_ms),
            num_members: NonZeroUsize::new(1).expect("1 is not zero"),
        });
        config.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(self.announce_to_failed_period_ms),
            num_members: NonZeroUsize::new(2).expect("2 is not zero"),
        });
        config.periodic_gossip = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(self.gossip_period_ms),
            num_members: NonZeroUsize::new(3).expect("3 is not zero"),
        });
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_are_valid_and_fast_is_faster() {
        assert_eq!(GossipTimings::lan().validate(), Ok(()));
        assert_eq!(GossipTimings::fast().validate(), Ok(()));
        assert_eq!(GossipTimings::wan().validate(), Ok(()));
        assert!(GossipTimings::wan().probe_period_ms > GossipTimings::lan().probe_period_ms);
        assert!(GossipTimings::wan().suspect_to_failed_ms > GossipTimings::lan().suspect_to_failed_ms);
        assert!(GossipTimings::fast().suspect_to_failed_ms < GossipTimings::lan().suspect_to_failed_ms);
        assert_eq!(GossipTimings::lan().reap_after_ms, 259_200_000);
    }

    #[test]
    fn oversized_packets_are_rejected() {
        let timings = GossipTimings {
            packet_bytes_max: 9_000,
            ..GossipTimings::lan()
        };
        assert!(timings.validate().unwrap_err().contains("packet_bytes_max"));
    }

    #[test]
    fn probe_rtt_must_be_below_period() {
        let timings = GossipTimings {
            probe_rtt_ms: 1_000,
            ..GossipTimings::lan()
        };
        assert!(timings.validate().unwrap_err().contains("probe_period_ms"));
    }

    #[test]
    fn zero_limits_are_rejected() {
        let timings = GossipTimings {
            members_max: 0,
            ..GossipTimings::fast()
        };
        assert!(timings.validate().unwrap_err().contains("limit"));
    }

    #[test]
    fn foca_config_carries_the_timings() {
        let config = GossipTimings::fast().foca_config();
        assert_eq!(config.probe_period, Duration::from_millis(150));
        assert_eq!(config.suspect_to_down_after, Duration::from_millis(600));
        assert_eq!(config.max_packet_size.get(), 1400);
        assert_eq!(config.remove_down_after, Some(Duration::from_millis(60_000)));
    }
}
