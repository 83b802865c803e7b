//! `/v1/txn` KV operations and their evaluation against a [`KvTable`].
//!
//! Evaluation follows Consul: every op runs in order against the state as
//! changed by the ops before it; every failing op is reported; any failure
//! rolls the whole transaction back.

use serde::{Deserialize, Serialize};

use crate::delta::DeltaOp;
use crate::state::{KvEntry, KvTable, SessionTable};

/// The KV verbs of Consul's transaction API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteTree,
    DeleteCas,
}

impl KvVerb {
    /// Parses the wire name (`"get-tree"`), as Consul spells it.
    pub fn parse(s: &str) -> Option<KvVerb> {
        Some(match s {
            "set" => KvVerb::Set,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "get" => KvVerb::Get,
            "get-or-empty" => KvVerb::GetOrEmpty,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            "delete" => KvVerb::Delete,
            "delete-tree" => KvVerb::DeleteTree,
            "delete-cas" => KvVerb::DeleteCas,
            _ => return None,
        })
    }

    /// Whether the verb only reads (a transaction of only these needs no raft round).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            KvVerb::Get
                | KvVerb::GetOrEmpty
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

/// One KV op of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnKvOp {
    pub verb: KvVerb,
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    pub index: u64,
    pub session: Option<String>,
}

/// One result row: the entry an op touched. Values are kept only for the
/// get verbs, as in Consul.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    pub entry: KvEntry,
    pub with_value: bool,
}

/// One failing op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Evaluates `ops` against `kv` (mutated in place) at raft index `index`;
/// `lock` consults `sessions` (which a transaction never changes). On
/// success returns the results and the delta ops to publish; on failure the
/// caller must discard `kv` (it is a cheap clone of the real table).
pub fn evaluate(
    kv: &mut KvTable,
    sessions: &SessionTable,
    ops: &[TxnKvOp],
    index: u64,
) -> Result<(Vec<TxnResult>, Vec<DeltaOp>), Vec<TxnError>> {
    let mut results = Vec::new();
    let mut deltas = Vec::new();
    let mut errors = Vec::new();
    for (op_index, op) in ops.iter().enumerate() {
        if let Err(what) = evaluate_one(kv, sessions, op, index, &mut results, &mut deltas) {
            errors.push(TxnError { op_index, what });
        }
    }
    if errors.is_empty() {
        Ok((results, deltas))
    } else {
        Err(errors)
    }
}

/// What a lock write (`?acquire=`, txn `lock`) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Written; the stored entry.
    Locked(KvEntry),
    /// Another session holds the key: nothing written.
    HeldByOther,
}

/// Consul's `kvsLockTxn`: `session` must be live (else `Err` with Consul's
/// `invalid session "<id>"`, or `missing session` when empty). A free key,
/// or one `session` already holds, is written with the session set;
/// `LockIndex` goes up by one only when the lock is newly taken.
pub fn lock_entry(
    kv: &mut KvTable,
    sessions: &SessionTable,
    key: &str,
    value: &[u8],
    flags: u64,
    session: &str,
    index: u64,
) -> Result<LockOutcome, String> {
    if session.is_empty() {
        return Err("missing session".into());
    }
    if sessions.get(session).is_none() {
        return Err(format!("invalid session {session:?}"));
    }
    let (create_index, lock_index) = match kv.get(key) {
        Some(e) => match e.session.as_deref() {
            Some(holder) if holder == session => (e.create_index, e.lock_index),
            Some(_) => return Ok(LockOutcome::HeldByOther),
            None => (e.create_index, e.lock_index + 1),
        },
        None => (index, 1),
    };
    // A key the session does not hold yet counts against its bound.
    let held_keys_max = sessions.held_keys_max();
    let already_held = kv.get(key).and_then(|e| e.session.as_deref()) == Some(session);
    if !already_held && kv.held_count(session) >= held_keys_max {
        return Err(format!(
            "session {session:?} already holds {held_keys_max} keys, the most one session may hold"
        ));
    }
    let entry = KvEntry {
        key: key.to_string(),
        value: value.to_vec(),
        flags,
        lock_index,
        session: Some(session.to_string()),
        create_index,
        modify_index: index,
    };
    kv.put(entry.clone());
    Ok(LockOutcome::Locked(entry))
}

/// Consul's `kvsUnlockTxn`: when `session` holds `key`, writes it with the
/// session cleared (`LockIndex` kept) and returns the stored entry; `None`
/// (nothing written) when the key is missing or not held by `session`.
pub fn unlock_entry(
    kv: &mut KvTable,
    key: &str,
    value: &[u8],
    flags: u64,
    session: &str,
    index: u64,
) -> Option<KvEntry> {
    let existing = kv.get(key)?;
    if session.is_empty() || existing.session.as_deref() != Some(session) {
        return None;
    }
    let entry = KvEntry {
        key: key.to_string(),
        value: value.to_vec(),
        flags,
        lock_index: existing.lock_index,
        session: None,
        create_index: existing.create_index,
        modify_index: index,
    };
    kv.put(entry.clone());
    Some(entry)
}

fn evaluate_one(
    kv: &mut KvTable,
    sessions: &SessionTable,
    op: &TxnKvOp,
    index: u64,
    results: &mut Vec<TxnResult>,
    deltas: &mut Vec<DeltaOp>,
) -> Result<(), String> {
    let key = op.key.as_str();
    let write = |kv: &mut KvTable, results: &mut Vec<TxnResult>, deltas: &mut Vec<DeltaOp>| {
        let entry = set_entry(kv, key, &op.value, op.flags, index);
        deltas.push(DeltaOp::KvPut(entry.clone()));
        results.push(TxnResult {
            entry,
            with_value: false,
        });
    };
    match op.verb {
        KvVerb::Set => write(kv, results, deltas),
        KvVerb::Cas => {
            let current = kv.get(key).map(|e| e.modify_index).unwrap_or(0);
            if current != op.index {
                return Err(format!("failed to set key {key:?}, index is stale"));
            }
            write(kv, results, deltas)
        }
        KvVerb::Lock => {
            let session = op.session.as_deref().unwrap_or("");
            match lock_entry(kv, sessions, key, &op.value, op.flags, session, index)? {
                LockOutcome::Locked(entry) => {
                    deltas.push(DeltaOp::KvPut(entry.clone()));
                    results.push(TxnResult {
                        entry,
                        with_value: false,
                    });
                }
                LockOutcome::HeldByOther => return Err(format!("failed to lock key {key:?}, lock is already held")),
            }
        }
        KvVerb::Unlock => {
            let session = op.session.as_deref().unwrap_or("");
            match unlock_entry(kv, key, &op.value, op.flags, session, index) {
                Some(entry) => {
                    deltas.push(DeltaOp::KvPut(entry.clone()));
                    results.push(TxnResult {
                        entry,
                        with_value: false,
                    });
                }
                None => {
                    return Err(format!(
                        "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                    ))
                }
            }
        }
        KvVerb::CheckSession => {
            let session = op.session.as_deref().unwrap_or("");
            match kv.get(key) {
                None => return Err(format!("failed to check session, key {key:?} doesn't exist")),
                Some(e) if e.session.as_deref().unwrap_or("") != session => {
                    return Err(format!(
                        "failed session check for key {key:?}, current session {:?} != {session:?}",
                        e.session.as_deref().unwrap_or("")
                    ))
                }
                Some(e) => results.push(TxnResult {
                    entry: (**e).clone(),
                    with_value: false,
                }),
            }
        }
        KvVerb::Get => match kv.get(key) {
            Some(e) => results.push(TxnResult {
                entry: (**e).clone(),
                with_value: true,
            }),
            None => return Err(format!("key {key:?} doesn't exist")),
        },
        KvVerb::GetOrEmpty => {
            let entry = kv.get(key).map(|e| (**e).clone()).unwrap_or_else(|| KvEntry {
                key: key.to_string(),
                value: Vec::new(),
                flags: 0,
                lock_index: 0,
                session: None,
                create_index: 0,
                modify_index: 0,
            });
            results.push(TxnResult {
                entry,
                with_value: true,
            });
        }
        KvVerb::GetTree => {
            for e in kv.range_prefix(key) {
                results.push(TxnResult {
                    entry: (**e).clone(),
                    with_value: true,
                });
            }
        }
        KvVerb::CheckIndex => match kv.get(key) {
            Some(e) if e.modify_index == op.index => results.push(TxnResult {
                entry: (**e).clone(),
                with_value: false,
            }),
            Some(e) => {
                return Err(format!(
                    "current modify index {} for key {key:?} doesn't match {}",
                    e.modify_index, op.index
                ))
            }
            None => return Err(format!("key {key:?} doesn't exist")),
        },
        KvVerb::CheckNotExists => {
            if kv.get(key).is_some() {
                return Err(format!("key {key:?} exists"));
            }
        }
        KvVerb::Delete => {
            if kv.delete(key, index) {
                deltas.push(DeltaOp::KvDelete {
                    key: key.to_string(),
                    index,
                });
            }
        }
        KvVerb::DeleteTree => {
            if kv.delete_prefix(key, index) > 0 {
                deltas.push(DeltaOp::KvDeleteTree {
                    prefix: key.to_string(),
                    index,
                });
            }
        }
        KvVerb::DeleteCas => {
            let current = kv.get(key).map(|e| e.modify_index).unwrap_or(0);
            if current == 0 || current != op.index {
                return Err(format!("failed to delete key {key:?}, index is stale"));
            }
            kv.delete(key, index);
            deltas.push(DeltaOp::KvDelete {
                key: key.to_string(),
                index,
            });
        }
    }
    Ok(())
}

/// Writes `key` at `index`, keeping CreateIndex, LockIndex and Session of an
/// existing entry. Returns the stored entry.
pub(crate) fn set_entry(kv: &mut KvTable, key: &str, value: &[u8], flags: u64, index: u64) -> KvEntry {
    let (create_index, lock_index, session) = match kv.get(key) {
        Some(e) => (e.create_index, e.lock_index, e.session.clone()),
        None => (index, 0, None),
    };
    let entry = KvEntry {
        key: key.to_string(),
        value: value.to_vec(),
        flags,
        lock_index,
        session,
        create_index,
        modify_index: index,
    };
    kv.put(entry.clone());
    entry
}

/// Read-only transactions are answered from a replica without a raft round.
pub fn evaluate_read_only(kv: &KvTable, ops: &[TxnKvOp]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
    debug_assert!(ops.iter().all(|o| o.verb.is_read()));
    let mut scratch = kv.clone();
    let index = scratch.table_index();
    // Read verbs never consult the session table (`check-session` compares
    // the key's holder only).
    evaluate(&mut scratch, &SessionTable::default(), ops, index).map(|(results, deltas)| {
        debug_assert!(deltas.is_empty());
        results
    })
}
