//! The time-based half of sessions, kept on each server outside the
//! replicated state (the state machine stays deterministic):
//!
//! * [`timers`]: TTL deadlines (sans-IO). A session with a TTL is destroyed
//!   when not renewed within 2 × TTL. Every server keeps the timers as it
//!   applies entries (`SessionCreate` arms, `SessionRenew` renews, an
//!   invalidation disarms); only the leader acts on them, and a server
//!   that gains leadership re-arms every TTL session at now + 2 × TTL, as
//!   Consul does. Renewals go through raft (`Command::SessionRenew`, no
//!   state change) so that the leader hears of them wherever they arrive.
//! * [`lock_delay`]: keys that may not be acquired for a while after their
//!   session was invalidated (sans-IO). Recorded by every server when it
//!   applies the invalidation; consulted by the leader's write queue
//!   before it proposes a `KvLock` (`raft/write_batch.rs`), which answers
//!   `false` without a raft round.
//!
//! [`SessionRuntime`] holds both behind mutexes, with the monotonic clock;
//! [`SessionRuntime::observe_apply`] is called by the raft state machine
//! for each applied entry and [`SessionRuntime::tick`] by the leader's
//! driver (`raft/mod.rs`, every [`SESSION_TICK_MS`]).

pub mod lock_delay;
pub mod timers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use proconsul_shared::command::{Command, CommandResult};
use proconsul_shared::state::{Session, State, SESSIONS_MAX};

use lock_delay::{LockDelays, LOCK_DELAYS_MAX};
use timers::SessionTimers;

/// How often the leader looks for expired sessions.
pub const SESSION_TICK_MS: u64 = 250;

/// The TTL of a session in milliseconds; `None` without a TTL (empty,
/// zero, or a text the create handler would have refused).
pub fn ttl_ms(session: &Session) -> Option<u64> {
    if session.ttl.is_empty() {
        return None;
    }
    crate::config::duration::parse_duration_ms(&session.ttl)
        .ok()
        .filter(|ms| *ms > 0)
}

/// What the leader's driver should do after a tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// Leadership was just gained: every TTL session was re-armed.
    pub rearmed: usize,
    /// Sessions to destroy (expired and still in the state).
    pub expired: Vec<String>,
}

/// Session timers and lock-delays of one server.
pub struct SessionRuntime {
    epoch: Instant,
    timers: Mutex<SessionTimers>,
    lock_delays: Mutex<LockDelays>,
    /// The last index this server applied.
    applied_index: AtomicU64,
    /// Whether this server led at the last tick.
    was_leader: Mutex<bool>,
}

impl Default for SessionRuntime {
    fn default() -> Self {
        SessionRuntime::new()
    }
}

impl SessionRuntime {
    pub fn new() -> SessionRuntime {
        SessionRuntime {
            epoch: Instant::now(),
            timers: Mutex::new(SessionTimers::new(SESSIONS_MAX)),
            lock_delays: Mutex::new(LockDelays::new(LOCK_DELAYS_MAX)),
            applied_index: AtomicU64::new(0),
            was_leader: Mutex::new(false),
        }
    }

    /// Milliseconds of the monotonic clock since this runtime started.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    /// Whether an acquire of `key` must answer `false` now (lock-delay).
    pub fn lock_delayed(&self, key: &str) -> bool {
        self.lock_delays
            .lock()
            .expect("lock delays")
            .is_delayed(key, self.now_ms())
    }

    /// Puts `key` under lock-delay for `delay_ns` from now (capped at 60 s).
    pub fn record_lock_delay(&self, key: &str, delay_ns: u64) {
        let now_ms = self.now_ms();
        self.lock_delays
            .lock()
            .expect("lock delays")
            .record(key, delay_ns, now_ms);
    }

    /// Whether the `command` applied at an index may change sessions (the
    /// state machine then passes the state from before the entry to
    /// [`SessionRuntime::observe_apply`]).
    pub fn needs_state_before(command: &Command) -> bool {
        match command {
            Command::Batch(members) => members.iter().any(Self::needs_state_before),
            Command::SessionDestroy { .. }
            | Command::CatalogRegister(_)
            | Command::CatalogDeregister { .. }
            | Command::NodeDeregister { .. } => true,
            _ => false,
        }
    }

    /// Follows one applied entry: arms, renews and disarms TTL timers, and
    /// records the lock-delay of every key an invalidated session held.
    /// `states` are the states before and after the entry, given when
    /// [`SessionRuntime::needs_state_before`] says so.
    pub fn observe_apply(
        &self,
        index: u64,
        command: &Command,
        result: &CommandResult,
        states: Option<(&State, &State)>,
    ) {
        self.applied_index.store(index, Ordering::Release);
        let now_ms = self.now_ms();
        self.observe_at(now_ms, command, result, states);
    }

    /// [`SessionRuntime::observe_apply`] at a given time (tests).
    pub fn observe_at(&self, now_ms: u64, command: &Command, result: &CommandResult, states: Option<(&State, &State)>) {
        let mut timers = self.timers.lock().expect("session timers");
        follow_timers(&mut timers, now_ms, command, result);
        let Some((before, after)) = states else {
            return;
        };
        let gone = invalidated(before, after, command);
        if gone.is_empty() {
            return;
        }
        let mut delays = self.lock_delays.lock().expect("lock delays");
        for session in gone {
            timers.disarm(&session.id);
            for key in before.kv.keys_held_by(&session.id) {
                delays.record(key, session.lock_delay_ns, now_ms);
            }
        }
    }

    /// One driver tick at the current time; see [`SessionRuntime::tick_at`].
    pub fn tick(&self, leads: bool, state: &State) -> TickOutcome {
        self.tick_at(self.now_ms(), leads, state)
    }

    /// One driver tick: on gaining leadership, re-arms every TTL session of
    /// `state` at `now_ms` + 2 × TTL; while leading, returns the expired
    /// sessions still in `state` (a timer whose session is gone is
    /// dropped). Followers return nothing. Also drops ended lock-delays.
    pub fn tick_at(&self, now_ms: u64, leads: bool, state: &State) -> TickOutcome {
        let mut outcome = TickOutcome::default();
        let mut was_leader = self.was_leader.lock().expect("leadership flag");
        let gained = leads && !*was_leader;
        *was_leader = leads;
        drop(was_leader);
        self.lock_delays.lock().expect("lock delays").prune(now_ms);
        if !leads {
            return outcome;
        }
        let mut timers = self.timers.lock().expect("session timers");
        if gained {
            timers.clear();
            for session in state.sessions.iter() {
                if let Some(ttl) = ttl_ms(session) {
                    if timers.arm(&session.id, ttl, now_ms).is_ok() {
                        outcome.rearmed += 1;
                    }
                }
            }
        }
        for id in timers.expired(now_ms) {
            if state.sessions.get(&id).is_some() {
                outcome.expired.push(id);
            } else {
                timers.disarm(&id);
            }
        }
        outcome
    }

    /// The deadline of a session's TTL timer, if armed (tests, stats).
    pub fn ttl_deadline_ms(&self, id: &str) -> Option<u64> {
        self.timers.lock().expect("session timers").deadline_ms(id)
    }
}

/// Arms timers of created TTL sessions and renews renewed ones.
fn follow_timers(timers: &mut SessionTimers, now_ms: u64, command: &Command, result: &CommandResult) {
    match (command, result) {
        (Command::Batch(members), CommandResult::Batch(results)) => {
            for (member, result) in members.iter().zip(results) {
                follow_timers(timers, now_ms, member, result);
            }
        }
        (Command::SessionCreate(session), CommandResult::Done) => {
            if let Some(ttl) = ttl_ms(session) {
                if let Err(full) = timers.arm(&session.id, ttl, now_ms) {
                    tracing::warn!(target: "session", id = %session.id, "session TTL not armed: {full}");
                }
            }
        }
        (Command::SessionRenew { id }, CommandResult::Bool(true)) => {
            timers.renew(id, now_ms);
        }
        _ => {}
    }
}

/// The sessions an entry invalidated: those it could have touched (named
/// by a destroy, or on a node a catalog write named) that were in `before`
/// and are not in `after`.
fn invalidated(before: &State, after: &State, command: &Command) -> Vec<std::sync::Arc<Session>> {
    if before.sessions.is_empty() {
        return Vec::new();
    }
    let mut ids: Vec<&str> = Vec::new();
    let mut nodes: Vec<&str> = Vec::new();
    collect_targets(command, &mut ids, &mut nodes);
    let mut gone: Vec<std::sync::Arc<Session>> = Vec::new();
    let mut take = |s: &std::sync::Arc<Session>| {
        if after.sessions.get(&s.id).is_none() && !gone.iter().any(|g| g.id == s.id) {
            gone.push(s.clone());
        }
    };
    for id in ids {
        if let Some(s) = before.sessions.get(id) {
            take(s);
        }
    }
    // The node index: O(sessions on the named nodes), not the table.
    for node in nodes {
        for s in before.sessions.of_node(node) {
            take(s);
        }
    }
    gone
}

fn collect_targets<'c>(command: &'c Command, ids: &mut Vec<&'c str>, nodes: &mut Vec<&'c str>) {
    match command {
        Command::Batch(members) => {
            for m in members {
                collect_targets(m, ids, nodes);
            }
        }
        Command::SessionDestroy { id } => ids.push(id),
        Command::CatalogRegister(reg) => nodes.push(&reg.node.node),
        Command::CatalogDeregister { node, .. } | Command::NodeDeregister { node } => nodes.push(node),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
