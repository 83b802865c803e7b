//! Forming and joining a cluster of servers.
//!
//! Until gossip exists, servers find each other through the server port:
//! each sends a hello to its `-retry-join` addresses and merges what the
//! others know. Bootstrap with `-bootstrap-expect N` happens exactly once:
//! when a server that is not yet initialized knows of at least N servers
//! and none of them is initialized, the one with the lowest raft id
//! initializes raft with every server it knows; the others are brought in
//! by its replication. A server that finds an initialized cluster asks its
//! leader to add it as a voter.
//!
//! [`next_step`] is the decision, pure; [`run_join_loop`] is the IO around it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use tokio::sync::watch;

use super::transport::call::call;
use super::transport::service::PeerService;
use super::transport::wire::{ClusterView, PeerReply, PeerRequest};
use super::transport::PeerFaults;
use super::types::NodeId;

/// How a server takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where to accept peers (`-bind` and the server port).
    pub listen: SocketAddr,
    /// 1: bootstrap alone (`-bootstrap`); N > 1: `-bootstrap-expect N`;
    /// 0: never bootstrap, only join an existing cluster.
    pub bootstrap_expect: u32,
    /// Server addresses (`ip:port` of their server port) to say hello to.
    pub join: Vec<String>,
    /// More of them as gossip discovers servers (`None`: `join` only).
    pub servers: Option<watch::Receiver<Vec<String>>>,
    pub datacenter: String,
    /// Pause between join attempts.
    pub join_retry_ms: u64,
    pub faults: PeerFaults,
}

/// Longest wait for one hello.
pub const HELLO_WAIT_MS_MAX: u64 = 2_000;

/// What a server should do next to be in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStep {
    /// Nothing more: this server is a voter of an initialized cluster.
    Done,
    /// Initialize raft with these servers (we have the lowest id).
    Bootstrap(BTreeMap<NodeId, String>),
    /// Ask the leader at this address to add us.
    AskLeader(String),
    /// Keep saying hello.
    Wait,
}

/// Decides the next step from what this server knows. Pure.
pub fn next_step(
    me: NodeId,
    is_voter: bool,
    initialized: bool,
    bootstrap_expect: u32,
    known: &BTreeMap<NodeId, String>,
    views: &[ClusterView],
) -> JoinStep {
    if initialized && is_voter {
        return JoinStep::Done;
    }
    if let Some(leader) = views.iter().filter(|v| v.initialized).find_map(|v| v.leader.clone()) {
        return JoinStep::AskLeader(leader);
    }
    let someone_initialized = initialized || views.iter().any(|v| v.initialized);
    if someone_initialized || bootstrap_expect == 0 {
        // A cluster exists but has no leader yet, or we are not to
        // bootstrap: wait for a leader to appear.
        return JoinStep::Wait;
    }
    let lowest = known.keys().next().copied();
    if known.len() >= bootstrap_expect as usize && lowest == Some(me) {
        return JoinStep::Bootstrap(known.clone());
    }
    JoinStep::Wait
}

/// Says hello to every join address until this server is a voter of an
/// initialized cluster (or `stop`). Never gives up (`-retry-join`).
pub async fn run_join_loop(service: Arc<PeerService>, options: ClusterOptions, mut stop: watch::Receiver<bool>) {
    let me = service.me.clone();
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let mut views = Vec::new();
        let mut targets = options.join.clone();
        if let Some(servers) = &options.servers {
            targets.extend(servers.borrow().iter().cloned());
        }
        targets.sort();
        targets.dedup();
        for addr in &targets {
            if *addr == me.rpc_addr {
                continue;
            }
            let wait = Duration::from_millis(HELLO_WAIT_MS_MAX);
            match call(addr, &PeerRequest::Hello(me.clone()), wait, &options.faults).await {
                Ok(PeerReply::Hello(view)) => {
                    service.learn_all(&view.known);
                    views.push(view);
                }
                Ok(PeerReply::Refused(why)) => {
                    tracing::error!(target: "agent", "join {addr} refused: {why}");
                }
                Ok(other) => tracing::warn!(target: "agent", "join {addr}: unexpected reply {other:?}"),
                Err(e) => {
                    if attempt % 10 == 1 {
                        tracing::warn!(target: "agent", "Join cluster failed, will retry: {e}");
                    }
                }
            }
        }
        let initialized = service.raft.is_initialized().await.unwrap_or(false);
        let is_voter = service
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == me.node_id);
        let known = service.known();
        match next_step(
            me.node_id,
            is_voter,
            initialized,
            options.bootstrap_expect,
            &known,
            &views,
        ) {
            JoinStep::Done => {
                tracing::info!(target: "agent", "joined the cluster as a voter");
                return;
            }
            JoinStep::Bootstrap(servers) => {
                let members: BTreeMap<NodeId, BasicNode> =
                    servers.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
                match service.raft.initialize(members).await {
                    Ok(()) => tracing::info!(
                        target: "agent",
                        "bootstrapped the cluster with {} servers: {:?}",
                        servers.len(),
                        servers.values().collect::<BTreeSet<_>>()
                    ),
                    Err(e) => tracing::warn!(target: "agent", "bootstrap failed, will retry: {e}"),
                }
            }
            JoinStep::AskLeader(leader) => {
                let wait = Duration::from_millis(super::transport::service::ADD_SERVER_WAIT_MS_MAX + 1_000);
                match call(&leader, &PeerRequest::AddServer(me.clone()), wait, &options.faults).await {
                    Ok(PeerReply::AddServer(Ok(()))) => {
                        tracing::info!(target: "agent", "the leader at {leader} added this server");
                    }
                    Ok(PeerReply::AddServer(Err(e))) => {
                        tracing::warn!(target: "agent", "the leader at {leader} did not add this server: {}", e.message)
                    }
                    Ok(other) => tracing::warn!(target: "agent", "join via {leader}: unexpected reply {other:?}"),
                    Err(e) => tracing::warn!(target: "agent", "join via {leader}: {e}"),
                }
            }
            JoinStep::Wait => {}
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(options.join_retry_ms)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::transport::wire::ServerHello;

    fn known(ids: &[NodeId]) -> BTreeMap<NodeId, String> {
        ids.iter().map(|id| (*id, format!("127.0.0.{id}:8300"))).collect()
    }

    fn view(id: NodeId, initialized: bool, leader: Option<&str>) -> ClusterView {
        ClusterView {
            me: ServerHello {
                node_id: id,
                rpc_addr: format!("127.0.0.{id}:8300"),
                datacenter: "dc1".into(),
            },
            known: vec![],
            initialized,
            leader: leader.map(str::to_string),
        }
    }

    #[test]
    fn the_lowest_id_bootstraps_once_enough_servers_are_known() {
        let k = known(&[2, 3, 5]);
        assert_eq!(next_step(2, false, false, 3, &k, &[]), JoinStep::Bootstrap(k.clone()));
        assert_eq!(next_step(3, false, false, 3, &k, &[]), JoinStep::Wait, "not the lowest");
        assert_eq!(next_step(2, false, false, 4, &k, &[]), JoinStep::Wait, "too few");
    }

    #[test]
    fn an_initialized_peer_means_no_second_bootstrap() {
        let k = known(&[1, 2, 3]);
        let views = [view(2, true, None)];
        assert_eq!(next_step(1, false, false, 3, &k, &views), JoinStep::Wait);
        let views = [view(2, true, Some("127.0.0.2:8300"))];
        assert_eq!(
            next_step(1, false, false, 3, &k, &views),
            JoinStep::AskLeader("127.0.0.2:8300".into())
        );
    }

    #[test]
    fn a_voter_of_an_initialized_cluster_is_done() {
        assert_eq!(next_step(1, true, true, 3, &known(&[1]), &[]), JoinStep::Done);
        assert_eq!(
            next_step(1, false, true, 3, &known(&[1, 2, 3]), &[]),
            JoinStep::Wait,
            "initialized by replication but not yet a voter"
        );
    }

    #[test]
    fn without_bootstrap_expect_a_server_only_joins() {
        assert_eq!(next_step(1, false, false, 0, &known(&[1, 2, 3]), &[]), JoinStep::Wait);
    }
}
