//! The replicated state and the pure state machine.
//!
//! [`State`] is built from persistent (structurally shared) maps, so a clone
//! is O(1): the control plane clones it to build a snapshot while applies go
//! on, a transaction evaluates against a clone and commits by swapping it
//! in, and the data plane publishes each applied version to its cores as an
//! `Arc<State>` without copying.

mod catalog;
mod catalog_apply;
mod config_entry;
mod connect_proxy;
mod events;
mod kv;
mod node;
mod node_range;
mod prepared_query;
mod prepared_query_apply;
mod session;
mod session_apply;
mod virtual_ip;

pub use catalog::{
    Catalog, CatalogKey, CheckDefinition, CheckStatus, HealthCheck, ServiceAddress, ServiceInstance, Weights,
};
pub use config_entry::{
    ConfigEntry, ConfigEntryRefusal, ConfigEntryTable, IngressListener, IngressService, CONFIG_ENTRIES_MAX,
    CONFIG_ENTRY_BYTES_MAX, INGRESS_WILDCARD, KIND_INGRESS_GATEWAY, KIND_PROXY_DEFAULTS, KIND_SERVICE_DEFAULTS,
    KIND_SERVICE_RESOLVER, PROXY_DEFAULTS_NAME, SUPPORTED_KINDS,
};
pub use connect_proxy::{
    ExposeConfig, ExposePath, MeshGatewayConfig, ServiceConnect, ServiceProxy, TransparentProxyConfig, Upstream,
    KIND_CONNECT_PROXY, TAGGED_ADDRESS_VIRTUAL_IP,
};
pub use events::{uuid_halves, EventLog, UserEvent, EVENTS_KEPT_MAX, USER_EVENT_BYTES_MAX};
pub use kv::{KvEntry, KvTable};
pub use node::{Node, NodeTable};
pub use prepared_query::{
    FailoverTarget, PreparedQuery, PreparedQueryTable, QueryFailover, QueryTemplate, Resolved, ServiceQuery,
    PREPARED_QUERIES_MAX, PREPARED_QUERY_BYTES_MAX, TEMPLATE_BY_ID_ERROR, TEMPLATE_TYPE_NAME_PREFIX_MATCH,
};
pub use session::{Session, SessionBehavior, SessionServiceCheck, SessionTable};
pub use session_apply::{SESSIONS_MAX, SESSION_HELD_KEYS_MAX};
pub use virtual_ip::{
    virtual_ip_at, VirtualIpAssignment, VirtualIpTable, VirtualIpsExhausted, VIRTUAL_IP_BASE, VIRTUAL_IP_OFFSET_MAX,
};

use crate::command::{Command, CommandResult};
use crate::delta::{Delta, DeltaOp};
use crate::txn;

/// The whole replicated state at one raft index.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Last applied raft index. Strictly increasing.
    index: u64,
    pub kv: KvTable,
    pub nodes: NodeTable,
    /// Services and checks.
    pub catalog: Catalog,
    /// Recent user events (not in snapshots).
    pub events: EventLog,
    /// Config entries (`/v1/config`).
    pub config_entries: ConfigEntryTable,
    /// Prepared queries (`/v1/query`).
    pub prepared_queries: PreparedQueryTable,
    /// Virtual IPs of Connect-enabled services (`.virtual` DNS).
    pub virtual_ips: VirtualIpTable,
    /// Live sessions (`/v1/session`).
    pub sessions: SessionTable,
}

impl State {
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Applies a command at raft index `index`. Returns its result and the
    /// delta that carries its effects to replicas.
    pub fn apply_command(&mut self, index: u64, command: &Command) -> (CommandResult, Delta) {
        self.advance(index);
        let mut ops = Vec::new();
        let result = match command {
            Command::Batch(members) => CommandResult::Batch(self.apply_batch(index, members, &mut ops)),
            single => self.apply_at(index, single, &mut ops),
        };
        (result, Delta { index, ops })
    }

    /// Applies the members of a [`Command::Batch`] in order, all at raft
    /// index `index` (which is already this state's index), appending their
    /// delta ops to `ops`: one index and one delta for the whole batch, as
    /// for a transaction. A later member sees the effects of earlier ones.
    /// Several `EventFire`s share the entry's index as their `ltime` and
    /// keep the batch's order.
    fn apply_batch(&mut self, index: u64, members: &[Command], ops: &mut Vec<DeltaOp>) -> Vec<CommandResult> {
        let mut results = Vec::with_capacity(members.len());
        for member in members {
            assert!(
                !matches!(member, Command::Batch(_)),
                "a batch member is never a batch (index {index})"
            );
            results.push(self.apply_at(index, member, ops));
        }
        results
    }

    /// Applies one (non-batch) command at `index` without advancing the
    /// state's index, appending its delta ops to `ops`.
    fn apply_at(&mut self, index: u64, command: &Command, ops: &mut Vec<DeltaOp>) -> CommandResult {
        debug_assert_eq!(self.index, index, "apply_at runs after advance");
        let ops_start = ops.len();
        let result = self.apply_one(index, command, ops);
        // Catalog changes (a critical or deleted check, a deleted service
        // or node) invalidate the sessions that depend on them, in the
        // same entry (`session_apply.rs`).
        self.invalidate_sessions_after(index, ops_start, ops);
        result
    }

    fn apply_one(&mut self, index: u64, command: &Command, ops: &mut Vec<DeltaOp>) -> CommandResult {
        match command {
            Command::Batch(_) => unreachable!("apply_command handles batches; members are never batches"),
            Command::KvSet { key, value, flags } => {
                let e = txn::set_entry(&mut self.kv, key, value, *flags, index);
                ops.push(DeltaOp::KvPut(e));
                CommandResult::Bool(true)
            }
            Command::KvCas {
                key,
                value,
                flags,
                index: expected,
            } => {
                let current = self.kv.get(key).map(|e| e.modify_index).unwrap_or(0);
                if current == *expected {
                    let e = txn::set_entry(&mut self.kv, key, value, *flags, index);
                    ops.push(DeltaOp::KvPut(e));
                    CommandResult::Bool(true)
                } else {
                    CommandResult::Bool(false)
                }
            }
            Command::KvDelete { key } => {
                if self.kv.delete(key, index) {
                    ops.push(DeltaOp::KvDelete {
                        key: key.clone(),
                        index,
                    });
                }
                CommandResult::Bool(true)
            }
            Command::KvDeleteCas { key, index: expected } => {
                let current = self.kv.get(key).map(|e| e.modify_index).unwrap_or(0);
                if *expected != 0 && current == *expected {
                    self.kv.delete(key, index);
                    ops.push(DeltaOp::KvDelete {
                        key: key.clone(),
                        index,
                    });
                    CommandResult::Bool(true)
                } else {
                    CommandResult::Bool(false)
                }
            }
            Command::KvDeleteTree { prefix } => {
                if self.kv.delete_prefix(prefix, index) > 0 {
                    ops.push(DeltaOp::KvDeleteTree {
                        prefix: prefix.clone(),
                        index,
                    });
                }
                CommandResult::Bool(true)
            }
            Command::Txn { ops: txn_ops } => {
                let mut scratch = self.kv.clone();
                match txn::evaluate(&mut scratch, &self.sessions, txn_ops, index) {
                    Ok((results, txn_deltas)) => {
                        self.kv = scratch;
                        ops.extend(txn_deltas);
                        CommandResult::TxnCommitted(results)
                    }
                    Err(errors) => CommandResult::TxnRolledBack(errors),
                }
            }
            Command::NodeRegister(reg) => {
                self.ensure_node(reg, index, ops);
                CommandResult::Done
            }
            Command::NodeDeregister { node } => {
                self.deregister(node, None, None, index, ops);
                CommandResult::Done
            }
            Command::CatalogRegister(reg) => self.catalog_register(reg, index, ops),
            Command::CatalogDeregister {
                node,
                service_id,
                check_id,
            } => {
                self.deregister(node, service_id.as_deref(), check_id.as_deref(), index, ops);
                CommandResult::Done
            }
            Command::EventFire(event) => {
                let event = UserEvent {
                    ltime: index,
                    ..event.clone()
                };
                self.events.push(event.clone());
                ops.push(DeltaOp::EventPut(event));
                CommandResult::Done
            }
            Command::ConfigEntrySet { entry, cas } => match self.config_entries.apply_set(entry, *cas, index) {
                Ok(stored) => {
                    ops.push(DeltaOp::ConfigEntryPut(stored));
                    CommandResult::Bool(true)
                }
                Err(ConfigEntryRefusal::CasMismatch) => CommandResult::Bool(false),
                Err(refusal) => CommandResult::Failed(refusal.to_string()),
            },
            Command::ConfigEntryDelete { kind, name, cas } => {
                let (answer, deleted) = self.config_entries.apply_delete(kind, name, *cas, index);
                if deleted {
                    ops.push(DeltaOp::ConfigEntryDelete {
                        kind: kind.clone(),
                        name: name.clone(),
                        index,
                    });
                }
                CommandResult::Bool(answer)
            }
            Command::PreparedQueryCreate(query) => self.prepared_query_set(index, query, true, ops),
            Command::PreparedQueryUpdate(query) => self.prepared_query_set(index, query, false, ops),
            Command::PreparedQueryDelete { id } => self.prepared_query_delete(index, id, ops),
            Command::SessionCreate(_)
            | Command::SessionDestroy { .. }
            | Command::KvLock { .. }
            | Command::KvUnlock { .. }
            | Command::SessionRenew { .. } => self.apply_session_command(index, command, ops),
        }
    }

    /// Advances the index for a raft entry that carries no command (blank
    /// or membership entries). Returns the empty delta to publish.
    pub fn apply_noop(&mut self, index: u64) -> Delta {
        self.advance(index);
        Delta { index, ops: Vec::new() }
    }

    /// Applies a delta produced by [`State::apply_command`] elsewhere.
    /// Deltas at or below the current index were already applied (they
    /// precede the snapshot this replica started from) and are skipped.
    /// Returns whether the delta was applied.
    pub fn apply_delta(&mut self, delta: &Delta) -> bool {
        if delta.index <= self.index {
            return false;
        }
        self.index = delta.index;
        for op in &delta.ops {
            match op {
                DeltaOp::KvPut(e) => self.kv.put(e.clone()),
                DeltaOp::KvDelete { key, index } => {
                    self.kv.delete(key, *index);
                }
                DeltaOp::KvDeleteTree { prefix, index } => {
                    self.kv.delete_prefix(prefix, *index);
                }
                DeltaOp::NodePut(n) => {
                    self.catalog.touch_node(&n.node, n.modify_index);
                    self.nodes.put(n.clone());
                }
                DeltaOp::NodeDelete { node, index } => {
                    self.delete_node_cascade(node, *index);
                }
                DeltaOp::ServicePut(s) => self.catalog.put_service(s.clone()),
                DeltaOp::ServiceDelete {
                    node,
                    service_id,
                    index,
                } => {
                    self.catalog.delete_service(node, service_id, *index);
                }
                DeltaOp::CheckPut(c) => self.catalog.put_check(c.clone()),
                DeltaOp::CheckDelete { node, check_id, index } => {
                    self.catalog.delete_check(node, check_id, *index);
                }
                DeltaOp::EventPut(event) => self.events.push(event.clone()),
                DeltaOp::VirtualIpPut { service, offset } => self.virtual_ips.put(service, *offset),
                DeltaOp::VirtualIpFree { service } => {
                    self.virtual_ips.free(service);
                }
                DeltaOp::ConfigEntryPut(e) => self.config_entries.put(e.clone()),
                DeltaOp::ConfigEntryDelete { kind, name, index } => {
                    self.config_entries.delete(kind, name, *index);
                }
                DeltaOp::PreparedQueryPut(q) => self.prepared_queries.put(q.clone()),
                DeltaOp::PreparedQueryDelete { id, index } => {
                    self.prepared_queries.delete(id, *index);
                }
                DeltaOp::SessionPut(session) => self.sessions.put(session.clone()),
                DeltaOp::SessionDelete { id, index } => {
                    self.sessions.delete(id, *index);
                }
            }
        }
        true
    }

    pub(crate) fn from_parts(index: u64, kv: KvTable, nodes: NodeTable, catalog: Catalog) -> State {
        State {
            index,
            kv,
            nodes,
            catalog,
            events: EventLog::default(),
            virtual_ips: VirtualIpTable::default(),
            config_entries: ConfigEntryTable::default(),
            prepared_queries: PreparedQueryTable::default(),
            sessions: SessionTable::default(),
        }
    }

    fn advance(&mut self, index: u64) {
        assert!(
            index > self.index,
            "raft index must increase: {} after {}",
            index,
            self.index
        );
        self.index = index;
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod catalog_tests;

#[cfg(test)]
mod connect_tests;

#[cfg(test)]
mod session_tests;
