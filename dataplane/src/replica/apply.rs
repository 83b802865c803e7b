//! The replica proper (pure): the working state, the deltas applied to it
//! since the last publication, and the versions built from it.

use std::sync::Arc;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::{Delta, State};

use crate::blocking::ChangeSet;
use crate::replica::version::{LeaderInfo, Version};

/// What installing a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotInstall {
    /// The first state this replica ever had.
    First,
    /// Replaced the state at the same or a higher index.
    Forward,
    /// Replaced the state with one at a lower index (a restore, or a fresh
    /// control plane): every parked query must answer.
    Restore,
}

/// The local replica and its publication bookkeeping.
pub struct Replica {
    state: Option<State>,
    agent: Option<Arc<AgentInfo>>,
    cluster: Arc<ClusterStatus>,
    leader: Option<LeaderInfo>,
    /// Changes since the last published version.
    pending: ChangeSet,
    /// Whether anything (state, agent, cluster, leadership) changed since
    /// the last publication.
    dirty: bool,
    seq: u64,
    restore_generation: u64,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

impl Replica {
    /// A replica with no state yet.
    pub fn new() -> Replica {
        Replica {
            state: None,
            agent: None,
            cluster: Arc::new(ClusterStatus::default()),
            leader: None,
            pending: ChangeSet::default(),
            dirty: false,
            seq: 0,
            restore_generation: 0,
        }
    }

    /// The current raft index (0 before the first snapshot).
    pub fn index(&self) -> u64 {
        self.state.as_ref().map_or(0, State::index)
    }

    /// Whether a snapshot was ever installed.
    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    /// Last published sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the agent description from an `Attached` message.
    pub fn set_agent(&mut self, agent: AgentInfo) {
        if self.agent.as_deref() != Some(&agent) {
            self.agent = Some(Arc::new(agent));
            self.dirty = true;
        }
    }

    /// Sets the cluster status from a `Cluster` message.
    pub fn set_cluster(&mut self, cluster: ClusterStatus) {
        if *self.cluster != cluster {
            self.cluster = Arc::new(cluster);
            self.dirty = true;
        }
    }

    /// Sets the leadership to publish.
    pub fn set_leader(&mut self, leader: LeaderInfo) {
        self.leader = Some(leader);
        self.dirty = true;
    }

    /// The leadership last set.
    pub fn leader(&self) -> Option<LeaderInfo> {
        self.leader
    }

    /// Replaces the whole state with a snapshot's.
    pub fn install_snapshot(&mut self, state: State) -> SnapshotInstall {
        let outcome = match &self.state {
            None => SnapshotInstall::First,
            Some(old) if state.index() < old.index() => SnapshotInstall::Restore,
            Some(_) => SnapshotInstall::Forward,
        };
        let same_index = self.state.as_ref().is_some_and(|old| old.index() == state.index());
        match outcome {
            SnapshotInstall::Restore => {
                self.restore_generation += 1;
                self.pending.merge(&ChangeSet::everything());
            }
            SnapshotInstall::Forward if same_index => {}
            _ => self.pending.merge(&ChangeSet::everything()),
        }
        self.state = Some(state);
        self.dirty = true;
        outcome
    }

    /// Applies one delta from the ring. Deltas at or below the current
    /// index precede the snapshot and are skipped. Returns whether it was
    /// applied.
    pub fn apply(&mut self, delta: &Delta) -> bool {
        let Some(state) = self.state.as_mut() else {
            return false;
        };
        let before = state.index();
        if delta.index <= before {
            return false;
        }
        // Catalog changes are resolved against the state they apply to
        // (which services a deleted instance or a node check touched).
        self.pending.record_delta_from(state, delta);
        let applied = state.apply_delta(delta);
        assert!(
            applied && state.index() > before,
            "replica index must increase: {} after {}",
            state.index(),
            before
        );
        self.dirty = true;
        true
    }

    /// Builds the next version if anything changed since the last one and
    /// a state and an agent are known.
    pub fn take_version(&mut self) -> Option<Version> {
        if !self.dirty {
            return None;
        }
        let state = self.state.as_ref()?;
        let agent = self.agent.clone()?;
        let leader = self.leader?;
        self.dirty = false;
        self.seq += 1;
        Some(Version {
            seq: self.seq,
            state: Arc::new(state.clone()),
            agent,
            cluster: self.cluster.clone(),
            leader,
            restore_generation: self.restore_generation,
            changes: Arc::new(std::mem::take(&mut self.pending)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::fixtures::{kv_set, test_agent};
    use std::time::Instant;

    fn ready_replica(state: State) -> Replica {
        let mut r = Replica::new();
        r.set_agent(test_agent());
        r.set_leader(LeaderInfo::fresh(Instant::now()));
        assert_eq!(r.install_snapshot(state), SnapshotInstall::First);
        r
    }

    #[test]
    fn nothing_is_published_without_state_agent_and_leadership() {
        let mut r = Replica::new();
        r.set_agent(test_agent());
        assert!(r.take_version().is_none(), "no state yet");
        r.install_snapshot(State::default());
        assert!(r.take_version().is_none(), "no leadership yet");
        r.set_leader(LeaderInfo::fresh(Instant::now()));
        let v = r.take_version().unwrap();
        assert_eq!(v.seq, 1);
        assert!(v.changes.wake_all, "the first state wakes everyone");
        assert!(r.take_version().is_none(), "nothing changed since");
    }

    #[test]
    fn deltas_coalesce_into_one_version_with_their_changes() {
        let mut base = State::default();
        kv_set(&mut base, 2, "a", b"1");
        let mut r = ready_replica(base.clone());
        r.take_version().unwrap();

        let mut source = base.clone();
        let (_, d3) = source.apply_command(
            3,
            &proconsul_shared::Command::KvSet {
                key: "b".into(),
                value: b"2".to_vec(),
                flags: 0,
            },
        );
        let d4 = source.apply_noop(4);
        assert!(r.apply(&d3));
        assert!(r.apply(&d4));
        assert!(!r.apply(&d3), "an old delta is skipped");
        let v = r.take_version().unwrap();
        assert_eq!(v.seq, 2);
        assert_eq!(v.state.index(), 4);
        assert_eq!(v.state.kv.get("b").unwrap().value, b"2");
        assert_eq!(v.changes.kv_keys, vec!["b".to_string()]);
        assert!(v.changes.index_advanced && !v.changes.wake_all);
    }

    #[test]
    fn a_published_version_is_immutable() {
        let mut r = ready_replica(State::default());
        let v1 = r.take_version().unwrap();
        let mut source = State::default();
        let (_, d) = source.apply_command(
            5,
            &proconsul_shared::Command::KvSet {
                key: "k".into(),
                value: vec![],
                flags: 0,
            },
        );
        r.apply(&d);
        let v2 = r.take_version().unwrap();
        assert!(v1.state.kv.get("k").is_none(), "old version unchanged");
        assert!(v2.state.kv.get("k").is_some());
    }

    #[test]
    fn lower_snapshot_is_a_restore_and_bumps_the_generation() {
        let mut high = State::default();
        kv_set(&mut high, 10, "x", b"");
        let mut r = ready_replica(high);
        r.take_version().unwrap();
        let mut low = State::default();
        kv_set(&mut low, 3, "y", b"");
        assert_eq!(r.install_snapshot(low), SnapshotInstall::Restore);
        let v = r.take_version().unwrap();
        assert_eq!(v.state.index(), 3);
        assert_eq!(v.restore_generation, 1);
        assert!(v.changes.wake_all);
    }

    #[test]
    fn same_index_snapshot_wakes_nobody() {
        let mut s = State::default();
        kv_set(&mut s, 4, "x", b"");
        let mut r = ready_replica(s.clone());
        r.take_version().unwrap();
        assert_eq!(r.install_snapshot(s), SnapshotInstall::Forward);
        let v = r.take_version().unwrap();
        assert!(v.changes.is_empty());
        assert_eq!(v.restore_generation, 0);
    }

    #[test]
    fn leadership_and_cluster_changes_publish_without_state_changes() {
        let mut r = ready_replica(State::default());
        r.take_version().unwrap();
        r.set_cluster(ClusterStatus {
            leader: Some("127.0.0.1:8300".into()),
            peers: vec!["127.0.0.1:8300".into()],
        });
        let v = r.take_version().unwrap();
        assert_eq!(v.cluster.leader.as_deref(), Some("127.0.0.1:8300"));
        assert!(v.changes.is_empty());
        r.set_cluster((*v.cluster).clone());
        assert!(
            r.take_version().is_none(),
            "an identical cluster status is not a change"
        );
        r.set_leader(LeaderInfo::lost(Instant::now()));
        assert!(!r.take_version().unwrap().leader.known_leader);
    }
}
