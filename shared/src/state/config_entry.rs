//! Config entries (`/v1/config`): centrally stored configuration keyed by
//! `(Kind, Name)`.
//!
//! An entry is kept as the JSON object the control plane validated and
//! normalized (canonical field names, no indexes), so reads render it
//! without knowing every kind's schema; the parts other features read
//! (an ingress gateway's listeners, for `.ingress` DNS) are also kept
//! typed. Names compare case-insensitively, as Consul's memdb index does.
//! Every change (deletes included) raises the table index, which governs
//! both the list and the single-entry reads, as in Consul.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// `Kind` of an ingress gateway entry.
pub const KIND_INGRESS_GATEWAY: &str = "ingress-gateway";
/// `Kind` of a service-defaults entry.
pub const KIND_SERVICE_DEFAULTS: &str = "service-defaults";
/// `Kind` of the proxy-defaults entry.
pub const KIND_PROXY_DEFAULTS: &str = "proxy-defaults";
/// `Kind` of a service-resolver entry.
pub const KIND_SERVICE_RESOLVER: &str = "service-resolver";
/// The kinds this agent stores.
pub const SUPPORTED_KINDS: [&str; 4] = [
    KIND_INGRESS_GATEWAY,
    KIND_SERVICE_DEFAULTS,
    KIND_PROXY_DEFAULTS,
    KIND_SERVICE_RESOLVER,
];
/// The only name a proxy-defaults entry may have.
pub const PROXY_DEFAULTS_NAME: &str = "global";
/// The ingress listener service name that matches every service.
pub const INGRESS_WILDCARD: &str = "*";

/// Most config entries stored (all kinds together).
pub const CONFIG_ENTRIES_MAX: usize = 10_000;
/// Largest entry, in bytes of its JSON text plus kind and name.
pub const CONFIG_ENTRY_BYTES_MAX: usize = 64 * 1024;

/// One service an ingress listener exposes.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct IngressService {
    /// A service name, or [`INGRESS_WILDCARD`].
    pub name: String,
    pub hosts: Vec<String>,
}

/// One listener of an ingress gateway.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct IngressListener {
    pub port: u16,
    /// `tcp`, `http`, `http2` or `grpc`.
    pub protocol: String,
    pub services: Vec<IngressService>,
}

/// One config entry.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ConfigEntry {
    pub kind: String,
    pub name: String,
    /// The entry as a JSON object with canonical field names and without
    /// `CreateIndex`/`ModifyIndex` (readers add them).
    pub json: String,
    /// The listeners of an `ingress-gateway` entry (empty for other kinds).
    pub ingress_listeners: Vec<IngressListener>,
    /// Set by the state machine; ignored in a write.
    pub create_index: u64,
    pub modify_index: u64,
}

impl ConfigEntry {
    /// The entry's size as [`CONFIG_ENTRY_BYTES_MAX`] counts it.
    pub fn size_bytes(&self) -> usize {
        self.kind.len() + self.name.len() + self.json.len()
    }

    /// Whether an ingress gateway entry exposes `service` (case-insensitive;
    /// the wildcard matches every name).
    pub fn ingress_exposes(&self, service: &str) -> bool {
        self.ingress_listeners
            .iter()
            .flat_map(|l| l.services.iter())
            .any(|s| s.name == INGRESS_WILDCARD || s.name.eq_ignore_ascii_case(service))
    }
}

/// Why a set was refused without effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigEntryRefusal {
    /// `?cas=` did not match the stored `ModifyIndex` (0 = must not exist).
    #[error("check-and-set index does not match")]
    CasMismatch,
    /// The table holds [`CONFIG_ENTRIES_MAX`] entries already.
    #[error("too many config entries (limit {CONFIG_ENTRIES_MAX})")]
    TooMany,
    /// The entry is larger than [`CONFIG_ENTRY_BYTES_MAX`].
    #[error("config entry too large: {0} bytes exceeds the {CONFIG_ENTRY_BYTES_MAX}-byte limit")]
    TooLarge(usize),
}

/// The table key: kind and lower-cased name.
type EntryKey = (String, String);

fn key_of(kind: &str, name: &str) -> EntryKey {
    (kind.to_string(), name.to_ascii_lowercase())
}

/// Every config entry, ordered by kind then lower-cased name.
#[derive(Debug, Clone, Default)]
pub struct ConfigEntryTable {
    entries: OrdMap<EntryKey, Arc<ConfigEntry>>,
    /// Highest index of any change (writes and deletes).
    table_index: u64,
}

impl ConfigEntryTable {
    /// The entry `(kind, name)`, name compared case-insensitively.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Arc<ConfigEntry>> {
        self.entries.get(&key_of(kind, name))
    }

    /// The entries of one kind, by lower-cased name.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Arc<ConfigEntry>> + 'a {
        let from = (kind.to_string(), String::new());
        self.entries
            .range(from..)
            .take_while(move |((k, _), _)| k == kind)
            .map(|(_, e)| e)
    }

    /// Every entry, by kind then lower-cased name.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<ConfigEntry>> {
        self.entries.values()
    }

    /// The names of the ingress gateways whose entry exposes `service`.
    pub fn ingress_gateways_for<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.of_kind(KIND_INGRESS_GATEWAY)
            .filter(move |e| e.ingress_exposes(service))
            .map(|e| e.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn table_index(&self) -> u64 {
        self.table_index
    }

    /// The state machine's set at raft `index`: checks the limits and the
    /// check-and-set index, then stores the entry (keeping `CreateIndex`
    /// of an entry it replaces). Returns the stored entry for the delta.
    pub fn apply_set(
        &mut self,
        entry: &ConfigEntry,
        cas: Option<u64>,
        index: u64,
    ) -> Result<ConfigEntry, ConfigEntryRefusal> {
        let size = entry.size_bytes();
        if size > CONFIG_ENTRY_BYTES_MAX {
            return Err(ConfigEntryRefusal::TooLarge(size));
        }
        let existing = self.get(&entry.kind, &entry.name);
        if let Some(expected) = cas {
            if existing.map_or(0, |e| e.modify_index) != expected {
                return Err(ConfigEntryRefusal::CasMismatch);
            }
        }
        if existing.is_none() && self.entries.len() >= CONFIG_ENTRIES_MAX {
            return Err(ConfigEntryRefusal::TooMany);
        }
        let stored = ConfigEntry {
            create_index: existing.map_or(index, |e| e.create_index),
            modify_index: index,
            ..entry.clone()
        };
        self.put(stored.clone());
        Ok(stored)
    }

    /// The state machine's delete at raft `index`. With `cas`, deletes only
    /// when the entry exists with that `ModifyIndex` (0 never deletes).
    /// Returns `(answer, deleted)`: the `true`/`false` a CAS delete
    /// answers, and whether an entry went away.
    pub fn apply_delete(&mut self, kind: &str, name: &str, cas: Option<u64>, index: u64) -> (bool, bool) {
        let current = self.get(kind, name).map(|e| e.modify_index);
        match (cas, current) {
            (Some(expected), Some(modify)) if expected != 0 && expected == modify => {
                (true, self.delete(kind, name, index))
            }
            (Some(_), _) => (false, false),
            (None, _) => (true, self.delete(kind, name, index)),
        }
    }

    /// Inserts or replaces an entry whose indexes are set (replicas apply
    /// deltas with this).
    pub fn put(&mut self, entry: ConfigEntry) {
        assert!(
            entry.modify_index >= entry.create_index,
            "config entry ModifyIndex {} below CreateIndex {}",
            entry.modify_index,
            entry.create_index
        );
        self.bump(entry.modify_index);
        self.entries.insert(key_of(&entry.kind, &entry.name), Arc::new(entry));
    }

    /// Removes an entry at `index`. Returns whether it existed.
    pub fn delete(&mut self, kind: &str, name: &str, index: u64) -> bool {
        let removed = self.entries.remove(&key_of(kind, name)).is_some();
        if removed {
            self.bump(index);
        }
        removed
    }

    pub(crate) fn restore(entries: Vec<ConfigEntry>, table_index: u64) -> Self {
        let mut t = ConfigEntryTable {
            table_index,
            ..Default::default()
        };
        for e in entries {
            t.entries.insert(key_of(&e.kind, &e.name), Arc::new(e));
        }
        t
    }

    fn bump(&mut self, index: u64) {
        assert!(
            index >= self.table_index,
            "config entry index went backwards: {} < {}",
            index,
            self.table_index
        );
        self.table_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(name: &str, services: &[&str]) -> ConfigEntry {
        ConfigEntry {
            kind: KIND_INGRESS_GATEWAY.into(),
            name: name.into(),
            json: format!("{{\"Kind\":\"ingress-gateway\",\"Name\":\"{name}\"}}"),
            ingress_listeners: vec![IngressListener {
                port: 8080,
                protocol: "tcp".into(),
                services: services
                    .iter()
                    .map(|s| IngressService {
                        name: s.to_string(),
                        hosts: Vec::new(),
                    })
                    .collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn set_keeps_create_index_and_cas_guards() {
        let mut t = ConfigEntryTable::default();
        let stored = t.apply_set(&ingress("gw", &["web"]), Some(0), 5).unwrap();
        assert_eq!((stored.create_index, stored.modify_index), (5, 5));
        assert_eq!(
            t.apply_set(&ingress("gw", &["web"]), Some(0), 6),
            Err(ConfigEntryRefusal::CasMismatch),
            "cas=0 only creates"
        );
        assert_eq!(
            t.apply_set(&ingress("GW", &["db"]), Some(4), 7),
            Err(ConfigEntryRefusal::CasMismatch)
        );
        let updated = t.apply_set(&ingress("GW", &["db"]), Some(5), 8).unwrap();
        assert_eq!((updated.create_index, updated.modify_index), (5, 8));
        assert_eq!(t.len(), 1, "names compare case-insensitively");
        assert_eq!(t.table_index(), 8);
        assert_eq!(t.get(KIND_INGRESS_GATEWAY, "gw").unwrap().name, "GW");
    }

    #[test]
    fn delete_plain_and_cas() {
        let mut t = ConfigEntryTable::default();
        t.apply_set(&ingress("gw", &["web"]), None, 3).unwrap();
        assert_eq!(t.apply_delete(KIND_INGRESS_GATEWAY, "gw", Some(0), 4), (false, false));
        assert_eq!(t.apply_delete(KIND_INGRESS_GATEWAY, "gw", Some(2), 4), (false, false));
        assert_eq!(t.apply_delete(KIND_INGRESS_GATEWAY, "gw", Some(3), 4), (true, true));
        assert_eq!(t.table_index(), 4, "a delete raises the table index");
        assert_eq!(t.apply_delete(KIND_INGRESS_GATEWAY, "gw", None, 5), (true, false));
        assert_eq!(t.table_index(), 4, "deleting nothing changes nothing");
        assert!(t.is_empty());
    }

    #[test]
    fn lists_by_kind_and_finds_gateways_of_a_service() {
        let mut t = ConfigEntryTable::default();
        t.apply_set(&ingress("gw-b", &["web"]), None, 1).unwrap();
        t.apply_set(&ingress("gw-a", &["*"]), None, 2).unwrap();
        t.apply_set(&ingress("gw-c", &["db"]), None, 3).unwrap();
        let other = ConfigEntry {
            kind: KIND_SERVICE_DEFAULTS.into(),
            name: "web".into(),
            json: "{}".into(),
            ..Default::default()
        };
        t.apply_set(&other, None, 4).unwrap();
        let names: Vec<_> = t.of_kind(KIND_INGRESS_GATEWAY).map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["gw-a", "gw-b", "gw-c"]);
        assert_eq!(t.of_kind(KIND_SERVICE_DEFAULTS).count(), 1);
        assert_eq!(t.of_kind("ingress").count(), 0, "a kind prefix is not a kind");
        let gateways: Vec<_> = t.ingress_gateways_for("WEB").collect();
        assert_eq!(gateways, ["gw-a", "gw-b"]);
        let gateways: Vec<_> = t.ingress_gateways_for("api").collect();
        assert_eq!(gateways, ["gw-a"], "the wildcard exposes every service");
    }

    #[test]
    fn replicas_and_snapshots_carry_the_table() {
        use crate::command::{Command, CommandResult};
        use crate::state::State;
        let mut primary = State::default();
        let mut replica = State::default();
        let writes = [
            Command::ConfigEntrySet {
                entry: ingress("gw", &["web"]),
                cas: None,
            },
            Command::ConfigEntrySet {
                entry: ingress("gw", &["db"]),
                cas: Some(1),
            },
            Command::ConfigEntrySet {
                entry: ingress("other", &[]),
                cas: Some(7),
            },
            Command::ConfigEntryDelete {
                kind: KIND_INGRESS_GATEWAY.into(),
                name: "nope".into(),
                cas: None,
            },
        ];
        let mut results = Vec::new();
        for (i, command) in writes.iter().enumerate() {
            let (result, delta) = primary.apply_command(i as u64 + 1, command);
            assert!(replica.apply_delta(&delta));
            results.push(result);
        }
        assert_eq!(
            results,
            [
                CommandResult::Bool(true),
                CommandResult::Bool(true),
                CommandResult::Bool(false),
                CommandResult::Bool(true)
            ]
        );
        let on_replica = replica.config_entries.get(KIND_INGRESS_GATEWAY, "gw").unwrap();
        assert_eq!((on_replica.create_index, on_replica.modify_index), (1, 2));
        assert!(on_replica.ingress_exposes("db") && !on_replica.ingress_exposes("web"));
        let restored = crate::snapshot::decode(&crate::snapshot::encode(&primary)).unwrap();
        assert_eq!(restored.config_entries.table_index(), 2);
        assert_eq!(
            restored
                .config_entries
                .get(KIND_INGRESS_GATEWAY, "gw")
                .map(|e| (**e).clone()),
            Some((**on_replica).clone())
        );
        let mut big = ingress("big", &[]);
        big.json = "x".repeat(CONFIG_ENTRY_BYTES_MAX);
        let (result, delta) = primary.apply_command(9, &Command::ConfigEntrySet { entry: big, cas: None });
        assert!(matches!(result, CommandResult::Failed(_)), "{result:?}");
        assert!(delta.ops.is_empty(), "a refused write changes nothing");
    }

    #[test]
    fn limits_refuse_without_effect() {
        let mut t = ConfigEntryTable::default();
        let mut big = ingress("gw", &["web"]);
        big.json = "x".repeat(CONFIG_ENTRY_BYTES_MAX);
        assert!(matches!(
            t.apply_set(&big, None, 1),
            Err(ConfigEntryRefusal::TooLarge(_))
        ));
        for i in 0..CONFIG_ENTRIES_MAX {
            t.apply_set(&ingress(&format!("gw-{i}"), &[]), None, i as u64 + 1)
                .unwrap();
        }
        let index = CONFIG_ENTRIES_MAX as u64 + 1;
        assert_eq!(
            t.apply_set(&ingress("one-more", &[]), None, index),
            Err(ConfigEntryRefusal::TooMany)
        );
        assert!(
            t.apply_set(&ingress("gw-0", &["db"]), None, index).is_ok(),
            "replacing an entry is allowed at the limit"
        );
        assert_eq!(t.len(), CONFIG_ENTRIES_MAX);
    }
}
