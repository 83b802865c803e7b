//! Write commands: the payload of a raft log entry. Applying one to a
//! [`crate::State`] is deterministic, so every replica that applies the same
//! log reaches the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::txn::{TxnError, TxnKvOp, TxnResult};

/// One replicated write.
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
}
