//! What one generator thread counted; merged across threads at the end.

use std::collections::BTreeMap;

use crate::latency::LatencyRecorder;

/// Counters of an HTTP load.
#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    /// Responses received whole.
    pub responses: u64,
    /// Responses by status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Bytes of those responses on the wire.
    pub wire_bytes: u64,
    /// Body bytes of those responses.
    pub body_bytes: u64,
    /// Latency of each response, from its request being queued for writing.
    pub latency: LatencyRecorder,
    /// Connects that failed.
    pub connect_errors: u64,
    /// Reads or writes that failed, or the peer closing with requests outstanding.
    pub io_errors: u64,
    /// Responses we could not parse (or did not ask for).
    pub protocol_errors: u64,
    /// Requests abandoned because their connection waited past the timeout.
    pub timeouts: u64,
    /// Connections reopened (after an error, a timeout or `Connection: close`).
    pub reconnects: u64,
    /// Of those, reopened because the server announced `Connection: close`.
    pub server_closes: u64,
}

impl HttpStats {
    /// Counts one complete response.
    pub fn record_response(&mut self, status: u16, wire_bytes: usize, body_bytes: usize, latency_ns: u64) {
        self.responses += 1;
        *self.status_counts.entry(status).or_default() += 1;
        self.wire_bytes += wire_bytes as u64;
        self.body_bytes += body_bytes as u64;
        self.latency.record_ns(latency_ns);
    }

    /// Adds another thread's counts.
    pub fn merge(&mut self, other: &HttpStats) {
        self.responses += other.responses;
        for (status, n) in &other.status_counts {
            *self.status_counts.entry(*status).or_default() += n;
        }
        self.wire_bytes += other.wire_bytes;
        self.body_bytes += other.body_bytes;
        self.latency.merge(&other.latency);
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.protocol_errors += other.protocol_errors;
        self.timeouts += other.timeouts;
        self.reconnects += other.reconnects;
        self.server_closes += other.server_closes;
    }

    /// Responses with a 2xx status.
    pub fn successes(&self) -> u64 {
        self.status_counts.range(200..300).map(|(_, n)| n).sum()
    }

    /// Starts counting afresh (end of the warm-up).
    pub fn clear(&mut self) {
        *self = HttpStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merge_and_successes() {
        let mut a = HttpStats::default();
        a.record_response(200, 400, 305, 50_000);
        a.record_response(404, 200, 0, 40_000);
        let mut b = HttpStats::default();
        b.record_response(200, 400, 305, 60_000);
        b.timeouts = 2;
        a.merge(&b);
        assert_eq!(a.responses, 3);
        assert_eq!(a.status_counts[&200], 2);
        assert_eq!(a.status_counts[&404], 1);
        assert_eq!(a.successes(), 2);
        assert_eq!(a.wire_bytes, 1_000);
        assert_eq!(a.body_bytes, 610);
        assert_eq!(a.latency.count(), 3);
        assert_eq!(a.timeouts, 2);
        a.clear();
        assert_eq!(a.responses, 0);
        assert_eq!(a.latency.count(), 0);
    }
}
