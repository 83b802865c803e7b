//! Write commands: the payload of a raft log entry. Applying one to a
//! [`crate::State`] is deterministic, so every replica that applies the same
//! log reaches the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{ConfigEntry, HealthCheck, ServiceInstance, UserEvent};
use crate::txn::{TxnError, TxnKvOp, TxnResult};

/// One replicated write.
#[allow(clippy::large_enum_variant)] // boxed at integration; see the lead's note
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Plain `PUT /v1/kv/<key>`: always succeeds, ignores locks.
    KvSet { key: String, value: Vec<u8>, flags: u64 },
    /// `PUT ?cas=N`: write only if the key's ModifyIndex is N (0 = absent).
    KvCas {
        key: String,
        value: Vec<u8>,
        flags: u64,
        index: u64,
    },
    /// `DELETE /v1/kv/<key>`.
    KvDelete { key: String },
    /// `DELETE ?cas=N`: delete only if ModifyIndex is N (0 never deletes).
    KvDeleteCas { key: String, index: u64 },
    /// `DELETE ?recurse`.
    KvDeleteTree { prefix: String },
    /// `PUT /v1/txn` with at least one write: all or nothing.
    Txn { ops: Vec<TxnKvOp> },
    /// Registers or updates a catalog node.
    NodeRegister(NodeRegistration),
    /// Removes a node and everything on it.
    NodeDeregister { node: String },
    /// `PUT /v1/catalog/register` (also what the agent's anti-entropy
    /// sends): a node, optionally a service, and checks, all or nothing.
    CatalogRegister(CatalogRegistration),
    /// `PUT /v1/catalog/deregister`: a check, a service (with its checks),
    /// or, when both are `None`, the node and everything on it.
    CatalogDeregister {
        node: String,
        service_id: Option<String>,
        check_id: Option<String>,
    },
    /// `PUT /v1/event/fire/<name>`: a user event for every agent. Its
    /// `ltime` is set to the raft index when applied.
    EventFire(UserEvent),
    /// Several independent writes in one raft entry (group commit): each
    /// member is applied in order at the entry's one index, and their delta
    /// ops form that index's one delta. Members are never batches; several
    /// `EventFire`s share the index as their `ltime`, in batch order.
    /// Answered [`CommandResult::Batch`], one result per member.
    Batch(Vec<Command>),
    /// `PUT /v1/config[?cas=N]`: stores a validated config entry; with
    /// `cas`, only when the stored `ModifyIndex` is N (0 = absent). Answers
    /// [`CommandResult::Bool`].
    ConfigEntrySet { entry: ConfigEntry, cas: Option<u64> },
    /// `DELETE /v1/config/<kind>/<name>[?cas=N]`: with `cas`, only when the
    /// entry exists with that `ModifyIndex`. Answers [`CommandResult::Bool`].
    ConfigEntryDelete {
        kind: String,
        name: String,
        cas: Option<u64>,
    },
    /// `POST /v1/query`: stores a new prepared query (its ID chosen by the
    /// control plane). Answers [`CommandResult::Done`], or
    /// [`CommandResult::Failed`] with Consul's message.
    PreparedQueryCreate(crate::state::PreparedQuery),
    /// `PUT /v1/query/<id>`: replaces an existing prepared query whole.
    PreparedQueryUpdate(crate::state::PreparedQuery),
    /// `DELETE /v1/query/<id>`: removes an existing prepared query.
    PreparedQueryDelete { id: String },
    /// `PUT /v1/session/create`: stores a new session (its ID chosen by the
    /// control plane, its indexes ignored). The node must exist and none of
    /// its checks may be critical. Answers [`CommandResult::Done`], or
    /// [`CommandResult::Failed`] with Consul's message.
    SessionCreate(crate::state::Session),
    /// `PUT /v1/session/destroy/<id>` (and the leader's TTL expiry):
    /// invalidates the session, releasing or deleting the keys it holds.
    /// Answers `Bool(true)`, also for an unknown ID.
    SessionDestroy { id: String },
    /// `PUT /v1/kv/<key>?acquire=<session>`: writes the key and takes its
    /// lock when it is free or already held by `session`. Answers
    /// `Bool(false)` when another session holds it, [`CommandResult::Failed`]
    /// for an unknown session.
    KvLock {
        key: String,
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    /// `PUT /v1/kv/<key>?release=<session>`: writes the key and clears its
    /// lock when `session` holds it; `Bool(false)` otherwise.
    KvUnlock {
        key: String,
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    /// `PUT /v1/session/renew/<id>`: changes no state (no delta op) and
    /// answers `Bool(found)`. It goes through raft so that every server's
    /// TTL timers see the renewal when it applies (a new leader then
    /// already holds fresh deadlines; `control/src/session/`).
    SessionRenew { id: String },
}

/// One catalog registration. Unchanged parts are not rewritten (their
/// indexes stay), so the agent's periodic sync of an unchanged service
/// costs a raft entry but no watcher wake-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRegistration {
    pub node: NodeRegistration,
    /// Keep an existing node's fields (it is still created if missing).
    pub skip_node_update: bool,
    /// `node` and the indexes are ignored: the registration's node and the
    /// entry's index are used.
    pub service: Option<ServiceInstance>,
    /// `node`, `service_name`, `service_tags` and the indexes are ignored:
    /// the state machine fills them in. A check with a `service_id` needs
    /// that service on the node (already, or in this registration).
    pub checks: Vec<HealthCheck>,
}

/// The node part of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistration {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
}

/// What applying a command answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// KV writes and deletes answer `true`/`false`.
    Bool(bool),
    /// A transaction that committed, with its per-op results.
    TxnCommitted(Vec<TxnResult>),
    /// A transaction that rolled back, with every failing op.
    TxnRolledBack(Vec<TxnError>),
    /// Catalog writes answer `true`.
    Done,
    /// A write refused by the state machine without any effect (a check
    /// naming a service that is not on the node). Consul answers 500.
    Failed(String),
    /// The results of a [`Command::Batch`], one per member, in order.
    Batch(Vec<CommandResult>),
}
