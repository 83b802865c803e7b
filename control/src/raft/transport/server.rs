//! The receiving side: accepts peer connections on the server port and
//! hands each RPC to the local raft. Bounded: at most
//! [`PEER_CONNS_MAX`] connections, the opening magic within
//! [`PEER_HANDSHAKE_WAIT_MS_MAX`], and a connection idle for
//! [`PEER_IDLE_WAIT_MS_MAX`] is closed (leaders send heartbeats far more
//! often).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::faults::PeerFaults;
use super::service::PeerService;
use super::stream;
use super::wire::{read_frame, read_magic, write_frame, PeerRequest, WireError};

/// Concurrent peer connections accepted.
/// Client agents' state streams count here too.
pub const PEER_CONNS_MAX: usize = 16_384;
/// Time a new connection has to send the protocol magic.
pub const PEER_HANDSHAKE_WAIT_MS_MAX: u64 = 5_000;
/// Time a connection may stay silent.
pub const PEER_IDLE_WAIT_MS_MAX: u64 = 60_000;
/// Pause after a failed accept (descriptor exhaustion) before the next.
const ACCEPT_BACKOFF_MS: u64 = 50;

/// Serves raft RPCs until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Arc<PeerService>,
    faults: PeerFaults,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(PEER_CONNS_MAX));
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(target: "raft", "accepting a peer connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(target: "raft", %peer, "refusing a peer connection: {PEER_CONNS_MAX} already open");
            continue;
        };
        let service = service.clone();
        let faults = faults.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, service, faults, stop).await {
                tracing::debug!(target: "raft", %peer, "peer connection ended: {e}");
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    service: Arc<PeerService>,
    faults: PeerFaults,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WireError> {
    let _ = stream.set_nodelay(true);
    let handshake = Duration::from_millis(PEER_HANDSHAKE_WAIT_MS_MAX);
    tokio::time::timeout(handshake, read_magic(&mut stream))
        .await
        .map_err(|_| WireError::Io(std::io::ErrorKind::TimedOut.into()))??;
    let idle = Duration::from_millis(PEER_IDLE_WAIT_MS_MAX);
    loop {
        let req = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            r = tokio::time::timeout(idle, read_frame::<PeerRequest>(&mut stream)) => match r {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
        };
        if faults.is_isolated() {
            // A cut link: drop the connection without answering.
            return Ok(());
        }
        if let PeerRequest::Subscribe { from_index } = req {
            let leader = || service.leader_addr();
            return stream::serve_stream(&mut stream, from_index, &service.publisher, leader, stop).await;
        }
        let reply = service.answer(req).await;
        write_frame(&mut stream, &reply).await?;
    }
}
