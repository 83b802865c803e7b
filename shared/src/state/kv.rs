//! The KV table: live entries plus tombstones of deleted keys, so that
//! prefix indexes include deletes (a delete must wake prefix watchers).

use std::ops::Bound;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

/// One key as Consul's `DirEntry` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    pub lock_index: u64,
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Live keys and the tombstones of deleted ones, both ordered by key so a
/// prefix is a contiguous range.
#[derive(Debug, Clone, Default)]
pub struct KvTable {
    /// Keys are `Arc<str>`: the first write after an O(1) clone copies the
    /// touched path of the tree, and copying a node then bumps refcounts
    /// instead of cloning every key string in it.
    entries: OrdMap<Arc<str>, Arc<KvEntry>>,
    tombstones: OrdMap<Arc<str>, u64>,
    /// Highest index of any KV change (writes and deletes).
    table_index: u64,
    /// The keys each session holds (`Session` set), kept by `put` and the
    /// deletes so that invalidating a session finds its keys without a scan.
    locks: OrdMap<Arc<str>, OrdSet<Arc<str>>>,
}

impl KvTable {
    pub fn get(&self, key: &str) -> Option<&Arc<KvEntry>> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    pub fn table_index(&self) -> u64 {
        self.table_index
    }

    /// Live entries whose key starts with `prefix`, in key order.
    pub fn range_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Arc<KvEntry>> + 'a {
        self.entries
            .range::<_, str>(from(prefix))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }

    /// The index that governs a single-key read: the key's `ModifyIndex`, or
    /// the table index when it is missing.
    pub fn key_index(&self, key: &str) -> u64 {
        match self.entries.get(key) {
            Some(e) => e.modify_index,
            None => self.table_index,
        }
    }

    /// Highest `ModifyIndex` under `prefix`, tombstones included; the table
    /// index when nothing under the prefix was ever written.
    pub fn prefix_index(&self, prefix: &str) -> u64 {
        let live = self.range_prefix(prefix).map(|e| e.modify_index).max().unwrap_or(0);
        let dead = self
            .tombstones
            .range::<_, str>(from(prefix))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        match live.max(dead) {
            0 => self.table_index,
            i => i,
        }
    }

    /// Inserts or replaces an entry (its indexes are already set).
    pub fn put(&mut self, entry: KvEntry) {
        debug_assert!(entry.modify_index >= entry.create_index);
        self.bump(entry.modify_index);
        let key: Arc<str> = match self.entries.get_key_value(entry.key.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(entry.key.as_str()),
        };
        self.tombstones.remove(entry.key.as_str());
        let old_session = self.entries.get(&key).and_then(|e| e.session.clone());
        if old_session != entry.session {
            if let Some(old) = &old_session {
                self.unlock_key(old, &key);
            }
            if let Some(new) = &entry.session {
                self.locks
                    .entry(Arc::from(new.as_str()))
                    .or_default()
                    .insert(key.clone());
            }
        }
        self.entries.insert(key, Arc::new(entry));
    }

    /// The keys `session` holds, in key order.
    pub fn keys_held_by<'a>(&'a self, session: &str) -> impl Iterator<Item = &'a Arc<str>> + 'a {
        self.locks.get(session).into_iter().flat_map(|keys| keys.iter())
    }

    /// How many keys `session` holds.
    pub fn held_count(&self, session: &str) -> usize {
        self.locks.get(session).map_or(0, |keys| keys.len())
    }

    fn unlock_key(&mut self, session: &str, key: &str) {
        if let Some(keys) = self.locks.get_mut(session) {
            keys.remove(key);
            if keys.is_empty() {
                self.locks.remove(session);
            }
        }
    }

    /// Deletes one key at `index`, leaving a tombstone. Returns whether it existed.
    pub fn delete(&mut self, key: &str, index: u64) -> bool {
        match self.entries.remove_with_key(key) {
            Some((k, old)) => {
                if let Some(session) = &old.session {
                    self.unlock_key(session, &k);
                }
                self.bump(index);
                self.tombstones.insert(k, index);
                true
            }
            None => false,
        }
    }

    /// Deletes every key under `prefix` at `index`. Returns how many existed.
    pub fn delete_prefix(&mut self, prefix: &str, index: u64) -> usize {
        let keys: Vec<Arc<str>> = self
            .entries
            .range::<_, str>(from(prefix))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            if let Some(old) = self.entries.remove(k.as_ref()) {
                if let Some(session) = &old.session {
                    self.unlock_key(session, k);
                }
            }
            self.tombstones.insert(k.clone(), index);
        }
        if !keys.is_empty() {
            self.bump(index);
        }
        keys.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<KvEntry>> {
        self.entries.values()
    }

    pub fn tombstones(&self) -> impl Iterator<Item = (&Arc<str>, &u64)> {
        self.tombstones.iter()
    }

    pub(crate) fn restore(entries: Vec<KvEntry>, tombstones: Vec<(String, u64)>, table_index: u64) -> Self {
        let mut t = KvTable {
            table_index,
            ..Default::default()
        };
        for e in entries {
            let key: Arc<str> = Arc::from(e.key.as_str());
            if let Some(session) = &e.session {
                t.locks
                    .entry(Arc::from(session.as_str()))
                    .or_default()
                    .insert(key.clone());
            }
            t.entries.insert(key, Arc::new(e));
        }
        for (k, i) in tombstones {
            t.tombstones.insert(Arc::from(k), i);
        }
        t
    }

    fn bump(&mut self, index: u64) {
        assert!(
            index >= self.table_index,
            "KV index went backwards: {} < {}",
            index,
            self.table_index
        );
        self.table_index = index;
    }
}

/// The range bounds of every key at or after `prefix`.
fn from(prefix: &str) -> (Bound<&str>, Bound<&str>) {
    (Bound::Included(prefix), Bound::Unbounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, index: u64) -> KvEntry {
        KvEntry {
            key: key.into(),
            value: b"v".to_vec(),
            flags: 0,
            lock_index: 0,
            session: None,
            create_index: index,
            modify_index: index,
        }
    }

    #[test]
    fn prefix_index_includes_tombstones() {
        let mut t = KvTable::default();
        t.put(entry("a/1", 5));
        t.put(entry("a/2", 6));
        t.put(entry("b/1", 7));
        assert_eq!(t.prefix_index("a/"), 6);
        assert!(t.delete("a/1", 9));
        assert_eq!(t.prefix_index("a/"), 9, "a delete under the prefix raises its index");
        assert_eq!(t.key_index("a/1"), 9, "missing key reports the table index");
        assert_eq!(t.prefix_index("zzz/"), 9, "untouched prefix reports the table index");
    }

    #[test]
    fn delete_prefix_counts_and_tombstones() {
        let mut t = KvTable::default();
        for (i, k) in ["x/a", "x/b", "xy", "y"].iter().enumerate() {
            t.put(entry(k, i as u64 + 1));
        }
        assert_eq!(t.delete_prefix("x/", 10), 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.tombstone_count(), 2);
        assert_eq!(t.delete_prefix("nothing/", 11), 0);
        assert_eq!(t.table_index(), 10, "a no-op delete does not move the index");
        t.put(entry("x/a", 12));
        assert_eq!(t.tombstone_count(), 1, "re-creating a key removes its tombstone");
    }
}
