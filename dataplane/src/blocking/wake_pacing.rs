//! Wake pacing under DNS pressure (issue #4, "DNS keeps ≥ 90 % of its
//! throughput under a watch storm"). Pure: fed the time and whether DNS
//! datagrams are waiting; no clocks, no sockets.
//!
//! A change that affects parked queries queues them ([`super::parking`]).
//! Each turn of the core's version follower asks [`WakePacing::decide`]
//! whether the queued wake-ups go out now or are held:
//!
//! * pacing off (`limits.wake_hold_ms_max` = 0), or DNS not busy: deliver
//!   now (one batch per turn, as without pacing). DNS is busy when
//!   datagrams are waiting on the core's sockets now, or when the core
//!   received at least [`DNS_BUSY_DATAGRAMS_PER_S_MIN`] a second over the
//!   last [`DNS_RATE_WINDOW`] (a closed-loop client on a CPU-bound machine
//!   often leaves the queue empty at the instant of a look: the server
//!   answered the last batch and the client has not had the CPU to send
//!   the next; the rate does not miss that);
//! * DNS busy and the oldest queued wake-up younger than the bound: hold,
//!   and look again at `recheck_at` (at most [`WAKE_HOLD_RECHECK`] later,
//!   never past the bound);
//! * the oldest queued wake-up has waited the bound: deliver, whatever DNS
//!   is doing. A held wake-up never waits longer than the bound for its
//!   first batch, and never forever.
//!
//! While wake-ups are held, further changes merge into the queue (a parked
//! query is queued at most once), and a woken query re-reads the newest
//! view: writes that land meanwhile coalesce into one answer per watcher,
//! which is what lowers the storm's total work (each answer and re-park
//! costs ~24 µs of CPU that DNS would otherwise get).

use std::time::{Duration, Instant};

/// The default `limits.wake_hold_ms_max`: the longest a wake-up is held
/// while DNS datagrams wait. 0 = off. Off by default: the storm runs on
/// the 2-core machine could not tell 50 ms from off (docs/BENCHMARKS.md
/// (d), "Wake pacing"), and a hold delays every watcher under DNS load;
/// turn it on where DNS and large watch fleets share cores.
pub const WAKE_HOLD_MS_MAX_DEFAULT: u64 = 0;
/// The largest `limits.wake_hold_ms_max` accepted: a watcher is never
/// held for more than a second.
pub const WAKE_HOLD_MS_MAX_LIMIT: u64 = 1_000;
/// How often held wake-ups look again whether DNS is still busy (the
/// runtime's timer granularity).
pub const WAKE_HOLD_RECHECK: Duration = Duration::from_millis(1);
/// The DNS receive rate is measured over windows of at least this long.
pub const DNS_RATE_WINDOW: Duration = Duration::from_millis(10);
/// DNS datagrams a second (on one core) from which DNS counts as busy: a
/// loaded core answers 50,000–100,000; a light background of lookups
/// stays far below.
pub const DNS_BUSY_DATAGRAMS_PER_S_MIN: u64 = 2_000;

/// What a core's DNS sockets show at a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsLoad {
    /// Datagrams are waiting in a receive queue now.
    pub datagrams_waiting: bool,
    /// Datagrams this core's DNS server received since it started
    /// (a counter; only differences matter).
    pub datagrams_received: u64,
}

/// What to do with the queued wake-ups this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeDecision {
    /// Wake the next batch now.
    Deliver,
    /// Keep them queued; decide again at `recheck_at` (or on the next
    /// event, whichever comes first).
    Hold { recheck_at: Instant },
}

/// Per-core pacing state: the bound and since when wake-ups are queued.
#[derive(Debug, Clone)]
pub struct WakePacing {
    hold_max: Duration,
    /// When the follower first saw the current (non-empty) wake queue.
    queued_since: Option<Instant>,
    /// Start of the current rate window and the DNS datagram count then.
    rate_window: Option<(Instant, u64)>,
    /// The last full window's rate reached [`DNS_BUSY_DATAGRAMS_PER_S_MIN`].
    dns_rate_busy: bool,
    stats: PacingStats,
}

/// What the pacing did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingStats {
    /// Decisions that held the queue.
    pub held: u64,
    /// Deliveries because the oldest wake-up reached the bound.
    pub delivered_at_bound: u64,
    /// Deliveries because DNS was not busy (or pacing is off).
    pub delivered_dns_idle: u64,
}

impl WakePacing {
    /// Holds wake-ups for at most `hold_ms_max` ms while DNS is busy;
    /// 0 = never (values above [`WAKE_HOLD_MS_MAX_LIMIT`] are clamped to it).
    pub fn new(hold_ms_max: u64) -> WakePacing {
        WakePacing {
            hold_max: Duration::from_millis(hold_ms_max.min(WAKE_HOLD_MS_MAX_LIMIT)),
            queued_since: None,
            rate_window: None,
            dns_rate_busy: false,
            stats: PacingStats::default(),
        }
    }

    /// Never holds anything.
    pub fn is_off(&self) -> bool {
        self.hold_max.is_zero()
    }

    /// The bound, in ms.
    pub fn hold_ms_max(&self) -> u64 {
        self.hold_max.as_millis() as u64
    }

    /// Called on a turn while wake-ups are queued: deliver or hold.
    /// `dns` = what the core's DNS sockets show now.
    pub fn decide(&mut self, now: Instant, dns: DnsLoad) -> WakeDecision {
        let since = *self.queued_since.get_or_insert(now);
        self.measure_rate(now, dns.datagrams_received);
        let dns_busy = dns.datagrams_waiting || self.dns_rate_busy;
        if self.is_off() || !dns_busy {
            self.stats.delivered_dns_idle += 1;
            return WakeDecision::Deliver;
        }
        let due = since + self.hold_max;
        if now >= due {
            self.stats.delivered_at_bound += 1;
            return WakeDecision::Deliver;
        }
        let recheck_at = due.min(now + WAKE_HOLD_RECHECK);
        debug_assert!(recheck_at > now && recheck_at <= due, "a hold ends by the bound");
        self.stats.held += 1;
        WakeDecision::Hold { recheck_at }
    }

    /// Closes the rate window once it is [`DNS_RATE_WINDOW`] long. A
    /// window that spans an idle gap (no decision for a while) averages
    /// over the gap, so a burst long ago does not count as busy.
    fn measure_rate(&mut self, now: Instant, received_total: u64) {
        let Some((start, start_total)) = self.rate_window else {
            self.rate_window = Some((now, received_total));
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < DNS_RATE_WINDOW {
            return;
        }
        let received = received_total.saturating_sub(start_total);
        let elapsed_us = elapsed.as_micros().max(1);
        self.dns_rate_busy = u128::from(received) * 1_000_000 / elapsed_us >= u128::from(DNS_BUSY_DATAGRAMS_PER_S_MIN);
        self.rate_window = Some((now, received_total));
    }

    /// What the pacing did so far.
    pub fn stats(&self) -> PacingStats {
        self.stats
    }

    /// Called on a turn with no wake-up queued: the next queued one starts
    /// a new hold.
    pub fn drained(&mut self) {
        self.queued_since = None;
    }

    /// When the oldest queued wake-up was first seen (None = nothing queued).
    pub fn queued_since(&self) -> Option<Instant> {
        self.queued_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn waiting() -> DnsLoad {
        DnsLoad {
            datagrams_waiting: true,
            datagrams_received: 0,
        }
    }

    fn idle() -> DnsLoad {
        DnsLoad::default()
    }

    fn received(total: u64) -> DnsLoad {
        DnsLoad {
            datagrams_waiting: false,
            datagrams_received: total,
        }
    }

    #[test]
    fn off_when_zero_delivers_at_once_even_under_dns_load() {
        let mut pacing = WakePacing::new(0);
        assert!(pacing.is_off());
        let t0 = Instant::now();
        assert_eq!(pacing.decide(t0, waiting()), WakeDecision::Deliver);
        assert_eq!(pacing.decide(t0 + ms(1), waiting()), WakeDecision::Deliver);
    }

    #[test]
    fn delivers_at_once_when_dns_is_idle() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        assert_eq!(pacing.decide(t0, idle()), WakeDecision::Deliver);
        assert_eq!(pacing.decide(t0 + ms(20), idle()), WakeDecision::Deliver);
        assert_eq!(pacing.stats().delivered_dns_idle, 2);
    }

    #[test]
    fn held_while_datagrams_wait_and_rechecked_every_step() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        assert_eq!(
            pacing.decide(t0, waiting()),
            WakeDecision::Hold {
                recheck_at: t0 + WAKE_HOLD_RECHECK
            }
        );
        assert_eq!(
            pacing.decide(t0 + ms(20), waiting()),
            WakeDecision::Hold {
                recheck_at: t0 + ms(20) + WAKE_HOLD_RECHECK
            }
        );
        assert_eq!(pacing.queued_since(), Some(t0), "the first sight starts the hold");
        // DNS went quiet (nothing waiting, nothing received): deliver early.
        assert_eq!(pacing.decide(t0 + ms(21), idle()), WakeDecision::Deliver);
        assert_eq!(pacing.stats().held, 2);
    }

    #[test]
    fn a_high_receive_rate_counts_as_busy_with_an_empty_queue() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        // 100 datagrams in 10 ms = 10,000/s: busy.
        assert_eq!(
            pacing.decide(t0, received(1_000)),
            WakeDecision::Deliver,
            "no rate known yet"
        );
        assert!(matches!(
            pacing.decide(t0 + DNS_RATE_WINDOW, received(1_100)),
            WakeDecision::Hold { .. }
        ));
        assert!(
            matches!(pacing.decide(t0 + ms(11), received(1_110)), WakeDecision::Hold { .. }),
            "busy until the next window closes"
        );
        // 10 datagrams in the next 10 ms = 1,000/s: not busy.
        assert_eq!(pacing.decide(t0 + ms(20), received(1_110)), WakeDecision::Deliver);
    }

    #[test]
    fn a_burst_long_ago_is_averaged_over_the_gap() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        assert_eq!(pacing.decide(t0, received(0)), WakeDecision::Deliver);
        // 1,000 datagrams, but over 10 s: 100/s.
        assert_eq!(
            pacing.decide(t0 + Duration::from_secs(10), received(1_000)),
            WakeDecision::Deliver
        );
    }

    #[test]
    fn delivered_at_the_bound_even_if_dns_stays_busy() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        assert!(matches!(pacing.decide(t0, waiting()), WakeDecision::Hold { .. }));
        // The last recheck before the bound lands exactly on it.
        assert_eq!(
            pacing.decide(t0 + Duration::from_micros(49_500), waiting()),
            WakeDecision::Hold {
                recheck_at: t0 + ms(50)
            }
        );
        assert_eq!(pacing.decide(t0 + ms(50), waiting()), WakeDecision::Deliver);
        assert_eq!(
            pacing.decide(t0 + ms(51), waiting()),
            WakeDecision::Deliver,
            "a backlog left after the bound keeps going out"
        );
        assert_eq!(pacing.stats().delivered_at_bound, 2);
    }

    #[test]
    fn every_hold_ends_by_the_bound() {
        let mut pacing = WakePacing::new(7);
        let t0 = Instant::now();
        let mut now = t0;
        let mut turns = 0;
        while let WakeDecision::Hold { recheck_at } = pacing.decide(now, waiting()) {
            assert!(recheck_at > now);
            assert!(recheck_at <= t0 + ms(7));
            now = recheck_at;
            turns += 1;
            assert!(turns <= 7, "held for {turns} rechecks");
        }
        assert_eq!(now, t0 + ms(7));
    }

    #[test]
    fn a_drained_queue_starts_a_new_hold() {
        let mut pacing = WakePacing::new(50);
        let t0 = Instant::now();
        assert!(matches!(pacing.decide(t0, waiting()), WakeDecision::Hold { .. }));
        assert_eq!(pacing.decide(t0 + ms(50), waiting()), WakeDecision::Deliver);
        pacing.drained();
        assert_eq!(pacing.queued_since(), None);
        assert!(matches!(
            pacing.decide(t0 + ms(60), waiting()),
            WakeDecision::Hold { .. }
        ));
        assert_eq!(pacing.queued_since(), Some(t0 + ms(60)));
    }

    #[test]
    fn the_bound_is_clamped() {
        let pacing = WakePacing::new(u64::MAX);
        assert_eq!(pacing.hold_ms_max(), WAKE_HOLD_MS_MAX_LIMIT);
    }
}
