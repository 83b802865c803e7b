//! What one published version changed, in the terms the wake-up index
//! understands. Built by the replica from the deltas it coalesced into the
//! version (pure), shared read-only with every core.

use proconsul_shared::{Delta, DeltaOp};

/// Most keys and trees one change set lists before it collapses into
/// "wake everything" (a huge transaction or a long catch-up batch).
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
        !self.wake_all && !self.index_advanced && !self.nodes && self.kv_keys.is_empty() && self.kv_trees.is_empty()
    }

    /// Adds the effects of one applied delta.
    pub fn record_delta(&mut self, delta: &Delta) {
        self.index_advanced = true;
        for op in &delta.ops {
            self.record_op(op);
        }
    }

    /// Adds the effect of one delta operation.
    pub fn record_op(&mut self, op: &DeltaOp) {
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
            DeltaOp::NodePut(_) | DeltaOp::NodeDelete { .. } => self.nodes = true,
            // Catalog watch items do not exist yet: wake everything.
            DeltaOp::ServicePut(_)
            | DeltaOp::ServiceDelete { .. }
            | DeltaOp::CheckPut(_)
            | DeltaOp::CheckDelete { .. } => self.collapse(),
        }
    }

    /// Merges `other` (a later change set) into this one.
    pub fn merge(&mut self, other: &ChangeSet) {
        self.index_advanced |= other.index_advanced;
        self.nodes |= other.nodes;
        if other.wake_all {
            self.collapse();
        }
        if self.wake_all {
            return;
        }
        if self.item_count() + other.kv_keys.len() + other.kv_trees.len() > CHANGE_ITEMS_MAX {
            self.collapse();
            return;
        }
        self.kv_keys.extend(other.kv_keys.iter().cloned());
        self.kv_trees.extend(other.kv_trees.iter().cloned());
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
        self.kv_keys.len() + self.kv_trees.len()
    }

    fn collapse(&mut self) {
        self.wake_all = true;
        self.kv_keys = Vec::new();
        self.kv_trees = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::{KvEntry, Node};

    fn put(key: &str, index: u64) -> DeltaOp {
        DeltaOp::KvPut(KvEntry {
            key: key.into(),
            value: vec![],
            flags: 0,
            lock_index: 0,
            session: None,
            create_index: index,
            modify_index: index,
        })
    }

    #[test]
    fn records_each_kind_of_op() {
        let mut c = ChangeSet::default();
        assert!(c.is_empty());
        c.record_delta(&Delta {
            index: 5,
            ops: vec![
                put("a", 5),
                DeltaOp::KvDelete {
                    key: "b".into(),
                    index: 5,
                },
                DeltaOp::KvDeleteTree {
                    prefix: "t/".into(),
                    index: 5,
                },
                DeltaOp::NodeDelete {
                    node: "n".into(),
                    index: 5,
                },
            ],
        });
        assert!(c.index_advanced && c.nodes && !c.wake_all);
        assert_eq!(c.kv_keys, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(c.kv_trees, vec!["t/".to_string()]);
    }

    #[test]
    fn empty_delta_only_advances_the_index() {
        let mut c = ChangeSet::default();
        c.record_delta(&Delta { index: 9, ops: vec![] });
        assert!(c.index_advanced);
        assert!(!c.is_empty());
        assert!(c.kv_keys.is_empty() && !c.nodes && !c.wake_all);
    }

    #[test]
    fn node_put_marks_nodes() {
        let mut c = ChangeSet::default();
        c.record_op(&DeltaOp::NodePut(Node {
            id: String::new(),
            node: "n1".into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
            create_index: 1,
            modify_index: 1,
        }));
        assert!(c.nodes);
    }

    #[test]
    fn too_many_items_collapse_to_wake_all() {
        let mut c = ChangeSet::default();
        for i in 0..CHANGE_ITEMS_MAX {
            c.record_op(&put(&format!("k{i}"), 1));
        }
        assert!(!c.wake_all, "exactly the limit still lists keys");
        assert_eq!(c.kv_keys.len(), CHANGE_ITEMS_MAX);
        c.record_op(&put("one-more", 2));
        assert!(c.wake_all);
        assert!(c.kv_keys.is_empty(), "a collapsed set frees its list");
    }

    #[test]
    fn merge_keeps_items_and_collapses_past_the_limit() {
        let mut a = ChangeSet::default();
        a.record_op(&put("x", 1));
        let mut b = ChangeSet::default();
        b.record_op(&put("y", 2));
        b.nodes = true;
        a.merge(&b);
        assert_eq!(a.kv_keys, vec!["x".to_string(), "y".to_string()]);
        assert!(a.nodes);
        a.merge(&ChangeSet::everything());
        assert!(a.wake_all && a.kv_keys.is_empty());

        let big = ChangeSet {
            kv_keys: (0..CHANGE_ITEMS_MAX).map(|i| i.to_string()).collect(),
            ..ChangeSet::default()
        };
        let mut small = ChangeSet::default();
        small.record_op(&put("z", 3));
        small.merge(&big);
        assert!(small.wake_all);
    }

    #[test]
    fn repeated_key_is_listed_once_in_a_row() {
        let mut c = ChangeSet::default();
        c.record_op(&put("same", 1));
        c.record_op(&put("same", 2));
        assert_eq!(c.kv_keys.len(), 1);
    }
}
