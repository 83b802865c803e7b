//! Fixed-rate sending: how many queries are due at a given time. Sends
//! that fall more than a burst behind schedule are skipped and counted,
//! not caught up, so a stall never turns into a burst the server would
//! not see at a steady rate.

/// The schedule of a fixed-rate run.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate_per_s: u64,
    start_ns: u64,
    /// Sends granted or skipped so far.
    accounted: u64,
    burst_max: u64,
    /// Sends skipped because the generator fell behind.
    skipped: u64,
}

impl Pacer {
    /// A schedule of `rate_per_s` starting at `start_ns`, letting at most
    /// `burst_max` due sends pile up.
    pub fn new(rate_per_s: u64, start_ns: u64, burst_max: u64) -> Pacer {
        assert!(rate_per_s > 0 && burst_max > 0, "a rate and a burst are positive");
        Pacer {
            rate_per_s,
            start_ns,
            accounted: 0,
            burst_max,
            skipped: 0,
        }
    }

    fn due(&self, now_ns: u64) -> u64 {
        let elapsed = now_ns.saturating_sub(self.start_ns) as u128;
        (elapsed * self.rate_per_s as u128 / 1_000_000_000) as u64
    }

    /// Grants up to `want` sends at `now_ns`.
    pub fn grant(&mut self, now_ns: u64, want: u64) -> u64 {
        let mut available = self.due(now_ns) - self.accounted;
        if available > self.burst_max {
            let behind = available - self.burst_max;
            self.skipped += behind;
            self.accounted += behind;
            available = self.burst_max;
        }
        let granted = available.min(want);
        self.accounted += granted;
        granted
    }

    /// Nanoseconds from `now_ns` until the next send is due (0 if one is).
    pub fn wait_ns(&self, now_ns: u64) -> u64 {
        if self.due(now_ns) > self.accounted {
            return 0;
        }
        let next = self.accounted as u128 + 1;
        let at = self.start_ns as u128 + (next * 1_000_000_000).div_ceil(self.rate_per_s as u128);
        (at as u64).saturating_sub(now_ns)
    }

    /// Sends skipped because they could not go out on time.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Restarts the schedule (end of the warm-up).
    pub fn restart(&mut self, now_ns: u64) {
        self.start_ns = now_ns;
        self.accounted = 0;
        self.skipped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_follow_the_rate() {
        let mut p = Pacer::new(1_000, 0, 100);
        assert_eq!(p.grant(0, 10), 0);
        assert_eq!(p.grant(5_000_000, 10), 5, "5 ms at 1,000/s");
        assert_eq!(p.grant(5_000_000, 10), 0);
        assert_eq!(p.grant(20_000_000, 3), 3, "capped by what the caller wants");
        assert_eq!(p.grant(20_000_000, 100), 12, "the rest of what was due");
        assert_eq!(p.skipped(), 0);
    }

    #[test]
    fn a_stall_skips_instead_of_bursting() {
        let mut p = Pacer::new(1_000_000, 0, 64);
        // One second late: 1,000,000 due, only a burst goes out.
        assert_eq!(p.grant(1_000_000_000, u64::MAX), 64);
        assert_eq!(p.skipped(), 1_000_000 - 64);
        assert_eq!(p.grant(1_000_000_000, u64::MAX), 0);
    }

    #[test]
    fn wait_until_the_next_send() {
        let mut p = Pacer::new(1_000, 0, 10);
        assert_eq!(p.wait_ns(0), 1_000_000);
        assert_eq!(p.wait_ns(400_000), 600_000);
        assert_eq!(p.wait_ns(1_000_000), 0);
        assert_eq!(p.grant(1_000_000, 10), 1);
        assert_eq!(p.wait_ns(1_000_000), 1_000_000);
        p.restart(50_000_000);
        assert_eq!(p.grant(50_000_000, 10), 0);
        assert_eq!(p.wait_ns(50_500_000), 500_000);
    }
}
