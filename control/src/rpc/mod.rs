//! The unix-socket server the data plane talks to (`<run_dir>/control.sock`).
//!
//! * [`server`]: listener, connection limit, the opening `Hello`.
//! * [`attach`]: the replication channel (ring and snapshot memfds, cluster
//!   status, `Shutdown`), on a thread of its own.
//! * [`requests`]: request channels: writes, leave, stats; bounded in flight.
//! * [`dispatch`]: what each request does, against a [`ControlBackend`].
//! * [`validate`]: the bounds every write is checked against.
//! * [`stats`]: the Consul-shaped `Stats` sections.
//! * [`hub`]: which data plane is attached.
//!
//! [`ControlContext`] is the agent-side implementation of both
//! [`ControlBackend`] and [`ReplicationSource`].

pub mod attach;
pub mod dispatch;
pub mod hub;
pub mod requests;
pub mod server;
pub mod stats;
pub mod validate;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::command::{Command, CommandResult};
use proconsul_shared::ipc::messages::{ClusterStatus, ControlError, HttpAnswer, HttpCall};
use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::snapshot_region::SnapshotMeta;
use tokio::sync::watch;

pub use attach::ReplicationSource;
pub use dispatch::ControlBackend;
pub use hub::AttachHub;
pub use server::ControlServer;

use crate::agent::cluster::ClusterLink;
use crate::agent::local::{LocalAgent, SyncTarget};
use crate::agent::shutdown::{Shutdown, ShutdownReason};
use crate::client_replica::writes::forward_write;
use crate::http_api::{HttpEnv, ReloadFn};
use crate::publish::Publisher;
use crate::raft::RaftHandle;

/// What the control socket serves from.
pub struct ControlContext {
    pub publisher: Arc<Publisher>,
    /// `None` on a client agent (no servers known yet).
    pub raft: Option<RaftHandle>,
    pub agent: Arc<AgentInfo>,
    /// Our server RPC address (`ip:port`).
    pub own_rpc_addr: String,
    pub shutdown: Shutdown,
    /// The agent's local services and checks.
    pub local: Arc<LocalAgent>,
    /// Re-reads the config files (`PUT /v1/agent/reload`, SIGHUP).
    pub reload: Arc<ReloadFn>,
    /// Gossip, the known servers, and a client's state stream.
    pub cluster: ClusterLink,
}

impl SyncTarget for ControlContext {
    async fn write(&self, command: Command) -> Result<(u64, CommandResult), ControlError> {
        ControlBackend::write(self, command).await
    }

    fn replica(&self) -> proconsul_shared::State {
        self.publisher.state()
    }
}

impl ControlBackend for ControlContext {
    async fn write(&self, command: Command) -> Result<(u64, CommandResult), ControlError> {
        match &self.raft {
            Some(raft) => raft.write(command).await,
            // A client agent: through a server, which relays to the leader.
            None => forward_write(&self.cluster.servers, command, &self.cluster.faults).await,
        }
    }

    async fn read_barrier(&self) -> Result<u64, ControlError> {
        match &self.raft {
            Some(raft) => raft.read_barrier().await,
            // A client agent: a server asks the leader; our replica catches up.
            None => {
                crate::client_replica::read_index::read_barrier(
                    &self.cluster.servers,
                    &self.cluster.faults,
                    self.publisher.applied(),
                )
                .await
            }
        }
    }

    fn stats(&self) -> stats::Stats {
        let cluster = self.cluster_status();
        let (local_services, local_checks) = {
            let local = self.local.lock();
            (local.services().len(), local.checks().len())
        };
        stats::agent_stats(&stats::StatsInputs {
            agent: &self.agent,
            cluster: &cluster,
            own_rpc_addr: &self.own_rpc_addr,
            raft: self.raft.as_ref().map(RaftHandle::stats),
            known_members: cluster.peers.len(),
            local_services,
            local_checks,
            cpu_count: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }

    async fn http(&self, call: HttpCall) -> Result<HttpAnswer, ControlError> {
        if call.path.starts_with("/v1/operator/") {
            let access = crate::http_api::operator::OperatorAccess {
                raft: self.raft.as_ref().map(RaftHandle::operator),
                servers: &self.cluster.servers,
                faults: &self.cluster.faults,
                gossip: self.cluster.gossip.as_ref(),
                pretty: self.agent.pretty_json,
            };
            let answer = crate::http_api::operator::handle(&access, &call.method, &call.path, &call.query).await;
            return Ok(answer);
        }
        let env = HttpEnv {
            local: &self.local,
            target: self,
            agent: &self.agent,
            reload: self.reload.as_ref(),
            gossip: self.cluster.gossip.as_ref(),
            wan_gossip: self.cluster.wan_gossip.as_ref(),
        };
        Ok(crate::http_api::handle(&env, &call).await)
    }

    fn leave(&self) {
        if self.shutdown.trigger(ShutdownReason::Leave) {
            tracing::info!(target: "agent", "leave requested: shutting down");
        }
    }
}

impl ReplicationSource for ControlContext {
    fn epoch(&self) -> u64 {
        self.publisher.epoch()
    }

    fn ring_fd(&self) -> io::Result<OwnedFd> {
        self.publisher.ring_fd()
    }

    fn snapshot(&self) -> io::Result<(SharedRegion, SnapshotMeta)> {
        self.publisher.snapshot_region()
    }

    fn resets(&self) -> watch::Receiver<u64> {
        self.publisher.resets()
    }

    fn agent(&self) -> AgentInfo {
        (*self.agent).clone()
    }

    fn cluster_status(&self) -> ClusterStatus {
        match (&self.raft, &self.cluster.replica) {
            (Some(raft), _) => raft.cluster_status(),
            // A client: the leader its server names, the servers gossip knows.
            (None, Some(replica)) => ClusterStatus {
                leader: replica.leader(),
                peers: self.cluster.servers.borrow().clone(),
            },
            (None, None) => ClusterStatus::default(),
        }
    }
}
