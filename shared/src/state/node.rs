//! Catalog nodes. Services and checks join them in the service-discovery
//! work; the table is here now so the agent's own node is in the replica and
//! answers DNS `<node>.node.consul`.

use std::collections::BTreeMap;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// A catalog node, as Consul's `Node` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Node {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Nodes keyed by lower-cased name (Consul looks nodes up case-insensitively).
#[derive(Debug, Clone, Default)]
pub struct NodeTable {
    nodes: OrdMap<String, Arc<Node>>,
    table_index: u64,
}

impl NodeTable {
    pub fn get(&self, name: &str) -> Option<&Arc<Node>> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.nodes.get(&name.to_ascii_lowercase())
        } else {
            self.nodes.get(name)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.nodes.values()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn table_index(&self) -> u64 {
        self.table_index
    }

    pub fn put(&mut self, node: Node) {
        self.bump(node.modify_index);
        self.nodes.insert(node.node.to_ascii_lowercase(), Arc::new(node));
    }

    pub fn delete(&mut self, name: &str, index: u64) -> bool {
        let removed = self.nodes.remove(&name.to_ascii_lowercase()).is_some();
        if removed {
            self.bump(index);
        }
        removed
    }

    pub(crate) fn restore(nodes: Vec<Node>, table_index: u64) -> Self {
        let mut t = NodeTable {
            table_index,
            ..Default::default()
        };
        for n in nodes {
            t.nodes.insert(n.node.to_ascii_lowercase(), Arc::new(n));
        }
        t
    }

    fn bump(&mut self, index: u64) {
        assert!(index >= self.table_index, "node index went backwards");
        self.table_index = index;
    }
}
