//! What one published version changed, in the terms the wake-up index
//! understands. Built by the replica from the deltas it coalesced into the
//! version (pure), shared read-only with every core.
//!
//! Catalog changes are resolved against the state *before* the delta
//! ([`ChangeSet::record_delta_from`]): a deleted service or a node-level
//! check names no service itself, but the state it changes does. A change
//! marks exactly the services whose per-service index moves (the same rule
//! as `Catalog::service_index`): the service of a written or deleted
//! instance, the service of a service check, and every service on a node
//! whose node entry or node-level check changed.

use proconsul_shared::{Delta, DeltaOp, State};

/// Most keys, trees and service names one change set lists before it
/// collapses into "wake everything" (a huge transaction or a long catch-up
/// batch).
pub const CHANGE_ITEMS_MAX: usize = 4096;

/// The changes between two consecutive versions a core installs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Wake every parked query: the state was replaced (snapshot, restore,
    /// resync) or the change list overflowed [`CHANGE_ITEMS_MAX`].
    pub wake_all: bool,
    /// The state index advanced (wakes `WatchItem::Everything` watchers).
    pub index_advanced: bool,
    /// KV keys written or deleted.
    pub kv_keys: Vec<String>,
    /// KV prefixes deleted as a tree.
    pub kv_trees: Vec<String>,
    /// Whether the node table changed.
    pub nodes: bool,
    /// Lower-cased names of the services whose results changed.
    pub services: Vec<String>,
    /// A catalog change was recorded without the state to resolve which
    /// services it touched: wake every per-service watcher.
    pub all_services: bool,
    /// Whether the services table changed.
    pub services_table: bool,
    /// Whether the checks table changed.
    pub checks_table: bool,
    /// Whether a user event arrived.
    pub events: bool,
    /// Whether the sessions table changed.
    pub sessions: bool,
    /// Whether the prepared query table changed.
    pub prepared_queries: bool,
    /// Whether the config entry table changed.
    pub config_entries: bool,
}

impl ChangeSet {
    /// A change set that wakes every parked query.
    pub fn everything() -> ChangeSet {
        ChangeSet {
            wake_all: true,
            index_advanced: true,
            ..ChangeSet::default()
        }
    }

    /// Whether nothing at all changed (a leadership-only version).
    pub fn is_empty(&self) -> bool {
        !self.wake_all
            && !self.index_advanced
            && !self.nodes
            && !self.all_services
            && !self.services_table
            && !self.checks_table
            && !self.events
            && !self.sessions
            && !self.prepared_queries
            && !self.config_entries
            && self.kv_keys.is_empty()
            && self.kv_trees.is_empty()
            && self.services.is_empty()
    }

    /// Adds the effects of one applied delta, without the state: catalog
    /// operations wake every per-service watcher (see
    /// [`ChangeSet::record_delta_from`] for the targeted form).
    pub fn record_delta(&mut self, delta: &Delta) {
        self.index_advanced = true;
        for op in &delta.ops {
            self.record_op(op, None);
        }
    }

    /// Adds the effects of `delta`, resolving catalog operations against
    /// `before`, the state the delta is about to be applied to.
    pub fn record_delta_from(&mut self, before: &State, delta: &Delta) {
        self.index_advanced = true;
        for op in &delta.ops {
            self.record_op(op, Some(before));
        }
    }

    /// Adds the effect of one delta operation; `before` is the state it
    /// applies to, when known.
    pub fn record_op(&mut self, op: &DeltaOp, before: Option<&State>) {
        if self.wake_all {
            return;
        }
        match op {
            DeltaOp::KvPut(entry) => self.push_key(&entry.key),
            DeltaOp::KvDelete { key, .. } => self.push_key(key),
            DeltaOp::KvDeleteTree { prefix, .. } => {
                if self.item_count() >= CHANGE_ITEMS_MAX {
                    self.collapse();
                } else {
                    self.kv_trees.push(prefix.clone());
                }
            }
            DeltaOp::NodePut(node) => {
                self.nodes = true;
                match before {
                    Some(state) => self.push_node_services(state, &node.node),
                    None => self.all_services = true,
                }
            }
            DeltaOp::NodeDelete { node, .. } => {
                self.nodes = true;
                let Some(state) = before else {
                    self.all_services = true;
                    self.services_table = true;
                    self.checks_table = true;
                    return;
                };
                if state.catalog.node_services(node).next().is_some() {
                    self.services_table = true;
                }
                if state.catalog.node_checks(node).next().is_some() {
                    self.checks_table = true;
                }
                self.push_node_services(state, node);
            }
            DeltaOp::ServicePut(instance) => {
                self.services_table = true;
                self.push_service(&instance.service);
                self.push_connect_target(instance);
                match before {
                    // A re-registration under the same id may rename it.
                    Some(state) => {
                        if let Some(old) = state.catalog.service(&instance.node, &instance.id) {
                            if !old.service.eq_ignore_ascii_case(&instance.service) {
                                self.push_service(&old.service);
                            }
                            self.push_connect_target(old);
                        }
                    }
                    None => self.all_services = true,
                }
            }
            DeltaOp::ServiceDelete { node, service_id, .. } => {
                self.services_table = true;
                let Some(state) = before else {
                    self.all_services = true;
                    self.checks_table = true;
                    return;
                };
                if let Some(old) = state.catalog.service(node, service_id) {
                    self.push_service(&old.service);
                    self.push_connect_target(old);
                }
                if state.catalog.node_checks(node).any(|c| c.service_id == *service_id) {
                    self.checks_table = true;
                }
            }
            DeltaOp::CheckPut(check) => {
                self.checks_table = true;
                let Some(state) = before else {
                    self.all_services = true;
                    return;
                };
                if let Some(old) = state.catalog.check(&check.node, &check.check_id) {
                    self.push_check_target(state, old);
                }
                self.push_check_target(state, check);
            }
            DeltaOp::CheckDelete { node, check_id, .. } => {
                self.checks_table = true;
                let Some(state) = before else {
                    self.all_services = true;
                    return;
                };
                if let Some(old) = state.catalog.check(node, check_id) {
                    self.push_check_target(state, old);
                }
            }
            DeltaOp::EventPut(_) => self.events = true,
            DeltaOp::PreparedQueryPut(_) | DeltaOp::PreparedQueryDelete { .. } => self.prepared_queries = true,
            DeltaOp::ConfigEntryPut(_) | DeltaOp::ConfigEntryDelete { .. } => self.config_entries = true,
            DeltaOp::SessionPut(_) | DeltaOp::SessionDelete { .. } => self.sessions = true,
            // Virtual IPs are read by DNS only, which does not block.
            DeltaOp::VirtualIpPut { .. } | DeltaOp::VirtualIpFree { .. } => {}
        }
    }

    /// Merges `other` (a later change set) into this one.
    pub fn merge(&mut self, other: &ChangeSet) {
        self.index_advanced |= other.index_advanced;
        self.nodes |= other.nodes;
        self.all_services |= other.all_services;
        self.services_table |= other.services_table;
        self.checks_table |= other.checks_table;
        self.events |= other.events;
        self.sessions |= other.sessions;
        self.prepared_queries |= other.prepared_queries;
        self.config_entries |= other.config_entries;
        if other.wake_all {
            self.collapse();
        }
        if self.wake_all {
            return;
        }
        let incoming = other.kv_keys.len() + other.kv_trees.len() + other.services.len();
        if self.item_count() + incoming > CHANGE_ITEMS_MAX {
            self.collapse();
            return;
        }
        self.kv_keys.extend(other.kv_keys.iter().cloned());
        self.kv_trees.extend(other.kv_trees.iter().cloned());
        self.services.extend(other.services.iter().cloned());
    }

    /// The services whose health a check decides: its own service, or for
    /// a node-level check every service on its node.
    fn push_check_target(&mut self, state: &State, check: &proconsul_shared::state::HealthCheck) {
        if check.is_node_check() {
            self.push_node_services(state, &check.node);
        } else if let Some(instance) = state.catalog.service(&check.node, &check.service_id) {
            self.push_service(&instance.service);
            self.push_connect_target(instance);
        } else if !check.service_name.is_empty() {
            self.push_service(&check.service_name);
        }
    }

    /// Wakes the Connect readers (`/v1/{catalog,health}/connect/<s>`,
    /// which watch `<s>` like its service readers) of the service an
    /// instance carries Connect traffic for.
    fn push_connect_target(&mut self, instance: &proconsul_shared::state::ServiceInstance) {
        if let Some(target) = instance.connect_target() {
            self.push_service(target);
        }
    }

    fn push_node_services(&mut self, state: &State, node: &str) {
        for instance in state.catalog.node_services(node) {
            self.push_service(&instance.service);
            self.push_connect_target(instance);
            if self.wake_all {
                return;
            }
        }
    }

    fn push_service(&mut self, name: &str) {
        if self.services.last().is_some_and(|last| last.eq_ignore_ascii_case(name)) {
            return;
        }
        if self.item_count() >= CHANGE_ITEMS_MAX {
            self.collapse();
        } else {
            self.services.push(name.to_ascii_lowercase());
        }
    }

    fn push_key(&mut self, key: &str) {
        if self.kv_keys.last().is_some_and(|last| last == key) {
            return;
        }
        if self.item_count() >= CHANGE_ITEMS_MAX {
            self.collapse();
        } else {
            self.kv_keys.push(key.to_string());
        }
    }

    fn item_count(&self) -> usize {
        self.kv_keys.len() + self.kv_trees.len() + self.services.len()
    }

    fn collapse(&mut self) {
        self.wake_all = true;
        self.kv_keys = Vec::new();
        self.kv_trees = Vec::new();
        self.services = Vec::new();
    }
}

#[cfg(test)]
mod tests;
