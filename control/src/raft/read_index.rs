//! Linearizable (`?consistent`) reads through raft's read index.
//!
//! The leader confirms with a quorum that it still leads (openraft's
//! `ensure_linearizable`: a heartbeat round) and answers its read index: the
//! commit index at that moment, which covers every write acknowledged before
//! the read began. Whoever serves the read then waits until its own replica
//! has applied that index and reads from it. A follower asks the leader over
//! the peer port (`PeerRequest::ReadIndex`), a client agent asks a server,
//! which asks the leader (one hop at most, as writes do).
//!
//! Every step is bounded: [`LEADER_CONFIRM_WAIT_MS_MAX`] for the quorum
//! round (a leader cut off from its quorum never confirms),
//! [`READ_INDEX_APPLY_WAIT_MS_MAX`] for the local replica to catch up. Both
//! failures answer `500`, no leadership as Consul's `No cluster leader`.

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::{BasicNode, LogIdOptionExt};
use proconsul_shared::ipc::messages::ControlError;
use tokio::sync::watch;

use super::transport::call::call;
use super::transport::wire::{PeerReply, PeerRequest};
use super::transport::PeerFaults;
use super::types::{LogId, NodeId, Raft};

/// Longest the leader waits for a quorum to confirm its leadership (and
/// for its own state machine to apply the read index).
pub const LEADER_CONFIRM_WAIT_MS_MAX: u64 = 3_000;
/// Longest a read waits for the local replica to apply the read index.
pub const READ_INDEX_APPLY_WAIT_MS_MAX: u64 = 5_000;
/// Longest a follower or client waits for the leader's read index over the
/// peer port (the leader's own bound plus a round trip).
pub const READ_INDEX_CALL_WAIT_MS_MAX: u64 = LEADER_CONFIRM_WAIT_MS_MAX + 1_000;

/// Raft's answer to `ensure_linearizable`, or `None` when it timed out.
pub type ConfirmOutcome = Option<Result<Option<LogId>, RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>>;

/// Maps the leader's confirmation to the read index or the error to
/// answer (pure). Not leading, no quorum, or no answer in time: Consul's
/// `500 No cluster leader`.
pub fn answer_confirmation(outcome: ConfirmOutcome) -> Result<u64, ControlError> {
    match outcome {
        Some(Ok(log_id)) => Ok(log_id.index().unwrap_or(0)),
        Some(Err(RaftError::APIError(_))) | None => Err(ControlError::no_leader()),
        Some(Err(RaftError::Fatal(e))) => Err(ControlError {
            status: 500,
            message: format!("raft is not running: {e}"),
        }),
    }
}

/// On this server, as leader: confirms leadership with a quorum and
/// answers the read index once the local state machine applied it.
pub async fn confirm_as_leader(raft: &Raft) -> Result<u64, ControlError> {
    let wait = Duration::from_millis(LEADER_CONFIRM_WAIT_MS_MAX);
    let outcome = tokio::time::timeout(wait, raft.ensure_linearizable()).await.ok();
    answer_confirmation(outcome)
}

/// Asks the server at `addr` for the read index. `forwarded` is set when
/// the asker is itself a server relaying for someone (the answerer must
/// then lead: one hop at most).
pub async fn ask(addr: &str, forwarded: bool, faults: &PeerFaults) -> Result<u64, ControlError> {
    let wait = Duration::from_millis(READ_INDEX_CALL_WAIT_MS_MAX);
    match call(addr, &PeerRequest::ReadIndex { forwarded }, wait, faults).await {
        Ok(PeerReply::ReadIndex(answer)) => answer,
        Ok(PeerReply::Refused(why)) => Err(ControlError {
            status: 500,
            message: format!("asking {addr} for the read index: refused: {why}"),
        }),
        Ok(other) => Err(ControlError {
            status: 500,
            message: format!("asking {addr} for the read index: unexpected reply {other:?}"),
        }),
        Err(e) => Err(ControlError {
            status: 500,
            message: format!("asking the leader for the read index failed: {e}"),
        }),
    }
}

/// Waits until `applied` (a replica's applied index) reaches `index`, at
/// most `wait_ms_max`; answers the index reached.
pub async fn wait_applied(
    mut applied: watch::Receiver<u64>,
    index: u64,
    wait_ms_max: u64,
) -> Result<u64, ControlError> {
    let wait = Duration::from_millis(wait_ms_max);
    let reached = tokio::time::timeout(wait, applied.wait_for(|at| *at >= index))
        .await
        .map(|r| r.map(|at| *at));
    match reached {
        Ok(Ok(at)) => Ok(at),
        Ok(Err(_)) => Err(ControlError {
            status: 500,
            message: "the local replica stopped while waiting for the read index".into(),
        }),
        Err(_) => Err(apply_timeout(index, *applied.borrow(), wait_ms_max)),
    }
}

/// The error when the local replica did not reach the read index in time.
pub fn apply_timeout(index: u64, applied: u64, wait_ms_max: u64) -> ControlError {
    ControlError {
        status: 500,
        message: format!(
            "timed out after {wait_ms_max} ms waiting for the local replica to apply the read index {index} \
             (applied {applied})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::{Fatal, ForwardToLeader, QuorumNotEnough};
    use openraft::CommittedLeaderId;

    use super::*;

    #[test]
    fn a_confirmation_answers_its_log_index() {
        let id = LogId::new(CommittedLeaderId::new(2, 1), 42);
        assert_eq!(answer_confirmation(Some(Ok(Some(id)))), Ok(42));
        assert_eq!(answer_confirmation(Some(Ok(None))), Ok(0), "an empty log reads at 0");
    }

    #[test]
    fn no_leadership_no_quorum_or_no_answer_is_no_cluster_leader() {
        let forward = CheckIsLeaderError::ForwardToLeader(ForwardToLeader::empty());
        assert_eq!(
            answer_confirmation(Some(Err(RaftError::APIError(forward)))),
            Err(ControlError::no_leader())
        );
        let quorum = CheckIsLeaderError::QuorumNotEnough(QuorumNotEnough {
            cluster: "{1,2,3}".into(),
            got: Default::default(),
        });
        assert_eq!(
            answer_confirmation(Some(Err(RaftError::APIError(quorum)))),
            Err(ControlError::no_leader())
        );
        assert_eq!(answer_confirmation(None), Err(ControlError::no_leader()));
        let fatal = answer_confirmation(Some(Err(RaftError::Fatal(Fatal::Stopped)))).unwrap_err();
        assert_eq!(fatal.status, 500);
        assert!(fatal.message.starts_with("raft is not running"), "{}", fatal.message);
    }

    #[test]
    fn the_call_bound_covers_the_leader_bound() {
        const { assert!(READ_INDEX_CALL_WAIT_MS_MAX > LEADER_CONFIRM_WAIT_MS_MAX) };
    }

    #[tokio::test]
    async fn waiting_for_an_index_already_applied_answers_at_once() {
        let (_tx, rx) = watch::channel(9u64);
        assert_eq!(wait_applied(rx, 7, 10).await, Ok(9));
    }

    #[tokio::test]
    async fn waiting_ends_when_the_replica_reaches_the_index() {
        let (tx, rx) = watch::channel(3u64);
        let feeder = tokio::spawn(async move {
            for at in 4..=8u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send_replace(at);
            }
            tx
        });
        assert_eq!(wait_applied(rx, 8, 5_000).await, Ok(8));
        drop(feeder.await.unwrap());
    }

    #[tokio::test]
    async fn waiting_is_bounded_and_says_how_far_the_replica_got() {
        let (_tx, rx) = watch::channel(3u64);
        let started = std::time::Instant::now();
        let err = wait_applied(rx, 8, 50).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err, apply_timeout(8, 3, 50));
        assert!(err.message.contains("read index 8 (applied 3)"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_stopped_replica_is_an_error_not_a_hang() {
        let (tx, rx) = watch::channel(1u64);
        drop(tx);
        let err = wait_applied(rx, 5, 5_000).await.unwrap_err();
        assert_eq!(err.status, 500);
    }
}
