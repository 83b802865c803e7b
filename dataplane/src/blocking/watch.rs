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
    /// One service, by lower-cased name: its instances, their checks and
    /// the health of the nodes they run on (`/v1/catalog/service/<s>`,
    /// `/v1/health/service/<s>`, `/v1/health/checks/<s>`).
    Service(String),
    /// Any change to the services table (`/v1/catalog/services`).
    Services,
    /// Any change to the checks table (`/v1/health/state/<s>`, `/v1/health/node/<n>`).
    Checks,
    /// A new user event (`/v1/event/list`).
    Events,
    /// Any change at all (coarse endpoints).
    Everything,
    /// The Connect-capable instances for one service, by lower-cased name
    /// (`/v1/{catalog,health}/connect/<s>`): woken with the service's
    /// watchers (a change set names the target of every Connect instance
    /// it touches), governed by the service's Connect index.
    Connect(String),
    /// Any change to the sessions table (`/v1/session/{info,node,list}`).
    Sessions,
    /// Any change to the prepared query table (`/v1/query`).
    PreparedQueries,
    /// Any change to the config entry table (`/v1/config`).
    ConfigEntries,
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
