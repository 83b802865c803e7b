//! A client agent's local replica: it follows one server's state stream
//! (`PeerRequest::Subscribe`) into its own [`Publisher`], whose delta ring
//! feeds its data plane exactly as a server's does. So a client answers DNS
//! and HTTP reads locally.
//!
//! The stream resumes from the replica's index after a reconnect; a server
//! whose window no longer reaches that index sends a snapshot first.
//! Servers are tried in turn; a stream silent for
//! [`STREAM_SILENCE_MS_MAX`] is dropped and another server tried.

pub mod read_index;
pub mod rotation;
mod status;
#[cfg(test)]
mod tests;
pub mod writes;

pub use status::ReplicaStatus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proconsul_shared::Delta;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::publish::Publisher;
use crate::raft::transport::wire::{read_frame, write_frame, PeerRequest, StreamFrame, PEER_PROTOCOL_MAGIC};
use crate::raft::transport::PeerFaults;

/// A stream with no frame for this long is considered dead (servers send
/// a heartbeat every 200 ms).
pub const STREAM_SILENCE_MS_MAX: u64 = 2_000;
/// Longest wait to connect to a server.
pub const CONNECT_WAIT_MS_MAX: u64 = 1_000;

/// How a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    Stopped,
    Failed(String),
}

/// Follows the servers in `servers` (server RPC addresses, tried in turn)
/// until `stop`. Never gives up; pauses `retry_ms` between attempts.
pub async fn follow(
    publisher: Arc<Publisher>,
    mut servers: watch::Receiver<Vec<String>>,
    status: Arc<ReplicaStatus>,
    faults: PeerFaults,
    retry_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut turn = 0usize;
    let mut failures = 0u64;
    loop {
        let target = {
            let list = servers.borrow_and_update();
            (!list.is_empty()).then(|| list[turn % list.len()].clone())
        };
        if let Some(addr) = target {
            turn = turn.wrapping_add(1);
            match follow_one(&addr, &publisher, &status, &faults, stop.clone()).await {
                StreamEnd::Stopped => return,
                StreamEnd::Failed(why) => {
                    failures += 1;
                    status.disconnected();
                    if failures % 10 == 1 {
                        tracing::warn!(target: "agent", "state stream from {addr} ended: {why}; retrying");
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = servers.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(retry_ms)) => {}
        }
    }
}

/// One stream from one server, until it fails or `stop`.
pub async fn follow_one(
    addr: &str,
    publisher: &Publisher,
    status: &ReplicaStatus,
    faults: &PeerFaults,
    mut stop: watch::Receiver<bool>,
) -> StreamEnd {
    if faults.is_isolated() {
        return StreamEnd::Failed("this agent is isolated (fault injection)".into());
    }
    let connect = tokio::time::timeout(Duration::from_millis(CONNECT_WAIT_MS_MAX), TcpStream::connect(addr)).await;
    let mut stream = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return StreamEnd::Failed(format!("{addr}: {e}")),
        Err(_) => return StreamEnd::Failed(format!("{addr}: connect timed out")),
    };
    let _ = stream.set_nodelay(true);
    let from_index = publisher.applied_index();
    let opened = async {
        stream.write_all(&PEER_PROTOCOL_MAGIC).await?;
        write_frame(&mut stream, &PeerRequest::Subscribe { from_index })
            .await
            .map_err(std::io::Error::other)
    };
    if let Err(e) = opened.await {
        return StreamEnd::Failed(format!("{addr}: {e}"));
    }
    let silence = Duration::from_millis(STREAM_SILENCE_MS_MAX);
    loop {
        let frame = tokio::select! {
            _ = stop.wait_for(|s| *s) => return StreamEnd::Stopped,
            f = tokio::time::timeout(silence, read_frame::<StreamFrame>(&mut stream)) => f,
        };
        let frame = match frame {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return StreamEnd::Failed(format!("{addr}: {e}")),
            Err(_) => return StreamEnd::Failed(format!("{addr}: silent for {silence:?}")),
        };
        if faults.is_isolated() {
            return StreamEnd::Failed("this agent is isolated (fault injection)".into());
        }
        if let Err(e) = apply_frame(publisher, status, frame) {
            return StreamEnd::Failed(format!("{addr}: {e}"));
        }
        status.contact(addr, Instant::now());
    }
}

/// Applies one frame to the replica. Pure apart from the publisher.
pub fn apply_frame(publisher: &Publisher, status: &ReplicaStatus, frame: StreamFrame) -> Result<(), String> {
    match frame {
        StreamFrame::Snapshot { index, bytes } => {
            status.snapshot_received();
            if index <= publisher.applied_index() {
                // Our replica is already there (same log, so same state).
                return Ok(());
            }
            let state = proconsul_shared::snapshot::decode_unaligned(&bytes).map_err(|e| e.to_string())?;
            if state.index() != index {
                return Err(format!("snapshot says index {index} but holds {}", state.index()));
            }
            publisher.restore(state);
        }
        StreamFrame::Deltas(deltas) => {
            for (index, bytes) in deltas {
                let delta = Delta::decode_unaligned(&bytes).map_err(|e| format!("delta {index}: {e}"))?;
                if delta.index != index {
                    return Err(format!("delta framed as {index} holds index {}", delta.index));
                }
                publisher.apply_delta(&delta);
            }
        }
        StreamFrame::Heartbeat { leader } => status.set_leader(leader),
    }
    Ok(())
}
