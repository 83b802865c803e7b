//! The leader's round of server stats behind autopilot health: every
//! server of the configuration is asked for its own raft numbers at once,
//! each within [`PROBE_WAIT_MS_MAX`]. A server that does not answer has no
//! stats (autopilot counts it unhealthy).

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::wire::{OperatorOp, OperatorReply, OperatorRequest, ServerProbe};
use super::RaftOperator;
use crate::raft::transport::call::call;
use crate::raft::transport::wire::{PeerReply, PeerRequest};

/// Longest wait for one server's stats.
pub const PROBE_WAIT_MS_MAX: u64 = 1_000;
/// Most servers probed in one round (Consul clusters run 3–7).
pub const PROBED_SERVERS_MAX: usize = 64;

/// Probes every server of the configuration (this one answers from its
/// own metrics), in configuration order.
pub async fn probe_servers(op: &RaftOperator) -> Vec<ServerProbe> {
    let configuration = op.configuration();
    let mut probes: Vec<ServerProbe> = configuration
        .servers
        .into_iter()
        .take(PROBED_SERVERS_MAX)
        .map(|server| ServerProbe {
            server,
            stats: None,
            last_contact_ms: None,
        })
        .collect();
    let mut asks = JoinSet::new();
    for (slot, probe) in probes.iter_mut().enumerate() {
        if probe.server.node_id == op.node_id() {
            probe.stats = Some(op.own_stats());
            probe.last_contact_ms = Some(0);
            continue;
        }
        let addr = probe.server.addr.clone();
        let faults = op.faults().clone();
        asks.spawn(async move {
            let started = Instant::now();
            let req = PeerRequest::Operator(OperatorRequest::new(OperatorOp::ServerStats));
            let reply = call(&addr, &req, Duration::from_millis(PROBE_WAIT_MS_MAX), &faults).await;
            let rtt_ms = started.elapsed().as_millis() as u64;
            match reply {
                Ok(PeerReply::Operator(Ok(OperatorReply::ServerStats(stats)))) => (slot, Some((stats, rtt_ms))),
                _ => (slot, None),
            }
        });
    }
    while let Some(done) = asks.join_next().await {
        if let Ok((slot, Some((stats, rtt_ms)))) = done {
            probes[slot].stats = Some(stats);
            probes[slot].last_contact_ms = Some(rtt_ms);
        }
    }
    probes
}
