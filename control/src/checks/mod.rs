//! Health check runners: HTTP, TCP, script and TTL checks of the local
//! agent, as tokio tasks (one per check, never a thread per check).
//!
//! [`CheckRunners`] is the registry the agent drives: `start` (re)starts a
//! check's runner, `stop` ends it, `ttl_touched`/`ttl_updated` feed TTL
//! checks. Every run's result goes through Consul's success/failure
//! thresholds ([`thresholds`]) and, when they let it through, out as a
//! [`CheckReport`] on the agent's channel; the agent decides what becomes
//! a write.
//!
//! * [`spec`]: `CheckSpec`, `CheckKind`, `CheckReport`, defaults.
//! * [`thresholds`], [`output`], [`go_text`]: pure logic and Consul's texts.
//! * [`http`], [`tcp`], [`script`], [`ttl`]: one probe of each kind.
//! * [`runner`]: a probing check's loop; [`gate`]: the stop-safe report door.

pub mod gate;
pub mod go_text;
pub mod http;
pub mod output;
pub mod runner;
pub mod script;
pub mod spec;
pub mod tcp;
pub mod thresholds;
pub mod ttl;

#[cfg(test)]
mod test_server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

pub use spec::{CheckKind, CheckReport, CheckSpec};

use gate::{ReportGate, StopFlag};
use http::HttpCheck;
use runner::{run_probe_loop, Probe, ProbeSchedule};
use script::ScriptSlots;
use thresholds::StatusThresholds;
use ttl::{run_ttl, TtlControl};

/// Most check runners one agent runs by default.
pub const RUNNERS_MAX_DEFAULT: usize = 10_000;
/// Most script checks running at once by default.
pub const SCRIPTS_CONCURRENT_MAX_DEFAULT: usize = 64;
/// Longest first-run stagger by default (Consul staggers over the whole
/// interval; a short one lets a result follow registration quickly).
pub const FIRST_RUN_STAGGER_MAX_DEFAULT: Duration = Duration::from_secs(1);

/// Bounds of a [`CheckRunners`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksLimits {
    pub runners_max: usize,
    pub scripts_concurrent_max: usize,
    /// The first probe runs after a random delay in
    /// `[0, min(interval, first_run_stagger_max)]`.
    pub first_run_stagger_max: Duration,
}

impl Default for ChecksLimits {
    fn default() -> Self {
        ChecksLimits {
            runners_max: RUNNERS_MAX_DEFAULT,
            scripts_concurrent_max: SCRIPTS_CONCURRENT_MAX_DEFAULT,
            first_run_stagger_max: FIRST_RUN_STAGGER_MAX_DEFAULT,
        }
    }
}

/// Why a runner did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksError {
    #[error("too many health checks on this agent (limit {limit})")]
    TooManyRunners { limit: usize },
    #[error("Invalid check: {0}")]
    InvalidCheck(String),
    #[error("health check runners need a tokio runtime")]
    NoRuntime,
    #[error("HTTP client for health checks: {0}")]
    HttpClient(String),
}

/// One running check.
#[derive(Debug)]
struct Runner {
    task: JoinHandle<()>,
    stop: StopFlag,
    ttl: Option<Arc<TtlControl>>,
}

impl Runner {
    fn stop(self) {
        self.stop.stop();
        self.task.abort();
    }
}

/// The check runners of the local agent, keyed by check ID.
#[derive(Debug)]
pub struct CheckRunners {
    reports: Sender<CheckReport>,
    limits: ChecksLimits,
    runners: HashMap<String, Runner>,
    /// Clients shared by HTTP checks, indexed by
    /// `tls_skip_verify | disable_redirects << 1`.
    http_clients: [Option<reqwest::Client>; 4],
    script_slots: Arc<ScriptSlots>,
}

impl CheckRunners {
    /// Runners reporting on `reports`, with the default limits.
    pub fn new(reports: Sender<CheckReport>) -> CheckRunners {
        CheckRunners::with_limits(reports, ChecksLimits::default())
    }

    /// Runners reporting on `reports`, with `limits`.
    pub fn with_limits(reports: Sender<CheckReport>, limits: ChecksLimits) -> CheckRunners {
        CheckRunners {
            reports,
            limits,
            runners: HashMap::new(),
            http_clients: [None, None, None, None],
            script_slots: Arc::new(ScriptSlots::new(limits.scripts_concurrent_max)),
        }
    }

    /// (Re)starts the runner of `spec.check_id` as a task on the current
    /// tokio runtime. A replaced runner is stopped first (its counters and
    /// TTL timer start over). Refused past `runners_max`.
    pub fn start(&mut self, spec: CheckSpec) -> Result<(), ChecksError> {
        if spec.check_id.is_empty() {
            return Err(ChecksError::InvalidCheck("missing check ID".to_string()));
        }
        if let CheckKind::Script { args } = &spec.kind {
            if args.is_empty() {
                return Err(ChecksError::InvalidCheck("script check needs arguments".to_string()));
            }
        }
        if !self.runners.contains_key(&spec.check_id) && self.runners.len() >= self.limits.runners_max {
            return Err(ChecksError::TooManyRunners {
                limit: self.limits.runners_max,
            });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ChecksError::NoRuntime)?;
        let probe = match &spec.kind {
            CheckKind::Ttl { .. } => None,
            CheckKind::Http { .. } => Some(self.http_probe(&spec.kind)?),
            CheckKind::Tcp { address } => Some(Probe::Tcp {
                address: address.clone(),
            }),
            CheckKind::Script { args } => Some(Probe::Script {
                args: args.clone(),
                slots: self.script_slots.clone(),
            }),
        };

        self.stop(&spec.check_id);
        let stop = StopFlag::default();
        let gate = ReportGate::new(spec.check_id.clone(), stop.clone(), self.reports.clone());
        let (task, ttl) = match (probe, &spec.kind) {
            (Some(probe), _) => {
                let interval = spec.interval_effective();
                let schedule = ProbeSchedule {
                    first_run_delay: self.first_run_delay(interval),
                    interval,
                    timeout: spec.timeout_effective(),
                    output_max_bytes: spec.output_max_bytes_effective(),
                };
                let thresholds = StatusThresholds::new(
                    spec.success_before_passing,
                    spec.failures_before_warning,
                    spec.failures_before_critical,
                );
                (runtime.spawn(run_probe_loop(probe, schedule, thresholds, gate)), None)
            }
            (None, CheckKind::Ttl { ttl }) => {
                let control = Arc::new(TtlControl::default());
                let ttl = (*ttl).max(spec::INTERVAL_FLOOR);
                (runtime.spawn(run_ttl(ttl, control.clone(), gate)), Some(control))
            }
            (None, _) => return Err(ChecksError::InvalidCheck("no probe for check".to_string())),
        };
        self.runners.insert(spec.check_id, Runner { task, stop, ttl });
        Ok(())
    }

    /// Stops the runner of `check_id`: once this returns it sends no more
    /// reports (a running script's process group is killed). Unknown IDs
    /// are ignored.
    pub fn stop(&mut self, check_id: &str) {
        if let Some(runner) = self.runners.remove(check_id) {
            runner.stop();
        }
    }

    /// Restarts a TTL check's expiry timer (a pass/warn/fail/update of the
    /// check). Ignored for unknown or non-TTL checks.
    pub fn ttl_touched(&mut self, check_id: &str) {
        if let Some(control) = self.runners.get(check_id).and_then(|r| r.ttl.as_ref()) {
            control.touch();
        }
    }

    /// Like [`ttl_touched`](Self::ttl_touched), also remembering the
    /// update's output: an expiry then says `TTL expired (last output
    /// before timeout follows): <output>`, as Consul's does. Returns
    /// whether `check_id` is a running TTL check.
    pub fn ttl_updated(&mut self, check_id: &str, output: &str) -> bool {
        match self.runners.get(check_id).and_then(|r| r.ttl.as_ref()) {
            Some(control) => {
                control.update(output);
                true
            }
            None => false,
        }
    }

    /// Whether `check_id` has a runner.
    pub fn contains(&self, check_id: &str) -> bool {
        self.runners.contains_key(check_id)
    }

    /// Number of runners.
    pub fn len(&self) -> usize {
        self.runners.len()
    }

    /// Whether no runner is running.
    pub fn is_empty(&self) -> bool {
        self.runners.is_empty()
    }

    fn http_probe(&mut self, kind: &CheckKind) -> Result<Probe, ChecksError> {
        let CheckKind::Http {
            url,
            method,
            headers,
            body,
            tls_skip_verify,
            tls_server_name,
            disable_redirects,
        } = kind
        else {
            return Err(ChecksError::InvalidCheck("not an HTTP check".to_string()));
        };
        let slot = usize::from(*tls_skip_verify) | (usize::from(*disable_redirects) << 1);
        let client = match &self.http_clients[slot] {
            Some(client) => client.clone(),
            None => {
                let client = http::build_client(*tls_skip_verify, *disable_redirects)
                    .map_err(|e| ChecksError::HttpClient(e.to_string()))?;
                self.http_clients[slot] = Some(client.clone());
                client
            }
        };
        let check = HttpCheck {
            url: url.clone(),
            method: method.clone(),
            headers: headers.clone(),
            body: body.clone(),
            tls_skip_verify: *tls_skip_verify,
            tls_server_name: tls_server_name.clone(),
            disable_redirects: *disable_redirects,
        };
        Ok(Probe::Http { client, check })
    }

    fn first_run_delay(&self, interval: Duration) -> Duration {
        interval
            .min(self.limits.first_run_stagger_max)
            .mul_f64(rand::random::<f64>())
    }
}

impl Drop for CheckRunners {
    fn drop(&mut self) {
        for (_, runner) in self.runners.drain() {
            runner.stop();
        }
    }
}

#[cfg(test)]
mod tests;
