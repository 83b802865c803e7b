//! The loop of one probing check: a first-run stagger, then probe,
//! threshold, report, sleep `interval`, until stopped.

use std::sync::Arc;
use std::time::Duration;

use proconsul_shared::state::CheckStatus;

use super::gate::ReportGate;
use super::http::{probe_http, HttpCheck};
use super::script::{probe_script, ScriptSlots};
use super::tcp::probe_tcp;
use super::thresholds::StatusThresholds;

/// How a probing check probes, with what it shares with other checks.
#[derive(Debug)]
pub enum Probe {
    Http { client: reqwest::Client, check: HttpCheck },
    Tcp { address: String },
    Script { args: Vec<String>, slots: Arc<ScriptSlots> },
}

impl Probe {
    /// One probe.
    pub async fn run(&self, timeout: Duration, output_max_bytes: usize) -> (CheckStatus, String) {
        match self {
            Probe::Http { client, check } => probe_http(client, check, timeout, output_max_bytes).await,
            Probe::Tcp { address } => probe_tcp(address, timeout).await,
            Probe::Script { args, slots } => probe_script(args, timeout, output_max_bytes, slots).await,
        }
    }
}

/// Timing and bounds of a probing check.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSchedule {
    pub first_run_delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub output_max_bytes: usize,
}

/// Runs until stopped (or the report receiver is gone).
pub async fn run_probe_loop(probe: Probe, schedule: ProbeSchedule, mut thresholds: StatusThresholds, gate: ReportGate) {
    tokio::time::sleep(schedule.first_run_delay).await;
    loop {
        let (probed, output) = probe.run(schedule.timeout, schedule.output_max_bytes).await;
        if let Some(status) = thresholds.observe(probed) {
            if !gate.send(status, output).await {
                return;
            }
        }
        tokio::time::sleep(schedule.interval).await;
    }
}
