//! What a client agent knows of its servers: who leads, when it last
//! heard from a server, how often it had to start over from a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Shared by the stream task and the agent (heartbeat into the ring,
/// `X-Consul-KnownLeader` / `X-Consul-LastContact`).
#[derive(Debug)]
pub struct ReplicaStatus {
    inner: Mutex<Inner>,
    snapshots: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    leader: Option<String>,
    server: Option<String>,
    last_contact: Instant,
}

impl ReplicaStatus {
    pub fn new(now: Instant) -> ReplicaStatus {
        ReplicaStatus {
            inner: Mutex::new(Inner {
                leader: None,
                server: None,
                last_contact: now,
            }),
            snapshots: AtomicU64::new(0),
        }
    }

    /// A frame arrived from `server`.
    pub fn contact(&self, server: &str, now: Instant) {
        let mut inner = self.lock();
        inner.last_contact = now;
        if inner.server.as_deref() != Some(server) {
            inner.server = Some(server.to_string());
        }
    }

    /// The stream broke: no server until the next one answers.
    pub fn disconnected(&self) {
        self.lock().server = None;
    }

    pub fn set_leader(&self, leader: Option<String>) {
        self.lock().leader = leader;
    }

    pub fn snapshot_received(&self) {
        self.snapshots.fetch_add(1, Ordering::Relaxed);
    }

    /// Snapshots received so far.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Ordering::Relaxed)
    }

    /// The server streaming to us, if any.
    pub fn server(&self) -> Option<String> {
        self.lock().server.clone()
    }

    /// `(leader known, ms since the last frame)`, as the ring heartbeat and
    /// `X-Consul-LastContact` want it.
    pub fn leader_status(&self, now: Instant) -> (bool, u64) {
        let inner = self.lock();
        let known = inner.leader.is_some() && inner.server.is_some();
        (
            known,
            now.saturating_duration_since(inner.last_contact).as_millis() as u64,
        )
    }

    /// The leader's server address, as our server last said.
    pub fn leader(&self) -> Option<String> {
        self.lock().leader.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("replica status lock")
    }
}
