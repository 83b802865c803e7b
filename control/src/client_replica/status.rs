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
    /// The last frame from a server that named a leader: the client's
    /// contact with the leader, through its server.
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

    /// A frame arrived from `server`. It counts as contact with the leader
    /// only while the server names one (a server cut off from its leader
    /// still streams heartbeats).
    pub fn contact(&self, server: &str, now: Instant) {
        let mut inner = self.lock();
        if inner.leader.is_some() {
            inner.last_contact = now;
        }
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

    /// `(leader known, ms since the last frame from a server that named a
    /// leader)`, as the ring heartbeat and `X-Consul-LastContact` want it.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn contact_counts_only_while_the_server_names_a_leader() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let status = ReplicaStatus::new(t0);
        status.contact("s1:8300", t0 + ms(50));
        assert_eq!(status.leader_status(t0 + ms(100)), (false, 100), "no leader named yet");
        status.set_leader(Some("s2:8300".into()));
        status.contact("s1:8300", t0 + ms(200));
        assert_eq!(status.leader_status(t0 + ms(230)), (true, 30));
        // The server lost its leader but keeps streaming heartbeats.
        status.set_leader(None);
        status.contact("s1:8300", t0 + ms(400));
        status.contact("s1:8300", t0 + ms(1_400));
        assert_eq!(status.leader_status(t0 + ms(1_500)), (false, 1_300));
        // The stream broke: no leader known through it.
        status.set_leader(Some("s2:8300".into()));
        status.contact("s1:8300", t0 + ms(1_600));
        status.disconnected();
        assert_eq!(status.leader_status(t0 + ms(1_700)), (false, 100));
    }
}
