//! TTL checks (Consul's `CheckTTL`): no probe; the check goes critical with
//! `TTL expired` when nobody updates it within its TTL. The expiry is
//! reported once; the timer restarts on the next update.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_shared::state::CheckStatus;
use tokio::sync::Notify;

use super::gate::ReportGate;
use super::output::ttl_expired_output;

/// What the registry tells a running TTL check.
#[derive(Debug, Default)]
pub struct TtlControl {
    touched: Notify,
    last_output: Mutex<String>,
}

impl TtlControl {
    /// Restarts the expiry timer.
    pub fn touch(&self) {
        self.touched.notify_one();
    }

    /// Records the output of the latest update (shown after `TTL expired`)
    /// and restarts the timer.
    pub fn update(&self, output: &str) {
        *self.last_output.lock().unwrap_or_else(|p| p.into_inner()) = output.to_string();
        self.touch();
    }

    fn last_output(&self) -> String {
        self.last_output.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Runs until stopped: reports critical each time `ttl` passes without a
/// touch.
pub async fn run_ttl(ttl: Duration, control: Arc<TtlControl>, gate: ReportGate) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ttl) => {
                let output = ttl_expired_output(&control.last_output());
                if !gate.send(CheckStatus::Critical, output).await {
                    return;
                }
                control.touched.notified().await;
            }
            _ = control.touched.notified() => {}
        }
    }
}
