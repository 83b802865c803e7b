//! Fault injection reachable from outside the process, for partition
//! tests with real processes: with the hidden `-dev-fault-injection` flag,
//! SIGUSR1 isolates the agent (raft links, the client state stream and
//! forwarded writes through [`PeerFaults`], and every packet of both gossip
//! pools) and SIGUSR2 heals it. Without the flag no handler is installed.
//!
//! [`transition`] is the pure part; [`watch_fault_signals`] the edge.

use anyhow::Context;

use super::shutdown::Shutdown;
use crate::raft::transport::PeerFaults;

/// A fault-injection request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSignal {
    /// SIGUSR1: cut every link.
    Isolate,
    /// SIGUSR2: restore them.
    Heal,
}

impl FaultSignal {
    /// The signal's name, for logs.
    pub fn signal_name(self) -> &'static str {
        match self {
            FaultSignal::Isolate => "SIGUSR1",
            FaultSignal::Heal => "SIGUSR2",
        }
    }
}

/// The isolation state after `signal` when it changes, `None` when the
/// agent already is in that state. Pure.
pub fn transition(isolated_now: bool, signal: FaultSignal) -> Option<bool> {
    let wanted = signal == FaultSignal::Isolate;
    (wanted != isolated_now).then_some(wanted)
}

/// Applies `signal` to `faults`, logging the transition (or its absence).
pub fn apply(faults: &PeerFaults, signal: FaultSignal) {
    let name = signal.signal_name();
    match transition(faults.is_isolated(), signal) {
        Some(true) => {
            faults.set_isolated(true);
            tracing::warn!(target: "agent", "fault injection ({name}): agent isolated; raft and gossip links cut");
        }
        Some(false) => {
            faults.set_isolated(false);
            tracing::warn!(target: "agent", "fault injection ({name}): agent healed; raft and gossip links restored");
        }
        None => tracing::info!(target: "agent", "fault injection ({name}): no change"),
    }
}

/// Installs the SIGUSR1/SIGUSR2 handlers when `enabled`, until shutdown.
pub fn watch_fault_signals(enabled: bool, faults: PeerFaults, shutdown: Shutdown) -> anyhow::Result<()> {
    if !enabled {
        return Ok(());
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut isolate = signal(SignalKind::user_defined1()).context("cannot install the SIGUSR1 handler")?;
    let mut heal = signal(SignalKind::user_defined2()).context("cannot install the SIGUSR2 handler")?;
    tracing::warn!(target: "agent", "fault injection enabled: SIGUSR1 isolates this agent, SIGUSR2 heals it");
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = shutdown.wait() => return,
                got = isolate.recv() => got.map(|_| FaultSignal::Isolate),
                got = heal.recv() => got.map(|_| FaultSignal::Heal),
            };
            let Some(signal) = signal else {
                return;
            };
            apply(&faults, signal);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_happen_only_on_change() {
        assert_eq!(transition(false, FaultSignal::Isolate), Some(true));
        assert_eq!(transition(true, FaultSignal::Isolate), None);
        assert_eq!(transition(true, FaultSignal::Heal), Some(false));
        assert_eq!(transition(false, FaultSignal::Heal), None);
    }

    #[test]
    fn apply_flips_the_shared_switch() {
        let faults = PeerFaults::default();
        let seen_by_gossip = faults.clone();
        apply(&faults, FaultSignal::Isolate);
        assert!(seen_by_gossip.is_isolated());
        apply(&faults, FaultSignal::Isolate);
        assert!(seen_by_gossip.is_isolated(), "a repeated isolate keeps it isolated");
        apply(&faults, FaultSignal::Heal);
        assert!(!seen_by_gossip.is_isolated());
        assert_eq!(FaultSignal::Heal.signal_name(), "SIGUSR2");
    }
}
