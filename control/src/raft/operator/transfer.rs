//! Leadership transfer. openraft 0.9 has no transfer call, so the leader
//! arranges one: the other voters hold their elections, the leader stops
//! its heartbeats (so the followers' leader lease runs out), and the target
//! is told to stand for election until it leads or
//! [`TRANSFER_WAIT_MS_MAX`] passes. Every hold ends by itself after
//! [`ELECTION_HOLD_MS`] even if the leader disappears meanwhile.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proconsul_shared::ipc::messages::ControlError;

use super::wire::{OperatorOp, OperatorRequest};
use super::{failed, RaftOperator};
use crate::raft::types::{NodeId, Raft};

/// Longest wait for leadership to move.
pub const TRANSFER_WAIT_MS_MAX: u64 = 8_000;
/// How long a held server stays out of elections at most.
pub const ELECTION_HOLD_MS: u64 = TRANSFER_WAIT_MS_MAX + 2_000;
/// Pause between two election requests to the target.
pub const ELECT_RETRY_MS: u64 = 1_000;
/// Longest wait for a server to take a hold or a release.
const HOLD_CALL_WAIT_MS: u64 = 1_000;

/// The server leadership goes to: `wanted` if it is another voter, else
/// the other voter with the highest known log index. Pure.
pub fn pick_target(me: NodeId, voters: &[(NodeId, Option<u64>)], wanted: Option<NodeId>) -> Result<NodeId, String> {
    if let Some(id) = wanted {
        if id == me {
            return Err(format!(
                "cannot transfer leadership to server {id:016x}: it leads already"
            ));
        }
        return voters
            .iter()
            .any(|(v, _)| *v == id)
            .then_some(id)
            .ok_or_else(|| format!("cannot transfer leadership: server {id:016x} is not a voter"));
    }
    voters
        .iter()
        .filter(|(v, _)| *v != me)
        .max_by_key(|(v, index)| (index.unwrap_or(0), std::cmp::Reverse(*v)))
        .map(|(v, _)| *v)
        .ok_or_else(|| "cannot transfer leadership: there is no other voter".to_string())
}

/// Keeps this server out of elections for `hold_ms` (then it stands again
/// by itself).
pub fn hold_election(raft: &Raft, hold_ms: u64) {
    raft.runtime_config().elect(false);
    let raft = raft.clone();
    let hold_ms = hold_ms.min(ELECTION_HOLD_MS);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        resume_election(&raft);
    });
}

/// Lets this server stand for election and send heartbeats again.
pub fn resume_election(raft: &Raft) {
    raft.runtime_config().elect(true);
    raft.runtime_config().heartbeat(true);
}

/// Moves leadership from this server (the leader) to `wanted` or the best
/// other voter. Answers the new leader's raft address.
pub async fn transfer_leader(op: &RaftOperator, wanted: Option<NodeId>) -> Result<String, ControlError> {
    if !op.is_leader() {
        return Err(ControlError::no_leader());
    }
    let configuration = op.configuration();
    let voters: Vec<(NodeId, Option<u64>)> = configuration
        .servers
        .iter()
        .filter(|s| s.voter)
        .map(|s| (s.node_id, s.last_index))
        .collect();
    let target = pick_target(op.node_id(), &voters, wanted).map_err(failed)?;
    let addr_of = |id: NodeId| {
        configuration
            .servers
            .iter()
            .find(|s| s.node_id == id)
            .map(|s| s.addr.clone())
            .unwrap_or_default()
    };
    let target_addr = addr_of(target);
    let bystanders: BTreeSet<NodeId> = voters
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| *v != target && *v != op.node_id())
        .collect();
    for id in &bystanders {
        let hold = OperatorRequest::new(OperatorOp::HoldElection {
            hold_ms: ELECTION_HOLD_MS,
        });
        send_best_effort(op, &addr_of(*id), hold).await;
    }
    tracing::info!(target: "agent.leader", to = %target_addr, "transferring raft leadership");
    op.raft().runtime_config().heartbeat(false);
    hold_election(op.raft(), ELECTION_HOLD_MS);
    let moved = wait_for_leader(op, target, &target_addr).await;
    resume_election(op.raft());
    for id in &bystanders {
        send_best_effort(op, &addr_of(*id), OperatorRequest::new(OperatorOp::ResumeElection)).await;
    }
    if moved {
        Ok(target_addr)
    } else {
        Err(failed(format!(
            "Failed to transfer Leader: server {target_addr} did not take leadership within {TRANSFER_WAIT_MS_MAX} ms"
        )))
    }
}

/// Asks the target to stand for election until this server sees it lead,
/// within [`TRANSFER_WAIT_MS_MAX`].
async fn wait_for_leader(op: &RaftOperator, target: NodeId, target_addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_millis(TRANSFER_WAIT_MS_MAX);
    let attempts_max = TRANSFER_WAIT_MS_MAX / ELECT_RETRY_MS + 1;
    for _ in 0..attempts_max {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if let Err(e) = op
            .call_server(target_addr, OperatorRequest::new(OperatorOp::Elect))
            .await
        {
            tracing::debug!(target: "agent.leader", "asking {target_addr} to stand for election: {}", e.message);
        }
        let wait = Duration::from_millis(ELECT_RETRY_MS).min(deadline.saturating_duration_since(Instant::now()));
        let led = op
            .raft()
            .wait(Some(wait))
            .metrics(|m| m.current_leader == Some(target), "the target leads")
            .await;
        if led.is_ok() {
            return true;
        }
    }
    false
}

async fn send_best_effort(op: &RaftOperator, addr: &str, req: OperatorRequest) {
    let wait = Duration::from_millis(HOLD_CALL_WAIT_MS);
    if let Err(e) = tokio::time::timeout(wait, op.call_server(addr, req)).await {
        tracing::debug!(target: "agent.leader", "{addr} did not take an election hold or release: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_named_voter_or_the_most_up_to_date_other_one() {
        let voters = [(1, Some(10)), (2, Some(9)), (3, Some(10))];
        assert_eq!(pick_target(1, &voters, None), Ok(3), "highest index, not the leader");
        assert_eq!(pick_target(1, &voters, Some(2)), Ok(2));
        assert!(pick_target(1, &voters, Some(1)).unwrap_err().contains("leads already"));
        assert!(pick_target(1, &voters, Some(4)).unwrap_err().contains("not a voter"));
        assert!(pick_target(1, &[(1, Some(3))], None)
            .unwrap_err()
            .contains("no other voter"));
        let tie = [(1, Some(5)), (3, Some(5)), (2, Some(5))];
        assert_eq!(pick_target(1, &tie, None), Ok(2), "a tie goes to the lowest id");
    }
}
