//! What a blocking query watches.

/// One thing whose change can change a query's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchItem {
    /// A single KV key (present or not).
    KvKey(String),
    /// Every key under a prefix (`?recurse`, `?keys`).
    KvPrefix(String),
    /// Any change to the node table.
    Nodes,
    /// Any change at all (coarse endpoints).
    Everything,
}

/// The items one query watches (usually one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSet {
    pub items: Vec<WatchItem>,
}

impl WatchSet {
    pub fn one(item: WatchItem) -> WatchSet {
        WatchSet { items: vec![item] }
    }
}
