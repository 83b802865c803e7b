//! Sessions on the state machine: creation refusals, KV lock rules,
//! invalidation (destroy, check critical, check/service/node deleted) with
//! both behaviors, the txn lock verbs, limits, and a replica fed only
//! deltas (or a snapshot) agreeing with the leader.

use super::*;
use crate::command::{CatalogRegistration, NodeRegistration};
use crate::snapshot;
use crate::txn::{KvVerb, TxnKvOp};

const S1: &str = "11111111-1111-1111-1111-111111111111";
const S2: &str = "22222222-2222-2222-2222-222222222222";

fn node(name: &str) -> NodeRegistration {
    NodeRegistration {
        id: String::new(),
        node: name.into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        tagged_addresses: Default::default(),
        meta: Default::default(),
    }
}

fn check(id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        check_id: id.into(),
        name: id.into(),
        service_id: service_id.into(),
        status,
        ..HealthCheck::default()
    }
}

fn register(n: &str, service: Option<ServiceInstance>, checks: Vec<HealthCheck>) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node: node(n),
        skip_node_update: false,
        service,
        checks,
    })
}

fn web() -> ServiceInstance {
    ServiceInstance {
        id: "web".into(),
        service: "web".into(),
        port: 80,
        ..ServiceInstance::default()
    }
}

fn session(id: &str, node: &str, behavior: SessionBehavior) -> Session {
    Session {
        id: id.into(),
        name: "lock".into(),
        node: node.into(),
        lock_delay_ns: 15_000_000_000,
        behavior,
        ttl: String::new(),
        node_checks: vec!["serfHealth".into()],
        service_checks: Vec::new(),
        create_index: 0,
        modify_index: 0,
    }
}

fn lock(key: &str, value: &str, session: &str) -> Command {
    Command::KvLock {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
        session: session.into(),
    }
}

fn unlock(key: &str, value: &str, session: &str) -> Command {
    Command::KvUnlock {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
        session: session.into(),
    }
}

/// A leader and a replica fed only the leader's deltas.
struct Pair {
    leader: State,
    replica: State,
    next_index: u64,
}

impl Pair {
    /// Node `n1` with a passing `serfHealth` and service `web` with a
    /// passing `web-check`.
    fn with_node() -> Pair {
        let mut p = Pair {
            leader: State::default(),
            replica: State::default(),
            next_index: 10,
        };
        p.apply(&register(
            "n1",
            Some(web()),
            vec![
                check("serfHealth", "", CheckStatus::Passing),
                check("web-check", "web", CheckStatus::Passing),
            ],
        ));
        p
    }

    fn apply(&mut self, command: &Command) -> (CommandResult, Delta) {
        let index = self.next_index;
        self.next_index += 1;
        let (r, d) = self.leader.apply_command(index, command);
        assert!(self.replica.apply_delta(&d));
        (r, d)
    }

    fn create(&mut self, s: Session) -> CommandResult {
        self.apply(&Command::SessionCreate(s)).0
    }

    fn entry(&self, key: &str) -> Option<KvEntry> {
        let a = self.leader.kv.get(key).map(|e| (**e).clone());
        let b = self.replica.kv.get(key).map(|e| (**e).clone());
        assert_eq!(a, b, "replica agrees on {key}");
        a
    }

    fn assert_agree(&self) {
        let a: Vec<_> = self.leader.sessions.iter().cloned().collect();
        let b: Vec<_> = self.replica.sessions.iter().cloned().collect();
        assert_eq!(a, b);
        assert_eq!(self.leader.sessions.table_index(), self.replica.sessions.table_index());
        for state in [&self.leader, &self.replica] {
            assert_eq!(state.sessions.index_disagreement(), None, "the node index agrees");
        }
        let ka: Vec<_> = self.leader.kv.entries().cloned().collect();
        let kb: Vec<_> = self.replica.kv.entries().cloned().collect();
        assert_eq!(ka, kb);
    }
}

#[test]
fn create_stores_the_session_with_its_index_on_leader_and_replica() {
    let mut p = Pair::with_node();
    assert_eq!(
        p.create(session(S1, "N1", SessionBehavior::Release)),
        CommandResult::Done
    );
    let stored = p.leader.sessions.get(S1).expect("stored").clone();
    assert_eq!(stored.create_index, 11);
    assert_eq!(stored.modify_index, 11);
    assert_eq!(stored.node, "n1", "the node's registered name is kept");
    assert_eq!(p.leader.sessions.table_index(), 11);
    p.assert_agree();
}

#[test]
fn create_refusals_carry_consul_texts() {
    let mut p = Pair::with_node();
    p.apply(&register("n1", None, vec![check("down", "", CheckStatus::Critical)]));
    let cases = [
        (
            session(S1, "nowhere", SessionBehavior::Release),
            "Missing node registration",
        ),
        (
            Session {
                node_checks: vec!["serfHealth".into(), "nope".into()],
                ..session(S1, "n1", SessionBehavior::Release)
            },
            "Missing check 'nope' registration",
        ),
        (
            Session {
                node_checks: vec!["down".into()],
                ..session(S1, "n1", SessionBehavior::Release)
            },
            "Check 'down' is in critical state",
        ),
        (
            Session {
                service_checks: vec![SessionServiceCheck {
                    id: "missing-svc-check".into(),
                    namespace: String::new(),
                }],
                ..session(S1, "n1", SessionBehavior::Release)
            },
            "Missing check 'missing-svc-check' registration",
        ),
    ];
    for (s, text) in cases {
        assert_eq!(p.create(s), CommandResult::Failed(text.into()));
    }
    assert!(p.leader.sessions.is_empty(), "no refused session is stored");
    assert_eq!(
        p.create(session(S1, "n1", SessionBehavior::Release)),
        CommandResult::Done
    );
    assert!(
        matches!(p.create(session(S1, "n1", SessionBehavior::Release)), CommandResult::Failed(t) if t.contains("already in use")),
        "a duplicate ID is refused"
    );
}

#[test]
fn session_count_is_bounded() {
    let mut state = State::default();
    let mut index = 1;
    state.apply_command(
        index,
        &register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]),
    );
    let members: Vec<Command> = (0..SESSIONS_MAX)
        .map(|i| Command::SessionCreate(session(&format!("s-{i:08}"), "n1", SessionBehavior::Release)))
        .collect();
    index += 1;
    let (r, _) = state.apply_command(index, &Command::Batch(members));
    let CommandResult::Batch(results) = r else {
        panic!("a batch answers a batch");
    };
    assert!(results.iter().all(|r| *r == CommandResult::Done));
    assert_eq!(state.sessions.len(), SESSIONS_MAX);
    index += 1;
    let (r, d) = state.apply_command(
        index,
        &Command::SessionCreate(session(S1, "n1", SessionBehavior::Release)),
    );
    assert_eq!(
        r,
        CommandResult::Failed(format!(
            "Too many sessions: {SESSIONS_MAX} exist, the most this cluster keeps"
        ))
    );
    assert!(d.ops.is_empty());
}

#[test]
fn acquire_release_and_lock_index_rules() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.create(session(S2, "n1", SessionBehavior::Release));

    assert_eq!(p.apply(&lock("k", "a", S1)).0, CommandResult::Bool(true));
    let e = p.entry("k").unwrap();
    assert_eq!(
        (e.lock_index, e.session.as_deref(), e.value.as_slice()),
        (1, Some(S1), &b"a"[..])
    );

    assert_eq!(
        p.apply(&lock("k", "b", S1)).0,
        CommandResult::Bool(true),
        "re-acquire by the holder"
    );
    let e = p.entry("k").unwrap();
    assert_eq!(
        (e.lock_index, e.value.as_slice()),
        (1, &b"b"[..]),
        "re-acquire does not bump LockIndex"
    );

    let before = p.entry("k").unwrap();
    let (r, d) = p.apply(&lock("k", "c", S2));
    assert_eq!(r, CommandResult::Bool(false), "held by another session");
    assert!(d.ops.is_empty());
    assert_eq!(p.entry("k").unwrap(), before, "nothing written");

    assert_eq!(
        p.apply(&unlock("k", "x", S2)).0,
        CommandResult::Bool(false),
        "not the holder"
    );
    assert_eq!(p.apply(&unlock("missing", "x", S1)).0, CommandResult::Bool(false));
    assert_eq!(p.apply(&unlock("k", "d", S1)).0, CommandResult::Bool(true));
    let e = p.entry("k").unwrap();
    assert_eq!(
        (e.lock_index, e.session.clone(), e.value.as_slice()),
        (1, None, &b"d"[..])
    );

    assert_eq!(p.apply(&lock("k", "e", S2)).0, CommandResult::Bool(true));
    assert_eq!(p.entry("k").unwrap().lock_index, 2, "a new holder bumps LockIndex");
    assert_eq!(p.leader.kv.held_count(S2), 1);
    assert_eq!(p.leader.kv.held_count(S1), 0);
    p.assert_agree();
}

#[test]
fn acquire_with_an_unknown_session_fails_with_consul_text() {
    let mut p = Pair::with_node();
    let (r, d) = p.apply(&lock("k", "a", S1));
    assert_eq!(r, CommandResult::Failed(format!("invalid session \"{S1}\"")));
    assert!(d.ops.is_empty());
    assert!(p.entry("k").is_none());
}

#[test]
fn a_plain_put_keeps_the_lock_and_a_delete_drops_it() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.apply(&lock("k", "a", S1));
    p.apply(&Command::KvSet {
        key: "k".into(),
        value: b"plain".to_vec(),
        flags: 0,
    });
    let e = p.entry("k").unwrap();
    assert_eq!((e.session.as_deref(), e.lock_index), (Some(S1), 1));
    p.apply(&Command::KvDelete { key: "k".into() });
    assert_eq!(p.leader.kv.held_count(S1), 0);
    assert_eq!(p.replica.kv.held_count(S1), 0);
}

#[test]
fn destroy_releases_keys_keeping_lock_index() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.apply(&lock("a", "1", S1));
    p.apply(&lock("b", "2", S1));
    let (r, d) = p.apply(&Command::SessionDestroy { id: S1.into() });
    assert_eq!(r, CommandResult::Bool(true));
    assert!(matches!(&d.ops[0], DeltaOp::SessionDelete { id, .. } if id == S1));
    assert_eq!(d.ops.len(), 3, "the session and its two keys");
    for key in ["a", "b"] {
        let e = p.entry(key).unwrap();
        assert_eq!(e.session, None);
        assert_eq!(e.lock_index, 1, "LockIndex kept");
        assert_eq!(e.modify_index, d.index, "ModifyIndex is the destroy's index");
    }
    assert!(p.leader.sessions.get(S1).is_none());
    assert_eq!(p.leader.sessions.table_index(), d.index);
    let (r, d) = p.apply(&Command::SessionDestroy { id: S1.into() });
    assert_eq!(r, CommandResult::Bool(true), "an unknown ID answers true");
    assert!(d.ops.is_empty());
    p.assert_agree();
}

#[test]
fn delete_behavior_deletes_the_held_keys() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Delete));
    p.apply(&lock("a", "1", S1));
    p.apply(&Command::KvSet {
        key: "free".into(),
        value: b"x".to_vec(),
        flags: 0,
    });
    let (_, d) = p.apply(&Command::SessionDestroy { id: S1.into() });
    assert!(d.ops.contains(&DeltaOp::KvDelete {
        key: "a".into(),
        index: d.index
    }));
    assert!(p.entry("a").is_none());
    assert!(p.entry("free").is_some(), "keys it does not hold stay");
    p.assert_agree();
}

#[test]
fn a_critical_node_check_invalidates_the_session_in_the_same_entry() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.create(Session {
        node_checks: Vec::new(),
        ..session(S2, "n1", SessionBehavior::Release)
    });
    p.apply(&lock("k", "v", S1));
    let (_, d) = p.apply(&register(
        "n1",
        None,
        vec![check("serfHealth", "", CheckStatus::Critical)],
    ));
    assert!(d.ops.iter().any(|o| matches!(o, DeltaOp::CheckPut(_))));
    assert!(d
        .ops
        .iter()
        .any(|o| matches!(o, DeltaOp::SessionDelete { id, .. } if id == S1)));
    assert!(p.leader.sessions.get(S1).is_none());
    assert!(
        p.leader.sessions.get(S2).is_some(),
        "a session without that check survives"
    );
    assert_eq!(p.entry("k").unwrap().session, None);
    p.assert_agree();
}

#[test]
fn a_warning_check_does_not_invalidate() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.apply(&register(
        "n1",
        None,
        vec![check("serfHealth", "", CheckStatus::Warning)],
    ));
    assert!(p.leader.sessions.get(S1).is_some());
}

#[test]
fn deleting_a_service_check_or_its_service_invalidates() {
    for deregister_service in [false, true] {
        let mut p = Pair::with_node();
        p.create(Session {
            service_checks: vec![SessionServiceCheck {
                id: "web-check".into(),
                namespace: String::new(),
            }],
            ..session(S1, "n1", SessionBehavior::Delete)
        });
        p.apply(&lock("k", "v", S1));
        let command = Command::CatalogDeregister {
            node: "n1".into(),
            service_id: deregister_service.then(|| "web".into()),
            check_id: (!deregister_service).then(|| "web-check".into()),
        };
        p.apply(&command);
        assert!(
            p.leader.sessions.get(S1).is_none(),
            "service deregistered: {deregister_service}"
        );
        assert!(p.entry("k").is_none(), "delete behavior");
        p.assert_agree();
    }
}

#[test]
fn deregistering_the_node_invalidates_and_other_nodes_are_untouched() {
    let mut p = Pair::with_node();
    p.apply(&register(
        "n2",
        None,
        vec![check("serfHealth", "", CheckStatus::Passing)],
    ));
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.create(session(S2, "n2", SessionBehavior::Release));
    p.apply(&Command::NodeDeregister { node: "N1".into() });
    assert!(p.leader.sessions.get(S1).is_none());
    assert!(p.leader.sessions.get(S2).is_some());
    p.apply(&register("n2", None, vec![check("other", "", CheckStatus::Critical)]));
    assert!(p.leader.sessions.get(S2).is_some(), "a critical check it does not name");
    p.assert_agree();
}

#[test]
fn renew_answers_whether_the_session_exists_and_changes_nothing() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    let (r, d) = p.apply(&Command::SessionRenew { id: S1.into() });
    assert_eq!(r, CommandResult::Bool(true));
    assert!(d.ops.is_empty());
    assert_eq!(
        p.apply(&Command::SessionRenew { id: S2.into() }).0,
        CommandResult::Bool(false)
    );
}

#[test]
fn txn_lock_unlock_and_check_session() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.create(session(S2, "n1", SessionBehavior::Release));
    let op = |verb, key: &str, session: &str| TxnKvOp {
        verb,
        key: key.into(),
        value: b"v".to_vec(),
        flags: 0,
        index: 0,
        session: Some(session.into()),
    };
    let (r, _) = p.apply(&Command::Txn {
        ops: vec![op(KvVerb::Lock, "t", S1), op(KvVerb::CheckSession, "t", S1)],
    });
    let CommandResult::TxnCommitted(results) = r else {
        panic!("committed: {r:?}");
    };
    assert_eq!(results[0].entry.lock_index, 1);
    assert_eq!(results[1].entry.session.as_deref(), Some(S1));
    assert_eq!(p.leader.kv.held_count(S1), 1);

    let (r, _) = p.apply(&Command::Txn {
        ops: vec![
            op(KvVerb::Lock, "t", S2),
            op(KvVerb::Unlock, "t", S2),
            op(KvVerb::CheckSession, "t", S2),
            op(KvVerb::Lock, "u", "no-such-session"),
            op(KvVerb::CheckSession, "missing", S1),
        ],
    });
    let CommandResult::TxnRolledBack(errors) = r else {
        panic!("rolled back: {r:?}");
    };
    let texts: Vec<&str> = errors.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        texts,
        [
            "failed to lock key \"t\", lock is already held".to_string(),
            "failed to unlock key \"t\", lock isn't held, or is held by another session".to_string(),
            format!("failed session check for key \"t\", current session \"{S1}\" != \"{S2}\""),
            "invalid session \"no-such-session\"".to_string(),
            "failed to check session, key \"missing\" doesn't exist".to_string(),
        ]
    );

    let (r, _) = p.apply(&Command::Txn {
        ops: vec![op(KvVerb::Unlock, "t", S1)],
    });
    assert!(matches!(r, CommandResult::TxnCommitted(_)));
    assert_eq!(p.entry("t").unwrap().session, None);
    p.assert_agree();
}

#[test]
fn snapshot_keeps_sessions_and_the_held_key_index() {
    let mut p = Pair::with_node();
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.apply(&lock("a", "1", S1));
    let restored = snapshot::decode(&snapshot::encode(&p.leader)).expect("decodes");
    assert_eq!(restored.sessions.get(S1), p.leader.sessions.get(S1));
    assert_eq!(
        restored.kv.held_count(S1),
        1,
        "the held-key index is rebuilt on restore"
    );
    let mut restored = restored;
    let (_, d) = restored.apply_command(p.next_index, &Command::SessionDestroy { id: S1.into() });
    assert_eq!(d.ops.len(), 2, "the session and the key it held");
}

#[test]
fn invalidation_reaches_only_the_touched_node_through_the_node_index() {
    let mut p = Pair::with_node();
    p.apply(&register(
        "n2",
        None,
        vec![check("serfHealth", "", CheckStatus::Passing)],
    ));
    let ids: Vec<String> = (0..6)
        .map(|i| format!("00000000-0000-0000-0000-00000000000{i}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let node = if i % 2 == 0 { "n1" } else { "n2" };
        assert_eq!(
            p.create(session(id, node, SessionBehavior::Release)),
            CommandResult::Done
        );
    }
    assert_eq!(p.leader.sessions.count_of_node("n1"), 3);
    assert_eq!(
        p.leader.sessions.count_of_node("N2"),
        3,
        "node names compare without case"
    );
    p.assert_agree();

    let (_, d) = p.apply(&register(
        "n1",
        None,
        vec![check("serfHealth", "", CheckStatus::Critical)],
    ));
    let destroyed: Vec<&str> = d
        .ops
        .iter()
        .filter_map(|o| match o {
            DeltaOp::SessionDelete { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        destroyed,
        [&ids[0], &ids[2], &ids[4]],
        "every n1 session, no n2 session"
    );
    for state in [&p.leader, &p.replica] {
        assert_eq!(state.sessions.of_node("n1").count(), 0);
        let n2: Vec<&str> = state.sessions.of_node("n2").map(|s| s.id.as_str()).collect();
        assert_eq!(n2, [&ids[1], &ids[3], &ids[5]]);
    }
    p.assert_agree();

    p.apply(&Command::SessionDestroy { id: ids[3].clone() });
    assert_eq!(p.leader.sessions.count_of_node("n2"), 2);
    p.assert_agree();

    let restored = snapshot::decode(&snapshot::encode(&p.leader)).expect("decodes");
    assert_eq!(restored.sessions.index_disagreement(), None);
    let n2: Vec<&str> = restored.sessions.of_node("n2").map(|s| s.id.as_str()).collect();
    assert_eq!(n2, [&ids[1], &ids[5]], "the node index is rebuilt on restore");
}

#[test]
fn an_acquire_past_the_held_key_bound_fails_and_writes_nothing() {
    const HELD_KEYS_MAX: usize = 3;
    let mut p = Pair::with_node();
    p.leader.sessions.set_held_keys_max_for_test(HELD_KEYS_MAX);
    p.create(session(S1, "n1", SessionBehavior::Release));
    p.create(session(S2, "n1", SessionBehavior::Release));
    for i in 0..HELD_KEYS_MAX {
        assert_eq!(p.apply(&lock(&format!("k{i}"), "v", S1)).0, CommandResult::Bool(true));
    }
    assert_eq!(p.leader.kv.held_count(S1), HELD_KEYS_MAX);
    p.apply(&Command::KvSet {
        key: "free".into(),
        value: b"before".to_vec(),
        flags: 0,
    });
    let before = p.entry("free");
    let table_index = p.leader.kv.table_index();

    let (r, d) = p.apply(&lock("free", "after", S1));
    assert_eq!(
        r,
        CommandResult::Failed(format!(
            "session \"{S1}\" already holds {HELD_KEYS_MAX} keys, the most one session may hold"
        ))
    );
    assert!(d.ops.is_empty(), "nothing half-applied: {:?}", d.ops);
    assert_eq!(p.entry("free"), before, "the key is untouched");
    assert_eq!(p.leader.kv.table_index(), table_index);
    assert_eq!(p.leader.kv.held_count(S1), HELD_KEYS_MAX);
    let (r, _) = p.apply(&lock("new", "v", S1));
    assert!(matches!(r, CommandResult::Failed(_)), "a missing key too");
    assert!(p.entry("new").is_none());
    // The txn `lock` verb obeys the same bound, and the whole txn rolls back.
    let txn_lock = |key: &str| TxnKvOp {
        verb: KvVerb::Lock,
        key: key.into(),
        value: b"v".to_vec(),
        flags: 0,
        index: 0,
        session: Some(S1.into()),
    };
    let (r, d) = p.apply(&Command::Txn {
        ops: vec![txn_lock("k0"), txn_lock("via-txn")],
    });
    let CommandResult::TxnRolledBack(errors) = r else {
        panic!("rolled back: {r:?}");
    };
    assert_eq!(
        errors.iter().map(|e| e.what.as_str()).collect::<Vec<_>>(),
        [format!(
            "session \"{S1}\" already holds {HELD_KEYS_MAX} keys, the most one session may hold"
        )]
    );
    assert!(d.ops.is_empty() && p.entry("via-txn").is_none());

    assert_eq!(
        p.apply(&lock("k0", "again", S1)).0,
        CommandResult::Bool(true),
        "re-acquiring a key it holds is not a new key"
    );
    assert_eq!(
        p.apply(&lock("free", "v", S2)).0,
        CommandResult::Bool(true),
        "other sessions are not limited"
    );
    assert_eq!(p.apply(&unlock("k1", "v", S1)).0, CommandResult::Bool(true));
    assert_eq!(
        p.apply(&lock("new", "v", S1)).0,
        CommandResult::Bool(true),
        "a release makes room"
    );
    assert_eq!(p.leader.kv.held_count(S1), HELD_KEYS_MAX);
    p.assert_agree();
}
