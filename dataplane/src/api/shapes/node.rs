//! Consul's `Node`: `{"ID","Node","Address","Datacenter","TaggedAddresses",
//! "Meta","CreateIndex","ModifyIndex"}`. Empty maps are written `{}`.

use proconsul_shared::state::Node;

use super::write_string_map;
use crate::api::json::JsonWriter;

/// Writes one node object.
pub fn write_node(w: &mut JsonWriter<'_>, node: &Node) {
    w.begin_object();
    w.key("ID");
    w.string(&node.id);
    w.key("Node");
    w.string(&node.node);
    w.key("Address");
    w.string(&node.address);
    w.key("Datacenter");
    w.string(&node.datacenter);
    w.key("TaggedAddresses");
    write_string_map(w, &node.tagged_addresses);
    w.key("Meta");
    write_string_map(w, &node.meta);
    w.key("CreateIndex");
    w.u64(node.create_index);
    w.key("ModifyIndex");
    w.u64(node.modify_index);
    w.end_object();
}
