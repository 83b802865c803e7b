//! A client agent's writes: sent to a server (which relays to the leader)
//! and answered with the raft index, so the data plane can wait for its
//! own replica to reach it (read-your-writes on a client).

use std::time::Duration;

use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{Command, CommandResult};
use tokio::sync::watch;

use super::rotation::call_in_turn;
use crate::raft::limits::WRITE_WAIT_MS_MAX;
use crate::raft::transport::wire::{PeerReply, PeerRequest};
use crate::raft::transport::PeerFaults;

/// Servers tried for one write before giving up.
pub const WRITE_SERVERS_TRIED_MAX: usize = 3;

/// Sends `cmd` to the servers in turn (at most [`WRITE_SERVERS_TRIED_MAX`],
/// from a random one so load spreads) until one answers. A server's own
/// answer (including "no leader") is final; only an unreachable server
/// moves on to the next.
pub async fn forward_write(
    servers: &watch::Receiver<Vec<String>>,
    cmd: Command,
    faults: &PeerFaults,
) -> Result<(u64, CommandResult), ControlError> {
    let list = servers.borrow().clone();
    forward_write_from(&list, rand::random::<usize>(), cmd, faults).await
}

/// [`forward_write`] to the servers of `list`, from `start`.
async fn forward_write_from(
    list: &[String],
    start: usize,
    cmd: Command,
    faults: &PeerFaults,
) -> Result<(u64, CommandResult), ControlError> {
    let request = PeerRequest::ClientWrite(cmd);
    let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
    call_in_turn(
        list,
        start,
        WRITE_SERVERS_TRIED_MAX,
        &request,
        wait,
        faults,
        |reply| match reply {
            PeerReply::ClientWrite(answer) => Ok(answer),
            other => Err(Box::new(other)),
        },
    )
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_write_servers_tried_max_unreachable_servers_are_tried_then_a_500() {
        // Listeners closed at once: every connect is refused.
        let addrs: Vec<String> = (0..WRITE_SERVERS_TRIED_MAX + 2)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().to_string()
            })
            .collect();
        let cmd = Command::KvDelete { key: "k".into() };
        let err = forward_write_from(&addrs, 1, cmd, &PeerFaults::default())
            .await
            .unwrap_err();
        assert_eq!(err.status, 500);
        assert!(err.message.starts_with("rpc error making call"), "{}", err.message);
        let last_tried = &addrs[WRITE_SERVERS_TRIED_MAX];
        assert!(
            err.message.contains(last_tried.as_str()),
            "the last one tried is {last_tried}: {}",
            err.message
        );
    }
}
