//! The foca [`foca::Identity`] of a node: its name (the unique address in
//! the cluster), where to reach it, a generation that grows on every restart,
//! rejoin or tags change, the leave intent and the serf tags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Serf tags (`role`, `dc`, `port`, `build`, `vsn`, `id`, ...), shared cheaply.
pub type Tags = Arc<BTreeMap<String, String>>;

/// Most bytes the tags may take once encoded: the identity travels in every
/// packet header, so it must leave room for updates in a 1400 B packet.
pub const TAGS_BYTES_MAX: usize = 512;

/// Longest node name accepted (Consul limits DNS-safe names to 63 per label;
/// we are lenient but bounded).
pub const NODE_NAME_BYTES_MAX: usize = 128;

/// One incarnation of a cluster node, as exchanged on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Node name, unique in the cluster (foca's `Addr`).
    pub name: Arc<str>,
    /// Where the node's gossip UDP and push-pull TCP listen.
    pub addr: SocketAddr,
    /// Grows on every restart (start time in ms), renewal or tags change;
    /// the higher generation wins a name conflict.
    pub generation: u64,
    /// Set on the identity a node announces just before leaving on purpose:
    /// when that identity goes down the node is `left`, not `failed`.
    pub leaving: bool,
    /// Serf tags.
    pub tags: Tags,
}

impl NodeIdentity {
    /// A fresh identity; `generation` should be the start time in ms so a
    /// restarted node wins over its previous life.
    pub fn new(
        name: &str,
        addr: SocketAddr,
        generation: u64,
        tags: BTreeMap<String, String>,
    ) -> Result<NodeIdentity, String> {
        if name.is_empty() || name.len() > NODE_NAME_BYTES_MAX {
            return Err(format!("gossip: node name must be 1..={NODE_NAME_BYTES_MAX} bytes"));
        }
        let tags_bytes: usize = tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if tags_bytes > TAGS_BYTES_MAX {
            return Err(format!(
                "gossip: tags take {tags_bytes} bytes, more than {TAGS_BYTES_MAX}"
            ));
        }
        Ok(NodeIdentity {
            name: Arc::from(name),
            addr,
            generation,
            leaving: false,
            tags: Arc::new(tags),
        })
    }

    /// The same node announcing a graceful leave.
    pub fn into_leaving(self) -> NodeIdentity {
        NodeIdentity { leaving: true, ..self }
    }

    /// The same node with new tags; the generation grows so the change wins.
    pub fn with_tags(&self, tags: BTreeMap<String, String>) -> Result<NodeIdentity, String> {
        let mut next = NodeIdentity::new(&self.name, self.addr, self.generation.saturating_add(1), tags)?;
        next.leaving = self.leaving;
        Ok(next)
    }

    /// Conflict order between two identities of the same name.
    fn rank(&self) -> (u64, bool) {
        (self.generation, self.leaving)
    }
}

impl foca::Identity for NodeIdentity {
    type Addr = Arc<str>;

    /// A node wrongly declared failed comes back with the next generation;
    /// a node that left on purpose stays gone.
    fn renew(&self) -> Option<NodeIdentity> {
        if self.leaving {
            return None;
        }
        Some(NodeIdentity {
            generation: self.generation.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    fn win_addr_conflict(&self, adversary: &NodeIdentity) -> bool {
        self.rank() > adversary.rank()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn node(generation: u64) -> NodeIdentity {
        NodeIdentity::new("n1", "127.0.0.1:8301".parse().unwrap(), generation, BTreeMap::new()).unwrap()
    }

    #[test]
    fn newer_generation_wins_and_leaving_wins_a_tie() {
        assert!(node(2).win_addr_conflict(&node(1)));
        assert!(!node(1).win_addr_conflict(&node(2)));
        assert!(node(1).into_leaving().win_addr_conflict(&node(1)));
        assert!(!node(1).win_addr_conflict(&node(1).into_leaving()));
    }

    #[test]
    fn renew_bumps_generation_unless_leaving() {
        assert_eq!(node(7).renew().unwrap().generation, 8);
        assert_eq!(node(7).into_leaving().renew(), None);
        assert_eq!(&*node(7).addr(), "n1");
    }

    #[test]
    fn tags_change_bumps_generation() {
        let tags = BTreeMap::from([("role".to_string(), "consul".to_string())]);
        let next = node(3).with_tags(tags).unwrap();
        assert_eq!(next.generation, 4);
        assert_eq!(next.tags.get("role").map(String::as_str), Some("consul"));
    }

    #[test]
    fn oversized_tags_and_names_are_refused() {
        let addr: SocketAddr = "127.0.0.1:8301".parse().unwrap();
        let tags = BTreeMap::from([("k".to_string(), "v".repeat(TAGS_BYTES_MAX))]);
        assert!(NodeIdentity::new("n", addr, 1, tags).unwrap_err().contains("tags"));
        assert!(NodeIdentity::new("", addr, 1, BTreeMap::new())
            .unwrap_err()
            .contains("name"));
        let long = "x".repeat(NODE_NAME_BYTES_MAX + 1);
        assert!(NodeIdentity::new(&long, addr, 1, BTreeMap::new()).is_err());
    }
}
