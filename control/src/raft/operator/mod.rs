//! The raft side of the `/v1/operator/*` endpoints: what a server knows of
//! the raft configuration, peer removal, leadership transfer and the raw
//! numbers of autopilot health. Requests travel between agents as one
//! [`OperatorRequest`] (`PeerRequest::Operator`), so a client agent or a
//! follower reaches the leader through any server.
//!
//! * [`wire`]: the request and reply types.
//! * [`transfer`]: leadership transfer (openraft 0.9 has no transfer API).
//! * [`probe`]: the leader's round of server stats for autopilot health.
//! * [`RaftOperator`]: runs one request against the local raft, relaying
//!   leader-only requests to the leader once.

pub mod probe;
pub mod transfer;
pub mod wire;

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::{ChangeMembers, LogIdOptionExt, ServerState};
use proconsul_shared::ipc::messages::ControlError;

use super::transport::call::call;
use super::transport::wire::{PeerReply, PeerRequest};
use super::transport::PeerFaults;
use super::types::{NodeId, Raft};
pub use wire::{OperatorOp, OperatorReply, OperatorRequest, PeerSelector, RaftConfigurationView, RaftServerView};

/// Longest wait for one relayed operator request (a transfer or a removal
/// waits on the cluster).
pub const OPERATOR_CALL_WAIT_MS_MAX: u64 = 15_000;
/// Longest wait for a configuration change (peer removal) to commit.
pub const MEMBERSHIP_CHANGE_WAIT_MS_MAX: u64 = 10_000;

/// A 500 with `message`, as Consul answers RPC errors.
pub fn failed(message: impl Into<String>) -> ControlError {
    ControlError {
        status: 500,
        message: message.into(),
    }
}

/// One server's operator side: its raft, id and fault switch.
#[derive(Clone)]
pub struct RaftOperator {
    raft: Raft,
    node_id: NodeId,
    faults: PeerFaults,
}

impl RaftOperator {
    /// The operator side of the raft `raft` of server `node_id`.
    pub fn new(raft: Raft, node_id: NodeId, faults: PeerFaults) -> RaftOperator {
        RaftOperator { raft, node_id, faults }
    }

    /// This server's raft id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Runs `req`: here when this server may answer it, else relayed once
    /// to the leader (a relayed request is never relayed again).
    pub async fn execute(&self, req: OperatorRequest) -> Result<OperatorReply, ControlError> {
        if !req.op.needs_leader() || self.is_leader() {
            return self.execute_here(req.op).await;
        }
        if req.relayed {
            return Err(ControlError::no_leader());
        }
        let leader = self.leader_addr().ok_or_else(ControlError::no_leader)?;
        let relayed = OperatorRequest {
            op: req.op,
            relayed: true,
        };
        self.call_server(&leader, relayed).await
    }

    /// Sends one operator request to the server at `addr`.
    pub async fn call_server(&self, addr: &str, req: OperatorRequest) -> Result<OperatorReply, ControlError> {
        call_operator(addr, req, &self.faults).await
    }

    async fn execute_here(&self, op: OperatorOp) -> Result<OperatorReply, ControlError> {
        match op {
            OperatorOp::Configuration { .. } => Ok(OperatorReply::Configuration(self.configuration())),
            OperatorOp::RemovePeer(selector) => self.remove_peer(&selector).await.map(|()| OperatorReply::Done),
            OperatorOp::TransferLeader { target } => {
                transfer::transfer_leader(self, target).await.map(OperatorReply::Leader)
            }
            OperatorOp::Health => Ok(OperatorReply::Health(probe::probe_servers(self).await)),
            OperatorOp::ServerStats => Ok(OperatorReply::ServerStats(self.own_stats())),
            OperatorOp::HoldElection { hold_ms } => {
                transfer::hold_election(&self.raft, hold_ms);
                Ok(OperatorReply::Done)
            }
            OperatorOp::ResumeElection => {
                transfer::resume_election(&self.raft);
                Ok(OperatorReply::Done)
            }
            OperatorOp::Elect => self
                .raft
                .trigger()
                .elect()
                .await
                .map(|()| OperatorReply::Done)
                .map_err(|e| failed(format!("starting an election: {e}"))),
        }
    }

    /// Whether this server leads now.
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id)
    }

    /// The leader's raft address, if a leader is known.
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// The raft configuration as this server sees it. On the leader each
    /// follower's `last_index` is its replicated (matched) index; elsewhere
    /// only this server's own index is known.
    pub fn configuration(&self) -> RaftConfigurationView {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let servers = membership
            .nodes()
            .map(|(id, node)| {
                let last_index = if *id == self.node_id {
                    m.last_log_index
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id).cloned().flatten())
                        .map(|log_id| log_id.index)
                };
                RaftServerView {
                    node_id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    leader: m.current_leader == Some(*id),
                    last_index,
                }
            })
            .collect();
        RaftConfigurationView {
            servers,
            index: m.membership_config.log_id().index().unwrap_or(0),
        }
    }

    /// This server's own raft numbers.
    pub fn own_stats(&self) -> wire::ServerStats {
        let m = self.raft.metrics().borrow().clone();
        wire::ServerStats {
            last_index: m.last_log_index.unwrap_or(0),
            last_term: m.current_term,
            knows_leader: m.current_leader.is_some(),
        }
    }

    /// Removes one server from the configuration (on the leader). The
    /// leader itself first hands leadership over, then has the new leader
    /// remove it. The last voter is never removed.
    pub async fn remove_peer(&self, selector: &PeerSelector) -> Result<(), ControlError> {
        let configuration = self.configuration();
        let target = selector.find(&configuration.servers)?;
        let voters = configuration.servers.iter().filter(|s| s.voter).count();
        if target.voter && voters <= 1 {
            return Err(failed(format!(
                "cannot remove {}: it is the last voter of the Raft configuration",
                target.addr
            )));
        }
        if target.node_id == self.node_id {
            let new_leader = transfer::transfer_leader(self, None).await?;
            let req = OperatorRequest {
                op: OperatorOp::RemovePeer(PeerSelector::Id {
                    id: target.node_id,
                    text: format!("{:016x}", target.node_id),
                }),
                relayed: true,
            };
            return self.call_server(&new_leader, req).await.map(|_| ());
        }
        let change = if target.voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([target.node_id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([target.node_id]))
        };
        let work = self.raft.change_membership(change, false);
        match tokio::time::timeout(Duration::from_millis(MEMBERSHIP_CHANGE_WAIT_MS_MAX), work).await {
            Ok(Ok(_)) => {
                tracing::info!(target: "agent.leader", node_id = target.node_id, addr = %target.addr,
                    "removed a server from the raft configuration");
                Ok(())
            }
            Ok(Err(e)) => Err(failed(format!(
                "removing {} from the Raft configuration: {e}",
                target.addr
            ))),
            Err(_) => Err(failed(format!(
                "removing {} from the Raft configuration did not commit within {MEMBERSHIP_CHANGE_WAIT_MS_MAX} ms",
                target.addr
            ))),
        }
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    pub(crate) fn faults(&self) -> &PeerFaults {
        &self.faults
    }
}

/// Sends one operator request to the server at `addr` and relays its answer.
pub async fn call_operator(
    addr: &str,
    req: OperatorRequest,
    faults: &PeerFaults,
) -> Result<OperatorReply, ControlError> {
    let wait = Duration::from_millis(OPERATOR_CALL_WAIT_MS_MAX);
    match call(addr, &PeerRequest::Operator(req), wait, faults).await {
        Ok(PeerReply::Operator(answer)) => answer,
        Ok(PeerReply::Refused(why)) => Err(failed(format!("server {addr} refused the request: {why}"))),
        Ok(other) => Err(failed(format!("server {addr}: unexpected reply {other:?}"))),
        Err(e) => Err(failed(format!("rpc error making call: {e}"))),
    }
}
