//! The fixture of the tests that run a real serving core in process
//! (`runtime::fairness_tests`, `runtime::wake_pacing_tests`, `http::tests`):
//! a replica published by hand into a [`Hub`], as the applier thread would
//! publish it, a core built on its newest version, and bounded polling
//! inside the core's runtime. There is no control plane: the core's control
//! socket path names nothing, so a forwarded write answers
//! `500 No cluster leader`.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::{Command, State};

use crate::api::test_support::agent;
use crate::blocking::ChangeSet;
use crate::core::Core;
use crate::replica::handoff::Hub;
use crate::replica::version::{LeaderInfo, Version};
use crate::runtime::serve::follow_versions;
use crate::runtime::CoreInner;

/// A replica version as the applier publishes it: `state` at `seq`, with
/// the test agent, a known fresh leader, and `changes` since the previous
/// version.
pub fn version(seq: u64, state: State, changes: ChangeSet) -> Version {
    Version {
        seq,
        state: Arc::new(state),
        agent: Arc::new(agent()),
        cluster: Arc::new(ClusterStatus {
            leader: Some("127.0.0.1:8300".into()),
            peers: vec!["127.0.0.1:8300".into()],
        }),
        leader: LeaderInfo::fresh(Instant::now()),
        restore_generation: 0,
        changes: Arc::new(changes),
    }
}

/// A one-core [`Hub`] and the state last published into it. Writes are
/// applied here and published as the next version with the changes their
/// deltas make.
pub struct HandPublishedReplica {
    hub: Arc<Hub>,
    state: State,
    next_seq: u64,
}

impl HandPublishedReplica {
    /// Publishes `state` as version 1, everything changed.
    pub fn new(state: State) -> HandPublishedReplica {
        let hub = Hub::new(1);
        hub.publish(version(1, state.clone(), ChangeSet::everything()));
        HandPublishedReplica {
            hub,
            state,
            next_seq: 2,
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Applies `command` at the next raft index, publishes the result and
    /// returns that index.
    pub fn apply(&mut self, command: &Command) -> u64 {
        let index = self.state.index() + 1;
        let (_, delta) = self.state.apply_command(index, command);
        let mut changes = ChangeSet::default();
        changes.record_delta(&delta);
        self.hub.publish(version(self.next_seq, self.state.clone(), changes));
        self.next_seq += 1;
        assert_eq!(self.state.index(), index, "the write's index is the state's");
        index
    }
}

/// Core 0 on the newest version in `hub`, at most `parked_max` parked
/// queries, its control socket a path in the temp dir that nothing
/// listens on (`label` keeps each test file's apart).
pub fn core_without_control_plane(hub: &Arc<Hub>, label: &str, parked_max: usize) -> CoreInner {
    let first = hub.latest().expect("a version was published before the core starts");
    let socket: PathBuf = std::env::temp_dir().join(format!("proconsul-{label}-no-control-plane.sock"));
    CoreInner::new(0, hub.clone(), &first, socket, parked_max)
}

/// Runs the core's version follower (installs what `hub` publishes) as a
/// task of the current runtime, until the hub shuts down.
pub fn spawn_follower(core: &Rc<Core>, hub: &Arc<Hub>) {
    let (core, hub) = (core.clone(), hub.clone());
    monoio::spawn(async move { follow_versions(&core, &hub).await });
}

/// Sleeps 1 ms at a time until `done`, at most `steps_max` times; whether
/// `done` held at the end.
pub async fn poll_until(steps_max: usize, done: impl Fn() -> bool) -> bool {
    for _ in 0..steps_max {
        if done() {
            return true;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}
