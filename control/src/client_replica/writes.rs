//! A client agent's writes: sent to a server (which relays to the leader)
//! and answered with the raft index, so the data plane can wait for its
//! own replica to reach it (read-your-writes on a client).

use std::time::Duration;

use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{Command, CommandResult};
use tokio::sync::watch;

use crate::raft::limits::WRITE_WAIT_MS_MAX;
use crate::raft::transport::call::call;
use crate::raft::transport::wire::{PeerReply, PeerRequest};
use crate::raft::transport::PeerFaults;

/// Servers tried for one write before giving up.
pub const WRITE_SERVERS_TRIED_MAX: usize = 3;

/// Sends `cmd` to the servers in turn (at most [`WRITE_SERVERS_TRIED_MAX`])
/// until one answers. A server's own answer (including "no leader") is
/// final; only an unreachable server moves on to the next.
pub async fn forward_write(
    servers: &watch::Receiver<Vec<String>>,
    cmd: Command,
    faults: &PeerFaults,
) -> Result<(u64, CommandResult), ControlError> {
    let list = servers.borrow().clone();
    if list.is_empty() {
        return Err(ControlError {
            status: 500,
            message: "No known Consul servers".into(),
        });
    }
    // Start at a different server per write so load spreads.
    let start = rand::random::<usize>() % list.len();
    let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
    let mut last_error = String::new();
    for k in 0..list.len().min(WRITE_SERVERS_TRIED_MAX) {
        let addr = &list[(start + k) % list.len()];
        match call(addr, &PeerRequest::ClientWrite(cmd.clone()), wait, faults).await {
            Ok(PeerReply::ClientWrite(answer)) => return answer,
            Ok(PeerReply::Refused(why)) => last_error = format!("{addr} refused: {why}"),
            Ok(other) => last_error = format!("{addr}: unexpected reply {other:?}"),
            Err(e) => last_error = e,
        }
    }
    Err(ControlError {
        status: 500,
        message: format!("rpc error making call: no server answered: {last_error}"),
    })
}
