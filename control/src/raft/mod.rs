//! Consensus: openraft over our own log storage, with the [`Publisher`] as
//! the state machine's output.
//!
//! * [`types`]: the openraft type configuration.
//! * `log_mem` / `log_wal` / `log_store`: the in-memory log (`-dev`), the
//!   durable WAL under `<data_dir>/raft/`, and openraft's storage trait over
//!   them; `record` frames their files, `vote_file` holds the vote,
//!   `durable_file` replaces files atomically.
//! * `state_machine` / `snapshot_store`: applies entries through the
//!   publisher; builds, keeps and installs snapshots (the rkyv archive).
//! * `network`: the transport (none yet: a single server needs none).
//! * `config`, `stats`, `leader_contact`, `write_answer`, `limits`: timers,
//!   the Consul `raft` stats section, leader-contact tracking, what a write
//!   answers, bounds.
//!
//! [`RaftHandle`] is what the agent uses: start (bootstrap a single server,
//! restore, wait to lead), write, status, stats, shutdown.

pub mod cluster;
mod config;
mod durable_file;
mod leader_contact;
pub mod limits;
mod log_mem;
mod log_store;
mod log_wal;
mod network;
pub mod operator;
pub mod read_index;
mod record;
mod snapshot_store;
mod state_machine;
mod stats;
pub mod transport;
pub mod types;
mod vote_file;
mod write_answer;
pub mod write_batch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use openraft::{BasicNode, ChangeMembers, LogIdOptionExt, ServerState};
use proconsul_shared::ipc::messages::{ClusterStatus, ControlError};
use proconsul_shared::{Command, CommandResult};

use crate::publish::Publisher;
use crate::session::{SessionRuntime, SESSION_TICK_MS};
use cluster::ClusterOptions;
use leader_contact::{LeaderContact, LeaderSeen};
use limits::{START_WAIT_MS_MAX, WRITE_WAIT_MS_MAX};
use log_store::LogStore;
use log_wal::WalOptions;
use network::NoTransport;
use snapshot_store::SnapshotStore;
use state_machine::StateMachine;
use tokio::sync::watch;
use transport::service::PeerService;
use transport::wire::{PeerReply, PeerRequest, ServerHello};
use transport::{PeerFaults, TcpTransport};
use types::{NodeId, Raft};
use write_batch::WriteBatcher;

/// How to run raft on this server.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    /// This server's raft id.
    pub node_id: NodeId,
    /// Our advertised server address, `ip:port` (`/v1/status/leader` shows it).
    pub rpc_addr: String,
    /// `None`: in-memory log and snapshots (`-dev`).
    pub data_dir: Option<PathBuf>,
    /// Short timers (`-dev`).
    pub dev: bool,
    /// `None`: a single server with no peer port (`-dev`, tests). `Some`:
    /// listen for peers and bootstrap or join per the options.
    pub cluster: Option<ClusterOptions>,
}

/// Storage opened for a start, and the publisher it applies to.
struct OpenedStorage {
    log_store: LogStore,
    state_machine: StateMachine,
    start_last_log: Option<u64>,
    publisher: Arc<Publisher>,
}

/// A running raft server. Cheap to clone.
#[derive(Clone)]
pub struct RaftHandle {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft,
    node_id: NodeId,
    contact: LeaderContact,
    /// The peer side (cluster mode only).
    peers: Option<Peers>,
    /// Group commit in front of `raft.client_write` (shared with the peer
    /// service in cluster mode, so forwarded writes join the same batches).
    writes: WriteBatcher,
}

struct Peers {
    service: Arc<PeerService>,
    faults: PeerFaults,
    stop: watch::Sender<bool>,
}

impl RaftHandle {
    /// Opens storage, restores the last snapshot into `publisher` (which
    /// must be empty), starts openraft, bootstraps a single-voter cluster
    /// on fresh storage, and waits (at most [`START_WAIT_MS_MAX`]) until
    /// this node leads and has applied every entry in its log, so reads
    /// after a restart are never behind and indexes never go backwards.
    pub async fn start(opts: RaftOptions, publisher: Arc<Publisher>) -> anyhow::Result<RaftHandle> {
        Self::start_within(opts, publisher, START_WAIT_MS_MAX).await
    }

    /// [`RaftHandle::start`] with the leadership wait bounded by `wait_ms`.
    async fn start_within(opts: RaftOptions, publisher: Arc<Publisher>, wait_ms: u64) -> anyhow::Result<RaftHandle> {
        anyhow::ensure!(
            publisher.applied_index() == 0,
            "raft must start on an empty publisher (it holds index {})",
            publisher.applied_index()
        );
        let config = Arc::new(config::raft_config(opts.dev)?);
        let (log_store, state_machine) = open_storage(&opts, publisher.clone()).await?;
        let sessions = state_machine.sessions();
        let start_last_log = log_store.last_log_index();
        if let Some(cluster) = opts.cluster.clone() {
            let storage = OpenedStorage {
                log_store,
                state_machine,
                start_last_log,
                publisher: publisher.clone(),
            };
            let handle = Self::start_cluster(opts, cluster, config, storage, wait_ms).await?;
            handle.spawn_session_driver(sessions, publisher);
            return Ok(handle);
        }
        let raft = Raft::new(opts.node_id, config, NoTransport, log_store, state_machine)
            .await
            .context("starting raft")?;
        let writes = WriteBatcher::start(raft.clone()).with_sessions(sessions.clone());
        let handle = RaftHandle {
            inner: Arc::new(Inner {
                raft,
                node_id: opts.node_id,
                contact: LeaderContact::new(Instant::now()),
                peers: None,
                writes,
            }),
        };
        if let Err(e) = handle.bootstrap_and_lead(&opts, start_last_log, wait_ms).await {
            handle.shutdown().await;
            return Err(e);
        }
        handle.spawn_session_driver(sessions, publisher);
        tracing::info!(
            node_id = opts.node_id,
            addr = %opts.rpc_addr,
            index = handle.applied_index(),
            "cluster leadership acquired"
        );
        Ok(handle)
    }

    /// Cluster mode: listens for peers on the server port, then either
    /// bootstraps alone (`bootstrap_expect == 1`, waiting to lead as a
    /// single server does) or starts the join loop and returns at once (a
    /// leader comes when enough servers have joined; with 0, only by
    /// joining an existing cluster).
    async fn start_cluster(
        opts: RaftOptions,
        cluster: ClusterOptions,
        config: Arc<openraft::Config>,
        storage: OpenedStorage,
        wait_ms: u64,
    ) -> anyhow::Result<RaftHandle> {
        let OpenedStorage {
            log_store,
            state_machine,
            start_last_log,
            publisher,
        } = storage;
        let sessions = state_machine.sessions();
        let listener = tokio::net::TcpListener::bind(cluster.listen)
            .await
            .with_context(|| format!("cannot listen for raft peers on {}", cluster.listen))?;
        let transport = TcpTransport::new(cluster.faults.clone());
        let raft = Raft::new(opts.node_id, config, transport, log_store, state_machine)
            .await
            .context("starting raft")?;
        let me = ServerHello {
            node_id: opts.node_id,
            rpc_addr: opts.rpc_addr.clone(),
            datacenter: cluster.datacenter.clone(),
        };
        let mut service = PeerService::new(raft.clone(), me, publisher.clone(), cluster.faults.clone());
        service.writes = service.writes.clone().with_sessions(sessions);
        let service = Arc::new(service);
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(transport::server::serve(
            listener,
            service.clone(),
            cluster.faults.clone(),
            stop_rx.clone(),
        ));
        let handle = RaftHandle {
            inner: Arc::new(Inner {
                raft,
                node_id: opts.node_id,
                contact: LeaderContact::new(Instant::now()),
                writes: service.writes.clone(),
                peers: Some(Peers {
                    service: service.clone(),
                    faults: cluster.faults.clone(),
                    stop,
                }),
            }),
        };
        // `-bootstrap` (expect 1): lead alone now; others join it later.
        let alone = cluster.bootstrap_expect == 1;
        if alone {
            if let Err(e) = handle.bootstrap_and_lead(&opts, start_last_log, wait_ms).await {
                handle.shutdown().await;
                return Err(e);
            }
        } else {
            tokio::spawn(cluster::run_join_loop(service, cluster, stop_rx));
        }
        Ok(handle)
    }

    /// Every server this one has heard of (cluster mode), by raft id.
    pub fn known_servers(&self) -> BTreeMap<NodeId, String> {
        match &self.inner.peers {
            Some(p) => p.service.known(),
            None => BTreeMap::from([(self.inner.node_id, self.cluster_status().peers.join(","))]),
        }
    }

    /// Cuts (`true`) or restores this server's raft links (fault injection
    /// for partition tests). No effect outside cluster mode.
    pub fn set_isolated(&self, isolated: bool) {
        if let Some(p) = &self.inner.peers {
            p.faults.set_isolated(isolated);
        }
    }

    /// Initializes fresh storage as a single-voter cluster, checks this node
    /// is a voter, then waits to lead with the whole log applied.
    async fn bootstrap_and_lead(
        &self,
        opts: &RaftOptions,
        start_last_log: Option<u64>,
        wait_ms: u64,
    ) -> anyhow::Result<()> {
        let raft = &self.inner.raft;
        let id = opts.node_id;
        if !raft.is_initialized().await? {
            let members = BTreeMap::from([(id, BasicNode::new(&opts.rpc_addr))]);
            raft.initialize(members)
                .await
                .context("bootstrapping the raft cluster")?;
            tracing::info!(node_id = id, addr = %opts.rpc_addr, "bootstrapped a single-server raft cluster");
        }
        let voters: Vec<NodeId> = raft
            .with_raft_state(|st| st.membership_state.effective().voter_ids().collect())
            .await?;
        anyhow::ensure!(
            voters.contains(&id),
            "raft node id {id} is not a voter of the stored cluster configuration (voters: {voters:?}); \
             was the data directory created with another node id?"
        );
        let timeout = Duration::from_millis(wait_ms);
        raft.wait(Some(timeout))
            .metrics(
                |m| {
                    m.state == ServerState::Leader
                        && m.current_leader == Some(id)
                        && m.last_log_index >= start_last_log
                        && m.last_applied.index() >= m.last_log_index
                },
                "this server leads and has applied its whole log",
            )
            .await
            .with_context(|| format!("raft node {id} did not take leadership within {wait_ms} ms"))?;
        self.update_own_address(&opts.rpc_addr).await
    }

    /// Records a changed advertised address (a restart with another
    /// `-bind`/`-advertise`) in the raft configuration, so status endpoints
    /// report the address this server answers on.
    async fn update_own_address(&self, rpc_addr: &str) -> anyhow::Result<()> {
        let id = self.inner.node_id;
        let stored = self
            .inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        if stored.as_ref().map(|n| n.addr.as_str()) == Some(rpc_addr) {
            return Ok(());
        }
        let nodes = BTreeMap::from([(id, BasicNode::new(rpc_addr))]);
        self.inner
            .raft
            .change_membership(ChangeMembers::SetNodes(nodes), false)
            .await
            .with_context(|| format!("recording this server's new raft address {rpc_addr}"))?;
        tracing::info!(node_id = id, from = ?stored.map(|n| n.addr), to = rpc_addr, "raft address changed");
        Ok(())
    }

    /// A replicated write. Answers `(raft index, result)` once applied (its
    /// delta is then in the ring). Without leadership: 500 "No cluster
    /// leader". An oversized command: 413. Concurrent writes share raft
    /// entries (group commit, [`WriteBatcher`]); a full queue: 429.
    pub async fn write(&self, cmd: Command) -> Result<(u64, CommandResult), ControlError> {
        write_answer::check_command_size(&cmd)?;
        if let Some(leader) = self.remote_leader_addr() {
            return self.forward_write(&leader, cmd).await;
        }
        self.inner.writes.write(cmd).await
    }

    /// Whether this server leads now.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().current_leader == Some(self.inner.node_id)
    }

    /// The leader's address when another server leads (cluster mode).
    fn remote_leader_addr(&self) -> Option<String> {
        self.inner.peers.as_ref()?;
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        if leader == self.inner.node_id {
            return None;
        }
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Sends a write to the leader and relays its answer.
    async fn forward_write(&self, leader: &str, cmd: Command) -> Result<(u64, CommandResult), ControlError> {
        let peers = self.inner.peers.as_ref().expect("forwarding needs cluster mode");
        let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
        match transport::call::call(leader, &PeerRequest::ForwardedWrite(cmd), wait, &peers.faults).await {
            Ok(PeerReply::ClientWrite(answer)) => answer,
            Ok(other) => Err(ControlError {
                status: 500,
                message: format!("forwarding the write to the leader at {leader}: unexpected reply {other:?}"),
            }),
            Err(e) => Err(ControlError {
                status: 500,
                message: format!("forwarding the write to the leader failed: {e}"),
            }),
        }
    }

    /// The leader's server address (if one is known) and every voter's.
    pub fn cluster_status(&self) -> ClusterStatus {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let addr = |id: NodeId| membership.get_node(&id).map(|n| n.addr.clone());
        ClusterStatus {
            leader: m.current_leader.and_then(addr),
            peers: membership.voter_ids().filter_map(addr).collect(),
        }
    }

    /// `(known_leader, last_contact_ms)`: `(true, 0)` on the leader; on a
    /// follower the milliseconds since the leader's last append.
    pub fn leader_status(&self) -> (bool, u64) {
        let leader = self.inner.raft.metrics().borrow().current_leader;
        let seen = match leader {
            Some(id) if id == self.inner.node_id => LeaderSeen::ThisServer,
            Some(_) => LeaderSeen::Another {
                last_append: self.inner.peers.as_ref().and_then(|p| p.service.leader_appends.last()),
            },
            None => LeaderSeen::Nobody,
        };
        self.inner.contact.observe(Instant::now(), seen)
    }

    /// The barrier of a `?consistent` read: the leader's read index
    /// (confirmed with a quorum; asked of the leader when another server
    /// leads), once this server's state machine has applied it. Bounded by
    /// [`read_index::LEADER_CONFIRM_WAIT_MS_MAX`] and
    /// [`read_index::READ_INDEX_APPLY_WAIT_MS_MAX`].
    pub async fn read_barrier(&self) -> Result<u64, ControlError> {
        let index = match &self.inner.peers {
            Some(peers) => peers.service.read_index(false).await?,
            None => read_index::confirm_as_leader(&self.inner.raft).await?,
        };
        let wait_ms = read_index::READ_INDEX_APPLY_WAIT_MS_MAX;
        let applied = self
            .inner
            .raft
            .wait(Some(Duration::from_millis(wait_ms)))
            .applied_index_at_least(Some(index), "a consistent read's index is applied")
            .await;
        match applied {
            Ok(metrics) => Ok(metrics.last_applied.index().unwrap_or(0).max(index)),
            Err(_) => Err(read_index::apply_timeout(index, self.applied_index(), wait_ms)),
        }
    }

    /// The `raft` section of `/v1/agent/self` `Stats` (Consul keys, string values).
    pub fn stats(&self) -> BTreeMap<String, String> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let last_log = self.inner.raft.data_metrics().borrow().last_log;
        stats::raft_stats(&metrics, last_log, self.inner.contact.last_contact_ms(Instant::now()))
    }

    /// The operator side of this server (`/v1/operator/*`, and the
    /// removal of departed servers).
    pub fn operator(&self) -> operator::RaftOperator {
        let faults = self.inner.peers.as_ref().map(|p| p.faults.clone()).unwrap_or_default();
        operator::RaftOperator::new(self.inner.raft.clone(), self.inner.node_id, faults)
    }

    /// This server's raft id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Index of the last entry applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.inner.raft.metrics().borrow().last_applied.index().unwrap_or(0)
    }

    /// Starts the session TTL driver: every [`SESSION_TICK_MS`] it asks
    /// the runtime which sessions expired (leader only; leadership gained
    /// re-arms every TTL session) and proposes their destroy. It holds the
    /// handle weakly and ends with it, or when raft stops.
    fn spawn_session_driver(&self, sessions: Arc<SessionRuntime>, publisher: Arc<Publisher>) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let tick = Duration::from_millis(SESSION_TICK_MS);
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let handle = RaftHandle { inner };
                if handle.inner.raft.metrics().borrow().running_state.is_err() {
                    return;
                }
                let outcome = sessions.tick(handle.is_leader(), &publisher.state());
                if outcome.rearmed > 0 {
                    tracing::info!(target: "session", count = outcome.rearmed, "leadership gained: session TTL timers re-armed");
                }
                for id in outcome.expired {
                    tracing::info!(target: "session", %id, "session TTL expired: destroying it");
                    if let Err(e) = handle.write(Command::SessionDestroy { id: id.clone() }).await {
                        tracing::warn!(target: "session", %id, "destroying an expired session failed: {}", e.message);
                    }
                }
            }
        });
    }

    /// Stops raft and waits for its core task (which releases the storage).
    /// Later writes fail with a 500.
    pub async fn shutdown(&self) {
        if let Some(p) = &self.inner.peers {
            let _ = p.stop.send(true);
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }
}

/// Opens the log and snapshot storage and restores the newest snapshot
/// into the publisher. File IO runs on the blocking pool.
async fn open_storage(opts: &RaftOptions, publisher: Arc<Publisher>) -> anyhow::Result<(LogStore, StateMachine)> {
    let Some(data_dir) = &opts.data_dir else {
        let state_machine = StateMachine::open(publisher, Arc::new(SnapshotStore::in_memory()))?;
        return Ok((LogStore::in_memory(), state_machine));
    };
    let raft_dir = data_dir.join("raft");
    tokio::task::spawn_blocking(move || -> anyhow::Result<(LogStore, StateMachine)> {
        let log_store = LogStore::durable(&raft_dir, WalOptions::default())?;
        let snapshots = SnapshotStore::durable(&raft_dir)
            .with_context(|| format!("opening raft snapshots in {}", raft_dir.display()))?;
        let state_machine = StateMachine::open(publisher, Arc::new(snapshots))?;
        Ok((log_store, state_machine))
    })
    .await
    .context("raft storage task")?
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cluster_tests;
