//! Sessions (`/v1/session/*`): the table of live sessions.
//!
//! A session ties KV locks to the health of a node and some checks. The
//! rules that create, invalidate and renew sessions live in the state
//! machine (`session_apply.rs`); this file is the table the state and
//! every replica keep, and the record a delta carries.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

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

/// Live sessions by ID, with the index of the table's last change.
#[derive(Debug, Clone, Default)]
pub struct SessionTable {
    by_id: OrdMap<String, Arc<Session>>,
    /// Highest index of any session change (creates and destroys).
    table_index: u64,
}

impl SessionTable {
    pub fn get(&self, id: &str) -> Option<&Arc<Session>> {
        self.by_id.get(id)
    }

    /// Every live session, by ID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.by_id.values()
    }

    /// The sessions of one node, by ID.
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Arc<Session>> + 'a {
        self.by_id.values().filter(move |s| s.node == node)
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

    /// Inserts or replaces a session (its indexes are already set).
    pub fn put(&mut self, session: Session) {
        debug_assert!(session.modify_index >= session.create_index);
        self.bump(session.modify_index);
        self.by_id.insert(session.id.clone(), Arc::new(session));
    }

    /// Removes a session at `index`. Returns it if it existed.
    pub fn delete(&mut self, id: &str, index: u64) -> Option<Arc<Session>> {
        let removed = self.by_id.remove(id)?;
        self.bump(index);
        Some(removed)
    }

    pub(crate) fn restore(sessions: Vec<Session>, table_index: u64) -> SessionTable {
        let mut t = SessionTable {
            table_index,
            ..Default::default()
        };
        for s in sessions {
            t.by_id.insert(s.id.clone(), Arc::new(s));
        }
        t
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
