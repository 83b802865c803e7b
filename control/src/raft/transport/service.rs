//! What a server answers its peers: raft RPCs, hellos (who is in the
//! cluster), requests to join as a voter, and writes forwarded by servers
//! that do not lead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::raft::AppendEntriesResponse;
use openraft::{BasicNode, ChangeMembers};
use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{Command, CommandResult};

use super::call::call;
use super::faults::PeerFaults;
use super::wire::{ClusterView, PeerReply, PeerRequest, ServerHello};
use crate::publish::Publisher;
use crate::raft::leader_contact::LeaderAppends;
use crate::raft::limits::WRITE_WAIT_MS_MAX;
use crate::raft::read_index;
use crate::raft::types::{NodeId, Raft, Snapshot};
use crate::raft::write_answer;
use crate::raft::write_batch::WriteBatcher;

/// Most servers one server keeps track of (Consul clusters run 3–7).
pub const KNOWN_SERVERS_MAX: usize = 64;
/// Longest wait for a joining server to catch up and become a voter.
pub const ADD_SERVER_WAIT_MS_MAX: u64 = 30_000;

/// One server's side of the peer protocol.
pub struct PeerService {
    pub raft: Raft,
    pub me: ServerHello,
    /// The state client agents stream from.
    pub publisher: Arc<Publisher>,
    pub faults: PeerFaults,
    known: Mutex<BTreeMap<NodeId, String>>,
    /// When this server last accepted an append from the leader.
    pub leader_appends: LeaderAppends,
    /// Group commit of the writes this server applies as leader.
    pub writes: WriteBatcher,
}

impl PeerService {
    pub fn new(raft: Raft, me: ServerHello, publisher: Arc<Publisher>, faults: PeerFaults) -> PeerService {
        let known = BTreeMap::from([(me.node_id, me.rpc_addr.clone())]);
        PeerService {
            writes: WriteBatcher::start(raft.clone()),
            raft,
            me,
            publisher,
            faults,
            known: Mutex::new(known),
            leader_appends: LeaderAppends::default(),
        }
    }

    /// The leader's server address, if one is known.
    pub fn leader_addr(&self) -> Option<String> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics.current_leader.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .map(|n| n.addr.clone())
        })
    }

    /// Records a server heard of. Refuses one from another datacenter, and
    /// more than [`KNOWN_SERVERS_MAX`].
    pub fn learn(&self, hello: &ServerHello) -> Result<(), String> {
        if hello.datacenter != self.me.datacenter {
            return Err(format!(
                "server {} is in datacenter {:?}, this one is in {:?}: refusing to join across datacenters",
                hello.rpc_addr, hello.datacenter, self.me.datacenter
            ));
        }
        let mut known = self.known.lock().expect("known servers lock");
        if !known.contains_key(&hello.node_id) && known.len() >= KNOWN_SERVERS_MAX {
            return Err(format!("this server already knows {KNOWN_SERVERS_MAX} servers"));
        }
        known.insert(hello.node_id, hello.rpc_addr.clone());
        Ok(())
    }

    /// Merges another server's view of who exists.
    pub fn learn_all(&self, servers: &[(NodeId, String)]) {
        for (id, addr) in servers {
            let _ = self.learn(&ServerHello {
                node_id: *id,
                rpc_addr: addr.clone(),
                datacenter: self.me.datacenter.clone(),
            });
        }
    }

    /// Every server heard of, this one included.
    pub fn known(&self) -> BTreeMap<NodeId, String> {
        self.known.lock().expect("known servers lock").clone()
    }

    /// This server's view, as a hello answers it.
    pub async fn view(&self) -> ClusterView {
        let initialized = self.raft.is_initialized().await.unwrap_or(false);
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .map(|n| n.addr.clone())
        });
        ClusterView {
            me: self.me.clone(),
            known: self.known().into_iter().collect(),
            initialized,
            leader,
        }
    }

    /// Applies a write: here when this server leads, else forwarded once to
    /// the leader (`forwarded` stops a second hop).
    pub async fn write(&self, cmd: Command, forwarded: bool) -> Result<(u64, CommandResult), ControlError> {
        write_answer::check_command_size(&cmd)?;
        let leads = self.raft.metrics().borrow().current_leader == Some(self.me.node_id);
        if !leads && !forwarded {
            let Some(leader) = self.leader_addr() else {
                return Err(ControlError::no_leader());
            };
            let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
            return match call(&leader, &PeerRequest::ForwardedWrite(cmd), wait, &self.faults).await {
                Ok(PeerReply::ClientWrite(answer)) => answer,
                Ok(other) => Err(ControlError {
                    status: 500,
                    message: format!("forwarding the write to the leader at {leader}: unexpected reply {other:?}"),
                }),
                Err(e) => Err(ControlError {
                    status: 500,
                    message: format!("forwarding the write to the leader failed: {e}"),
                }),
            };
        }
        self.writes.write(cmd).await
    }

    /// Adds a server as a learner, waits for it to catch up, then makes it
    /// a voter. Only the leader does this.
    pub async fn add_server(&self, hello: &ServerHello) -> Result<(), ControlError> {
        let fail = |message: String| ControlError { status: 500, message };
        self.learn(hello).map_err(fail)?;
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.me.node_id) {
            return Err(ControlError::no_leader());
        }
        if metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == hello.node_id)
        {
            return Ok(());
        }
        let work = async {
            self.raft
                .add_learner(hello.node_id, BasicNode::new(&hello.rpc_addr), true)
                .await
                .map_err(|e| fail(format!("adding server {} as a learner: {e}", hello.rpc_addr)))?;
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([hello.node_id])), false)
                .await
                .map_err(|e| fail(format!("making server {} a voter: {e}", hello.rpc_addr)))?;
            Ok::<(), ControlError>(())
        };
        tokio::time::timeout(Duration::from_millis(ADD_SERVER_WAIT_MS_MAX), work)
            .await
            .map_err(|_| {
                fail(format!(
                    "server {} did not catch up within {ADD_SERVER_WAIT_MS_MAX} ms",
                    hello.rpc_addr
                ))
            })?
    }

    /// The read index of a `?consistent` read: confirmed here when this
    /// server leads, else asked of the leader once (`forwarded` stops a
    /// second hop).
    pub async fn read_index(&self, forwarded: bool) -> Result<u64, ControlError> {
        let leads = self.raft.metrics().borrow().current_leader == Some(self.me.node_id);
        if leads {
            return read_index::confirm_as_leader(&self.raft).await;
        }
        match self.leader_addr() {
            Some(leader) if !forwarded => read_index::ask(&leader, true, &self.faults).await,
            _ => Err(ControlError::no_leader()),
        }
    }

    /// Answers one request.
    pub async fn answer(&self, req: PeerRequest) -> PeerReply {
        match req {
            PeerRequest::AppendEntries(rpc) => {
                let answer = self.raft.append_entries(rpc).await;
                // Accepted (not refused for a higher vote): the leader's contact.
                if matches!(&answer, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                    self.leader_appends.record(std::time::Instant::now());
                }
                PeerReply::AppendEntries(answer)
            }
            PeerRequest::Vote(rpc) => PeerReply::Vote(self.raft.vote(rpc).await),
            PeerRequest::FullSnapshot { vote, meta, data } => {
                let snapshot = Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data)),
                };
                PeerReply::FullSnapshot(self.raft.install_full_snapshot(vote, snapshot).await)
            }
            PeerRequest::Hello(hello) => match self.learn(&hello) {
                Ok(()) => PeerReply::Hello(self.view().await),
                Err(why) => PeerReply::Refused(why),
            },
            PeerRequest::AddServer(hello) => PeerReply::AddServer(self.add_server(&hello).await),
            // A server that does not lead relays a client agent's write to
            // the leader once (one hop); a relayed write is not relayed again.
            PeerRequest::ClientWrite(cmd) => PeerReply::ClientWrite(self.write(cmd, false).await),
            PeerRequest::ForwardedWrite(cmd) => PeerReply::ClientWrite(self.write(cmd, true).await),
            PeerRequest::Operator(req) => {
                let operator =
                    crate::raft::operator::RaftOperator::new(self.raft.clone(), self.me.node_id, self.faults.clone());
                PeerReply::Operator(operator.execute(req).await)
            }
            PeerRequest::ReadIndex { forwarded } => PeerReply::ReadIndex(self.read_index(forwarded).await),
            PeerRequest::Subscribe { .. } => {
                PeerReply::Refused("a subscription takes over its connection; send it first".into())
            }
        }
    }
}
