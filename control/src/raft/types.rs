//! The openraft type configuration: what a log entry carries and how nodes
//! and snapshots are represented.

use std::io::Cursor;

use proconsul_shared::{Command, CommandResult};

openraft::declare_raft_types!(
    /// Proconsul's raft types: entries carry [`Command`]s, applying one
    /// answers a [`CommandResult`], nodes are `BasicNode { addr: "ip:8300" }`
    /// and a snapshot is the rkyv state archive in memory.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A raft server id.
pub type NodeId = u64;
/// A raft log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// The id (term, leader, index) of a log entry.
pub type LogId = openraft::LogId<NodeId>;
/// A persisted vote.
pub type Vote = openraft::Vote<NodeId>;
/// The membership a state machine last applied.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// Storage errors as openraft expects them.
pub type StorageError = openraft::StorageError<NodeId>;
/// The running raft node.
pub type Raft = openraft::Raft<TypeConfig>;
/// Metrics openraft publishes.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;
