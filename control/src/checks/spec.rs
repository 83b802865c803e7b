//! What a check runner is told to do ([`CheckSpec`]) and what it says back
//! ([`CheckReport`]), with the defaults and guards applied to a spec.

use std::collections::BTreeMap;
use std::time::Duration;

use proconsul_shared::state::CheckStatus;

/// Consul's default probe timeout for HTTP and TCP checks.
pub const HTTP_TCP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Consul's default timeout for script checks.
pub const SCRIPT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Longest probe timeout: a larger one is clamped (keeps deadline
/// arithmetic far from overflow; no probe needs an hour).
pub const PROBE_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// Consul's smallest check interval (`checks.MinInterval`): the caller
/// raises shorter intervals to this, as Consul's agent does, with a warning.
pub const CONSUL_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Guard against a busy loop when a spec arrives with a zero interval or
/// TTL: the runner never probes more often than this.
pub const INTERVAL_FLOOR: Duration = Duration::from_millis(10);
/// Consul's default captured output size (`DefaultBufSize`).
pub const OUTPUT_MAX_BYTES_DEFAULT: usize = 4096;
/// Hard limit on captured output per run, whatever the spec asks for.
pub const OUTPUT_MAX_BYTES_LIMIT: usize = 1 << 20;

/// One check to run on this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub check_id: String,
    pub kind: CheckKind,
    /// Time between the end of one probe and the start of the next.
    pub interval: Duration,
    /// Probe timeout; zero means the kind's Consul default.
    pub timeout: Duration,
    pub success_before_passing: u32,
    /// Zero means "same as `failures_before_critical`" (Consul's default).
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    /// Captured output bound; zero means [`OUTPUT_MAX_BYTES_DEFAULT`],
    /// anything above [`OUTPUT_MAX_BYTES_LIMIT`] is clamped to it.
    pub output_max_bytes: usize,
}

/// How a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// An HTTP request: 2xx passing, 429 warning, anything else critical.
    Http {
        url: String,
        /// Empty means `GET`.
        method: String,
        headers: BTreeMap<String, Vec<String>>,
        body: String,
        tls_skip_verify: bool,
        /// Name to send as SNI and verify the certificate against, instead
        /// of the URL's host. Empty means the URL's host.
        tls_server_name: String,
        disable_redirects: bool,
    },
    /// A TCP connect: passing when it connects.
    Tcp { address: String },
    /// A program run without a shell: exit 0 passing, 1 warning, else
    /// critical.
    Script { args: Vec<String> },
    /// No probe: critical when not touched within `ttl`.
    Ttl { ttl: Duration },
}

/// One (thresholded) result of a check, for the agent to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub check_id: String,
    pub status: CheckStatus,
    pub output: String,
}

impl CheckSpec {
    /// The probe timeout with Consul's default for the kind when unset,
    /// at most [`PROBE_TIMEOUT_MAX`].
    pub fn timeout_effective(&self) -> Duration {
        if !self.timeout.is_zero() {
            return self.timeout.min(PROBE_TIMEOUT_MAX);
        }
        match self.kind {
            CheckKind::Script { .. } => SCRIPT_TIMEOUT_DEFAULT,
            _ => HTTP_TCP_TIMEOUT_DEFAULT,
        }
    }

    /// The interval, never below [`INTERVAL_FLOOR`].
    pub fn interval_effective(&self) -> Duration {
        self.interval.max(INTERVAL_FLOOR)
    }

    /// The captured output bound after defaults and the hard limit.
    pub fn output_max_bytes_effective(&self) -> usize {
        if self.output_max_bytes == 0 {
            OUTPUT_MAX_BYTES_DEFAULT
        } else {
            self.output_max_bytes.min(OUTPUT_MAX_BYTES_LIMIT)
        }
    }
}

/// `now + timeout`, saturating far in the future instead of overflowing.
pub fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + PROBE_TIMEOUT_MAX)
}

#[cfg(test)]
pub(crate) fn spec_for_test(check_id: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        check_id: check_id.to_string(),
        kind,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        success_before_passing: 0,
        failures_before_warning: 0,
        failures_before_critical: 0,
        output_max_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_guards_apply() {
        let mut spec = spec_for_test(
            "c",
            CheckKind::Tcp {
                address: "127.0.0.1:1".into(),
            },
        );
        spec.timeout = Duration::ZERO;
        spec.interval = Duration::ZERO;
        assert_eq!(spec.timeout_effective(), HTTP_TCP_TIMEOUT_DEFAULT);
        assert_eq!(spec.interval_effective(), INTERVAL_FLOOR);
        assert_eq!(spec.output_max_bytes_effective(), OUTPUT_MAX_BYTES_DEFAULT);
        spec.output_max_bytes = usize::MAX;
        assert_eq!(spec.output_max_bytes_effective(), OUTPUT_MAX_BYTES_LIMIT);
        spec.output_max_bytes = 10;
        assert_eq!(spec.output_max_bytes_effective(), 10);
        spec.kind = CheckKind::Script {
            args: vec!["true".into()],
        };
        assert_eq!(spec.timeout_effective(), SCRIPT_TIMEOUT_DEFAULT);
        spec.timeout = Duration::from_millis(250);
        assert_eq!(spec.timeout_effective(), Duration::from_millis(250));
        spec.timeout = Duration::MAX;
        assert_eq!(spec.timeout_effective(), PROBE_TIMEOUT_MAX);
    }

    #[tokio::test]
    async fn huge_timeouts_do_not_overflow_deadlines() {
        let deadline = deadline_after(Duration::MAX);
        assert!(deadline > tokio::time::Instant::now());
    }
}
