//! Delta records: the effects of one applied raft entry.
//!
//! A delta carries results, not commands: a replica applies it without any
//! state-machine logic, so the control plane's rules (CAS, transactions,
//! later sessions and lock-delay) live in one place. The same record is
//! written to the shared-memory ring and is meant for the server-to-client
//! replication stream: it is versioned ([`DELTA_FORMAT_VERSION`]), ordered
//! by raft index, and a reader resumes from any index it has, falling back
//! to a full snapshot when the producer no longer has that index.

use rkyv::rancor;
use serde::{Deserialize, Serialize};

use crate::state::{ConfigEntry, HealthCheck, KvEntry, Node, ServiceInstance, UserEvent};

/// Bumped whenever the archived layout of [`Delta`] changes.
pub const DELTA_FORMAT_VERSION: u32 = 5;

/// One change inside a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum DeltaOp {
    KvPut(KvEntry),
    KvDelete {
        key: String,
        index: u64,
    },
    KvDeleteTree {
        prefix: String,
        index: u64,
    },
    NodePut(Node),
    /// Removes the node and every service and check on it.
    NodeDelete {
        node: String,
        index: u64,
    },
    ServicePut(ServiceInstance),
    /// Removes the instance and its service checks.
    ServiceDelete {
        node: String,
        service_id: String,
        index: u64,
    },
    CheckPut(HealthCheck),
    CheckDelete {
        node: String,
        check_id: String,
        index: u64,
    },
    /// A user event (its `ltime` is the delta's index).
    EventPut(UserEvent),
    /// A config entry written (its indexes set).
    ConfigEntryPut(ConfigEntry),
    /// A config entry removed.
    ConfigEntryDelete {
        kind: String,
        name: String,
        index: u64,
    },
    /// A prepared query written (its indexes set).
    PreparedQueryPut(crate::state::PreparedQuery),
    /// A prepared query removed.
    PreparedQueryDelete {
        id: String,
        index: u64,
    },
    /// A service got a virtual IP: `offset` from 240.0.0.0 (see
    /// `state::VirtualIpTable`), taken from the free list or the counter.
    VirtualIpPut {
        service: String,
        offset: u32,
    },
    /// A service's virtual IP went back to the free list.
    VirtualIpFree {
        service: String,
    },
    /// A session created or changed (its indexes set).
    SessionPut(crate::state::Session),
    /// A session destroyed or invalidated. The keys it released or deleted
    /// travel as `KvPut`/`KvDelete` ops of the same delta.
    SessionDelete {
        id: String,
        index: u64,
    },
}

/// Everything one raft entry changed. `ops` is empty for entries that
/// change nothing visible (a failed CAS, a raft membership entry): the
/// index still advances, which is what read-your-writes waits for.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Delta {
    pub index: u64,
    pub ops: Vec<DeltaOp>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeltaDecodeError {
    #[error("delta format version {0} is not {DELTA_FORMAT_VERSION}")]
    Version(u32),
    #[error("delta record failed validation: {0}")]
    Invalid(String),
}

impl Delta {
    /// Archives the delta. Returns aligned bytes ready for the ring.
    pub fn encode(&self) -> rkyv::util::AlignedVec {
        rkyv::to_bytes::<rancor::Error>(self).expect("a delta always archives")
    }

    /// Validates and deserializes archived bytes. `bytes` must be 16-byte
    /// aligned (ring records are).
    pub fn decode(bytes: &[u8]) -> Result<Delta, DeltaDecodeError> {
        rkyv::from_bytes::<Delta, rancor::Error>(bytes).map_err(|e| DeltaDecodeError::Invalid(e.to_string()))
    }

    /// Decodes bytes that may not be aligned (read from a socket) by copying
    /// them into an aligned buffer first.
    pub fn decode_unaligned(bytes: &[u8]) -> Result<Delta, DeltaDecodeError> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        Delta::decode(&aligned)
    }

    /// Rough size of the delta in bytes, for limits.
    pub fn approx_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                DeltaOp::KvPut(e) => e.key.len() + e.value.len() + 64,
                DeltaOp::KvDelete { key, .. } => key.len() + 16,
                DeltaOp::KvDeleteTree { prefix, .. } => prefix.len() + 16,
                DeltaOp::NodePut(n) => n.node.len() + n.address.len() + 256,
                DeltaOp::NodeDelete { node, .. } => node.len() + 16,
                DeltaOp::ServicePut(s) => {
                    s.id.len()
                        + s.service.len()
                        + s.tags.iter().map(|t| t.len() + 8).sum::<usize>()
                        + s.meta.iter().map(|(k, v)| k.len() + v.len() + 16).sum::<usize>()
                        + s.proxy.config_json.len()
                        + s.proxy.upstreams.len() * 256
                        + 256
                }
                DeltaOp::ServiceDelete { node, service_id, .. } => node.len() + service_id.len() + 24,
                DeltaOp::CheckPut(c) => c.check_id.len() + c.name.len() + c.output.len() + c.notes.len() + 512,
                DeltaOp::CheckDelete { node, check_id, .. } => node.len() + check_id.len() + 24,
                DeltaOp::EventPut(e) => {
                    e.id.len()
                        + e.name.len()
                        + e.payload.as_ref().map_or(0, Vec::len)
                        + e.node_filter.len()
                        + e.service_filter.len()
                        + e.tag_filter.len()
                        + 64
                }
                DeltaOp::ConfigEntryPut(e) => e.size_bytes() + 64,
                DeltaOp::ConfigEntryDelete { kind, name, .. } => kind.len() + name.len() + 24,
                DeltaOp::PreparedQueryPut(q) => q.size_bytes() + 64,
                DeltaOp::PreparedQueryDelete { id, .. } => id.len() + 16,
                DeltaOp::VirtualIpPut { service, .. } | DeltaOp::VirtualIpFree { service } => service.len() + 24,
                DeltaOp::SessionPut(s) => s.size_bytes() + 32,
                DeltaOp::SessionDelete { id, .. } => id.len() + 16,
            })
            .sum::<usize>()
            + 16
    }
}
