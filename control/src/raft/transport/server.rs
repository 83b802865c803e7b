//! The receiving side: accepts peer connections on the server port and
//! hands each RPC to the local raft. Bounded: at most
//! [`PEER_CONNS_MAX`] connections, the opening magic within
//! [`PEER_HANDSHAKE_WAIT_MS_MAX`], and a connection idle for
//! [`PEER_IDLE_WAIT_MS_MAX`] is closed (leaders send heartbeats far more
//! often).

use std::future::Future;
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
pub async fn serve(listener: TcpListener, service: Arc<PeerService>, faults: PeerFaults, stop: watch::Receiver<bool>) {
    let handle = move |stream, stop| connection(stream, service.clone(), faults.clone(), stop);
    accept_bounded(listener, PEER_CONNS_MAX, stop, handle).await
}

/// Accepts connections until `stop` turns true, each served by `handle` on
/// its own task while at most `conns_max` are open; a connection beyond
/// that is closed at once (a warning), and its slot comes back when a
/// served one ends.
async fn accept_bounded<F, Fut, E>(listener: TcpListener, conns_max: usize, mut stop: watch::Receiver<bool>, handle: F)
where
    F: Fn(TcpStream, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let slots = Arc::new(Semaphore::new(conns_max));
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
            tracing::warn!(target: "raft", %peer, "refusing a peer connection: {conns_max} already open");
            continue;
        };
        let served = handle(stream, stop.clone());
        tokio::spawn(async move {
            if let Err(e) = served.await {
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::AsyncReadExt;

    use super::*;

    const READ_WAIT_MS: u64 = 300;

    /// True when the server side closed `client` (EOF or reset) within a
    /// short wait; false when it stays open and silent.
    async fn closed_by_server(client: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(READ_WAIT_MS), client.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_is_closed_and_a_freed_slot_is_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        // Each served connection is held until its client closes it.
        let handle = |mut stream: TcpStream, _stop| async move {
            let mut buf = [0u8; 16];
            while stream.read(&mut buf).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let server = tokio::spawn(accept_bounded(listener, 2, stop, handle));

        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_server(&mut third).await, "the third of 2 is closed at once");
        assert!(!closed_by_server(&mut first).await && !closed_by_server(&mut second).await);

        drop(first);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut again = TcpStream::connect(addr).await.unwrap();
            if !closed_by_server(&mut again).await {
                break;
            }
            assert!(Instant::now() < deadline, "the freed slot never came back");
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
