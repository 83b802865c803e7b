//! A client agent's `?consistent` reads: the read index comes from a
//! server (which asks the leader, one hop), then the read waits until the
//! client's own replica has applied it, so it sees every write acknowledged
//! before the read began, whichever agent acknowledged it.

use std::time::Duration;

use proconsul_shared::ipc::messages::ControlError;
use tokio::sync::watch;

use super::rotation::call_in_turn;
use crate::raft::read_index::{wait_applied, READ_INDEX_APPLY_WAIT_MS_MAX, READ_INDEX_CALL_WAIT_MS_MAX};
use crate::raft::transport::wire::{PeerReply, PeerRequest};
use crate::raft::transport::PeerFaults;

/// Servers tried for one read index before giving up.
pub const READ_INDEX_SERVERS_TRIED_MAX: usize = 3;

/// The read barrier on a client agent: asks the servers in `servers` in
/// turn (at most [`READ_INDEX_SERVERS_TRIED_MAX`], from a random one) for
/// the read index, then waits (at most [`READ_INDEX_APPLY_WAIT_MS_MAX`])
/// until `applied`, the replica's applied index, reaches it. A server's
/// own answer (including "no leader") is final; only an unreachable server
/// moves on to the next.
pub async fn read_barrier(
    servers: &watch::Receiver<Vec<String>>,
    faults: &PeerFaults,
    applied: watch::Receiver<u64>,
) -> Result<u64, ControlError> {
    let list = servers.borrow().clone();
    let start = rand::random::<usize>();
    let index = ask_servers(&list, start, faults).await?;
    wait_applied(applied, index, READ_INDEX_APPLY_WAIT_MS_MAX).await
}

/// Asks the servers of `list` in turn, from `start` (modulo its length).
async fn ask_servers(list: &[String], start: usize, faults: &PeerFaults) -> Result<u64, ControlError> {
    let request = PeerRequest::ReadIndex { forwarded: false };
    let wait = Duration::from_millis(READ_INDEX_CALL_WAIT_MS_MAX);
    call_in_turn(
        list,
        start,
        READ_INDEX_SERVERS_TRIED_MAX,
        &request,
        wait,
        faults,
        |reply| match reply {
            PeerReply::ReadIndex(answer) => Ok(answer),
            other => Err(Box::new(other)),
        },
    )
    .await?
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::rpc::dispatch::no_known_servers;

    #[tokio::test]
    async fn without_servers_the_answer_is_no_known_servers() {
        let (_tx, servers) = watch::channel(Vec::new());
        let (_applied_tx, applied) = watch::channel(0u64);
        let err = read_barrier(&servers, &PeerFaults::default(), applied)
            .await
            .unwrap_err();
        assert_eq!(err, no_known_servers());
    }

    #[tokio::test]
    async fn at_most_three_unreachable_servers_are_tried_then_a_500() {
        // Five listeners that are closed at once: every connect is refused.
        let mut addrs = Vec::new();
        for _ in 0..5 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            addrs.push(l.local_addr().unwrap().to_string());
        }
        let started = Instant::now();
        let err = ask_servers(&addrs, 1, &PeerFaults::default()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(err.status, 500);
        assert!(err.message.starts_with("rpc error making call"), "{}", err.message);
        assert!(
            err.message.contains(&addrs[3]),
            "the third tried is named last: {}",
            err.message
        );
    }

    #[tokio::test]
    async fn an_isolated_agent_fails_without_connecting() {
        let faults = PeerFaults::default();
        faults.set_isolated(true);
        let err = ask_servers(&["127.0.0.1:1".to_string()], 0, &faults).await.unwrap_err();
        assert!(err.message.contains("isolated"), "{}", err.message);
    }
}
