//! The raft transport. A single server never sends raft RPCs; until the
//! cluster transport (TCP on the server port) exists, every RPC to another
//! node fails as `Unreachable` with a message saying so. The cluster work
//! replaces [`NoTransport`] with a TCP factory implementing the same
//! openraft traits; nothing else changes.

use std::future::Future;

use openraft::error::{
    Fatal, InstallSnapshotError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, SnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};

use super::types::{NodeId, Snapshot, TypeConfig, Vote};

/// Network factory for a single server: no peer is reachable.
#[derive(Debug, Clone, Default)]
pub struct NoTransport;

/// A "connection" to one peer that fails every RPC.
#[derive(Debug, Clone)]
pub struct UnreachablePeer {
    target: NodeId,
    addr: String,
}

impl UnreachablePeer {
    fn error(&self) -> Unreachable {
        Unreachable::new(&std::io::Error::other(format!(
            "raft node {} at {} is unreachable: this build has no raft transport yet \
             (the cluster transport comes with the cluster work)",
            self.target, self.addr
        )))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoTransport {
    type Network = UnreachablePeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> UnreachablePeer {
        UnreachablePeer {
            target,
            addr: node.addr.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for UnreachablePeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(self.error()))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        Err(RPCError::Unreachable(self.error()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(self.error()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        Err(StreamingError::Unreachable(self.error()))
    }
}

#[cfg(test)]
mod tests {
    use openraft::network::RPCOption;
    use openraft::raft::VoteRequest;

    use super::*;

    #[tokio::test]
    async fn every_rpc_is_unreachable_with_a_clear_message() {
        let mut peer = NoTransport.new_client(2, &BasicNode::new("127.0.0.2:8300")).await;
        let option = RPCOption::new(std::time::Duration::from_millis(100));
        let err = peer
            .vote(VoteRequest::new(Vote::new(1, 1), None), option)
            .await
            .unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)));
        let msg = err.to_string();
        assert!(msg.contains("127.0.0.2:8300"), "{msg}");
        assert!(msg.contains("cluster transport"), "{msg}");
    }
}
