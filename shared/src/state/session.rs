//! Sessions (`/v1/session/*`): the table of live sessions.
//!
//! A session ties KV locks to the health of a node and some checks. The
//! rules that create, invalidate and renew sessions live in the state
//! machine (`session_apply.rs`); this file is the table the state and
//! every replica keep, and the record a delta carries.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::session_apply::SESSION_HELD_KEYS_MAX;

/// What happens to the keys a session holds when it is invalidated.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub enum SessionBehavior {
    /// The keys stay; their `Session` is cleared (`LockIndex` kept).
    #[default]
    Release,
    /// The keys are deleted.
    Delete,
}

impl SessionBehavior {
    /// Consul's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionBehavior::Release => "release",
            SessionBehavior::Delete => "delete",
        }
    }

    /// Parses Consul's wire name (`""` is the default, `release`).
    pub fn parse(s: &str) -> Option<SessionBehavior> {
        match s {
            "" | "release" => Some(SessionBehavior::Release),
            "delete" => Some(SessionBehavior::Delete),
            _ => None,
        }
    }
}

/// One service check a session depends on (`ServiceChecks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SessionServiceCheck {
    pub id: String,
    /// Always empty outside Consul Enterprise; kept for the wire shape.
    pub namespace: String,
}

/// One session, as Consul's `Session` structure describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Session {
    /// A UUID chosen by the control plane before the write is proposed.
    pub id: String,
    pub name: String,
    /// The node the session belongs to.
    pub node: String,
    /// How long after invalidation the session's keys cannot be acquired.
    pub lock_delay_ns: u64,
    pub behavior: SessionBehavior,
    /// The TTL as the client wrote it (`"30s"`); empty when none.
    pub ttl: String,
    /// Node-level checks (`NodeChecks`, default `["serfHealth"]`).
    pub node_checks: Vec<String>,
    /// Service checks (`ServiceChecks`).
    pub service_checks: Vec<SessionServiceCheck>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Session {
    /// Whether the session depends on check `check_id` of `node`.
    pub fn depends_on(&self, node: &str, check_id: &str) -> bool {
        self.node == node
            && (self.node_checks.iter().any(|c| c == check_id) || self.service_checks.iter().any(|c| c.id == check_id))
    }

    /// Rough size in bytes, for limits.
    pub fn size_bytes(&self) -> usize {
        self.id.len()
            + self.name.len()
            + self.node.len()
            + self.ttl.len()
            + self.node_checks.iter().map(|c| c.len() + 8).sum::<usize>()
            + self
                .service_checks
                .iter()
                .map(|c| c.id.len() + c.namespace.len() + 16)
                .sum::<usize>()
            + 64
    }
}

/// Live sessions by ID, with a per-node index and the index of the
/// table's last change.
///
/// Invariant: `by_node` holds exactly one entry per live session, under
/// its node's lowercased name (node names compare without case, as the
/// node table does), and no empty set. Both maps are persistent, so the
/// clone a snapshot takes stays cheap.
#[derive(Debug, Clone)]
pub struct SessionTable {
    by_id: OrdMap<String, Arc<Session>>,
    /// Session IDs by lowercased node name.
    by_node: OrdMap<String, OrdSet<String>>,
    /// Highest index of any session change (creates and destroys).
    table_index: u64,
    /// Most keys one session may hold: [`SESSION_HELD_KEYS_MAX`] except in
    /// tests, which lower it to reach it. Not replicated: only the state
    /// that applies commands reads it.
    held_keys_max: usize,
}

impl Default for SessionTable {
    fn default() -> SessionTable {
        SessionTable {
            by_id: OrdMap::new(),
            by_node: OrdMap::new(),
            table_index: 0,
            held_keys_max: SESSION_HELD_KEYS_MAX,
        }
    }
}

/// The `by_node` key of a node name.
fn node_key(node: &str) -> String {
    node.to_ascii_lowercase()
}

impl SessionTable {
    pub fn get(&self, id: &str) -> Option<&Arc<Session>> {
        self.by_id.get(id)
    }

    /// Every live session, by ID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.by_id.values()
    }

    /// The sessions of one node (its name compared without case), by ID,
    /// in O(sessions on that node).
    pub fn of_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Session>> + 'a {
        let ids = if node.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_node.get(&node_key(node))
        } else {
            self.by_node.get(node)
        };
        ids.into_iter().flat_map(|ids| ids.iter()).filter_map(move |id| {
            let session = self.by_id.get(id);
            debug_assert!(session.is_some(), "the node index names a live session");
            session
        })
    }

    /// How many sessions one node has (its name compared without case).
    pub fn count_of_node(&self, node: &str) -> usize {
        self.by_node.get(&node_key(node)).map_or(0, |ids| ids.len())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The index of the table's last change (destroys included).
    pub fn table_index(&self) -> u64 {
        self.table_index
    }

    /// Most keys one session may hold at once.
    pub fn held_keys_max(&self) -> usize {
        self.held_keys_max
    }

    /// Lowers the held-key bound so a test can reach it.
    #[cfg(test)]
    pub(crate) fn set_held_keys_max_for_test(&mut self, held_keys_max: usize) {
        assert!(held_keys_max <= SESSION_HELD_KEYS_MAX);
        self.held_keys_max = held_keys_max;
    }

    /// Inserts or replaces a session (its indexes are already set).
    pub fn put(&mut self, session: Session) {
        debug_assert!(session.modify_index >= session.create_index);
        self.bump(session.modify_index);
        self.insert(session);
    }

    /// Removes a session at `index`. Returns it if it existed.
    pub fn delete(&mut self, id: &str, index: u64) -> Option<Arc<Session>> {
        let removed = self.by_id.remove(id)?;
        self.unindex(&removed.node, id);
        self.bump(index);
        Some(removed)
    }

    /// The table a snapshot held; the node index, which snapshots do not
    /// carry, is rebuilt here.
    pub(crate) fn restore(sessions: Vec<Session>, table_index: u64) -> SessionTable {
        let mut t = SessionTable {
            table_index,
            ..Default::default()
        };
        for s in sessions {
            t.insert(s);
        }
        debug_assert_eq!(t.index_disagreement(), None);
        t
    }

    /// Inserts or replaces a session in both maps.
    fn insert(&mut self, session: Session) {
        let id = session.id.clone();
        let key = node_key(&session.node);
        if let Some(old) = self.by_id.insert(id.clone(), Arc::new(session)) {
            self.unindex(&old.node, &id);
        }
        self.by_node.entry(key).or_default().insert(id);
    }

    /// Checks the invariant between `by_id` and `by_node` (a full walk:
    /// for tests and debug checks). `None` when they agree, or what is
    /// wrong.
    pub fn index_disagreement(&self) -> Option<String> {
        let mut indexed = 0usize;
        for (key, ids) in &self.by_node {
            if ids.is_empty() {
                return Some(format!("node {key:?} has an empty set"));
            }
            for id in ids {
                match self.by_id.get(id) {
                    None => return Some(format!("node {key:?} names missing session {id:?}")),
                    Some(s) if node_key(&s.node) != *key => {
                        return Some(format!("session {id:?} of node {:?} is indexed under {key:?}", s.node))
                    }
                    Some(_) => indexed += 1,
                }
            }
        }
        if indexed != self.by_id.len() {
            return Some(format!("{} sessions, {indexed} indexed", self.by_id.len()));
        }
        None
    }

    /// Drops `id` from node `node`'s set (and the set when it empties).
    fn unindex(&mut self, node: &str, id: &str) {
        let key = node_key(node);
        let Some(ids) = self.by_node.get_mut(&key) else {
            debug_assert!(false, "session {id:?} of node {node:?} was not indexed");
            return;
        };
        let was_indexed = ids.remove(id).is_some();
        debug_assert!(was_indexed, "session {id:?} of node {node:?} was not indexed");
        if ids.is_empty() {
            self.by_node.remove(&key);
        }
    }

    fn bump(&mut self, index: u64) {
        assert!(
            index >= self.table_index,
            "session index went backwards: {} < {}",
            index,
            self.table_index
        );
        self.table_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, node: &str, index: u64) -> Session {
        Session {
            id: id.into(),
            name: String::new(),
            node: node.into(),
            lock_delay_ns: 15_000_000_000,
            behavior: SessionBehavior::Release,
            ttl: String::new(),
            node_checks: vec!["serfHealth".into()],
            service_checks: vec![SessionServiceCheck {
                id: "svc-check".into(),
                namespace: String::new(),
            }],
            create_index: index,
            modify_index: index,
        }
    }

    #[test]
    fn put_delete_and_table_index() {
        let mut t = SessionTable::default();
        t.put(session("a", "n1", 3));
        t.put(session("b", "n2", 4));
        assert_eq!(t.table_index(), 4);
        assert_eq!(t.of_node("n1").count(), 1);
        assert!(t.delete("a", 7).is_some());
        assert_eq!(t.table_index(), 7, "a destroy raises the table index");
        assert!(t.delete("a", 8).is_none());
        assert_eq!(t.table_index(), 7, "destroying a missing session changes nothing");
        assert_eq!(t.len(), 1);
    }

    fn ids_of(t: &SessionTable, node: &str) -> Vec<String> {
        t.of_node(node).map(|s| s.id.clone()).collect()
    }

    #[test]
    fn node_index_follows_puts_replacements_and_deletes() {
        let mut t = SessionTable::default();
        t.put(session("b", "n1", 1));
        t.put(session("a", "N1", 2));
        t.put(session("c", "n2", 3));
        assert_eq!(t.index_disagreement(), None);
        assert_eq!(ids_of(&t, "n1"), ["a", "b"], "one node, its name without case, by ID");
        assert_eq!(ids_of(&t, "N1"), ["a", "b"]);
        assert_eq!(t.count_of_node("n1"), 2);
        assert_eq!(ids_of(&t, "n2"), ["c"]);
        assert!(ids_of(&t, "n3").is_empty());

        // Replacing a session under another node moves it in the index.
        t.put(session("b", "n2", 4));
        assert_eq!(t.index_disagreement(), None);
        assert_eq!(ids_of(&t, "n1"), ["a"]);
        assert_eq!(ids_of(&t, "n2"), ["b", "c"]);

        t.delete("a", 5);
        assert_eq!(t.index_disagreement(), None);
        assert!(ids_of(&t, "n1").is_empty());
        assert_eq!(t.count_of_node("n1"), 0);
        assert!(!t.by_node.contains_key("n1"), "an emptied node leaves the index");
        t.delete("b", 6);
        t.delete("c", 7);
        assert!(t.by_node.is_empty());
        assert_eq!(t.index_disagreement(), None);
    }

    #[test]
    fn a_clone_keeps_its_own_index() {
        let mut t = SessionTable::default();
        t.put(session("a", "n1", 1));
        let snapshot = t.clone();
        t.delete("a", 2);
        t.put(session("b", "n1", 3));
        assert_eq!(ids_of(&snapshot, "n1"), ["a"]);
        assert_eq!(ids_of(&t, "n1"), ["b"]);
        assert_eq!(snapshot.index_disagreement(), None);
        assert_eq!(t.index_disagreement(), None);
    }

    #[test]
    fn restore_rebuilds_the_node_index() {
        let t = SessionTable::restore(
            vec![session("a", "n1", 1), session("b", "N1", 2), session("c", "n2", 3)],
            9,
        );
        assert_eq!(t.table_index(), 9);
        assert_eq!(t.index_disagreement(), None);
        assert_eq!(ids_of(&t, "n1"), ["a", "b"]);
        assert_eq!(ids_of(&t, "n2"), ["c"]);
        assert_eq!(t.held_keys_max(), SESSION_HELD_KEYS_MAX);
    }

    #[test]
    fn the_invariant_check_reports_a_stale_index() {
        let mut t = SessionTable::default();
        t.put(session("a", "n1", 1));
        let mut stale = t.clone();
        stale.by_id.remove("a");
        assert!(stale
            .index_disagreement()
            .is_some_and(|why| why.contains("missing session")));
        let mut moved = t.clone();
        moved.by_id.insert("a".into(), Arc::new(session("a", "n2", 1)));
        assert!(moved
            .index_disagreement()
            .is_some_and(|why| why.contains("indexed under")));
        let mut unindexed = t;
        unindexed.by_node.clear();
        assert!(unindexed
            .index_disagreement()
            .is_some_and(|why| why.contains("1 sessions, 0 indexed")));
    }

    #[test]
    fn depends_on_node_and_service_checks() {
        let s = session("a", "n1", 1);
        assert!(s.depends_on("n1", "serfHealth"));
        assert!(s.depends_on("n1", "svc-check"));
        assert!(!s.depends_on("n2", "serfHealth"));
        assert!(!s.depends_on("n1", "other"));
    }

    #[test]
    fn behavior_wire_names() {
        assert_eq!(SessionBehavior::parse(""), Some(SessionBehavior::Release));
        assert_eq!(SessionBehavior::parse("delete"), Some(SessionBehavior::Delete));
        assert_eq!(SessionBehavior::parse("Delete"), None);
        assert_eq!(SessionBehavior::Delete.as_str(), "delete");
    }
}
