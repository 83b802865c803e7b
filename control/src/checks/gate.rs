//! The one door a runner's reports go through, shut by `stop`.
//!
//! Aborting a tokio task does not stop a poll already running on another
//! worker thread, so abort alone cannot promise "no report after stop
//! returns". The gate can: a report is sent only under the lock, after
//! checking the stop flag, and `stop` sets the flag under the same lock.

use std::sync::{Arc, Mutex, MutexGuard};

use proconsul_shared::state::CheckStatus;
use tokio::sync::mpsc::Sender;

use super::spec::CheckReport;

/// The shared stop flag of one runner.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<Mutex<bool>>);

impl StopFlag {
    /// Shuts the gate; once this returns, no report of the runner is sent.
    pub fn stop(&self) {
        *lock(&self.0) = true;
    }

    /// Whether the gate is shut.
    pub fn is_stopped(&self) -> bool {
        *lock(&self.0)
    }
}

fn lock(flag: &Mutex<bool>) -> MutexGuard<'_, bool> {
    // The flag is a plain bool: a panic elsewhere cannot leave it torn.
    flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends one runner's reports unless stopped.
#[derive(Debug, Clone)]
pub struct ReportGate {
    check_id: String,
    stop: StopFlag,
    reports: Sender<CheckReport>,
}

impl ReportGate {
    /// A gate for `check_id`, shut by `stop`.
    pub fn new(check_id: String, stop: StopFlag, reports: Sender<CheckReport>) -> Self {
        ReportGate {
            check_id,
            stop,
            reports,
        }
    }

    /// Sends a report, waiting for room in the channel. `false` when the
    /// runner was stopped or the receiver is gone: the runner should end.
    pub async fn send(&self, status: CheckStatus, output: String) -> bool {
        let Ok(permit) = self.reports.reserve().await else {
            return false;
        };
        let stopped = lock(&self.stop.0);
        if *stopped {
            return false;
        }
        permit.send(CheckReport {
            check_id: self.check_id.clone(),
            status,
            output,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_until_stopped() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let stop = StopFlag::default();
        let gate = ReportGate::new("c".into(), stop.clone(), tx);
        assert!(gate.send(CheckStatus::Passing, "ok".into()).await);
        assert_eq!(
            rx.recv().await,
            Some(CheckReport {
                check_id: "c".into(),
                status: CheckStatus::Passing,
                output: "ok".into()
            })
        );
        stop.stop();
        assert!(stop.is_stopped());
        assert!(!gate.send(CheckStatus::Critical, "no".into()).await);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn closed_receiver_ends_the_runner() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let gate = ReportGate::new("c".into(), StopFlag::default(), tx);
        assert!(!gate.send(CheckStatus::Passing, String::new()).await);
    }
}
