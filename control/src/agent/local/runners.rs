//! The hand-off between the local state and the check runners
//! ([`crate::checks`]): runner changes out, reports back in.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::state::RunnerOp;
use super::{now_ms, LocalAgent, RunnerDriver};
use crate::agent::shutdown::Shutdown;
use crate::checks::spec::CONSUL_INTERVAL_MIN;
use crate::checks::{CheckKind, CheckReport, CheckRunners, CheckSpec};
use crate::http_api::check_def::{RunnerDef, RunnerKind};

/// Reports queued from runners to the agent before runners wait.
pub const REPORTS_QUEUE_MAX: usize = 1024;

/// The runner spec for a local check, or `None` for a check nobody runs.
/// Intervals below Consul's 1 s minimum are raised to it.
pub fn check_spec(check_id: &str, def: &RunnerDef) -> Option<CheckSpec> {
    let kind = match &def.kind {
        RunnerKind::NotRun => return None,
        RunnerKind::Ttl { ttl_ns } => CheckKind::Ttl {
            ttl: Duration::from_nanos(*ttl_ns),
        },
        RunnerKind::Http {
            url,
            method,
            header,
            body,
            tls_skip_verify,
            tls_server_name,
            disable_redirects,
        } => CheckKind::Http {
            url: url.clone(),
            method: method.clone(),
            headers: header.clone(),
            body: body.clone(),
            tls_skip_verify: *tls_skip_verify,
            tls_server_name: tls_server_name.clone(),
            disable_redirects: *disable_redirects,
        },
        RunnerKind::Tcp { address } => CheckKind::Tcp {
            address: address.clone(),
        },
        RunnerKind::Script { args } => CheckKind::Script { args: args.clone() },
    };
    let interval = match kind {
        CheckKind::Ttl { .. } => Duration::ZERO,
        _ => Duration::from_nanos(def.interval_ns).max(CONSUL_INTERVAL_MIN),
    };
    Some(CheckSpec {
        check_id: check_id.to_string(),
        kind,
        interval,
        timeout: Duration::from_nanos(def.timeout_ns),
        success_before_passing: def.success_before_passing,
        failures_before_warning: def.failures_before_warning,
        failures_before_critical: def.failures_before_critical,
        output_max_bytes: def.output_max_bytes,
    })
}

/// Drives the real check runners.
pub struct RealRunners(pub CheckRunners);

impl RunnerDriver for RealRunners {
    fn apply(&mut self, op: RunnerOp) {
        match op {
            RunnerOp::Start { check_id, runner } => match check_spec(&check_id, &runner) {
                Some(spec) => {
                    if let Err(e) = self.0.start(spec) {
                        tracing::warn!(target: "agent", "check {check_id}: runner not started: {e}");
                    }
                }
                None => self.0.stop(&check_id),
            },
            RunnerOp::Stop { check_id } => self.0.stop(&check_id),
            RunnerOp::TtlTouched { check_id, output } => {
                self.0.ttl_updated(&check_id, &output);
            }
        }
    }
}

/// Real runners and the channel their reports arrive on.
pub fn real_runners() -> (Box<dyn RunnerDriver>, mpsc::Receiver<CheckReport>) {
    let (tx, rx) = mpsc::channel(REPORTS_QUEUE_MAX);
    (Box::new(RealRunners(CheckRunners::new(tx))), rx)
}

/// Applies runner reports to the local state until shutdown (the sync
/// loop turns status changes into catalog writes).
pub async fn apply_reports(local: Arc<LocalAgent>, mut reports: mpsc::Receiver<CheckReport>, shutdown: Shutdown) {
    loop {
        let report = tokio::select! {
            _ = shutdown.wait() => return,
            r = reports.recv() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let now = now_ms();
        local.update(|s| {
            s.apply_report(&report.check_id, report.status, report.output, now);
            ((), Vec::new())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: RunnerKind, interval_ns: u64) -> RunnerDef {
        RunnerDef {
            kind,
            interval_ns,
            timeout_ns: 0,
            success_before_passing: 2,
            failures_before_warning: 0,
            failures_before_critical: 3,
            output_max_bytes: 100,
        }
    }

    #[test]
    fn specs_from_definitions() {
        let s = check_spec("t", &def(RunnerKind::Ttl { ttl_ns: 5_000_000_000 }, 0)).unwrap();
        assert_eq!(
            s.kind,
            CheckKind::Ttl {
                ttl: Duration::from_secs(5)
            }
        );
        let s = check_spec(
            "c",
            &def(
                RunnerKind::Tcp {
                    address: "127.0.0.1:1".into(),
                },
                10_000_000,
            ),
        )
        .unwrap();
        assert_eq!(s.interval, CONSUL_INTERVAL_MIN, "raised to Consul's minimum");
        assert_eq!((s.success_before_passing, s.failures_before_critical), (2, 3));
        assert!(check_spec("n", &def(RunnerKind::NotRun, 0)).is_none());
    }

    #[tokio::test]
    async fn reports_update_local_checks() {
        use crate::agent::local::tests::{node, settings};
        use crate::http_api::check_def::{decode_check, ScriptPolicy};
        use crate::http_api::fields::Fields;
        use proconsul_shared::state::CheckStatus;

        let local = LocalAgent::new(node(), settings(), Box::new(super::super::NoRunners));
        let v = serde_json::json!({"Name": "c", "TTL": "10s"});
        let policy = ScriptPolicy {
            enable_script_checks: false,
            enable_local_script_checks: false,
            from_config_file: false,
        };
        let reg = decode_check(&Fields::of(&v, "C").unwrap(), None, policy).unwrap();
        local.update(|s| (s.add_check(reg, super::super::Source::Api, 0).unwrap(), Vec::new()));
        let (tx, rx) = mpsc::channel(4);
        let shutdown = Shutdown::new();
        let task = tokio::spawn(apply_reports(local.clone(), rx, shutdown.clone()));
        let mut changes = local.changes();
        changes.borrow_and_update();
        tx.send(CheckReport {
            check_id: "c".into(),
            status: CheckStatus::Passing,
            output: "up".into(),
        })
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), changes.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(local.lock().checks()["c"].check.status, CheckStatus::Passing);
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
