//! Applying session writes and KV lock writes: Consul's state-store rules
//! for sessions (`session.go`, `kvs.go`), so that every replica reaches the
//! same answer.
//!
//! * `SessionCreate`: the node must be registered, every check the session
//!   names must exist on it and not be critical; at most [`SESSIONS_MAX`]
//!   live sessions.
//! * `SessionDestroy` and every invalidation (the session's node
//!   deregistered; one of its checks deleted, or written critical, also
//!   through a service deregistration) remove the session in the same
//!   entry and release (`Behavior: release`: `Session` cleared, `LockIndex`
//!   kept, `ModifyIndex` = the entry's index) or delete (`delete`) every key
//!   it holds, and delete every prepared query bound to it (`Session`).
//!   The held keys come from the KV table's per-session index, the queries
//!   from the query table's.
//! * `KvLock` / `KvUnlock`: `txn::lock_entry` / `txn::unlock_entry`, shared
//!   with the transaction verbs. One session holds at most
//!   [`SESSION_HELD_KEYS_MAX`] keys.
//! * `SessionRenew`: no state change; answers whether the session exists
//!   (the control plane re-arms its TTL timer when it applies).
//!
//! Lock-delay and TTL expiry are time-based and therefore not here: the
//! control plane keeps them (`control/src/session/`).

use super::{CheckStatus, State};
use crate::command::{Command, CommandResult};
use crate::delta::DeltaOp;
use crate::state::{Session, SessionBehavior};
use crate::txn::{self, LockOutcome};

/// Most live sessions (Consul has no limit; this bounds the table, the
/// leader's timers and the lock-delay table).
pub const SESSIONS_MAX: usize = 65_536;

/// Most keys one session may hold at once (through `KvLock`; the table
/// carries the bound it applies, this value outside tests).
pub const SESSION_HELD_KEYS_MAX: usize = 65_536;

impl State {
    /// `SessionCreate`, `SessionDestroy`, `SessionRenew`, `KvLock` and
    /// `KvUnlock`.
    pub(super) fn apply_session_command(
        &mut self,
        index: u64,
        command: &Command,
        ops: &mut Vec<DeltaOp>,
    ) -> CommandResult {
        match command {
            Command::SessionCreate(session) => self.session_create(index, session, ops),
            Command::SessionDestroy { id } => {
                self.invalidate_session(id, index, ops);
                CommandResult::Bool(true)
            }
            Command::SessionRenew { id } => CommandResult::Bool(self.sessions.get(id).is_some()),
            Command::KvLock {
                key,
                value,
                flags,
                session,
            } => match txn::lock_entry(&mut self.kv, &self.sessions, key, value, *flags, session, index) {
                Ok(LockOutcome::Locked(entry)) => {
                    ops.push(DeltaOp::KvPut(entry));
                    CommandResult::Bool(true)
                }
                Ok(LockOutcome::HeldByOther) => CommandResult::Bool(false),
                Err(why) => CommandResult::Failed(why),
            },
            Command::KvUnlock {
                key,
                value,
                flags,
                session,
            } => match txn::unlock_entry(&mut self.kv, key, value, *flags, session, index) {
                Some(entry) => {
                    ops.push(DeltaOp::KvPut(entry));
                    CommandResult::Bool(true)
                }
                None => CommandResult::Bool(false),
            },
            other => unreachable!("not a session command: {other:?}"),
        }
    }

    fn session_create(&mut self, index: u64, session: &Session, ops: &mut Vec<DeltaOp>) -> CommandResult {
        if session.id.is_empty() {
            return CommandResult::Failed("Missing session ID".into());
        }
        if self.sessions.get(&session.id).is_some() {
            return CommandResult::Failed(format!("Session ID {:?} is already in use", session.id));
        }
        if self.sessions.len() >= SESSIONS_MAX {
            return CommandResult::Failed(format!(
                "Too many sessions: {SESSIONS_MAX} exist, the most this cluster keeps"
            ));
        }
        let Some(node) = self.nodes.get(&session.node).map(|n| n.node.clone()) else {
            return CommandResult::Failed("Missing node registration".into());
        };
        let check_ids = session
            .node_checks
            .iter()
            .map(String::as_str)
            .chain(session.service_checks.iter().map(|c| c.id.as_str()));
        for check_id in check_ids {
            match self.catalog.check(&node, check_id) {
                None => return CommandResult::Failed(format!("Missing check '{check_id}' registration")),
                Some(c) if c.status == CheckStatus::Critical => {
                    return CommandResult::Failed(format!("Check '{check_id}' is in critical state"))
                }
                Some(_) => {}
            }
        }
        let stored = Session {
            node,
            create_index: index,
            modify_index: index,
            ..session.clone()
        };
        self.sessions.put(stored.clone());
        ops.push(DeltaOp::SessionPut(stored));
        CommandResult::Done
    }

    /// Removes session `id` (if it exists) at `index`, releasing or deleting
    /// the keys it holds, as Consul's `deleteSessionTxn` does.
    pub(super) fn invalidate_session(&mut self, id: &str, index: u64, ops: &mut Vec<DeltaOp>) {
        let Some(session) = self.sessions.delete(id, index) else {
            return;
        };
        ops.push(DeltaOp::SessionDelete {
            id: id.to_string(),
            index,
        });
        let held: Vec<String> = self.kv.keys_held_by(id).map(|k| k.to_string()).collect();
        for key in held {
            match session.behavior {
                SessionBehavior::Release => {
                    let Some(current) = self.kv.get(&key) else {
                        continue;
                    };
                    let released = super::KvEntry {
                        session: None,
                        modify_index: index,
                        ..(**current).clone()
                    };
                    self.kv.put(released.clone());
                    ops.push(DeltaOp::KvPut(released));
                }
                SessionBehavior::Delete => {
                    if self.kv.delete(&key, index) {
                        ops.push(DeltaOp::KvDelete { key, index });
                    }
                }
            }
        }
        debug_assert_eq!(self.kv.held_count(id), 0, "an invalidated session holds no key");
        self.delete_queries_of_session(id, index, ops);
    }

    /// After one command: the sessions on every node whose checks or
    /// services were deleted, whose checks went critical, or which was
    /// deleted itself (`ops[ops_start..]`), are checked again and
    /// invalidated when their node or one of their checks is gone or
    /// critical. Sessions on other nodes are untouched.
    pub(super) fn invalidate_sessions_after(&mut self, index: u64, ops_start: usize, ops: &mut Vec<DeltaOp>) {
        if self.sessions.is_empty() {
            return;
        }
        let mut nodes: Vec<String> = Vec::new();
        for op in &ops[ops_start..] {
            let node = match op {
                DeltaOp::CheckPut(c) if c.status == CheckStatus::Critical => &c.node,
                DeltaOp::CheckDelete { node, .. }
                | DeltaOp::ServiceDelete { node, .. }
                | DeltaOp::NodeDelete { node, .. } => node,
                _ => continue,
            };
            if !nodes.iter().any(|n| n.eq_ignore_ascii_case(node)) {
                nodes.push(node.clone());
            }
        }
        if nodes.is_empty() {
            return;
        }
        // The node index makes this O(sessions on the touched nodes).
        let doomed: Vec<String> = nodes
            .iter()
            .flat_map(|n| self.sessions.of_node(n))
            .filter(|s| !self.session_still_valid(s))
            .map(|s| s.id.clone())
            .collect();
        for id in doomed {
            self.invalidate_session(&id, index, ops);
        }
    }

    /// Whether a session's node and every check it names still exist and
    /// none of those checks is critical.
    fn session_still_valid(&self, session: &Session) -> bool {
        let Some(node) = self.nodes.get(&session.node) else {
            return false;
        };
        session
            .node_checks
            .iter()
            .map(String::as_str)
            .chain(session.service_checks.iter().map(|c| c.id.as_str()))
            .all(|id| {
                self.catalog
                    .check(&node.node, id)
                    .is_some_and(|c| c.status != CheckStatus::Critical)
            })
    }
}
