//! The agent: start-up, steady state, shutdown.
//!
//! Start-up, in order: logging → data dir → node ID → pid file → run dir →
//! publisher (state + delta ring) → raft (servers) → our own catalog node →
//! control socket → data plane (adopted or spawned) → heartbeat → banner.
//! Then the agent waits for SIGINT/SIGTERM or `PUT /v1/agent/leave`, and
//! shuts down in reverse: data plane (told to exit, SIGKILL as the last
//! resort), control socket, raft, pid file, run dir.
//!
//! * [`shutdown`]: the stop signal every task awaits.
//! * [`node_id`], [`pid_file`], [`run_dir`]: the files the agent keeps.
//! * [`agent_info`], [`local_node`], [`banner`]: pure views of the config.
//! * [`heartbeat`]: liveness and leadership into the ring header.
//! * [`logging`], [`build_info`].

pub mod agent_info;
pub mod banner;
pub mod build_info;
pub mod cluster;
pub mod fault_signals;
pub mod heartbeat;
pub mod local;
pub mod local_node;
pub mod logging;
pub mod node_id;
pub mod run_dir;
pub mod server_membership;
pub mod shutdown;
pub mod wan;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proconsul_shared::limits::DELTA_RING_BYTES_DEFAULT;
use tokio::task::JoinHandle;

use crate::agent::local::{LocalAgent, LocalSettings};
use crate::client_replica::ReplicaStatus;
use crate::config::Config;
use crate::gossip::Gossip;
use crate::http_api::ReloadFn;
use crate::publish::Publisher;
use crate::raft::cluster::ClusterOptions;
use crate::raft::transport::PeerFaults;
use crate::raft::{RaftHandle, RaftOptions};
use crate::rpc::{AttachHub, ControlBackend, ControlContext, ControlServer};
use crate::supervise::{dataplane_launch, Supervisor, DATAPLANE_EXIT_WAIT_MS};
use cluster::ClusterLink;
use proconsul_shared::pid_file::PidFile;
use run_dir::RunDir;
use shutdown::{Shutdown, ShutdownReason};

/// Worker threads of the control plane's runtime (the data plane does the
/// serving; this side runs raft, the socket and the supervisor).
pub const CONTROL_WORKER_THREADS: usize = 2;
/// Attempts at registering our own node before giving up on it.
pub const NODE_REGISTER_ATTEMPTS_MAX: u32 = 10;
/// Pause between those attempts.
pub const NODE_REGISTER_RETRY_MS: u64 = 200;
/// Pause between a client agent's attempts to open a state stream.
pub const CLIENT_STREAM_RETRY_MS: u64 = 200;
/// Longest pause of the raft join loop between hellos.
pub const RAFT_JOIN_RETRY_MS_MAX: u64 = 1_000;
/// Longest wait for a graceful gossip leave to spread.
pub const GOSSIP_LEAVE_WAIT_MS: u64 = 2_000;
/// Longest wait for raft to shut down.
pub const RAFT_SHUTDOWN_WAIT_MS: u64 = 1_000;
/// Longest wait for the runtime's remaining tasks at exit.
pub const RUNTIME_SHUTDOWN_WAIT_MS: u64 = 500;

/// The raft node id for a node UUID: its first 8 bytes, never 0. Pure.
pub fn raft_node_id(node_id: &str) -> u64 {
    let bytes = uuid::Uuid::parse_str(node_id)
        .map(|u| *u.as_bytes())
        .unwrap_or_default();
    let id = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    id.max(1)
}

/// Runs the agent to completion. Returns the process exit code.
pub fn run(config: Config) -> i32 {
    logging::init(config.log_level);
    for warning in &config.warnings {
        tracing::warn!(target: "agent", "{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CONTROL_WORKER_THREADS)
        .thread_name("proconsul-control")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("==> Error starting agent: cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(run_agent(config));
    runtime.shutdown_timeout(Duration::from_millis(RUNTIME_SHUTDOWN_WAIT_MS));
    code
}

async fn run_agent(config: Config) -> i32 {
    let shutdown = Shutdown::new();
    if let Err(e) = watch_signals(shutdown.clone()) {
        eprintln!("==> Error starting agent: cannot install signal handlers: {e}");
        return 1;
    }
    let started = tokio::select! {
        started = Agent::start(config, shutdown.clone()) => started,
        reason = shutdown.wait() => Err(anyhow::anyhow!("interrupted during start-up ({reason:?})")),
    };
    match started {
        Ok(agent) => agent.serve_until_shutdown().await,
        Err(e) => {
            eprintln!("==> Error starting agent: {e:#}");
            shutdown.trigger(ShutdownReason::Fatal(e.to_string()));
            1
        }
    }
}

/// SIGINT and SIGTERM start a graceful shutdown; a second one forces exit.
fn watch_signals(shutdown: Shutdown) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if !shutdown.trigger(ShutdownReason::Signal(name)) {
                eprintln!("==> Caught second signal {name}. Exiting");
                std::process::exit(1);
            }
        }
    });
    Ok(())
}

/// The agent's local state with the config files' services and checks
/// and the real check runners; invalid definitions stop the start.
fn start_local_agent(
    config: &Config,
    node_id: &str,
) -> anyhow::Result<(Arc<LocalAgent>, tokio::sync::mpsc::Receiver<crate::checks::CheckReport>)> {
    let proconsul_shared::command::Command::NodeRegister(node) = local_node::registration(config, node_id) else {
        anyhow::bail!("the local node registration is not a node registration");
    };
    let settings = LocalSettings {
        datacenter: config.datacenter.clone(),
        pretty_json: config.pretty_json,
        enable_script_checks: config.enable_script_checks,
        enable_local_script_checks: config.enable_local_script_checks,
        check_update_interval_ms: config.check_update_interval_ms,
        sync_interval_ms: config.anti_entropy_interval_ms,
        reap_interval_ms: config.check_reap_interval_ms,
        max_query_time_ms: config.max_query_time_ms,
        default_query_time_ms: config.default_query_time_ms,
    };
    let (runners, reports) = local::runners::real_runners();
    let local = LocalAgent::new(node, settings, runners);
    local
        .apply_file_definitions(&config.service_definitions, &config.check_definitions)
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok((local, reports))
}

/// SIGHUP reloads the config files' services and checks.
fn watch_hangup(reload: Arc<ReloadFn>, shutdown: Shutdown) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                got = hangup.recv() => {
                    if got.is_none() {
                        return;
                    }
                }
            }
            tracing::info!(target: "agent", "Caught signal: hangup");
            if let Err(e) = reload() {
                tracing::error!(target: "agent", "Failed to reload configs: {e}");
            }
        }
    });
    Ok(())
}

/// A started agent and what it must stop at exit.
struct Agent {
    shutdown: Shutdown,
    gossip: Option<Gossip>,
    /// Servers only.
    wan_gossip: Option<Gossip>,
    raft: Option<RaftHandle>,
    server_task: JoinHandle<()>,
    supervisor_task: JoinHandle<()>,
    heartbeat_task: JoinHandle<()>,
    // Dropped last, in this order: the pid file, then the run dir.
    _pid_file: Option<PidFile>,
    _run_dir: RunDir,
}

impl Agent {
    async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Agent> {
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create data_dir {}", dir.display()))?;
        }
        let node_id = node_id::resolve_node_id(config.node_id.as_deref(), config.dev, config.data_dir.as_deref())
            .context("cannot establish the node ID")?;
        let pid_file = match &config.pid_file {
            Some(path) => Some(
                PidFile::create(path, std::process::id())
                    .with_context(|| format!("cannot write pid file {}", path.display()))?,
            ),
            None => None,
        };
        let run_dir = RunDir::create(config.data_dir.as_deref()).context("cannot create the run directory")?;
        let publisher = Publisher::new(rand::random::<u64>().max(1), DELTA_RING_BYTES_DEFAULT)?;

        let faults = PeerFaults::default();
        let gossip = cluster::start_gossip(&config, &node_id, &faults).await?;
        let wan_gossip = wan::start_wan_gossip(&config, &node_id, &faults).await?;
        if let (Some(lan), Some(w)) = (&gossip, &wan_gossip) {
            tokio::spawn(wan::run_wan_flood(
                lan.clone(),
                w.clone(),
                config.datacenter.clone(),
                shutdown.clone(),
            ));
        }
        fault_signals::watch_fault_signals(config.cluster.dev_fault_injection, faults.clone(), shutdown.clone())?;
        let (servers_tx, servers) = tokio::sync::watch::channel(Vec::<String>::new());
        if let Some(g) = &gossip {
            tokio::spawn(cluster::track_servers(
                g.clone(),
                config.datacenter.clone(),
                servers_tx,
                shutdown.clone(),
            ));
        }
        let raft = if config.server {
            Some(start_raft(&config, &node_id, publisher.clone(), servers.clone(), faults.clone()).await?)
        } else {
            None
        };
        let replica = if config.server {
            None
        } else {
            let status = Arc::new(ReplicaStatus::new(std::time::Instant::now()));
            tokio::spawn(crate::client_replica::follow(
                publisher.clone(),
                servers.clone(),
                status.clone(),
                faults.clone(),
                CLIENT_STREAM_RETRY_MS,
                shutdown.as_watch(),
            ));
            Some(status)
        };
        if let (Some(g), Some(r)) = (&gossip, &raft) {
            tokio::spawn(cluster::run_reconciler(
                g.clone(),
                r.clone(),
                publisher.clone(),
                config.datacenter.clone(),
                shutdown.clone(),
            ));
        }
        let link = ClusterLink {
            gossip: gossip.clone(),
            wan_gossip: wan_gossip.clone(),
            servers,
            faults,
            replica: replica.clone(),
        };
        let agent = Arc::new(agent_info::agent_info(&config, &node_id));
        let (local, reports) = start_local_agent(&config, &node_id)?;
        let reload: Arc<ReloadFn> = {
            let local = local.clone();
            let paths = config.config_paths.clone();
            Arc::new(move || local.reload_files(&paths))
        };
        let context = Arc::new(ControlContext {
            publisher: publisher.clone(),
            raft: raft.clone(),
            agent,
            own_rpc_addr: config.server_rpc_addr(),
            shutdown: shutdown.clone(),
            local: local.clone(),
            reload: reload.clone(),
            cluster: link,
        });
        if raft.is_some() {
            register_local_node(&context, &config, &node_id).await;
            if let Err(e) = local.sync_once(context.as_ref()).await {
                tracing::warn!(target: "agent.anti_entropy", "first sync failed: {}", e.message);
            }
        }
        tokio::spawn(local::runners::apply_reports(local.clone(), reports, shutdown.clone()));
        tokio::spawn(local.clone().run_background(context.clone(), shutdown.clone()));
        watch_hangup(reload, shutdown.clone())?;

        let hub = AttachHub::new();
        let server = ControlServer::bind(&run_dir.control_socket())
            .with_context(|| format!("cannot listen on {}", run_dir.control_socket().display()))?;
        let server_task = tokio::spawn(server.serve(context, hub.clone(), shutdown.clone()));

        let exe = std::env::current_exe().context("cannot find the proconsul executable")?;
        let launch = dataplane_launch(&config, run_dir.path());
        let supervisor_task = tokio::spawn(Supervisor::new(exe, launch, hub, shutdown.clone()).run());
        let heartbeat_task = tokio::spawn(heartbeat::run(publisher, raft.clone(), replica, shutdown.clone()));

        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(banner::banner(&config, &node_id).as_bytes());
        let _ = stdout.flush();
        drop(stdout);
        tracing::info!(target: "agent", "Consul agent running!");
        Ok(Agent {
            shutdown,
            gossip,
            wan_gossip,
            raft,
            server_task,
            supervisor_task,
            heartbeat_task,
            _pid_file: pid_file,
            _run_dir: run_dir,
        })
    }

    async fn serve_until_shutdown(self) -> i32 {
        let reason = self.shutdown.wait().await;
        match &reason {
            ShutdownReason::Signal(name) => tracing::info!(target: "agent", "Caught signal: {name}"),
            ShutdownReason::Leave => tracing::info!(target: "agent", "Graceful leave requested"),
            ShutdownReason::Fatal(why) => tracing::error!(target: "agent", "fatal: {why}"),
        }
        tracing::info!(target: "agent", "Requesting shutdown");
        if let (Some(raft), ShutdownReason::Leave) = (&self.raft, &reason) {
            // A leaving server leaves the raft configuration before gossip.
            server_membership::leave_raft(raft).await;
        }
        // The WAN pool (servers) is left at the same time as the LAN pool.
        let wan_leave = async {
            if let (Some(w), ShutdownReason::Leave) = (&self.wan_gossip, &reason) {
                w.leave(Duration::from_millis(GOSSIP_LEAVE_WAIT_MS)).await;
            }
        };
        let lan_leave = async {
            if let Some(g) = &self.gossip {
                // A leave (API, CLI) or an interrupted client announces it is
                // leaving, so the others deregister it instead of failing it.
                let leaving = matches!(reason, ShutdownReason::Leave)
                    || (self.raft.is_none() && matches!(reason, ShutdownReason::Signal("SIGINT")));
                if leaving {
                    g.leave(Duration::from_millis(GOSSIP_LEAVE_WAIT_MS)).await;
                }
            }
        };
        tokio::join!(wan_leave, lan_leave);
        // The supervisor stops the data plane (bounded, then SIGKILL).
        let data_plane_wait = Duration::from_millis(DATAPLANE_EXIT_WAIT_MS + 500);
        if tokio::time::timeout(data_plane_wait, self.supervisor_task)
            .await
            .is_err()
        {
            tracing::warn!(target: "agent", "data plane supervisor did not finish in time");
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), self.server_task).await;
        if let Some(raft) = &self.raft {
            if tokio::time::timeout(Duration::from_millis(RAFT_SHUTDOWN_WAIT_MS), raft.shutdown())
                .await
                .is_err()
            {
                tracing::warn!(target: "agent", "raft did not shut down within {RAFT_SHUTDOWN_WAIT_MS} ms");
            }
        }
        self.heartbeat_task.abort();
        if let Some(g) = &self.gossip {
            g.shutdown().await;
        }
        if let Some(w) = &self.wan_gossip {
            w.shutdown().await;
        }
        tracing::info!(target: "agent", "shutdown complete");
        match reason {
            ShutdownReason::Fatal(_) => 1,
            _ => 0,
        }
    }
}

async fn start_raft(
    config: &Config,
    node_id: &str,
    publisher: Arc<Publisher>,
    servers: tokio::sync::watch::Receiver<Vec<String>>,
    faults: PeerFaults,
) -> anyhow::Result<RaftHandle> {
    // `-dev` keeps raft in memory even when a data dir is given, and runs
    // a single server with no peer port.
    let cluster = (!config.dev).then(|| ClusterOptions {
        listen: std::net::SocketAddr::new(config.bind_addr, config.ports.server.max(0) as u16),
        bootstrap_expect: if config.bootstrap { 1 } else { config.bootstrap_expect },
        join: Vec::new(),
        servers: Some(servers),
        datacenter: config.datacenter.clone(),
        join_retry_ms: config.cluster.retry_interval_ms.min(RAFT_JOIN_RETRY_MS_MAX),
        faults,
    });
    let waits_for_peers = cluster.as_ref().is_some_and(|c| c.bootstrap_expect != 1);
    let options = RaftOptions {
        node_id: raft_node_id(node_id),
        rpc_addr: config.server_rpc_addr(),
        data_dir: config.data_dir.clone().filter(|_| !config.dev),
        dev: config.dev,
        cluster,
    };
    let raft = RaftHandle::start(options, publisher)
        .await
        .context("cannot start raft")?;
    if waits_for_peers {
        tracing::info!(target: "agent.server", "waiting for servers to join (bootstrap_expect = {})", config.bootstrap_expect);
    } else {
        tracing::info!(target: "agent.server", "New leader elected: payload={}", config.node_name);
    }
    Ok(raft)
}

/// Registers our node; retried a few times, then given up with an error
/// (the agent still serves; the node is just missing from the catalog).
async fn register_local_node(backend: &ControlContext, config: &Config, node_id: &str) {
    let command = local_node::registration(config, node_id);
    for attempt in 1..=NODE_REGISTER_ATTEMPTS_MAX {
        match backend.write(command.clone()).await {
            Ok((index, _)) => {
                tracing::info!(target: "agent", "Synced node info: node={} index={index}", config.node_name);
                return;
            }
            Err(e) if attempt < NODE_REGISTER_ATTEMPTS_MAX => {
                tracing::debug!(target: "agent", "registering node failed (attempt {attempt}): {}", e.message);
                tokio::time::sleep(Duration::from_millis(NODE_REGISTER_RETRY_MS)).await;
            }
            Err(e) => tracing::error!(target: "agent", "could not register node {}: {}", config.node_name, e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_come_from_the_node_uuid() {
        assert_eq!(raft_node_id("00000000-0000-0001-0000-000000000000"), 1);
        assert_eq!(raft_node_id("adf4238a-882b-9ddc-4a9d-5b6758e4159e"), 0xadf4238a882b9ddc);
        assert_eq!(raft_node_id("00000000-0000-0000-ffff-ffffffffffff"), 1, "never 0");
        assert_eq!(raft_node_id("garbage"), 1);
    }
}
