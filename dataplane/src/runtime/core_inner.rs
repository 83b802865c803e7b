//! The implementation behind [`crate::core::Core`]: one serving thread's
//! view, leadership, parked queries and request channel.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proconsul_shared::ipc::messages::{ControlError, ControlOp, ControlReply};

use crate::blocking::parking::{ParkedWake, Parking};
use crate::blocking::watch_index::watch_set_index;
use crate::blocking::{ChangeSet, WatchSet};
use crate::core::{LeaderStatus, View, WaitOutcome};
use crate::forward::{Forwarder, IN_FLIGHT_PER_CORE_MAX};
use crate::http::shared_render::SharedRenders;
use crate::replica::handoff::Hub;
use crate::replica::version::{LeaderInfo, Version};
use crate::runtime::dns_queue_probe::{DnsQueueProbe, ProbeError};

/// Longest a write waits for the local replica to reach its index before
/// it is answered anyway (and a warning logged).
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);
/// Consul's default `limits.http_max_conns_per_client`.
pub const HTTP_MAX_CONNS_PER_CLIENT_DEFAULT: u32 = 200;

/// Per-core state. Single-threaded: interior mutability, no locks.
pub struct CoreInner {
    id: u32,
    hub: Arc<Hub>,
    view: RefCell<Rc<View>>,
    installed_seq: Cell<u64>,
    restore_generation: Cell<u64>,
    leader: Cell<LeaderInfo>,
    parking: Parking,
    shared_renders: RefCell<SharedRenders<View>>,
    forwarder: Forwarder,
    http_max_conns_per_client: u32,
    /// `limits.wake_hold_ms_max` (0 = wake pacing off).
    wake_hold_ms_max: u64,
    /// This core's DNS UDP sockets, for wake pacing.
    dns_queue_probe: RefCell<DnsQueueProbe>,
    /// DNS datagrams this core's UDP server received (for wake pacing).
    dns_datagrams_received: Cell<u64>,
}

impl CoreInner {
    /// A core starting from `first`, parking at most `parked_max` queries.
    pub(crate) fn new(id: u32, hub: Arc<Hub>, first: &Version, socket_path: PathBuf, parked_max: usize) -> CoreInner {
        CoreInner {
            id,
            hub,
            view: RefCell::new(Rc::new(view_of(first))),
            installed_seq: Cell::new(first.seq),
            restore_generation: Cell::new(first.restore_generation),
            leader: Cell::new(first.leader),
            parking: Parking::new(parked_max, IN_FLIGHT_PER_CORE_MAX),
            shared_renders: RefCell::new(SharedRenders::new()),
            forwarder: Forwarder::new(id, socket_path),
            http_max_conns_per_client: HTTP_MAX_CONNS_PER_CLIENT_DEFAULT,
            wake_hold_ms_max: 0,
            dns_queue_probe: RefCell::new(DnsQueueProbe::default()),
            dns_datagrams_received: Cell::new(0),
        }
    }

    /// Holds parked queries' wake-ups for at most `hold_ms_max` ms while
    /// DNS datagrams wait on this core (`limits.wake_hold_ms_max`; 0 =
    /// off, the default of [`CoreInner::new`]).
    pub(crate) fn with_wake_hold_ms_max(mut self, hold_ms_max: u64) -> CoreInner {
        self.wake_hold_ms_max = hold_ms_max;
        self.parking.set_release_on_wake(hold_ms_max == 0);
        self
    }

    /// `limits.wake_hold_ms_max` (0 = off).
    pub fn wake_hold_ms_max(&self) -> u64 {
        self.wake_hold_ms_max
    }

    /// Lets wake pacing see `socket`'s receive queue (a DNS UDP socket of
    /// this core).
    pub(crate) fn watch_dns_socket(&self, socket: &std::net::UdpSocket) -> Result<(), ProbeError> {
        self.dns_queue_probe.borrow_mut().watch(socket)
    }

    /// Counts `datagrams` received by this core's DNS UDP server (one
    /// call per received batch).
    pub(crate) fn count_dns_datagrams(&self, datagrams: usize) {
        self.dns_datagrams_received
            .set(self.dns_datagrams_received.get().wrapping_add(datagrams as u64));
    }

    /// DNS datagrams this core's UDP server received so far.
    pub(crate) fn dns_datagrams_received(&self) -> u64 {
        self.dns_datagrams_received.get()
    }

    /// A DNS datagram is waiting on one of this core's watched sockets.
    pub(crate) fn dns_datagrams_waiting(&self) -> bool {
        self.dns_queue_probe.borrow().datagrams_waiting()
    }

    /// Sets the per-client HTTP connection limit the HTTP server enforces
    /// (from `DataplaneLaunch::http_max_conns_per_client`; 0 = unlimited).
    pub(crate) fn with_http_max_conns_per_client(mut self, limit: u32) -> CoreInner {
        self.http_max_conns_per_client = limit;
        self
    }

    /// `limits.http_max_conns_per_client` (0 = unlimited).
    pub fn http_max_conns_per_client(&self) -> u32 {
        self.http_max_conns_per_client
    }

    /// Index of this serving thread.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The current view (an `Rc` clone). If the applier has published a
    /// newer version than this core installed, it is installed first: a
    /// write is acknowledged once its version is published, so every read
    /// that starts after the acknowledgement sees it, whichever core
    /// serves it (read-your-writes across connections). The check is one
    /// load of a line that changes only on publish.
    pub fn view(&self) -> Rc<View> {
        if self.hub.published_seq() > self.installed_seq.get() {
            self.install_published();
        }
        self.view.borrow().clone()
    }

    /// Leadership for the response headers.
    pub fn leader_status(&self) -> LeaderStatus {
        let leader = self.leader.get();
        if leader.growing {
            leader.status_at(Instant::now())
        } else {
            LeaderStatus {
                known_leader: leader.known_leader,
                last_contact_ms: leader.last_contact_ms,
            }
        }
    }

    /// Bumped whenever the state was replaced by one at a lower index.
    pub fn restore_generation(&self) -> u64 {
        self.restore_generation.get()
    }

    /// Queries parked on this core now.
    pub fn parked_queries(&self) -> usize {
        self.parking.parked()
    }

    /// Responses rendered for parked queries woken by the current view,
    /// shared by identical queries.
    pub(crate) fn shared_renders(&self) -> &RefCell<SharedRenders<View>> {
        &self.shared_renders
    }

    /// Ready while a wake storm has queries left to wake (see
    /// [`Parking::release_batch`]).
    pub(crate) fn poll_wake_backlog(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.parking.poll_backlog(cx)
    }

    /// Wakes the next `batch_max` queries of a wake storm; returns how many.
    pub(crate) fn release_wake_batch(&self, batch_max: usize) -> usize {
        self.parking.release_batch(batch_max)
    }

    /// Sends a request; a write returns once this core's view reached it.
    pub async fn request(&self, op: ControlOp) -> Result<ControlReply, ControlError> {
        let reply = self.forwarder.request(op).await?;
        match &reply {
            ControlReply::Written { index, .. } => self.wait_for_index(*index).await,
            // A consistent read's barrier: serve from a view at the read index.
            ControlReply::ReadIndex(index) => self.wait_for_index(*index).await,
            // A forwarded HTTP request that wrote: answer once the replica has it.
            ControlReply::Http(answer) if answer.wait_index > 0 => self.wait_for_index(answer.wait_index).await,
            _ => {}
        }
        Ok(reply)
    }

    async fn wait_for_index(&self, index: u64) {
        if self.view().state.index() >= index {
            return;
        }
        let reached = match self.parking.wait_index(index) {
            Ok(f) => f,
            Err(full) => {
                tracing::warn!(core = self.id, index, error = %full, "answering a write before the replica has it");
                return;
            }
        };
        if monoio::time::timeout(READ_YOUR_WRITES_WAIT, reached).await.is_err() {
            tracing::warn!(
                core = self.id,
                index,
                replica_index = self.view.borrow().state.index(),
                "replica did not reach a write's index in time; answering anyway"
            );
        }
    }

    /// Parks until something `watch` covers moves above `min_index`, the
    /// state is replaced by a restore, or `deadline` passes.
    pub async fn wait_change(&self, watch: &WatchSet, min_index: u64, deadline: Instant) -> WaitOutcome {
        let generation = self.restore_generation.get();
        loop {
            if self.restore_generation.get() != generation
                || watch_set_index(&self.view.borrow().state, watch) > min_index
            {
                return WaitOutcome::Changed;
            }
            if Instant::now() >= deadline {
                return WaitOutcome::TimedOut;
            }
            let parked = match self.parking.park(watch, deadline) {
                Ok(p) => p,
                Err(full) => {
                    tracing::warn!(core = self.id, error = %full, "blocking query answered at once");
                    return WaitOutcome::Overloaded;
                }
            };
            // The core's one deadline timer (in `follow_versions`) expires it.
            if parked.await == ParkedWake::Expired {
                return WaitOutcome::TimedOut;
            }
        }
    }

    /// The earliest deadline of a query parked on this core.
    pub(crate) fn next_park_deadline(&self) -> Option<Instant> {
        self.parking.next_deadline()
    }

    /// Answers (as timed out) up to `batch_max` parked queries whose
    /// deadline is at or before `now`; returns how many.
    pub(crate) fn expire_parked(&self, now: Instant, batch_max: usize) -> usize {
        self.parking.expire(now, batch_max)
    }

    /// Installs whatever the applier published since the last call and
    /// wakes the parked queries and waiting writes it affects.
    pub(crate) fn install_published(&self) {
        let feed = self.hub.feed(self.id as usize);
        let mut changes = ChangeSet::default();
        feed.drain(&mut changes);
        let Some(latest) = self.hub.latest() else {
            return;
        };
        let installed = self.installed_seq.get();
        if latest.seq != installed {
            assert!(
                latest.seq > installed,
                "core {} installed version {} after {}",
                self.id,
                latest.seq,
                installed
            );
            *self.view.borrow_mut() = Rc::new(view_of(&latest));
            self.installed_seq.set(latest.seq);
            self.restore_generation.set(latest.restore_generation);
            self.leader.set(latest.leader);
        }
        let woken = self.parking.wake(&changes, latest.state.index());
        if woken > 0 {
            tracing::trace!(
                core = self.id,
                woken,
                index = latest.state.index(),
                "woke parked queries"
            );
        }
    }
}

fn view_of(version: &Version) -> View {
    View {
        state: version.state.clone(),
        agent: version.agent.clone(),
        cluster: version.cluster.clone(),
    }
}
