//! The agent's local services and checks and their anti-entropy.
//!
//! * [`state`]: the pure local state ([`AgentLocalState`]).
//! * [`sync`]: the pure diff against the replicated catalog.
//! * [`LocalAgent`] (here): the shared owner: the state under a mutex, the
//!   change counter hash-blocking readers wait on, the sync round (plan,
//!   write through raft, remember what was written), the runner hand-off,
//!   and the periodic tasks (full sync, reaper).

pub mod reload;
pub mod runners;
pub mod state;
pub mod sync;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proconsul_shared::command::{Command, CommandResult, NodeRegistration};
use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::State;
use tokio::sync::watch;

use crate::agent::shutdown::Shutdown;
use crate::http_api::check_def::ScriptPolicy;
pub use state::{AgentLocalState, RunnerOp, Source};

/// Default period of the full anti-entropy sync (Consul scales it with the
/// cluster size from 1 min).
pub const SYNC_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Default `check_update_interval` (output-only changes reach the catalog
/// at most this often).
pub const CHECK_UPDATE_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// How often the reaper looks for services critical for too long (Consul:
/// 30 s).
pub const REAP_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Most requests blocked on `/v1/agent/service/<id>?hash=` at once.
pub const HASH_WAITERS_MAX: usize = 4096;
/// Most writes one sync round issues (the rest waits for the next round).
pub const SYNC_WRITES_PER_ROUND_MAX: usize = 1024;

/// Where the sync writes to and reads the replicated state from.
pub trait SyncTarget: Send + Sync {
    /// Replicates a write; answers once it is applied.
    fn write(&self, command: Command) -> impl Future<Output = Result<(u64, CommandResult), ControlError>> + Send;
    /// The current replicated state (an O(1) clone).
    fn replica(&self) -> State;
}

/// Settings of the local agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    pub datacenter: String,
    pub pretty_json: bool,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    pub check_update_interval_ms: u64,
    pub sync_interval_ms: u64,
    pub reap_interval_ms: u64,
    /// Longest `wait` of a hash-blocking read.
    pub max_query_time_ms: u64,
    pub default_query_time_ms: u64,
}

impl LocalSettings {
    /// The script rule for a definition from the API or a config file.
    pub fn scripts(&self, from_config_file: bool) -> ScriptPolicy {
        ScriptPolicy {
            enable_script_checks: self.enable_script_checks,
            enable_local_script_checks: self.enable_local_script_checks,
            from_config_file,
        }
    }
}

/// Something that runs checks (the check runners, or nothing in tests).
pub trait RunnerDriver: Send {
    /// Applies one runner change.
    fn apply(&mut self, op: RunnerOp);
}

/// A driver that runs nothing (client tests, agents without runners).
pub struct NoRunners;

impl RunnerDriver for NoRunners {
    fn apply(&mut self, _op: RunnerOp) {}
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The shared owner of the local state.
pub struct LocalAgent {
    state: Mutex<AgentLocalState>,
    changes: watch::Sender<u64>,
    sync_lock: tokio::sync::Mutex<()>,
    runners: Mutex<Box<dyn RunnerDriver>>,
    hash_waiters: AtomicUsize,
    /// This agent's node (the sync creates it when missing).
    pub node: NodeRegistration,
    pub settings: LocalSettings,
}

/// A slot among the hash-blocking readers; frees itself on drop.
pub struct WaiterSlot<'a>(&'a AtomicUsize);

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LocalAgent {
    /// A local agent with no services, running checks through `runners`.
    pub fn new(node: NodeRegistration, settings: LocalSettings, runners: Box<dyn RunnerDriver>) -> Arc<LocalAgent> {
        let (changes, _) = watch::channel(0);
        Arc::new(LocalAgent {
            state: Mutex::new(AgentLocalState::new(&node.node)),
            changes,
            sync_lock: tokio::sync::Mutex::new(()),
            runners: Mutex::new(runners),
            hash_waiters: AtomicUsize::new(0),
            node,
            settings,
        })
    }

    /// Locks the state for reading.
    pub fn lock(&self) -> MutexGuard<'_, AgentLocalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a transition, hands its runner changes to the runners and wakes
    /// readers when the state changed.
    pub fn update<R>(&self, f: impl FnOnce(&mut AgentLocalState) -> (R, Vec<RunnerOp>)) -> R {
        let (result, generation) = {
            let mut state = self.lock();
            let (result, ops) = f(&mut state);
            // Runner changes are applied under the state lock, so two
            // transitions can never reach the runners in the other order.
            if !ops.is_empty() {
                let mut runners = self.runners.lock().unwrap_or_else(|e| e.into_inner());
                for op in ops {
                    runners.apply(op);
                }
            }
            (result, state.generation())
        };
        self.changes.send_if_modified(|g| {
            let moved = *g != generation;
            *g = generation;
            moved
        });
        result
    }

    /// A receiver of the change counter.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Takes a slot among the hash-blocking readers, or `None` when all
    /// [`HASH_WAITERS_MAX`] are taken.
    pub fn hash_waiter(&self) -> Option<WaiterSlot<'_>> {
        let taken = self.hash_waiters.fetch_add(1, Ordering::SeqCst);
        let slot = WaiterSlot(&self.hash_waiters);
        (taken < HASH_WAITERS_MAX).then_some(slot)
    }

    /// One anti-entropy round: plans against the replica, writes what
    /// differs. Returns the index of the last write (0 = none needed).
    pub async fn sync_once<T: SyncTarget>(&self, target: &T) -> Result<u64, ControlError> {
        let _round = self.sync_lock.lock().await;
        let now = now_ms();
        let plan = {
            let state = self.lock();
            sync::plan(
                &state,
                &self.node,
                &target.replica(),
                now,
                self.settings.check_update_interval_ms,
            )
        };
        let mut last_index = 0;
        for command in plan.commands.into_iter().take(SYNC_WRITES_PER_ROUND_MAX) {
            let (index, result) = target.write(command).await?;
            if let CommandResult::Failed(why) = result {
                tracing::warn!(target: "agent.anti_entropy", "sync write refused: {why}");
            }
            assert!(index >= last_index, "raft indexes go forward");
            last_index = index;
        }
        self.lock().mark_output_synced(&plan.output_synced, now);
        Ok(last_index)
    }

    /// Applies the config files' definitions (start-up and reload).
    pub fn apply_file_definitions(
        &self,
        services: &[serde_json::Value],
        checks: &[serde_json::Value],
    ) -> Result<reload::ReloadSummary, String> {
        let defs = reload::decode_definitions(services, checks, &self.settings)?;
        let now = now_ms();
        self.update(|s| match reload::apply_definitions(s, defs, now) {
            Ok((summary, ops)) => (Ok(summary), ops),
            Err(e) => (Err(e), Vec::new()),
        })
    }

    /// Re-reads the config files and applies their definitions (IO).
    pub fn reload_files(&self, paths: &[crate::config::ConfigPath]) -> Result<(), String> {
        let (services, checks) = crate::config::definitions::read_definitions(paths).map_err(|e| e.to_string())?;
        let summary = self.apply_file_definitions(&services, &checks)?;
        tracing::info!(
            target: "agent",
            "Reloaded service definitions: added={} removed={} unchanged={}",
            summary.added,
            summary.removed,
            summary.kept
        );
        Ok(())
    }

    /// Removes services whose check was critical for too long. Returns
    /// the ids removed.
    pub fn reap(&self, now_ms: u64) -> Vec<String> {
        self.update(|state| {
            let doomed = state.critical_too_long(now_ms);
            let mut ops = Vec::new();
            for id in &doomed {
                if let Ok(more) = state.remove_service(id) {
                    tracing::info!(target: "agent", "Check critical for too long: deregistered service {id}");
                    ops.extend(more);
                }
            }
            (doomed, ops)
        })
    }

    /// Runs the periodic full sync and the reaper until shutdown; also
    /// syncs at once whenever `kick` fires (state changes, leader change).
    pub async fn run_background<T: SyncTarget>(self: Arc<Self>, target: Arc<T>, shutdown: Shutdown) {
        let mut sync_tick = tokio::time::interval(Duration::from_millis(self.settings.sync_interval_ms.max(10)));
        let mut reap_tick = tokio::time::interval(Duration::from_millis(self.settings.reap_interval_ms.max(10)));
        let mut changes = self.changes();
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = sync_tick.tick() => {}
                _ = reap_tick.tick() => {
                    if self.reap(now_ms()).is_empty() {
                        continue;
                    }
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if let Err(e) = self.sync_once(target.as_ref()).await {
                tracing::debug!(target: "agent.anti_entropy", "sync failed: {}", e.message);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A raft stand-in: applies writes to an in-memory state.
    #[derive(Default)]
    pub(crate) struct MemTarget {
        pub state: Mutex<State>,
        pub writes: AtomicU64,
    }

    impl SyncTarget for MemTarget {
        async fn write(&self, command: Command) -> Result<(u64, CommandResult), ControlError> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut st = self.state.lock().unwrap();
            let index = st.index() + 1;
            let (result, _) = st.apply_command(index, &command);
            Ok((index, result))
        }

        fn replica(&self) -> State {
            self.state.lock().unwrap().clone()
        }
    }

    pub(crate) fn node() -> NodeRegistration {
        NodeRegistration {
            id: "id".into(),
            node: "n1".into(),
            address: "127.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
        }
    }

    pub(crate) fn settings() -> LocalSettings {
        LocalSettings {
            datacenter: "dc1".into(),
            pretty_json: false,
            enable_script_checks: false,
            enable_local_script_checks: false,
            check_update_interval_ms: CHECK_UPDATE_INTERVAL_MS_DEFAULT,
            sync_interval_ms: SYNC_INTERVAL_MS_DEFAULT,
            reap_interval_ms: REAP_INTERVAL_MS_DEFAULT,
            max_query_time_ms: 600_000,
            default_query_time_ms: 300_000,
        }
    }

    struct Recorder(Arc<Mutex<Vec<RunnerOp>>>);

    impl RunnerDriver for Recorder {
        fn apply(&mut self, op: RunnerOp) {
            self.0.lock().unwrap().push(op);
        }
    }

    #[tokio::test]
    async fn sync_round_writes_once_then_idles() {
        let local = LocalAgent::new(node(), settings(), Box::new(NoRunners));
        let target = MemTarget::default();
        let first = local.sync_once(&target).await.unwrap();
        assert!(first > 0, "node and serfHealth written");
        assert_eq!(local.sync_once(&target).await.unwrap(), 0, "nothing differs");
        assert!(target.replica().catalog.check("n1", "serfHealth").is_some());
    }

    #[tokio::test]
    async fn updates_reach_runners_and_wake_readers() {
        let ops = Arc::new(Mutex::new(Vec::new()));
        let local = LocalAgent::new(node(), settings(), Box::new(Recorder(ops.clone())));
        let mut changes = local.changes();
        local.update(|_| ((), vec![RunnerOp::Stop { check_id: "x".into() }]));
        assert_eq!(ops.lock().unwrap().len(), 1);
        local.update(|s| (s.set_node_maintenance(true, "", 0), Vec::new()));
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        local.update(|s| (s.set_node_maintenance(true, "", 0), Vec::new()));
        assert!(!changes.has_changed().unwrap(), "no change, no wake-up");
    }

    #[test]
    fn hash_waiters_are_bounded() {
        let local = LocalAgent::new(node(), settings(), Box::new(NoRunners));
        let slots: Vec<_> = (0..HASH_WAITERS_MAX).map(|_| local.hash_waiter().unwrap()).collect();
        assert!(local.hash_waiter().is_none());
        drop(slots);
        assert!(local.hash_waiter().is_some());
    }
}
