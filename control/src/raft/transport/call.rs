//! One-shot peer requests outside openraft's replication: hellos, joins
//! and forwarded writes. Each opens its own connection (they are rare:
//! joins at start-up, writes only on servers that do not lead).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::faults::PeerFaults;
use super::wire::{read_frame, write_frame, PeerReply, PeerRequest, PEER_PROTOCOL_MAGIC};

/// Sends one request to the server at `addr` and waits for its reply,
/// everything within `wait`.
pub async fn call(addr: &str, req: &PeerRequest, wait: Duration, faults: &PeerFaults) -> Result<PeerReply, String> {
    if faults.is_isolated() {
        return Err(format!("{addr}: this server is isolated (fault injection)"));
    }
    let work = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("{addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(&PEER_PROTOCOL_MAGIC)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        write_frame(&mut stream, req)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        read_frame::<PeerReply>(&mut stream)
            .await
            .map_err(|e| format!("{addr}: {e}"))
    };
    tokio::time::timeout(wait, work)
        .await
        .map_err(|_| format!("{addr}: no answer within {wait:?}"))?
}
