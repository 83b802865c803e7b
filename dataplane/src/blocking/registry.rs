//! The per-core index from watched items to parked queries (pure).
//!
//! A delta wakes exactly the queries whose items it touched: watchers of a
//! written key; watchers of every prefix of that key (one hash lookup per
//! distinct registered prefix length, so O(key length) at most); for a
//! deleted tree, the key and prefix watchers under it and the prefix
//! watchers above it; node watchers on node changes; watchers of a service
//! when that service's results changed, table watchers when their table
//! changed; `Everything` watchers whenever the index moves. Unrelated
//! changes wake nobody.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::FxBuildHasher;

use crate::blocking::changes::ChangeSet;
use crate::blocking::watch::{WatchItem, WatchSet};

/// Identifies one parked query. Stale ids (of deregistered queries) are
/// recognised and ignored: the slot carries a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParkId {
    slot: u32,
    generation: u32,
}

/// The registry is at its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many parked blocking queries on this core (limit {capacity})")]
pub struct RegistryFull {
    /// The limit that was hit.
    pub capacity: usize,
}

struct Entry<T> {
    items: Vec<WatchItem>,
    payload: T,
    /// The wake round that last reported this entry (de-duplication).
    round: u64,
}

struct Slot<T> {
    generation: u32,
    entry: Option<Entry<T>>,
}

/// The parked queries of one watched item. Ids are assigned here, never
/// by clients, so a fast non-keyed hash is safe; the maps keyed by
/// client-chosen names keep the default (keyed) hasher.
type IdSet = HashSet<ParkId, FxBuildHasher>;

/// Parked queries indexed by what they watch. `T` is the caller's payload
/// (the IO side keeps a waker there).
pub struct WatchRegistry<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
    by_key: HashMap<String, IdSet>,
    by_prefix: HashMap<String, IdSet>,
    /// How many registered prefixes have each length (bytes).
    prefix_lengths: BTreeMap<usize, usize>,
    nodes: IdSet,
    /// Lower-cased service name → its watchers.
    by_service: HashMap<String, IdSet>,
    services_table: IdSet,
    checks_table: IdSet,
    events: IdSet,
    sessions: IdSet,
    prepared_queries: IdSet,
    config_entries: IdSet,
    everything: IdSet,
    round: u64,
}

impl<T> WatchRegistry<T> {
    /// An empty registry holding at most `capacity` parked queries.
    pub fn new(capacity: usize) -> WatchRegistry<T> {
        WatchRegistry {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            capacity,
            by_key: HashMap::new(),
            by_prefix: HashMap::new(),
            prefix_lengths: BTreeMap::new(),
            nodes: IdSet::default(),
            by_service: HashMap::new(),
            services_table: IdSet::default(),
            checks_table: IdSet::default(),
            events: IdSet::default(),
            sessions: IdSet::default(),
            prepared_queries: IdSet::default(),
            config_entries: IdSet::default(),
            everything: IdSet::default(),
            round: 0,
        }
    }

    /// Parked queries right now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most queries this registry holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Parks a query under every item of `watch`. An empty set watches
    /// everything (the safe reading of "I do not know what I depend on").
    pub fn register(&mut self, watch: &WatchSet, payload: T) -> Result<ParkId, RegistryFull> {
        if self.len >= self.capacity {
            return Err(RegistryFull {
                capacity: self.capacity,
            });
        }
        let items = if watch.items.is_empty() {
            vec![WatchItem::Everything]
        } else {
            watch.items.clone()
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot as usize].generation;
        let id = ParkId { slot, generation };
        for item in &items {
            match item {
                WatchItem::KvKey(k) => {
                    self.by_key.entry(k.clone()).or_default().insert(id);
                }
                WatchItem::KvPrefix(p) => {
                    let set = self.by_prefix.entry(p.clone()).or_default();
                    if set.insert(id) {
                        *self.prefix_lengths.entry(p.len()).or_default() += 1;
                    }
                }
                WatchItem::Nodes => {
                    self.nodes.insert(id);
                }
                WatchItem::Service(name) | WatchItem::Connect(name) => {
                    debug_assert!(
                        !name.bytes().any(|b| b.is_ascii_uppercase()),
                        "service watch names are lower-cased"
                    );
                    self.by_service.entry(name.clone()).or_default().insert(id);
                }
                WatchItem::Services => {
                    self.services_table.insert(id);
                }
                WatchItem::Checks => {
                    self.checks_table.insert(id);
                }
                WatchItem::Events => {
                    self.events.insert(id);
                }
                WatchItem::Sessions => {
                    self.sessions.insert(id);
                }
                WatchItem::PreparedQueries => {
                    self.prepared_queries.insert(id);
                }
                WatchItem::ConfigEntries => {
                    self.config_entries.insert(id);
                }
                WatchItem::Everything => {
                    self.everything.insert(id);
                }
            }
        }
        let s = &mut self.slots[slot as usize];
        debug_assert!(s.entry.is_none(), "a free slot is empty");
        s.entry = Some(Entry {
            items,
            payload,
            round: 0,
        });
        self.len += 1;
        Ok(id)
    }

    /// The payload of a parked query.
    pub fn get_mut(&mut self, id: ParkId) -> Option<&mut T> {
        match self.slots.get_mut(id.slot as usize) {
            Some(s) if s.generation == id.generation => s.entry.as_mut().map(|e| &mut e.payload),
            _ => None,
        }
    }

    /// Removes a parked query and returns its payload (`None` if it was
    /// already gone).
    pub fn deregister(&mut self, id: ParkId) -> Option<T> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.slot);
        self.len -= 1;
        for item in &entry.items {
            match item {
                WatchItem::KvKey(k) => {
                    remove_from(&mut self.by_key, k, id);
                }
                WatchItem::KvPrefix(p) => {
                    if remove_from(&mut self.by_prefix, p, id) {
                        let n = self.prefix_lengths.get_mut(&p.len()).expect("counted prefix length");
                        *n -= 1;
                        if *n == 0 {
                            self.prefix_lengths.remove(&p.len());
                        }
                    }
                }
                WatchItem::Nodes => {
                    self.nodes.remove(&id);
                }
                WatchItem::Service(name) | WatchItem::Connect(name) => {
                    remove_from(&mut self.by_service, name, id);
                }
                WatchItem::Services => {
                    self.services_table.remove(&id);
                }
                WatchItem::Checks => {
                    self.checks_table.remove(&id);
                }
                WatchItem::Events => {
                    self.events.remove(&id);
                }
                WatchItem::Sessions => {
                    self.sessions.remove(&id);
                }
                WatchItem::PreparedQueries => {
                    self.prepared_queries.remove(&id);
                }
                WatchItem::ConfigEntries => {
                    self.config_entries.remove(&id);
                }
                WatchItem::Everything => {
                    self.everything.remove(&id);
                }
            }
        }
        Some(entry.payload)
    }

    /// Appends to `out` every parked query `changes` affects, each once.
    /// The queries stay registered; the caller wakes them and they
    /// deregister themselves.
    pub fn affected(&mut self, changes: &ChangeSet, out: &mut Vec<ParkId>) {
        if changes.is_empty() || self.len == 0 {
            return;
        }
        self.round += 1;
        let round = self.round;
        let mut hits: Vec<ParkId> = Vec::new();
        if changes.wake_all {
            for (i, s) in self.slots.iter().enumerate() {
                if s.entry.is_some() {
                    hits.push(ParkId {
                        slot: i as u32,
                        generation: s.generation,
                    });
                }
            }
        } else {
            for key in &changes.kv_keys {
                if let Some(set) = self.by_key.get(key.as_str()) {
                    hits.extend(set.iter().copied());
                }
                self.prefixes_of(key, &mut hits);
            }
            for tree in &changes.kv_trees {
                for (k, set) in &self.by_key {
                    if k.starts_with(tree.as_str()) {
                        hits.extend(set.iter().copied());
                    }
                }
                for (p, set) in &self.by_prefix {
                    if p.starts_with(tree.as_str()) {
                        hits.extend(set.iter().copied());
                    }
                }
                self.prefixes_of(tree, &mut hits);
            }
            if changes.nodes {
                hits.extend(self.nodes.iter().copied());
            }
            if changes.all_services {
                for set in self.by_service.values() {
                    hits.extend(set.iter().copied());
                }
            } else {
                for name in &changes.services {
                    if let Some(set) = self.by_service.get(name.as_str()) {
                        hits.extend(set.iter().copied());
                    }
                }
            }
            if changes.services_table {
                hits.extend(self.services_table.iter().copied());
            }
            if changes.checks_table {
                hits.extend(self.checks_table.iter().copied());
            }
            if changes.events {
                hits.extend(self.events.iter().copied());
            }
            if changes.sessions {
                hits.extend(self.sessions.iter().copied());
            }
            if changes.prepared_queries {
                hits.extend(self.prepared_queries.iter().copied());
            }
            if changes.config_entries {
                hits.extend(self.config_entries.iter().copied());
            }
            if !changes.is_empty() {
                hits.extend(self.everything.iter().copied());
            }
        }
        for id in hits {
            if let Some(Slot { entry: Some(entry), .. }) = self.slots.get_mut(id.slot as usize) {
                if entry.round != round {
                    entry.round = round;
                    out.push(id);
                }
            }
        }
    }

    /// Prefix watchers whose prefix is a prefix of `key` (including the
    /// empty prefix and `key` itself).
    fn prefixes_of(&self, key: &str, hits: &mut Vec<ParkId>) {
        for (&len, _) in self.prefix_lengths.range(..=key.len()) {
            if !key.is_char_boundary(len) {
                continue;
            }
            if let Some(set) = self.by_prefix.get(&key[..len]) {
                hits.extend(set.iter().copied());
            }
        }
    }
}

/// Removes `id` from `map[name]`, dropping the set when it empties. Returns
/// whether it was there.
fn remove_from(map: &mut HashMap<String, IdSet>, name: &str, id: ParkId) -> bool {
    let Some(set) = map.get_mut(name) else {
        return false;
    };
    let removed = set.remove(&id);
    if set.is_empty() {
        map.remove(name);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: &[&str]) -> ChangeSet {
        ChangeSet {
            index_advanced: true,
            kv_keys: keys.iter().map(|k| k.to_string()).collect(),
            ..ChangeSet::default()
        }
    }

    fn woken(reg: &mut WatchRegistry<&'static str>, changes: &ChangeSet) -> Vec<&'static str> {
        let mut ids = Vec::new();
        reg.affected(changes, &mut ids);
        let mut names: Vec<&'static str> = ids.into_iter().map(|id| *reg.get_mut(id).unwrap()).collect();
        names.sort();
        names
    }

    fn registry() -> WatchRegistry<&'static str> {
        let mut r = WatchRegistry::new(100);
        r.register(&WatchSet::one(WatchItem::KvKey("a/b/c".into())), "key-abc")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvKey("a/b".into())), "key-ab")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvPrefix("a/".into())), "prefix-a")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvPrefix("a/b/c/d".into())), "prefix-abcd")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvPrefix("".into())), "prefix-all")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvPrefix("z".into())), "prefix-z")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::Nodes), "nodes").unwrap();
        r.register(&WatchSet::one(WatchItem::Everything), "everything").unwrap();
        r
    }

    fn catalog_registry() -> WatchRegistry<&'static str> {
        let mut r = WatchRegistry::new(100);
        r.register(&WatchSet::one(WatchItem::Service("web".into())), "web")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::Service("web".into())), "web-2")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::Service("db".into())), "db")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::Services), "services").unwrap();
        r.register(&WatchSet::one(WatchItem::Checks), "checks").unwrap();
        let node_view = WatchSet {
            items: vec![WatchItem::Nodes, WatchItem::Services],
        };
        r.register(&node_view, "node-view").unwrap();
        r.register(&WatchSet::one(WatchItem::KvKey("web".into())), "kv-web")
            .unwrap();
        r
    }

    #[test]
    fn service_change_wakes_that_service_only() {
        let mut r = catalog_registry();
        let changes = ChangeSet {
            index_advanced: true,
            services: vec!["web".into()],
            checks_table: true,
            ..ChangeSet::default()
        };
        assert_eq!(woken(&mut r, &changes), vec!["checks", "web", "web-2"]);
        let changes = ChangeSet {
            index_advanced: true,
            services: vec!["db".into()],
            services_table: true,
            ..ChangeSet::default()
        };
        assert_eq!(woken(&mut r, &changes), vec!["db", "node-view", "services"]);
    }

    #[test]
    fn unresolved_catalog_change_wakes_every_service_watcher() {
        let mut r = catalog_registry();
        let changes = ChangeSet {
            index_advanced: true,
            all_services: true,
            ..ChangeSet::default()
        };
        assert_eq!(woken(&mut r, &changes), vec!["db", "web", "web-2"]);
    }

    #[test]
    fn service_watchers_deregister_cleanly() {
        let mut r = WatchRegistry::new(10);
        let a = r
            .register(&WatchSet::one(WatchItem::Service("web".into())), "a")
            .unwrap();
        let b = r.register(&WatchSet::one(WatchItem::Checks), "b").unwrap();
        let c = r.register(&WatchSet::one(WatchItem::Services), "c").unwrap();
        for id in [a, b, c] {
            r.deregister(id);
        }
        assert!(r.is_empty());
        assert!(r.by_service.is_empty() && r.checks_table.is_empty() && r.services_table.is_empty());
        let all = ChangeSet {
            index_advanced: true,
            services: vec!["web".into()],
            services_table: true,
            checks_table: true,
            ..ChangeSet::default()
        };
        assert!(woken(&mut r, &all).is_empty());
    }

    #[test]
    fn key_write_wakes_that_key_and_its_prefixes_only() {
        let mut r = registry();
        assert_eq!(
            woken(&mut r, &keys(&["a/b/c"])),
            vec!["everything", "key-abc", "prefix-a", "prefix-all"]
        );
        assert_eq!(woken(&mut r, &keys(&["q"])), vec!["everything", "prefix-all"]);
    }

    #[test]
    fn deleted_tree_wakes_watchers_under_and_above_it() {
        let mut r = registry();
        let changes = ChangeSet {
            index_advanced: true,
            kv_trees: vec!["a/b".into()],
            ..ChangeSet::default()
        };
        assert_eq!(
            woken(&mut r, &changes),
            vec![
                "everything",
                "key-ab",
                "key-abc",
                "prefix-a",
                "prefix-abcd",
                "prefix-all"
            ]
        );
    }

    #[test]
    fn node_change_wakes_node_watchers_not_kv_watchers() {
        let mut r = registry();
        let changes = ChangeSet {
            index_advanced: true,
            nodes: true,
            ..ChangeSet::default()
        };
        assert_eq!(woken(&mut r, &changes), vec!["everything", "nodes"]);
    }

    #[test]
    fn noop_index_advance_wakes_only_everything_watchers() {
        let mut r = registry();
        let changes = ChangeSet {
            index_advanced: true,
            ..ChangeSet::default()
        };
        assert_eq!(woken(&mut r, &changes), vec!["everything"]);
        assert!(
            woken(&mut r, &ChangeSet::default()).is_empty(),
            "an empty set wakes nobody"
        );
    }

    #[test]
    fn wake_all_reports_every_query_once() {
        let mut r = registry();
        let all = woken(&mut r, &ChangeSet::everything());
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn a_query_watching_several_matching_items_is_reported_once() {
        let mut r = WatchRegistry::new(10);
        let both = WatchSet {
            items: vec![
                WatchItem::KvKey("k".into()),
                WatchItem::KvPrefix("k".into()),
                WatchItem::Everything,
            ],
        };
        r.register(&both, "both").unwrap();
        assert_eq!(woken(&mut r, &keys(&["k", "k"])), vec!["both"]);
    }

    #[test]
    fn empty_watch_set_watches_everything() {
        let mut r = WatchRegistry::new(10);
        r.register(&WatchSet::default(), "blank").unwrap();
        assert_eq!(woken(&mut r, &keys(&["anything"])), vec!["blank"]);
    }

    #[test]
    fn deregistered_queries_are_not_woken_and_indexes_are_cleaned() {
        let mut r = WatchRegistry::new(10);
        let a = r
            .register(&WatchSet::one(WatchItem::KvPrefix("p/".into())), "a")
            .unwrap();
        let b = r.register(&WatchSet::one(WatchItem::KvKey("p/x".into())), "b").unwrap();
        assert_eq!(r.deregister(a), Some("a"));
        assert_eq!(r.deregister(a), None, "second deregistration is a no-op");
        assert_eq!(woken(&mut r, &keys(&["p/x"])), vec!["b"]);
        assert_eq!(r.deregister(b), Some("b"));
        assert!(r.is_empty());
        assert!(r.by_key.is_empty() && r.by_prefix.is_empty() && r.prefix_lengths.is_empty());
    }

    #[test]
    fn stale_id_does_not_reach_a_reused_slot() {
        let mut r = WatchRegistry::new(10);
        let old = r.register(&WatchSet::one(WatchItem::Nodes), "old").unwrap();
        r.deregister(old);
        let new = r.register(&WatchSet::one(WatchItem::Nodes), "new").unwrap();
        assert_eq!(old.slot, new.slot, "the slot is reused");
        assert!(r.get_mut(old).is_none());
        assert_eq!(r.deregister(old), None);
        assert_eq!(r.get_mut(new).copied(), Some("new"));
    }

    #[test]
    fn capacity_is_enforced_with_an_error() {
        let mut r = WatchRegistry::new(2);
        let a = r.register(&WatchSet::one(WatchItem::Nodes), 1).unwrap();
        r.register(&WatchSet::one(WatchItem::Nodes), 2).unwrap();
        let err = r.register(&WatchSet::one(WatchItem::Nodes), 3).unwrap_err();
        assert_eq!(err, RegistryFull { capacity: 2 });
        assert!(err.to_string().contains("limit 2"));
        r.deregister(a);
        assert!(r.register(&WatchSet::one(WatchItem::Nodes), 4).is_ok(), "room again");
    }

    #[test]
    fn many_watchers_of_one_key_all_wake_and_others_do_not() {
        let mut r = WatchRegistry::new(20_000);
        for _ in 0..10_000 {
            r.register(&WatchSet::one(WatchItem::KvKey("hot".into())), 1u8).unwrap();
        }
        for i in 0..5_000 {
            r.register(&WatchSet::one(WatchItem::KvKey(format!("cold/{i}"))), 2u8)
                .unwrap();
        }
        let mut out = Vec::new();
        r.affected(&keys(&["hot"]), &mut out);
        assert_eq!(out.len(), 10_000);
        for id in &out {
            assert_eq!(*r.get_mut(*id).unwrap(), 1u8);
        }
        for id in out {
            r.deregister(id);
        }
        assert_eq!(r.len(), 5_000);
    }

    #[test]
    fn multibyte_keys_only_probe_char_boundaries() {
        let mut r = WatchRegistry::new(10);
        r.register(&WatchSet::one(WatchItem::KvPrefix("é".into())), "accent")
            .unwrap();
        r.register(&WatchSet::one(WatchItem::KvPrefix("x".into())), "one-byte")
            .unwrap();
        assert_eq!(woken(&mut r, &keys(&["éa"])), vec!["accent"]);
    }
}
