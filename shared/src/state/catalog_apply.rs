//! Catalog writes on the state machine: node, service and check
//! registration and deregistration, with the delta ops they emit.
//!
//! Unchanged parts of a registration are not rewritten, so their indexes
//! (and the watchers blocked on them) stay put.

use super::{Node, State};
use crate::command::{CatalogRegistration, CommandResult, NodeRegistration};
use crate::delta::DeltaOp;
use crate::state::{
    HealthCheck, ServiceAddress, ServiceInstance, VirtualIpsExhausted, TAGGED_ADDRESS_VIRTUAL_IP, VIRTUAL_IP_OFFSET_MAX,
};

impl State {
    /// Creates or updates a node. Emits `NodePut` only when it changed.
    pub(super) fn ensure_node(&mut self, reg: &NodeRegistration, index: u64, ops: &mut Vec<DeltaOp>) {
        let existing = self.nodes.get(&reg.node).cloned();
        if let Some(old) = &existing {
            if old.id == reg.id
                && old.node == reg.node
                && old.address == reg.address
                && old.datacenter == reg.datacenter
                && old.tagged_addresses == reg.tagged_addresses
                && old.meta == reg.meta
            {
                return;
            }
        }
        let node = Node {
            id: reg.id.clone(),
            node: reg.node.clone(),
            address: reg.address.clone(),
            datacenter: reg.datacenter.clone(),
            tagged_addresses: reg.tagged_addresses.clone(),
            meta: reg.meta.clone(),
            create_index: existing.map(|n| n.create_index).unwrap_or(index),
            modify_index: index,
        };
        self.catalog.touch_node(&node.node, index);
        self.nodes.put(node.clone());
        ops.push(DeltaOp::NodePut(node));
    }

    /// Applies a catalog registration, all or nothing.
    pub(super) fn catalog_register(
        &mut self,
        reg: &CatalogRegistration,
        index: u64,
        ops: &mut Vec<DeltaOp>,
    ) -> CommandResult {
        // Validate against the current state before changing anything.
        for check in &reg.checks {
            if check.service_id.is_empty() {
                continue;
            }
            let in_this_registration = reg.service.as_ref().is_some_and(|s| s.id == check.service_id);
            if !in_this_registration && self.catalog.service(&reg.node.node, &check.service_id).is_none() {
                // `Catalog.Register`'s text (its ACL vetting, which runs
                // with ACLs off too).
                return CommandResult::Failed(format!(
                    "Unknown service ID '{}' for check ID '{}'",
                    check.service_id, check.check_id
                ));
            }
        }
        if let Some(target) = reg.service.as_ref().and_then(|s| s.connect_target()) {
            if !self.virtual_ips.can_assign(target, VIRTUAL_IP_OFFSET_MAX) {
                return CommandResult::Failed(VirtualIpsExhausted.to_string());
            }
        }
        let node_name = match self.nodes.get(&reg.node.node) {
            Some(existing) if reg.skip_node_update => existing.node.clone(),
            _ => {
                self.ensure_node(&reg.node, index, ops);
                reg.node.node.clone()
            }
        };
        if let Some(service) = &reg.service {
            self.ensure_service(&node_name, service, index, ops);
        }
        for check in &reg.checks {
            self.ensure_check(&node_name, check, index, ops);
        }
        CommandResult::Done
    }

    fn ensure_service(&mut self, node: &str, service: &ServiceInstance, index: u64, ops: &mut Vec<DeltaOp>) {
        let existing = self.catalog.service(node, &service.id).cloned();
        let mut instance = service.clone();
        instance.node = node.to_string();
        instance.create_index = existing.as_ref().map(|s| s.create_index).unwrap_or(index);
        instance.modify_index = index;
        self.attach_virtual_ip(&mut instance, ops);
        if let Some(old) = &existing {
            if old.same_registration(&instance) {
                return;
            }
        }
        self.catalog.put_service(instance.clone());
        ops.push(DeltaOp::ServicePut(instance.clone()));
        if let Some(old_target) = existing.as_ref().and_then(|old| old.connect_target()) {
            if instance.connect_target() != Some(old_target) {
                self.release_virtual_ips([old_target.to_string()], ops);
            }
        }
        // Service checks carry the service's name and tags: keep them true.
        let stale: Vec<HealthCheck> = self
            .catalog
            .node_checks(node)
            .filter(|c| c.service_id == instance.id)
            .filter(|c| c.service_name != instance.service || c.service_tags != instance.tags)
            .map(|c| (**c).clone())
            .collect();
        for mut check in stale {
            check.service_name = instance.service.clone();
            check.service_tags = instance.tags.clone();
            check.modify_index = index;
            self.catalog.put_check(check.clone());
            ops.push(DeltaOp::CheckPut(check));
        }
    }

    fn ensure_check(&mut self, node: &str, check: &HealthCheck, index: u64, ops: &mut Vec<DeltaOp>) {
        let existing = self.catalog.check(node, &check.check_id).cloned();
        let mut c = check.clone();
        c.node = node.to_string();
        match self.catalog.service(node, &c.service_id) {
            Some(s) if !c.service_id.is_empty() => {
                c.service_name = s.service.clone();
                c.service_tags = s.tags.clone();
            }
            _ => {
                c.service_name.clear();
                c.service_tags.clear();
            }
        }
        c.create_index = existing.as_ref().map(|e| e.create_index).unwrap_or(index);
        c.modify_index = index;
        if let Some(old) = &existing {
            if old.same_registration(&c) {
                return;
            }
        }
        self.catalog.put_check(c.clone());
        ops.push(DeltaOp::CheckPut(c));
    }

    /// Removes a check, a service (with its checks), or a whole node.
    pub(super) fn deregister(
        &mut self,
        node: &str,
        service_id: Option<&str>,
        check_id: Option<&str>,
        index: u64,
        ops: &mut Vec<DeltaOp>,
    ) {
        let Some(node_name) = self.nodes.get(node).map(|n| n.node.clone()) else {
            return;
        };
        match (service_id, check_id) {
            (Some(id), _) => {
                let target = self
                    .catalog
                    .service(&node_name, id)
                    .and_then(|s| s.connect_target().map(str::to_string));
                if self.catalog.delete_service(&node_name, id, index).is_some() {
                    ops.push(DeltaOp::ServiceDelete {
                        node: node_name,
                        service_id: id.to_string(),
                        index,
                    });
                }
                self.release_virtual_ips(target, ops);
            }
            (None, Some(id)) => {
                if self.catalog.delete_check(&node_name, id, index) {
                    ops.push(DeltaOp::CheckDelete {
                        node: node_name,
                        check_id: id.to_string(),
                        index,
                    });
                }
            }
            (None, None) => {
                let targets: Vec<String> = self
                    .catalog
                    .node_services(&node_name)
                    .filter_map(|s| s.connect_target().map(str::to_string))
                    .collect();
                self.delete_node_cascade(&node_name, index);
                ops.push(DeltaOp::NodeDelete { node: node_name, index });
                self.release_virtual_ips(targets, ops);
            }
        }
    }

    /// Gives a Connect instance's target service a virtual IP (checked
    /// beforehand by `catalog_register`) and carries it on the instance as
    /// `TaggedAddresses["consul-virtual"]`, as Consul does.
    fn attach_virtual_ip(&mut self, instance: &mut ServiceInstance, ops: &mut Vec<DeltaOp>) {
        let Some(target) = instance.connect_target().map(str::to_string) else {
            return;
        };
        let assignment = self
            .virtual_ips
            .assign(&target, VIRTUAL_IP_OFFSET_MAX)
            .expect("catalog_register checked that a virtual IP is available");
        if assignment.new {
            ops.push(DeltaOp::VirtualIpPut {
                service: target.to_ascii_lowercase(),
                offset: assignment.offset,
            });
        }
        instance.tagged_addresses.insert(
            TAGGED_ADDRESS_VIRTUAL_IP.to_string(),
            ServiceAddress {
                address: crate::state::virtual_ip_at(assignment.offset).to_string(),
                port: instance.port,
            },
        );
    }

    /// Frees the virtual IP of each of `targets` that has no Connect
    /// instance left.
    fn release_virtual_ips(&mut self, targets: impl IntoIterator<Item = String>, ops: &mut Vec<DeltaOp>) {
        for target in targets {
            if self.catalog.connect_instances(&target).is_some() {
                continue;
            }
            if self.virtual_ips.free(&target).is_some() {
                ops.push(DeltaOp::VirtualIpFree {
                    service: target.to_ascii_lowercase(),
                });
            }
        }
    }

    /// Removes a node with every service and check on it.
    pub(super) fn delete_node_cascade(&mut self, node: &str, index: u64) {
        let services: Vec<String> = self.catalog.node_services(node).map(|s| s.id.clone()).collect();
        for id in services {
            self.catalog.delete_service(node, &id, index);
        }
        let checks: Vec<String> = self.catalog.node_checks(node).map(|c| c.check_id.clone()).collect();
        for id in checks {
            self.catalog.delete_check(node, &id, index);
        }
        self.nodes.delete(node, index);
    }
}
