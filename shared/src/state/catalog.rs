//! Service instances and health checks: the catalog beside the node table.
//!
//! Both tables are keyed by `(lower-cased node name, id)`, so everything on
//! one node is a contiguous range. Services are also grouped by lower-cased
//! service name (catalog, health and DNS look services up by name), and
//! every service name keeps the index of its last change, deletes and
//! health changes included, which is the index that governs
//! `/v1/catalog/service/<s>` and `/v1/health/service/<s>`.
//!
//! Consul compares service names case-insensitively (its memdb index is
//! lower-cased) and so does this table.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::connect_proxy::{ServiceConnect, ServiceProxy, KIND_CONNECT_PROXY};
use super::node_range::{KeyView, NodeStart};

/// `Weights` of a service instance (DNS SRV weight by health).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Weights {
    pub passing: u32,
    pub warning: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

/// One entry of a service's `TaggedAddresses` (`{"Address","Port"}`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ServiceAddress {
    pub address: String,
    pub port: u16,
}

/// A service instance on a node (Consul's `NodeService` plus its node name).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ServiceInstance {
    /// The node's name as registered (not lower-cased).
    pub node: String,
    pub id: String,
    pub service: String,
    /// `""` for a typical service, else `connect-proxy`, `mesh-gateway`, ...
    pub kind: String,
    pub tags: Vec<String>,
    /// Empty means "use the node's address".
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub socket_path: String,
    pub weights: Weights,
    pub enable_tag_override: bool,
    /// Set by the state machine; ignored in a registration.
    pub create_index: u64,
    pub modify_index: u64,
    /// `Proxy`: set on `connect-proxy` (and gateway) instances.
    pub proxy: ServiceProxy,
    /// `Connect`.
    pub connect: ServiceConnect,
}

impl ServiceInstance {
    /// Whether two instances are the same registration (indexes aside).
    pub fn same_registration(&self, other: &ServiceInstance) -> bool {
        let mut a = self.clone();
        a.create_index = other.create_index;
        a.modify_index = other.modify_index;
        a == *other
    }

    /// The service this instance carries Connect traffic for: the
    /// destination of a `connect-proxy`, its own service when it is
    /// Connect-native, else `None`.
    pub fn connect_target(&self) -> Option<&str> {
        if self.kind == KIND_CONNECT_PROXY {
            let name = self.proxy.destination_service_name.as_str();
            return (!name.is_empty()).then_some(name);
        }
        self.connect.native.then_some(self.service.as_str())
    }
}

/// A check's status. Ordered from best to worst, so the worst of several is
/// their maximum.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub enum CheckStatus {
    Passing,
    Warning,
    /// New checks start critical unless a status is given.
    #[default]
    Critical,
}

impl CheckStatus {
    /// Consul's word for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// Parses Consul's word (exactly; Consul's API is case-sensitive here).
    pub fn parse(word: &str) -> Option<CheckStatus> {
        match word {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// The runner definition a check reports in its `Definition` object.
/// Durations are nanoseconds (rendered as Go durations); 0 = unset.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct CheckDefinition {
    pub http: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    pub tls_server_name: String,
    pub tls_skip_verify: bool,
    pub tcp: String,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub deregister_critical_service_after_ns: u64,
}

/// A health check (Consul's `HealthCheck`). A check with an empty
/// `service_id` is a node check: it counts for every service on its node.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct HealthCheck {
    /// The node's name as registered.
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: CheckStatus,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    /// Filled in by the state machine from the service.
    pub service_name: String,
    /// Filled in by the state machine from the service.
    pub service_tags: Vec<String>,
    /// `ttl`, `http`, `tcp`, `script`, ... or `""` (serfHealth, maintenance).
    pub check_type: String,
    pub definition: CheckDefinition,
    /// Set by the state machine; ignored in a registration.
    pub create_index: u64,
    pub modify_index: u64,
}

impl HealthCheck {
    /// Whether two checks are the same registration (indexes aside).
    pub fn same_registration(&self, other: &HealthCheck) -> bool {
        let mut a = self.clone();
        a.create_index = other.create_index;
        a.modify_index = other.modify_index;
        a == *other
    }

    /// Whether the check counts for every service on its node.
    pub fn is_node_check(&self) -> bool {
        self.service_id.is_empty()
    }
}

/// `(lower-cased node name, id)`.
pub type CatalogKey = (String, String);

fn key(node: &str, id: &str) -> CatalogKey {
    (node.to_ascii_lowercase(), id.to_string())
}

/// Services and checks of every node.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    services: OrdMap<CatalogKey, Arc<ServiceInstance>>,
    /// Lower-cased service name → its instances.
    by_name: OrdMap<String, OrdMap<CatalogKey, Arc<ServiceInstance>>>,
    /// Lower-cased service name → index of its last change (instance,
    /// check or node health), kept after the last instance goes so a
    /// watcher of a removed service sees the delete.
    name_index: OrdMap<String, u64>,
    checks: OrdMap<CatalogKey, Arc<HealthCheck>>,
    /// Lower-cased Connect target (see [`ServiceInstance::connect_target`])
    /// → the proxies for it and its Connect-native instances.
    by_connect: OrdMap<String, OrdMap<CatalogKey, Arc<ServiceInstance>>>,
    /// Lower-cased Connect target → index of the last change to one of
    /// its Connect instances or their health; kept after the last goes.
    connect_index: OrdMap<String, u64>,
    services_table_index: u64,
    checks_table_index: u64,
}

impl Catalog {
    /// Every instance, ordered by node then id.
    pub fn services(&self) -> impl Iterator<Item = &Arc<ServiceInstance>> {
        self.services.values()
    }

    /// One instance.
    pub fn service(&self, node: &str, id: &str) -> Option<&Arc<ServiceInstance>> {
        self.services.get(&key(node, id))
    }

    /// The instances on `node` (any case), ordered by id. Allocates
    /// nothing.
    pub fn node_services<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Arc<ServiceInstance>> + 'a {
        let start = NodeStart(node);
        let bounds: (Bound<&dyn KeyView>, Bound<&dyn KeyView>) = (Bound::Included(&start), Bound::Unbounded);
        self.services
            .range::<_, dyn KeyView>(bounds)
            .take_while(move |((n, _), _)| n.eq_ignore_ascii_case(node))
            .map(|(_, v)| v)
    }

    /// The instances of the service `name` (case-insensitive), ordered by
    /// node then id. `None` when the service has no instance.
    pub fn instances(&self, name: &str) -> Option<&OrdMap<CatalogKey, Arc<ServiceInstance>>> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(&name.to_ascii_lowercase())
        } else {
            self.by_name.get(name)
        }
    }

    /// Lower-cased names of the services that have instances, with them.
    pub fn services_by_name(&self) -> impl Iterator<Item = (&String, &OrdMap<CatalogKey, Arc<ServiceInstance>>)> {
        self.by_name.iter()
    }

    /// The Connect-capable instances for the service `target`
    /// (case-insensitive): proxies whose destination it is and its
    /// Connect-native instances, ordered by node then id.
    pub fn connect_instances(&self, target: &str) -> Option<&OrdMap<CatalogKey, Arc<ServiceInstance>>> {
        self.by_connect.get(&target.to_ascii_lowercase())
    }

    /// The index that governs Connect reads of `target`
    /// (`/v1/catalog/connect/<s>`, `/v1/health/connect/<s>`): the last
    /// change to its Connect instances or their health, or the services
    /// table index when it never had one.
    pub fn connect_index(&self, target: &str) -> u64 {
        self.connect_index
            .get(&target.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.services_table_index)
    }

    /// Number of service instances.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// The index that governs reads of the service `name`: its last change,
    /// or the services table index when it never existed.
    pub fn service_index(&self, name: &str) -> u64 {
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.name_index.get(&name.to_ascii_lowercase())
        } else {
            self.name_index.get(name)
        };
        found.copied().unwrap_or(self.services_table_index)
    }

    /// Index of the last change to any service.
    pub fn services_table_index(&self) -> u64 {
        self.services_table_index
    }

    /// Index of the last change to any check.
    pub fn checks_table_index(&self) -> u64 {
        self.checks_table_index
    }

    /// Every check, ordered by node then check id.
    pub fn checks(&self) -> impl Iterator<Item = &Arc<HealthCheck>> {
        self.checks.values()
    }

    /// Number of checks.
    pub fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// One check.
    pub fn check(&self, node: &str, check_id: &str) -> Option<&Arc<HealthCheck>> {
        self.checks.get(&key(node, check_id))
    }

    /// The checks on `node` (any case; node checks and service checks), by
    /// check id. Allocates nothing.
    pub fn node_checks<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Arc<HealthCheck>> + 'a {
        let start = NodeStart(node);
        let bounds: (Bound<&dyn KeyView>, Bound<&dyn KeyView>) = (Bound::Included(&start), Bound::Unbounded);
        self.checks
            .range::<_, dyn KeyView>(bounds)
            .take_while(move |((n, _), _)| n.eq_ignore_ascii_case(node))
            .map(|(_, v)| v)
    }

    /// The checks that decide an instance's health: its node's node checks
    /// and its own service checks.
    pub fn instance_checks<'a>(
        &'a self,
        instance: &'a ServiceInstance,
    ) -> impl Iterator<Item = &'a Arc<HealthCheck>> + 'a {
        self.node_checks(&instance.node)
            .filter(move |c| c.is_node_check() || c.service_id == instance.id)
    }

    /// An instance's health: the worst of its checks; passing without any.
    pub fn instance_status(&self, instance: &ServiceInstance) -> CheckStatus {
        self.instance_checks(instance)
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Passing)
    }

    /// Writes an instance. The caller has set its indexes.
    pub fn put_service(&mut self, instance: ServiceInstance) {
        let index = instance.modify_index;
        let k = key(&instance.node, &instance.id);
        let name = instance.service.to_ascii_lowercase();
        // A re-registration under the same id may rename the service.
        if let Some(old) = self.services.get(&k).cloned() {
            let old_name = old.service.to_ascii_lowercase();
            if old_name != name {
                self.remove_from_name(&old_name, &k, index);
            }
            self.remove_from_connect(&old, &k, index);
        }
        let instance = Arc::new(instance);
        self.services.insert(k.clone(), instance.clone());
        if let Some(target) = instance.connect_target() {
            let target = target.to_ascii_lowercase();
            self.by_connect
                .entry(target.clone())
                .or_default()
                .insert(k.clone(), instance.clone());
            self.bump_connect(&target, index);
        }
        self.by_name.entry(name.clone()).or_default().insert(k, instance);
        self.bump_name(&name, index);
        self.bump_services(index);
    }

    /// Removes an instance and its service checks. Returns the ids of the
    /// checks removed with it (already removed here).
    pub fn delete_service(&mut self, node: &str, id: &str, index: u64) -> Option<Vec<String>> {
        let k = key(node, id);
        let old = self.services.remove(&k)?;
        let name = old.service.to_ascii_lowercase();
        self.remove_from_name(&name, &k, index);
        self.remove_from_connect(&old, &k, index);
        self.bump_services(index);
        let doomed: Vec<String> = self
            .node_checks(node)
            .filter(|c| c.service_id == id)
            .map(|c| c.check_id.clone())
            .collect();
        for check_id in &doomed {
            self.checks.remove(&key(node, check_id));
        }
        if !doomed.is_empty() {
            self.bump_checks(index);
        }
        Some(doomed)
    }

    /// Writes a check. The caller has set its indexes and service fields.
    pub fn put_check(&mut self, check: HealthCheck) {
        let index = check.modify_index;
        self.touch_check_targets(&check, index);
        self.checks.insert(key(&check.node, &check.check_id), Arc::new(check));
        self.bump_checks(index);
    }

    /// Removes a check. Returns whether it existed.
    pub fn delete_check(&mut self, node: &str, check_id: &str, index: u64) -> bool {
        let Some(old) = self.checks.remove(&key(node, check_id)) else {
            return false;
        };
        self.touch_check_targets(&old, index);
        self.bump_checks(index);
        true
    }

    /// Marks every service on `node` changed (its node was updated, so
    /// health results that embed the node changed).
    pub fn touch_node(&mut self, node: &str, index: u64) {
        let names: Vec<(String, Option<String>)> = self
            .node_services(node)
            .map(|s| {
                let target = s.connect_target().map(str::to_ascii_lowercase);
                (s.service.to_ascii_lowercase(), target)
            })
            .collect();
        for (name, target) in names {
            self.bump_name(&name, index);
            if let Some(target) = target {
                self.bump_connect(&target, index);
            }
        }
    }

    /// Restores the tables from a snapshot.
    pub(crate) fn restore(
        services: Vec<ServiceInstance>,
        checks: Vec<HealthCheck>,
        name_index: Vec<(String, u64)>,
        services_table_index: u64,
        checks_table_index: u64,
    ) -> Catalog {
        let mut c = Catalog {
            services_table_index,
            checks_table_index,
            ..Catalog::default()
        };
        for s in services {
            let k = key(&s.node, &s.id);
            let name = s.service.to_ascii_lowercase();
            let s = Arc::new(s);
            if let Some(target) = s.connect_target() {
                let target = target.to_ascii_lowercase();
                c.by_connect.entry(target).or_default().insert(k.clone(), s.clone());
            }
            c.services.insert(k.clone(), s.clone());
            c.by_name.entry(name).or_default().insert(k, s);
        }
        for ch in checks {
            c.checks.insert(key(&ch.node, &ch.check_id), Arc::new(ch));
        }
        for (name, index) in name_index {
            c.name_index.insert(name, index);
        }
        c
    }

    /// Restores the Connect indexes from a snapshot (after [`Catalog::restore`]).
    pub(crate) fn restore_connect_indexes(&mut self, connect_index: Vec<(String, u64)>) {
        for (target, index) in connect_index {
            self.connect_index.insert(target, index);
        }
    }

    /// Lower-cased Connect targets and their indexes (snapshot).
    pub fn connect_indexes(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.connect_index.iter()
    }

    /// Lower-cased service names and their indexes (snapshot).
    pub fn name_indexes(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.name_index.iter()
    }

    fn touch_check_targets(&mut self, check: &HealthCheck, index: u64) {
        if check.is_node_check() {
            self.touch_node(&check.node, index);
        } else if let Some(s) = self.services.get(&key(&check.node, &check.service_id)) {
            let name = s.service.to_ascii_lowercase();
            let target = s.connect_target().map(str::to_ascii_lowercase);
            self.bump_name(&name, index);
            if let Some(target) = target {
                self.bump_connect(&target, index);
            }
        }
    }

    fn remove_from_connect(&mut self, old: &ServiceInstance, k: &CatalogKey, index: u64) {
        let Some(target) = old.connect_target() else {
            return;
        };
        let target = target.to_ascii_lowercase();
        if let Some(group) = self.by_connect.get_mut(&target) {
            group.remove(k);
            if group.is_empty() {
                self.by_connect.remove(&target);
            }
        }
        self.bump_connect(&target, index);
    }

    fn bump_connect(&mut self, target: &str, index: u64) {
        let slot = self.connect_index.entry(target.to_string()).or_insert(0);
        assert!(index >= *slot, "connect index went backwards: {index} after {slot}");
        *slot = index;
    }

    fn remove_from_name(&mut self, name: &str, k: &CatalogKey, index: u64) {
        if let Some(group) = self.by_name.get_mut(name) {
            group.remove(k);
            if group.is_empty() {
                self.by_name.remove(name);
            }
        }
        self.bump_name(name, index);
    }

    fn bump_name(&mut self, name: &str, index: u64) {
        let slot = self.name_index.entry(name.to_string()).or_insert(0);
        assert!(index >= *slot, "service index went backwards: {index} after {slot}");
        *slot = index;
    }

    fn bump_services(&mut self, index: u64) {
        assert!(index >= self.services_table_index, "services index went backwards");
        self.services_table_index = index;
    }

    fn bump_checks(&mut self, index: u64) {
        assert!(index >= self.checks_table_index, "checks index went backwards");
        self.checks_table_index = index;
    }
}
