//! The shared-memory publisher: the control plane's authoritative copy of
//! the replicated [`State`] and the single writer of the delta ring.
//!
//! The state and the ring writer live under one mutex, held only for one
//! apply plus its ring append (never across an `.await`). So a snapshot
//! taken under that lock pairs exactly with the ring position of the next
//! delta: a reader that maps the snapshot and reads the ring from that
//! position sees every later change once, with no gap.
//!
//! When the ring cannot carry a change (a delta larger than
//! [`limits::DELTA_BYTES_MAX`], or a ring error), the publisher writes a
//! [`RESYNC_MARKER`] record at that index, which no reader can decode (so it
//! stops and asks for a snapshot instead of skipping the change), and bumps
//! the reset generation that [`Publisher::resets`] watchers see, so the rpc
//! layer pushes a fresh snapshot to the data plane.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::ring::{Heartbeat, RingError, RingWriter};
use proconsul_shared::shm::snapshot_region::{self, SnapshotMeta};
use proconsul_shared::{limits, Command, CommandResult, Delta, State};
use tokio::sync::watch;

pub mod recent;

use recent::{RecentDeltas, Since};

/// Payload written to the ring in place of a delta that cannot be
/// published. It fails [`Delta::decode`] validation (its root points out of
/// bounds), so a reader treats it as a bad record and resyncs from a
/// snapshot rather than silently missing the change.
pub const RESYNC_MARKER: [u8; 32] = [0xff; 32];

/// Everything one apply touches, kept together so they cannot drift apart.
struct Inner {
    state: State,
    ring: RingWriter,
    /// The last deltas, for streams to client agents.
    recent: RecentDeltas,
}

/// The authoritative state plus the delta-ring writer. Shared as
/// `Arc<Publisher>` between the raft state machine, the rpc layer (which
/// hands the ring and snapshots to the data plane) and the agent
/// (heartbeats).
pub struct Publisher {
    inner: Mutex<Inner>,
    epoch: u64,
    /// Mirror of `inner.state.index()` for lock-free reads.
    applied_index: AtomicU64,
    /// Reset generation: bumped when readers must resync from a snapshot.
    resets: watch::Sender<u64>,
    /// The applied index, for streams that wait for the next change.
    applied: watch::Sender<u64>,
}

impl Publisher {
    /// Creates a publisher with an empty state and a new ring (memfd) of
    /// `ring_bytes` ([`limits::DELTA_RING_BYTES_DEFAULT`] is the usual size).
    pub fn new(epoch: u64, ring_bytes: u64) -> anyhow::Result<Arc<Publisher>> {
        let ring = RingWriter::create(ring_bytes, epoch)
            .map_err(|e| anyhow::anyhow!("cannot create the delta ring of {ring_bytes} bytes: {e}"))?;
        let (resets, _) = watch::channel(0u64);
        let (applied, _) = watch::channel(0u64);
        Ok(Arc::new(Publisher {
            inner: Mutex::new(Inner {
                state: State::default(),
                ring,
                recent: RecentDeltas::default(),
            }),
            epoch,
            applied_index: AtomicU64::new(0),
            resets,
            applied,
        }))
    }

    /// Identifies this control-plane run (also written in the ring header).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A dup of the ring memfd to send to an attaching data plane.
    pub fn ring_fd(&self) -> std::io::Result<OwnedFd> {
        self.lock().ring.region().fd().as_fd().try_clone_to_owned()
    }

    /// A snapshot region of the current state and the ring position of the
    /// first delta it does not include. The state is cloned (O(1)) and the
    /// position read under the lock; the archive is encoded outside it.
    pub fn snapshot_region(&self) -> std::io::Result<(SharedRegion, SnapshotMeta)> {
        let (state, ring_pos) = {
            let inner = self.lock();
            (inner.state.clone(), inner.ring.head())
        };
        snapshot_region::write(&state, ring_pos)
    }

    /// Writes liveness and leadership into the ring header, stamped with the
    /// wall clock (called every 100 ms by the agent).
    pub fn heartbeat(&self, leader_known: bool, last_contact_ms: u64) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.lock().ring.heartbeat(Heartbeat {
            unix_ms,
            leader_known,
            last_contact_ms,
        });
    }

    /// The raft index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    /// A clone of the current state (O(1)) for read-only use.
    pub fn state(&self) -> State {
        self.lock().state.clone()
    }

    /// Applies a command (`Some`) or a no-op raft entry (`None`) at raft
    /// index `index`, appends its delta to the ring and returns the result.
    ///
    /// Index 0 (openraft's initial membership entry) is not published: the
    /// state's index only counts real entries. A command never sits at index
    /// 0; if one did, it is answered `false` without applying.
    ///
    /// Panics if `index` does not exceed the last applied index: raft applies
    /// every entry once, in order, so that is a broken invariant.
    pub fn apply(&self, index: u64, command: Option<&Command>) -> CommandResult {
        if index == 0 {
            return match command {
                None => CommandResult::Done,
                Some(c) => {
                    tracing::error!(?c, "a command at raft index 0 is not applied");
                    CommandResult::Bool(false)
                }
            };
        }
        let mut inner = self.lock();
        let (result, delta) = match command {
            Some(c) => inner.state.apply_command(index, c),
            None => (CommandResult::Done, inner.state.apply_noop(index)),
        };
        debug_assert_eq!(inner.state.index(), index);
        self.publish(inner, &delta);
        result
    }

    /// Applies a delta received from a server (a client agent's replica).
    /// A delta at or below the applied index is skipped. Returns whether it
    /// was applied.
    pub fn apply_delta(&self, delta: &Delta) -> bool {
        let mut inner = self.lock();
        if !inner.state.apply_delta(delta) {
            return false;
        }
        self.publish(inner, delta);
        true
    }

    /// Records an applied delta: index, ring, recent window, watchers.
    fn publish(&self, mut inner: MutexGuard<'_, Inner>, delta: &Delta) {
        let index = delta.index;
        self.applied_index.store(index, Ordering::Release);
        let bytes = delta.encode();
        let published = if bytes.len() > limits::DELTA_BYTES_MAX {
            Err(RingError::RecordTooLarge(bytes.len()))
        } else {
            inner.ring.append(index, &bytes)
        };
        inner.recent.push(index, Arc::from(bytes.as_slice()));
        if let Err(e) = published {
            tracing::warn!(index, error = %e, "delta not publishable; readers resync from a snapshot");
            let marked = inner.ring.append(index, &RESYNC_MARKER);
            drop(inner);
            if let Err(e) = marked {
                tracing::error!(index, error = %e, "resync marker not written either");
            }
            self.bump_reset();
        } else {
            drop(inner);
        }
        self.applied.send_replace(index);
    }

    /// The encoded deltas after `index` (at most `count_max`), or
    /// [`Since::TooOld`] when the window no longer reaches back to it.
    pub fn deltas_since(&self, index: u64, count_max: usize) -> Since {
        self.lock().recent.since(index, count_max)
    }

    /// The current state with its index, for a stream that starts over.
    pub fn state_with_index(&self) -> (State, u64) {
        let inner = self.lock();
        (inner.state.clone(), inner.state.index())
    }

    /// Watches the applied index.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Replaces the whole state (raft snapshot install or restore). Readers
    /// must resync: the reset generation is bumped.
    pub fn restore(&self, state: State) {
        let index = state.index();
        {
            let mut inner = self.lock();
            self.applied_index.store(index, Ordering::Release);
            inner.recent.reset(index);
            inner.state = state;
        }
        self.bump_reset();
        self.applied.send_replace(index);
    }

    /// Watches the reset generation: every change means readers must map a
    /// fresh snapshot (the rpc layer pushes one to the data plane).
    pub fn resets(&self) -> watch::Receiver<u64> {
        self.resets.subscribe()
    }

    fn bump_reset(&self) {
        self.resets.send_modify(|generation| *generation += 1);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means an apply broke an invariant: stop loudly.
        self.inner.lock().expect("publisher lock poisoned by a failed apply")
    }
}

#[cfg(test)]
mod tests;
