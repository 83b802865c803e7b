//! Service instances in Consul's two shapes: `CatalogService` (Go's
//! `structs.ServiceNode`: node fields, then flat `Service*` fields) and
//! `NodeService` (nested; `Kind`, `TaggedAddresses`, `Port` and
//! `SocketPath` omitted when empty, as their `omitempty` tags say).

use std::collections::BTreeMap;

use proconsul_shared::state::{Node, ServiceAddress, ServiceInstance, Weights};

use super::write_string_map;
use crate::api::json::JsonWriter;

mod proxy;

pub use proxy::{write_connect, write_proxy};

/// Writes one `CatalogService`. `node` is the instance's node (`None`
/// only if the replica lost it: node fields are then empty).
pub fn write_catalog_service(w: &mut JsonWriter<'_>, node: Option<&Node>, instance: &ServiceInstance) {
    let empty = BTreeMap::new();
    w.begin_object();
    w.key("ID");
    w.string(node.map_or("", |n| n.id.as_str()));
    w.key("Node");
    w.string(node.map_or(instance.node.as_str(), |n| n.node.as_str()));
    w.key("Address");
    w.string(node.map_or("", |n| n.address.as_str()));
    w.key("Datacenter");
    w.string(node.map_or("", |n| n.datacenter.as_str()));
    w.key("TaggedAddresses");
    write_string_map(w, node.map_or(&empty, |n| &n.tagged_addresses));
    w.key("NodeMeta");
    write_string_map(w, node.map_or(&empty, |n| &n.meta));
    w.key("ServiceKind");
    w.string(&instance.kind);
    w.key("ServiceID");
    w.string(&instance.id);
    w.key("ServiceName");
    w.string(&instance.service);
    w.key("ServiceTags");
    w.string_array(instance.tags.iter().map(String::as_str));
    w.key("ServiceAddress");
    w.string(&instance.address);
    if !instance.tagged_addresses.is_empty() {
        w.key("ServiceTaggedAddresses");
        write_service_addresses(w, &instance.tagged_addresses);
    }
    w.key("ServiceWeights");
    write_weights(w, instance.weights);
    w.key("ServiceMeta");
    write_string_map(w, &instance.meta);
    w.key("ServicePort");
    w.u64(u64::from(instance.port));
    w.key("ServiceSocketPath");
    w.string(&instance.socket_path);
    w.key("ServiceEnableTagOverride");
    w.bool(instance.enable_tag_override);
    w.key("ServiceProxy");
    write_proxy(w, &instance.proxy);
    w.key("ServiceConnect");
    write_connect(w, instance.connect);
    w.key("ServiceLocality");
    w.null();
    w.key("CreateIndex");
    w.u64(instance.create_index);
    w.key("ModifyIndex");
    w.u64(instance.modify_index);
    w.end_object();
}

/// Writes one `NodeService`.
pub fn write_node_service(w: &mut JsonWriter<'_>, instance: &ServiceInstance) {
    w.begin_object();
    if !instance.kind.is_empty() {
        w.key("Kind");
        w.string(&instance.kind);
    }
    w.key("ID");
    w.string(&instance.id);
    w.key("Service");
    w.string(&instance.service);
    w.key("Tags");
    w.string_array(instance.tags.iter().map(String::as_str));
    w.key("Address");
    w.string(&instance.address);
    if !instance.tagged_addresses.is_empty() {
        w.key("TaggedAddresses");
        write_service_addresses(w, &instance.tagged_addresses);
    }
    w.key("Meta");
    write_string_map(w, &instance.meta);
    if instance.port != 0 {
        w.key("Port");
        w.u64(u64::from(instance.port));
    }
    if !instance.socket_path.is_empty() {
        w.key("SocketPath");
        w.string(&instance.socket_path);
    }
    w.key("Weights");
    write_weights(w, instance.weights);
    w.key("EnableTagOverride");
    w.bool(instance.enable_tag_override);
    w.key("Proxy");
    write_proxy(w, &instance.proxy);
    w.key("Connect");
    write_connect(w, instance.connect);
    w.key("PeerName");
    w.string("");
    w.key("CreateIndex");
    w.u64(instance.create_index);
    w.key("ModifyIndex");
    w.u64(instance.modify_index);
    w.end_object();
}

/// `{"Passing":1,"Warning":1}`.
fn write_weights(w: &mut JsonWriter<'_>, weights: Weights) {
    w.begin_object();
    w.key("Passing");
    w.u64(u64::from(weights.passing));
    w.key("Warning");
    w.u64(u64::from(weights.warning));
    w.end_object();
}

/// `{"lan":{"Address":"10.0.0.1","Port":80},...}`.
fn write_service_addresses(w: &mut JsonWriter<'_>, addresses: &BTreeMap<String, ServiceAddress>) {
    w.begin_object();
    for (name, a) in addresses {
        w.key(name);
        w.begin_object();
        w.key("Address");
        w.string(&a.address);
        w.key("Port");
        w.u64(u64::from(a.port));
        w.end_object();
    }
    w.end_object();
}
