//! What travels on the server port between raft servers: one request
//! frame, one reply frame, in order, per connection. Frames are a `u32`
//! little-endian length and a postcard body, bounded by
//! [`PEER_FRAME_BYTES_MAX`] (a snapshot travels as one frame).

use openraft::error::{Fatal, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{Command, CommandResult};

use crate::raft::types::{NodeId, SnapshotMeta, TypeConfig, Vote};

/// Largest frame accepted or sent (a whole snapshot is one frame).
pub const PEER_FRAME_BYTES_MAX: usize = 512 * 1024 * 1024;
/// First bytes of every connection, so a stray client (HTTP, an old
/// version) is refused at once instead of being parsed as a frame.
pub const PEER_PROTOCOL_MAGIC: [u8; 8] = *b"PCRAFT01";

/// A raft RPC from one server to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// A whole snapshot (openraft's `full_snapshot`).
    FullSnapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: Vec<u8>,
    },
    /// A server introduces itself (`-retry-join`, `-bootstrap-expect`).
    Hello(ServerHello),
    /// Asks the leader to add the sender as a voter.
    AddServer(ServerHello),
    /// A write for the cluster: applied by the leader, relayed to it once by
    /// any other server (so a client agent may send it to any server).
    ClientWrite(Command),
    /// A write already relayed once: applied only by the leader.
    ForwardedWrite(Command),
    /// A client agent follows the state: the connection turns into a
    /// stream of [`StreamFrame`]s starting after `from_index`.
    Subscribe {
        from_index: u64,
    },
    /// An operator request (`/v1/operator/*`): raft configuration, peer
    /// removal, leadership transfer, autopilot health and their helpers.
    Operator(crate::raft::operator::OperatorRequest),
    /// The read index of a `?consistent` read: the leader confirms its
    /// leadership with a quorum and answers its commit index. `forwarded`:
    /// already relayed once by a server that does not lead (answered only
    /// by the leader).
    ReadIndex {
        forwarded: bool,
    },
}

/// One frame of a state stream (server → client agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamFrame {
    /// Start over from this whole state (the rkyv snapshot archive).
    Snapshot { index: u64, bytes: Vec<u8> },
    /// Consecutive encoded deltas (`Delta::encode`), oldest first.
    Deltas(Vec<(u64, Vec<u8>)>),
    /// Nothing changed; who leads, as this server sees it.
    Heartbeat { leader: Option<String> },
}

/// Who a server is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub node_id: NodeId,
    /// Advertised server address, `ip:port`.
    pub rpc_addr: String,
    pub datacenter: String,
}

/// What a server knows of the cluster, in answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub me: ServerHello,
    /// Every server this one has heard of (itself included), by raft id.
    pub known: Vec<(NodeId, String)>,
    /// Whether its raft has a configuration (the cluster was bootstrapped).
    pub initialized: bool,
    /// The leader's server address, if known.
    pub leader: Option<String>,
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    FullSnapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    Hello(ClusterView),
    AddServer(Result<(), ControlError>),
    ClientWrite(Result<(u64, CommandResult), ControlError>),
    /// The answer to an operator request.
    Operator(Result<crate::raft::operator::OperatorReply, ControlError>),
    /// The read index (applied by the leader), or why there is none.
    ReadIndex(Result<u64, ControlError>),
    /// The receiver would not take the request (e.g. it is not a server
    /// of this cluster, or is shutting down).
    Refused(String),
}

/// Errors on a peer connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes exceeds the {PEER_FRAME_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("frame does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("not a Proconsul raft peer (bad protocol magic)")]
    BadMagic,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    let mut out = postcard::to_extend(msg, vec![0u8; 4])?;
    let len = out.len() - 4;
    if len > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Reads one frame.
pub async fn read_frame<T: DeserializeOwned>(r: &mut (impl AsyncRead + Unpin)) -> Result<T, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(postcard::from_bytes(&body)?)
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(w: &mut (impl AsyncWrite + Unpin), msg: &T) -> Result<(), WireError> {
    let bytes = encode(msg)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

/// Reads and checks the connection's opening magic.
pub async fn read_magic(r: &mut (impl AsyncRead + Unpin)) -> Result<(), WireError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).await?;
    if magic != PEER_PROTOCOL_MAGIC {
        return Err(WireError::BadMagic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use proconsul_shared::Command;

    #[tokio::test]
    async fn append_entries_round_trips_through_a_frame() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 7),
            payload: EntryPayload::Normal(Command::KvSet {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 9,
            }),
        };
        let req = PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 6)),
            entries: vec![entry.clone()],
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), 6)),
        });
        let bytes = encode(&req).unwrap();
        let mut cursor = std::io::Cursor::new(bytes);
        let back: PeerRequest = read_frame(&mut cursor).await.unwrap();
        let PeerRequest::AppendEntries(back) = back else {
            panic!("wrong variant")
        };
        assert_eq!(back.entries.len(), 1);
        assert_eq!(back.entries[0].log_id, entry.log_id);
        assert_eq!(back.vote, Vote::new_committed(3, 1));
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocating() {
        let mut bytes = ((PEER_FRAME_BYTES_MAX + 1) as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let mut cursor = std::io::Cursor::new(bytes);
        let err = read_frame::<PeerRequest>(&mut cursor).await.unwrap_err();
        assert!(matches!(err, WireError::TooLarge(_)), "{err}");
    }

    #[tokio::test]
    async fn a_wrong_magic_is_refused() {
        let mut cursor = std::io::Cursor::new(b"GET / HTTP/1.1\r\n".to_vec());
        assert!(matches!(read_magic(&mut cursor).await, Err(WireError::BadMagic)));
    }

    #[tokio::test]
    async fn garbage_is_a_decode_error_not_a_panic() {
        let mut bytes = 8u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xff; 8]);
        let mut cursor = std::io::Cursor::new(bytes);
        assert!(read_frame::<PeerRequest>(&mut cursor).await.is_err());
    }
}
