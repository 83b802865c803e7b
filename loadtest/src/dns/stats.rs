//! Counters of a DNS load.

use crate::latency::LatencyRecorder;

/// What the DNS generator counted in the measured phase.
#[derive(Debug, Clone, Default)]
pub struct DnsStats {
    /// Queries handed to the kernel.
    pub sent: u64,
    /// Replies matched to an outstanding query.
    pub answered: u64,
    /// Answers by header RCODE.
    pub rcodes: [u64; 16],
    /// Answers with the TC bit.
    pub truncated: u64,
    /// Queries never answered within the timeout.
    pub lost: u64,
    /// Replies matching no outstanding query (late, duplicated, or for a
    /// different question under a reused id).
    pub unmatched: u64,
    /// Datagrams too short to be a DNS reply, or not responses.
    pub malformed: u64,
    /// `sendmmsg` failures other than a full socket buffer.
    pub send_errors: u64,
    /// Fixed-rate mode: sends skipped because they could not go out on time.
    pub schedule_skipped: u64,
    pub latency: LatencyRecorder,
}

impl DnsStats {
    /// Counts one answer.
    pub fn record_answer(&mut self, rcode: u8, truncated: bool, latency_ns: u64) {
        self.answered += 1;
        self.rcodes[(rcode & 0x0f) as usize] += 1;
        self.truncated += u64::from(truncated);
        self.latency.record_ns(latency_ns);
    }

    /// Starts counting afresh (end of the warm-up).
    pub fn clear(&mut self) {
        *self = DnsStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_rcode() {
        let mut s = DnsStats::default();
        s.record_answer(0, false, 10_000);
        s.record_answer(3, true, 20_000);
        s.record_answer(0x13, false, 5_000);
        assert_eq!(s.answered, 3);
        assert_eq!(s.rcodes[0], 1);
        assert_eq!(s.rcodes[3], 2, "only the header's 4 bits count");
        assert_eq!(s.truncated, 1);
        assert_eq!(s.latency.count(), 3);
        s.clear();
        assert_eq!(s.answered, 0);
    }
}
