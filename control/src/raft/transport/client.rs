//! The sending side: one lazily opened TCP connection per peer, one RPC at
//! a time (openraft drives each peer's replication sequentially). Any
//! error drops the connection; the next RPC dials again.

use std::future::Future;
use std::io::Cursor;
use std::time::Duration;

use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, SnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::faults::PeerFaults;
use super::wire::{read_frame, write_frame, PeerReply, PeerRequest, WireError, PEER_PROTOCOL_MAGIC};
use crate::raft::types::{NodeId, Snapshot, TypeConfig, Vote};

/// Longest wait for a connection to a peer.
pub const PEER_CONNECT_WAIT_MS_MAX: u64 = 1_000;

/// Builds a [`PeerClient`] per raft peer.
#[derive(Debug, Clone, Default)]
pub struct TcpTransport {
    faults: PeerFaults,
}

impl TcpTransport {
    pub fn new(faults: PeerFaults) -> TcpTransport {
        TcpTransport { faults }
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpTransport {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            conn: None,
            faults: self.faults.clone(),
        }
    }
}

/// The connection to one peer.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    conn: Option<TcpStream>,
    faults: PeerFaults,
}

/// Why one RPC failed before the peer answered.
enum SendError {
    /// Could not reach the peer: back off.
    Unreachable(Unreachable),
    /// The connection broke mid-RPC: retry.
    Network(NetworkError),
}

impl PeerClient {
    /// Sends `req` and waits for the reply, within `wait`.
    async fn call(&mut self, req: &PeerRequest, wait: Duration) -> Result<PeerReply, SendError> {
        if self.faults.is_isolated() {
            return Err(SendError::Unreachable(Unreachable::new(&std::io::Error::other(
                format!(
                    "raft peer {} at {}: this server is isolated (fault injection)",
                    self.target, self.addr
                ),
            ))));
        }
        let result = tokio::time::timeout(wait, self.call_inner(req)).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(SendError::Network(NetworkError::new(&std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "raft peer {} at {} did not answer within {wait:?}",
                        self.target, self.addr
                    ),
                ))))
            }
        }
    }

    async fn call_inner(&mut self, req: &PeerRequest) -> Result<PeerReply, SendError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await.map_err(SendError::Unreachable)?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let network = |e: WireError| SendError::Network(NetworkError::new(&e));
        write_frame(conn, req).await.map_err(network)?;
        read_frame::<PeerReply>(conn).await.map_err(network)
    }

    async fn connect(&self) -> Result<TcpStream, Unreachable> {
        let wait = Duration::from_millis(PEER_CONNECT_WAIT_MS_MAX);
        let unreachable = |e: std::io::Error| {
            Unreachable::new(&std::io::Error::new(
                e.kind(),
                format!("raft peer {} at {}: {e}", self.target, self.addr),
            ))
        };
        let mut stream = match tokio::time::timeout(wait, TcpStream::connect(&self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e)),
            Err(_) => return Err(unreachable(std::io::ErrorKind::TimedOut.into())),
        };
        let _ = stream.set_nodelay(true);
        stream.write_all(&PEER_PROTOCOL_MAGIC).await.map_err(unreachable)?;
        Ok(stream)
    }

    fn refused(&self, why: String) -> NetworkError {
        NetworkError::new(&std::io::Error::other(format!(
            "raft peer {} at {} refused the request: {why}",
            self.target, self.addr
        )))
    }

    fn unexpected(&self) -> NetworkError {
        NetworkError::new(&std::io::Error::other(format!(
            "raft peer {} at {} answered with the wrong reply kind",
            self.target, self.addr
        )))
    }
}

type RaftRpcError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

fn rpc_error<E: std::error::Error>(e: SendError) -> RPCError<NodeId, BasicNode, E> {
    match e {
        SendError::Unreachable(u) => RPCError::Unreachable(u),
        SendError::Network(n) => RPCError::Network(n),
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftRpcError> {
        match self.call(&PeerRequest::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(PeerReply::AppendEntries(Ok(r))) => Ok(r),
            Ok(PeerReply::AppendEntries(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(PeerReply::Refused(why)) => Err(RPCError::Network(self.refused(why))),
            Ok(_) => Err(RPCError::Network(self.unexpected())),
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftRpcError<InstallSnapshotError>> {
        // With storage-v2, openraft sends snapshots through `full_snapshot`.
        Err(RPCError::Network(NetworkError::new(&std::io::Error::other(
            "chunked install_snapshot is not used: snapshots travel whole (full_snapshot)",
        ))))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RaftRpcError> {
        match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerReply::Vote(Ok(r))) => Ok(r),
            Ok(PeerReply::Vote(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(PeerReply::Refused(why)) => Err(RPCError::Network(self.refused(why))),
            Ok(_) => Err(RPCError::Network(self.unexpected())),
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let data = Cursor::into_inner(*snapshot.snapshot);
        let req = PeerRequest::FullSnapshot {
            vote,
            meta: snapshot.meta,
            data,
        };
        // A snapshot may be large: allow it more than one RPC's time.
        let wait = option.hard_ttl().max(Duration::from_secs(30));
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = self.call(&req, wait) => reply,
        };
        match reply {
            Ok(PeerReply::FullSnapshot(Ok(r))) => Ok(r),
            Ok(PeerReply::FullSnapshot(Err(e))) => Err(StreamingError::RemoteError(RemoteError::new(self.target, e))),
            Ok(PeerReply::Refused(why)) => Err(StreamingError::Network(self.refused(why))),
            Ok(_) => Err(StreamingError::Network(self.unexpected())),
            Err(SendError::Unreachable(u)) => Err(StreamingError::Unreachable(u)),
            Err(SendError::Network(n)) => Err(StreamingError::Network(n)),
        }
    }
}
