//! SWIM gossip membership (serf LAN equivalent) on top of foca.
//!
//! * [`config`]: timings and limits (`lan()`, `fast()`).
//! * [`identity`]: the foca identity (name, address, generation, leave
//!   intent, tags).
//! * [`member`]: the member table with serf statuses and its events.
//! * [`core`]: the sans-IO state machine (packets and time in, packets,
//!   timers and events out).
//! * [`push_pull`]: the TCP full-state exchange used to join.
//! * [`join_addr`]: `-join`/`-retry-join` address parsing.
//! * [`pool`]: which serf pool (LAN or WAN) an instance is, its default port.
//! * `runtime`: the tokio task and listener (the only place with sockets).
//!
//! Not wire-compatible with HashiCorp memberlist: Proconsul agents only
//! gossip with Proconsul agents.

pub mod config;
pub mod core;
pub mod identity;
pub mod join_addr;
pub mod member;
pub mod pool;
pub mod push_pull;
mod runtime;
pub mod timer_queue;

#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod sim_tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use self::config::GossipTimings;
pub use self::member::{Member, MemberEvent, MemberStatus};
pub use self::pool::Pool;

use self::core::GossipCore;
use self::identity::NodeIdentity;
use self::push_pull::ExchangeLimits;
use self::runtime::Command;
use crate::raft::transport::PeerFaults;

/// Default serf LAN port.
pub const SERF_LAN_PORT: u16 = 8301;
/// Most addresses one `join` call tries.
pub const JOIN_ADDRS_MAX: usize = 64;
/// Most resolved socket addresses tried per join address.
pub const JOIN_RESOLVED_MAX: usize = 4;
/// Pending commands between the handle and the gossip task.
pub const COMMAND_QUEUE_MAX: usize = 256;
/// Member events buffered per subscriber (slower ones see `Lagged`).
pub const EVENT_QUEUE_MAX: usize = 1_024;
/// How long `shutdown` waits for the tasks to stop.
const SHUTDOWN_WAIT_MS_MAX: u64 = 2_000;
/// A failed retry-join is logged on the first attempt and every Nth after.
const RETRY_JOIN_LOG_EVERY: u64 = 10;

/// How to start the gossip layer.
#[derive(Debug, Clone)]
pub struct GossipOptions {
    /// UDP + TCP listen address (serf LAN, 8301 by default; port 0 picks one).
    pub bind: SocketAddr,
    /// What others use to reach us (port 0: the bound port).
    pub advertise: SocketAddr,
    /// Node name, unique in the cluster.
    pub node_name: String,
    /// Serf tags: `role`, `dc`, `port`, `build`, `vsn`, `id`, `expect`, ...
    pub tags: BTreeMap<String, String>,
    /// `-retry-join` addresses: `ip`, `ip:port`, `host[:port]` (port 8301).
    pub join: Vec<String>,
    /// Pause between retry-join rounds (Consul `-retry-interval`, 30 s).
    pub join_retry_ms: u64,
    /// Timers and limits.
    pub timings: GossipTimings,
    /// LAN or WAN: the default join port and the log wording.
    pub pool: Pool,
    /// Fault injection: while isolated, every packet in and out is dropped
    /// and push-pull is refused both ways.
    pub faults: PeerFaults,
}

/// Handle to the running gossip layer; cheap to clone.
#[derive(Clone)]
pub struct Gossip {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    members: watch::Receiver<Arc<Vec<Member>>>,
    events: broadcast::Sender<MemberEvent>,
    shutdown: watch::Sender<bool>,
    timings: GossipTimings,
    node_name: String,
    local_addr: SocketAddr,
    pool: Pool,
    faults: PeerFaults,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    /// The last handle gone stops the tasks (sockets close with them).
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl Gossip {
    /// Binds UDP and TCP, starts the gossip task, and starts retry-join in
    /// the background when `opts.join` is not empty.
    pub async fn start(opts: GossipOptions) -> anyhow::Result<Gossip> {
        opts.timings.validate().map_err(anyhow::Error::msg)?;
        let udp = UdpSocket::bind(opts.bind)
            .await
            .with_context(|| format!("gossip: bind udp {}", opts.bind))?;
        let local_addr = udp.local_addr().context("gossip: udp local address")?;
        let listener = TcpListener::bind(local_addr)
            .await
            .with_context(|| format!("gossip: bind tcp {local_addr}"))?;
        let mut advertise = opts.advertise;
        if advertise.ip().is_unspecified() {
            anyhow::bail!("gossip: advertise address {advertise} is unspecified; give a reachable IP");
        }
        if advertise.port() == 0 {
            advertise.set_port(local_addr.port());
        }
        let generation = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let identity =
            NodeIdentity::new(&opts.node_name, advertise, generation, opts.tags.clone()).map_err(anyhow::Error::msg)?;
        let core = GossipCore::new(identity, opts.timings.clone(), rand::random(), 0);

        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
        let (members_tx, members) = watch::channel(Arc::new(core.members()));
        let (events, _) = broadcast::channel(EVENT_QUEUE_MAX);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let publish = runtime::Publish {
            members: members_tx,
            events: events.clone(),
        };
        let limits = exchange_limits(&opts.timings);

        let mut tasks = Vec::new();
        let clock = Instant::now();
        tasks.push(tokio::spawn(runtime::run_core(
            core,
            udp,
            commands_rx,
            publish,
            shutdown_rx.clone(),
            clock,
            opts.faults.clone(),
        )));
        tasks.push(tokio::spawn(runtime::serve_push_pull(
            listener,
            commands.clone(),
            limits,
            opts.timings.push_pull_connections_max,
            shutdown_rx.clone(),
            opts.faults.clone(),
        )));
        let gossip = Gossip {
            inner: Arc::new(Inner {
                commands,
                members,
                events,
                shutdown,
                timings: opts.timings.clone(),
                node_name: opts.node_name.clone(),
                local_addr,
                pool: opts.pool,
                faults: opts.faults.clone(),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        if !opts.join.is_empty() {
            let joiner = gossip.clone();
            let pause = Duration::from_millis(opts.join_retry_ms.max(1));
            tasks.push(tokio::spawn(retry_join(joiner, opts.join.clone(), pause, shutdown_rx)));
        }
        gossip
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        let pool = opts.pool.name();
        tracing::info!(node = %opts.node_name, %local_addr, %advertise, pool, "gossip: serf pool listening");
        Ok(gossip)
    }

    /// Which pool this instance is.
    pub fn pool(&self) -> Pool {
        self.inner.pool
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Every member (self included), sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.inner.members.borrow().as_ref().clone()
    }

    /// Member events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.events.subscribe()
    }

    /// `PUT /v1/agent/join`: push-pull with each address; the number that
    /// answered, or the errors when none did.
    pub async fn join(&self, addrs: &[String]) -> Result<usize, String> {
        if addrs.len() > JOIN_ADDRS_MAX {
            return Err(format!(
                "too many join addresses: {} (max {JOIN_ADDRS_MAX})",
                addrs.len()
            ));
        }
        let mut joined = 0;
        let mut errors = Vec::new();
        for addr in addrs {
            match self.join_one(addr).await {
                Ok(()) => joined += 1,
                Err(error) => {
                    tracing::debug!(%addr, %error, "gossip: join");
                    errors.push(format!("{addr}: {error}"));
                }
            }
        }
        if joined == 0 {
            return Err(join_error_text(&errors));
        }
        Ok(joined)
    }

    async fn join_one(&self, addr: &str) -> Result<(), String> {
        if self.inner.faults.is_isolated() {
            return Err(format!("{addr}: fault injection: this agent is isolated"));
        }
        let target = join_addr::parse_join_target(addr, self.inner.pool.default_port())?;
        let limits = exchange_limits(&self.inner.timings);
        let lookup = tokio::net::lookup_host(target.clone());
        let resolved: Vec<SocketAddr> = tokio::time::timeout(Duration::from_millis(limits.timeout_ms), lookup)
            .await
            .map_err(|_| format!("lookup {target}: timed out"))?
            .map_err(|e| format!("lookup {target}: {e}"))?
            .take(JOIN_RESOLVED_MAX)
            .collect();
        let mut last_error = format!("lookup {target}: no addresses");
        for peer in resolved {
            if peer == self.inner.local_addr {
                last_error = format!("{peer} is this agent");
                continue;
            }
            match runtime::push_pull_with(peer, &self.inner.commands, limits).await {
                Ok(_) => return Ok(()),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// Graceful leave: announce it, then let it spread for at most `wait`
    /// (capped by `leave_propagate_ms_max`).
    pub async fn leave(&self, wait: Duration) {
        let (reply, answer) = oneshot::channel();
        if self.inner.commands.send(Command::Leave(reply)).await.is_err() {
            return;
        }
        match answer.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "gossip: leave"),
            Err(_) => return,
        }
        let cap = Duration::from_millis(self.inner.timings.leave_propagate_ms_max);
        tokio::time::sleep(wait.min(cap)).await;
    }

    /// `force-leave`: a failed member becomes left (`prune`: forgotten now).
    pub fn force_leave(&self, node: &str, prune: bool) -> Result<(), String> {
        if node == self.inner.node_name {
            return Err(format!("agent: cannot force-leave the local node '{node}'"));
        }
        if !self.members().iter().any(|m| m.name == node) {
            return Err(format!("agent: No node found with name '{node}'"));
        }
        self.inner
            .commands
            .try_send(Command::ForceLeave {
                name: node.to_string(),
                prune,
            })
            .map_err(|_| "gossip: command queue full, try again".to_string())
    }

    /// Gossips new tags for this node (e.g. a role change).
    pub async fn set_tags(&self, tags: BTreeMap<String, String>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::SetTags(tags, reply))
            .await
            .map_err(|_| "gossip: stopped".to_string())?;
        answer.await.map_err(|_| "gossip: stopped".to_string())?
    }

    /// Stops every task and closes the sockets (no leave announcement).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_millis(SHUTDOWN_WAIT_MS_MAX), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// Consul's multi-error text for a join where no address answered.
fn join_error_text(errors: &[String]) -> String {
    if errors.is_empty() {
        return "1 error occurred:\n\t* no join addresses given\n\n".to_string();
    }
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    let mut text = format!("{} {noun} occurred:\n", errors.len());
    for error in errors {
        text.push_str(&format!("\t* Failed to join {error}\n"));
    }
    text.push('\n');
    text
}

fn exchange_limits(timings: &GossipTimings) -> ExchangeLimits {
    ExchangeLimits {
        bytes_max: timings.push_pull_bytes_max,
        members_max: timings.members_max,
        timeout_ms: timings.push_pull_timeout_ms,
    }
}

/// `-retry-join`: tries every `pause` until one address answers or shutdown.
async fn retry_join(gossip: Gossip, addrs: Vec<String>, pause: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match gossip.join(&addrs).await {
            Ok(joined) => {
                tracing::info!(joined, "agent: Join cluster completed. Synced with initial agents");
                return;
            }
            Err(error) if attempt == 1 || attempt.is_multiple_of(RETRY_JOIN_LOG_EVERY) => {
                tracing::warn!(attempt, %error, retry_ms = pause.as_millis() as u64, "agent: Join cluster failed, will retry");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_errors_read_like_consul() {
        let one = join_error_text(&["10.0.0.1: dial tcp 10.0.0.1:8301: connect: connection refused".to_string()]);
        assert_eq!(
            one,
            "1 error occurred:\n\t* Failed to join 10.0.0.1: dial tcp 10.0.0.1:8301: connect: connection refused\n\n"
        );
        let two = join_error_text(&["a: x".to_string(), "b: y".to_string()]);
        assert!(two.starts_with("2 errors occurred:\n\t* Failed to join a: x\n\t* Failed to join b: y"));
        assert!(join_error_text(&[]).contains("no join addresses"));
    }
}
