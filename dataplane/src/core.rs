//! What one serving thread shares between its tasks.
//!
//! Owned by the runtime/replica side; the HTTP and DNS code only uses the
//! methods below.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::messages::{ClusterStatus, ControlError, ControlOp, ControlReply};
use proconsul_shared::State;

use crate::blocking::WatchSet;

/// One consistent version of everything a read needs. Swapped whole when
/// the replica applies a delta; a request borrows one `Rc<View>` for its
/// whole handling.
pub struct View {
    pub state: Arc<State>,
    pub agent: Arc<AgentInfo>,
    pub cluster: Arc<ClusterStatus>,
}

/// Leadership as the answering agent sees it, for the
/// `X-Consul-KnownLeader` / `X-Consul-LastContact` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderStatus {
    pub known_leader: bool,
    pub last_contact_ms: u64,
}

/// Why a parked query woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Something it watches changed (re-run the query; it may still be
    /// unchanged, then park again).
    Changed,
    /// The deadline passed.
    TimedOut,
    /// Too many parked queries on this core; answer now.
    Overloaded,
}

/// Per-core context (one per serving thread, shared by its tasks via `Rc`).
pub struct Core {
    inner: crate::runtime::CoreInner,
}

impl Core {
    pub(crate) fn new(inner: crate::runtime::CoreInner) -> Rc<Core> {
        Rc::new(Core { inner })
    }

    /// Index of this serving thread.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// The current view. Cheap (an `Rc` clone); no atomics, no locks.
    pub fn view(&self) -> Rc<View> {
        self.inner.view()
    }

    /// Leadership for the response headers.
    pub fn leader_status(&self) -> LeaderStatus {
        self.inner.leader_status()
    }

    /// Sends a request to the control plane. For `ControlReply::Written`
    /// (and `ControlReply::Http` with a `wait_index`) this returns only
    /// after this core's view has reached the write's index
    /// (read-your-writes through one agent). When the control plane
    /// is unreachable: `ControlError { status: 500, message: "No cluster leader" }`.
    pub async fn request(&self, op: ControlOp) -> Result<ControlReply, ControlError> {
        self.inner.request(op).await
    }

    /// Parks until an item in `watch` changes at an index above `min_index`,
    /// or until `deadline`.
    pub async fn wait_change(&self, watch: &WatchSet, min_index: u64, deadline: Instant) -> WaitOutcome {
        self.inner.wait_change(watch, min_index, deadline).await
    }

    /// A counter bumped each time the state is replaced by one at a lower
    /// index (a snapshot restore). `wait_change` returns `Changed` when it
    /// moves; a blocking handler that sees it differ from the value read
    /// before parking answers at once even though the index went down
    /// (Consul wakes every blocked query on a restore).
    pub fn restore_generation(&self) -> u64 {
        self.inner.restore_generation()
    }

    /// `limits.http_max_conns_per_client` from the launch configuration
    /// (0 = unlimited): concurrent connections one client IP may hold.
    pub fn http_max_conns_per_client(&self) -> u32 {
        self.inner.http_max_conns_per_client()
    }

    /// The implementation side (runtime only).
    pub(crate) fn inner(&self) -> &crate::runtime::CoreInner {
        &self.inner
    }
}
