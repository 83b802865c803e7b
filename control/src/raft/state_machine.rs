//! openraft's state machine: applies committed entries through the
//! [`Publisher`] (so every apply lands in the delta ring), and builds,
//! stores and installs snapshots of the publisher's state.
//!
//! The state itself is in memory; a restart rebuilds it from the newest
//! snapshot (installed into the publisher by [`StateMachine::open`]) plus
//! the committed log entries openraft re-applies.

use std::io::{self, Cursor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use proconsul_shared::{snapshot, CommandResult, State};

use super::snapshot_store::SnapshotStore;
use super::types::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::publish::Publisher;
use crate::session::SessionRuntime;

/// The index a state must have after applying up to `log_id`.
fn state_index_of(log_id: Option<LogId>) -> u64 {
    log_id.map(|id| id.index).unwrap_or(0)
}

/// The raft state machine over the publisher.
pub struct StateMachine {
    publisher: Arc<Publisher>,
    snapshots: Arc<SnapshotStore>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// Distinguishes snapshots built at the same log id.
    snapshot_seq: Arc<AtomicU64>,
    /// Session TTL timers and lock-delays, fed by every applied entry.
    sessions: Arc<SessionRuntime>,
}

impl StateMachine {
    /// Restores the newest stored snapshot, if any, into `publisher`.
    pub fn open(publisher: Arc<Publisher>, snapshots: Arc<SnapshotStore>) -> anyhow::Result<StateMachine> {
        let mut sm = StateMachine {
            publisher,
            snapshots,
            last_applied: None,
            last_membership: StoredMembership::default(),
            snapshot_seq: Arc::default(),
            sessions: Arc::new(SessionRuntime::new()),
        };
        if let Some(stored) = sm.snapshots.load()? {
            let state = decode_state(&stored.meta, &stored.data)?;
            tracing::info!(
                index = state.index(),
                snapshot = %stored.meta.snapshot_id,
                "restored the raft snapshot into the state"
            );
            sm.adopt(&stored.meta, state);
        }
        Ok(sm)
    }

    /// The session runtime this state machine feeds (the leader's write
    /// queue consults its lock-delays; its driver expires sessions).
    pub fn sessions(&self) -> Arc<SessionRuntime> {
        self.sessions.clone()
    }

    /// Makes `state` (covering `meta`) the current state.
    fn adopt(&mut self, meta: &SnapshotMeta, state: State) {
        self.publisher.restore(state);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
    }
}

/// Decodes a snapshot's archive and checks it covers what its meta says.
fn decode_state(meta: &SnapshotMeta, data: &[u8]) -> io::Result<State> {
    let state = snapshot::decode_unaligned(data).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot {} does not decode: {e}", meta.snapshot_id),
        )
    })?;
    let expected = state_index_of(meta.last_log_id);
    if state.index() != expected {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snapshot {} holds state at index {} but claims index {expected}",
                meta.snapshot_id,
                state.index()
            ),
        ));
    }
    Ok(state)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let result = match &entry.payload {
                EntryPayload::Normal(command) => {
                    let before = SessionRuntime::needs_state_before(command)
                        .then(|| self.publisher.state())
                        .filter(|state| !state.sessions.is_empty());
                    let result = self.publisher.apply(index, Some(command));
                    let after = before.as_ref().map(|_| self.publisher.state());
                    let states = before.as_ref().zip(after.as_ref());
                    self.sessions.observe_apply(index, command, &result, states);
                    result
                }
                EntryPayload::Blank => self.publisher.apply(index, None),
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    self.publisher.apply(index, None)
                }
            };
            self.last_applied = Some(entry.log_id);
            results.push(result);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let state = self.publisher.state();
        assert_eq!(
            state.index(),
            state_index_of(self.last_applied),
            "the publisher's state must be exactly what this state machine applied"
        );
        SnapshotBuilder {
            state,
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: self.snapshots.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, data: Box<Cursor<Vec<u8>>>) -> Result<(), StorageError> {
        let bytes = data.into_inner();
        let state = decode_state(meta, &bytes)
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e)))?;
        let snapshots = self.snapshots.clone();
        let stored_meta = meta.clone();
        tokio::task::spawn_blocking(move || snapshots.save(&stored_meta, &bytes))
            .await
            .map_err(io::Error::other)
            .and_then(|saved| saved)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e)))?;
        tracing::info!(index = state.index(), snapshot = %meta.snapshot_id, "installed a raft snapshot");
        self.adopt(meta, state);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let snapshots = self.snapshots.clone();
        let stored = tokio::task::spawn_blocking(move || snapshots.load())
            .await
            .map_err(io::Error::other)
            .and_then(|loaded| loaded)
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Builds one snapshot from the state captured when it was requested.
pub struct SnapshotBuilder {
    state: State,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshots: Arc<SnapshotStore>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let state = self.state.clone();
        let snapshots = self.snapshots.clone();
        let stored_meta = meta.clone();
        // Encoding is O(state) CPU and saving is file IO: keep both off the
        // async workers.
        let data = tokio::task::spawn_blocking(move || {
            let data = snapshot::encode(&state).to_vec();
            snapshots.save(&stored_meta, &data).map(|_| data)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|built| built)
        .map_err(|e| StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e)))?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built a raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::{BasicNode, Membership};
    use proconsul_shared::{limits, Command};

    use super::*;
    use crate::raft::log_mem::tests::{kv_entry, log_id};

    fn publisher() -> Arc<Publisher> {
        Publisher::new(1, limits::DELTA_RING_BYTES_MIN).unwrap()
    }

    fn membership_entry() -> Entry {
        let nodes = BTreeMap::from([(1, BasicNode::new("127.0.0.1:8300"))]);
        Entry {
            log_id: log_id(0, 0),
            payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], nodes)),
        }
    }

    fn blank(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Blank,
        }
    }

    #[tokio::test]
    async fn applies_every_payload_kind_through_the_publisher() {
        let p = publisher();
        let mut sm = StateMachine::open(p.clone(), Arc::new(SnapshotStore::in_memory())).unwrap();
        let results = sm
            .apply(vec![membership_entry(), blank(1, 1), kv_entry(1, 2)])
            .await
            .unwrap();
        assert_eq!(
            results,
            [CommandResult::Done, CommandResult::Done, CommandResult::Bool(true)]
        );
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 2)));
        assert_eq!(membership.log_id(), &Some(log_id(0, 0)));
        assert_eq!(p.applied_index(), 2);
        assert_eq!(p.state().kv.get("key/2").unwrap().modify_index, 2);
    }

    #[tokio::test]
    async fn snapshot_built_then_restored_into_a_fresh_publisher() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SnapshotStore::durable(dir.path()).unwrap());
        let mut sm = StateMachine::open(publisher(), store.clone()).unwrap();
        sm.apply(vec![membership_entry(), blank(1, 1), kv_entry(1, 2), kv_entry(1, 3)])
            .await
            .unwrap();
        let mut builder = sm.get_snapshot_builder().await;
        // Applies after the builder was made are not in its snapshot.
        sm.apply(vec![kv_entry(1, 4)]).await.unwrap();
        let built = builder.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(1, 3)));
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, built.meta);

        let fresh = publisher();
        let reopened = Arc::new(SnapshotStore::durable(dir.path()).unwrap());
        let mut restarted = StateMachine::open(fresh.clone(), reopened).unwrap();
        let (applied, membership) = restarted.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)));
        assert_eq!(membership.log_id(), &Some(log_id(0, 0)));
        assert_eq!(fresh.applied_index(), 3);
        assert!(fresh.state().kv.get("key/3").is_some());
        assert!(fresh.state().kv.get("key/4").is_none());
        // The log resumes after the snapshot.
        restarted.apply(vec![kv_entry(1, 4)]).await.unwrap();
        assert_eq!(fresh.applied_index(), 4);
    }

    #[tokio::test]
    async fn install_snapshot_replaces_state_and_resets_readers() {
        let source = publisher();
        let mut leader = StateMachine::open(source.clone(), Arc::new(SnapshotStore::in_memory())).unwrap();
        leader
            .apply(vec![membership_entry(), blank(1, 1), kv_entry(1, 2)])
            .await
            .unwrap();
        let snap = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();

        let target = publisher();
        let resets = target.resets();
        let mut follower = StateMachine::open(target.clone(), Arc::new(SnapshotStore::in_memory())).unwrap();
        follower.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
        assert_eq!(*resets.borrow(), 1);
        assert_eq!(target.applied_index(), 2);
        assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(1, 2)));
        let stored = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(stored.meta, snap.meta);
    }

    #[tokio::test]
    async fn snapshot_whose_index_disagrees_with_its_meta_is_refused() {
        let p = publisher();
        p.apply(
            5,
            Some(&Command::KvSet {
                key: "k".into(),
                value: vec![],
                flags: 0,
            }),
        );
        let data = snapshot::encode(&p.state()).to_vec();
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(1, 9)),
            last_membership: StoredMembership::default(),
            snapshot_id: "1-9-1".into(),
        };
        let mut sm = StateMachine::open(publisher(), Arc::new(SnapshotStore::in_memory())).unwrap();
        let err = sm
            .install_snapshot(&meta, Box::new(Cursor::new(data)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("claims index 9"), "{err}");
        let err = sm
            .install_snapshot(&meta, Box::new(Cursor::new(b"junk".to_vec())))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}
