//! Every 100 ms the agent stamps the ring header with its liveness and
//! leadership, which the data plane turns into `X-Consul-KnownLeader` /
//! `X-Consul-LastContact` and uses to notice a dead control plane.

use std::sync::Arc;
use std::time::Duration;

use super::shutdown::Shutdown;
use crate::client_replica::ReplicaStatus;
use crate::publish::Publisher;
use crate::raft::RaftHandle;

/// Interval between heartbeats.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;

/// Beats until the agent shuts down.
/// A server reads leadership from raft; a client agent from its state
/// stream (the leader its server names, and the time of the last frame).
pub async fn run(
    publisher: Arc<Publisher>,
    raft: Option<RaftHandle>,
    replica: Option<Arc<ReplicaStatus>>,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        // A client agent without servers knows no leader.
        let (leader_known, last_contact_ms) = match (&raft, &replica) {
            (Some(raft), _) => raft.leader_status(),
            (None, Some(replica)) => replica.leader_status(std::time::Instant::now()),
            (None, None) => (false, 0),
        };
        publisher.heartbeat(leader_known, last_contact_ms);
    }
}
