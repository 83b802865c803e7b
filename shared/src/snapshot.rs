//! The full-state archive. One format serves three carriers: the raft
//! snapshot on disk, the snapshot region the data plane maps, and (later)
//! the catch-up snapshot a server sends a client agent.

use rkyv::rancor;

use crate::state::{
    Catalog, ConfigEntry, ConfigEntryTable, HealthCheck, KvEntry, KvTable, Node, NodeTable, ServiceInstance, State,
};

/// Bumped whenever the archived layout of [`StateSnapshot`] changes.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 4;

/// The archived form of a [`State`].
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StateSnapshot {
    pub format_version: u32,
    pub index: u64,
    pub kv_table_index: u64,
    pub kv: Vec<KvEntry>,
    pub kv_tombstones: Vec<(String, u64)>,
    pub node_table_index: u64,
    pub nodes: Vec<Node>,
    pub services_table_index: u64,
    pub services: Vec<ServiceInstance>,
    pub checks_table_index: u64,
    pub checks: Vec<HealthCheck>,
    /// Lower-cased service name → index of its last change.
    pub service_name_indexes: Vec<(String, u64)>,
    pub config_entries_index: u64,
    pub config_entries: Vec<ConfigEntry>,
    pub prepared_queries_index: u64,
    pub prepared_queries: Vec<crate::state::PreparedQuery>,
    /// Lower-cased Connect target → index of its last Connect change.
    pub connect_indexes: Vec<(String, u64)>,
    /// Lower-cased service name → virtual IP offset from 240.0.0.0.
    pub virtual_ips: Vec<(String, u32)>,
    /// Freed virtual IP offsets.
    pub virtual_ip_free: Vec<u32>,
    /// Highest virtual IP offset handed out.
    pub virtual_ip_counter: u32,
    pub sessions_index: u64,
    pub sessions: Vec<crate::state::Session>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot failed validation: {0}")]
    Invalid(String),
    #[error("snapshot format version {0} is not {SNAPSHOT_FORMAT_VERSION}")]
    Version(u32),
}

impl StateSnapshot {
    pub fn of(state: &State) -> StateSnapshot {
        StateSnapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            index: state.index(),
            kv_table_index: state.kv.table_index(),
            kv: state.kv.entries().map(|e| (**e).clone()).collect(),
            kv_tombstones: state.kv.tombstones().map(|(k, i)| (k.to_string(), *i)).collect(),
            node_table_index: state.nodes.table_index(),
            nodes: state.nodes.iter().map(|n| (**n).clone()).collect(),
            services_table_index: state.catalog.services_table_index(),
            services: state.catalog.services().map(|s| (**s).clone()).collect(),
            checks_table_index: state.catalog.checks_table_index(),
            checks: state.catalog.checks().map(|c| (**c).clone()).collect(),
            service_name_indexes: state.catalog.name_indexes().map(|(n, i)| (n.clone(), *i)).collect(),
            config_entries_index: state.config_entries.table_index(),
            config_entries: state.config_entries.entries().map(|e| (**e).clone()).collect(),
            prepared_queries_index: state.prepared_queries.table_index(),
            prepared_queries: state.prepared_queries.iter().map(|q| (**q).clone()).collect(),
            connect_indexes: state.catalog.connect_indexes().map(|(n, i)| (n.clone(), *i)).collect(),
            virtual_ips: state.virtual_ips.entries().map(|(n, o)| (n.clone(), *o)).collect(),
            virtual_ip_free: state.virtual_ips.free_offsets().copied().collect(),
            virtual_ip_counter: state.virtual_ips.counter(),
            sessions_index: state.sessions.table_index(),
            sessions: state.sessions.iter().map(|s| (**s).clone()).collect(),
        }
    }

    pub fn into_state(self) -> State {
        let kv = KvTable::restore(self.kv, self.kv_tombstones, self.kv_table_index);
        let nodes = NodeTable::restore(self.nodes, self.node_table_index);
        let catalog = Catalog::restore(
            self.services,
            self.checks,
            self.service_name_indexes,
            self.services_table_index,
            self.checks_table_index,
        );
        let mut catalog = catalog;
        catalog.restore_connect_indexes(self.connect_indexes);
        let mut state = State::from_parts(self.index, kv, nodes, catalog);
        state.virtual_ips =
            crate::state::VirtualIpTable::restore(self.virtual_ips, self.virtual_ip_free, self.virtual_ip_counter);
        state.config_entries = ConfigEntryTable::restore(self.config_entries, self.config_entries_index);
        state.prepared_queries =
            crate::state::PreparedQueryTable::restore(self.prepared_queries, self.prepared_queries_index);
        state.sessions = crate::state::SessionTable::restore(self.sessions, self.sessions_index);
        state
    }
}

/// Archives the whole state.
pub fn encode(state: &State) -> rkyv::util::AlignedVec {
    rkyv::to_bytes::<rancor::Error>(&StateSnapshot::of(state)).expect("a snapshot always archives")
}

/// Validates archived bytes (once, when they are mapped) and rebuilds the
/// state. `bytes` must be 16-byte aligned.
pub fn decode(bytes: &[u8]) -> Result<State, SnapshotError> {
    let archived = rkyv::access::<ArchivedStateSnapshot, rancor::Error>(bytes)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    let version = archived.format_version.to_native();
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotError::Version(version));
    }
    let snap: StateSnapshot = rkyv::deserialize::<StateSnapshot, rancor::Error>(archived)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    Ok(snap.into_state())
}

/// Decodes bytes that may not be aligned (read from a file or socket) by
/// copying them into an aligned buffer first.
pub fn decode_unaligned(bytes: &[u8]) -> Result<State, SnapshotError> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    decode(&aligned)
}
