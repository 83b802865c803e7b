//! The operator requests servers answer each other (inside
//! `PeerRequest::Operator`) and what they answer. Pure data, plus the
//! lookup of the peer a removal names.

use proconsul_shared::ipc::messages::ControlError;
use serde::{Deserialize, Serialize};

use crate::raft::types::NodeId;

/// One operator request and whether a server already relayed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRequest {
    pub op: OperatorOp,
    /// Relayed once by a server that does not lead: answered here or
    /// refused, never relayed again.
    pub relayed: bool,
}

impl OperatorRequest {
    /// A request as an agent first sends it.
    pub fn new(op: OperatorOp) -> OperatorRequest {
        OperatorRequest { op, relayed: false }
    }
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorOp {
    /// The raft configuration; `stale`: any server may answer from its own
    /// view, else the leader answers.
    Configuration { stale: bool },
    /// Remove one server from the configuration (leader).
    RemovePeer(PeerSelector),
    /// Hand leadership to `target` (or the most up-to-date other voter).
    TransferLeader { target: Option<NodeId> },
    /// The leader's probe of every server (autopilot health).
    Health,
    /// This server's own raft numbers (the probe's question).
    ServerStats,
    /// Stop standing for election for `hold_ms` (during a transfer).
    HoldElection { hold_ms: u64 },
    /// Stand for election again (a transfer is over).
    ResumeElection,
    /// Stand for election now (the transfer's target).
    Elect,
}

impl OperatorOp {
    /// Whether only the leader answers this request.
    pub fn needs_leader(&self) -> bool {
        match self {
            OperatorOp::Configuration { stale } => !stale,
            OperatorOp::RemovePeer(_) | OperatorOp::TransferLeader { .. } | OperatorOp::Health => true,
            OperatorOp::ServerStats
            | OperatorOp::HoldElection { .. }
            | OperatorOp::ResumeElection
            | OperatorOp::Elect => false,
        }
    }
}

/// The peer a removal names: its raft address or its raft id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerSelector {
    /// `?address=ip:port`.
    Address(String),
    /// `?id=<node id>`: the raft id derived from the node's UUID, and the
    /// text that was sent (for the error).
    Id { id: NodeId, text: String },
    /// `?id=` that names no server (not a node UUID): always "not found",
    /// with the text that was sent.
    UnknownId(String),
}

impl PeerSelector {
    /// The server of `servers` this selector names, or Consul's error.
    pub fn find<'s>(&self, servers: &'s [RaftServerView]) -> Result<&'s RaftServerView, ControlError> {
        let found = match self {
            PeerSelector::Address(addr) => servers.iter().find(|s| s.addr == *addr),
            PeerSelector::Id { id, .. } => servers.iter().find(|s| s.node_id == *id),
            PeerSelector::UnknownId(_) => None,
        };
        found.ok_or_else(|| super::failed(self.not_found_message()))
    }

    /// Consul's text for a peer that is not in the configuration.
    pub fn not_found_message(&self) -> String {
        match self {
            PeerSelector::Address(addr) => format!("address {addr:?} was not found in the Raft configuration"),
            PeerSelector::Id { text, .. } | PeerSelector::UnknownId(text) => {
                format!("id {text:?} was not found in the Raft configuration")
            }
        }
    }
}

/// One server of the raft configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftServerView {
    pub node_id: NodeId,
    /// Raft address, `ip:port`.
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
    /// Its last log index, when the answering server knows it.
    pub last_index: Option<u64>,
}

/// The raft configuration and the index it was committed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftConfigurationView {
    pub servers: Vec<RaftServerView>,
    pub index: u64,
}

/// One server's own raft numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    pub last_index: u64,
    pub last_term: u64,
    /// Whether the server knows a leader now.
    pub knows_leader: bool,
}

/// What the leader's probe learned of one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerProbe {
    pub server: RaftServerView,
    /// `None`: the server did not answer within the probe's wait.
    pub stats: Option<ServerStats>,
    /// Milliseconds since the leader last heard from it: the probe's round
    /// trip when it answered (0 for the leader itself).
    pub last_contact_ms: Option<u64>,
}

/// What a server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorReply {
    Configuration(RaftConfigurationView),
    /// The request was carried out.
    Done,
    /// Leadership moved to the server at this raft address.
    Leader(String),
    Health(Vec<ServerProbe>),
    ServerStats(ServerStats),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: NodeId, addr: &str) -> RaftServerView {
        RaftServerView {
            node_id: id,
            addr: addr.into(),
            voter: true,
            leader: false,
            last_index: None,
        }
    }

    #[test]
    fn a_selector_finds_its_server_or_answers_consuls_error() {
        let servers = [server(7, "127.0.0.1:8300"), server(9, "127.0.0.2:8300")];
        let by_addr = PeerSelector::Address("127.0.0.2:8300".into());
        assert_eq!(by_addr.find(&servers).unwrap().node_id, 9);
        let by_id = |id| PeerSelector::Id { id, text: "x".into() };
        assert_eq!(by_id(7).find(&servers).unwrap().addr, "127.0.0.1:8300");
        let err = PeerSelector::Address("nope".into()).find(&servers).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (500, "address \"nope\" was not found in the Raft configuration")
        );
        let err = PeerSelector::UnknownId("nope".into()).find(&servers).unwrap_err();
        assert_eq!(err.message, "id \"nope\" was not found in the Raft configuration");
        assert_eq!(
            by_id(8).find(&servers).unwrap_err().message,
            "id \"x\" was not found in the Raft configuration"
        );
    }

    #[test]
    fn only_stale_configuration_and_per_server_requests_skip_the_leader() {
        assert!(OperatorOp::Configuration { stale: false }.needs_leader());
        assert!(!OperatorOp::Configuration { stale: true }.needs_leader());
        assert!(OperatorOp::Health.needs_leader());
        assert!(OperatorOp::TransferLeader { target: None }.needs_leader());
        assert!(!OperatorOp::ServerStats.needs_leader());
        assert!(!OperatorOp::Elect.needs_leader());
    }

    #[test]
    fn requests_and_replies_round_trip_through_postcard() {
        let req = OperatorRequest::new(OperatorOp::RemovePeer(PeerSelector::Address("127.0.0.1:8300".into())));
        let bytes = postcard::to_allocvec(&req).unwrap();
        assert_eq!(postcard::from_bytes::<OperatorRequest>(&bytes).unwrap(), req);
        let reply = OperatorReply::Health(vec![ServerProbe {
            server: server(3, "a:1"),
            stats: Some(ServerStats {
                last_index: 5,
                last_term: 2,
                knows_leader: true,
            }),
            last_contact_ms: Some(1),
        }]);
        let bytes = postcard::to_allocvec(&reply).unwrap();
        assert_eq!(postcard::from_bytes::<OperatorReply>(&bytes).unwrap(), reply);
    }
}
