use super::*;
use crate::command::NodeRegistration;
use crate::txn::{KvVerb, TxnKvOp};

fn set(key: &str, value: &str) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
    }
}

fn op(verb: KvVerb, key: &str, index: u64) -> TxnKvOp {
    TxnKvOp {
        verb,
        key: key.into(),
        value: b"x".to_vec(),
        flags: 0,
        index,
        session: None,
    }
}

/// Applies commands on a "leader" and the resulting deltas on a "replica";
/// both must agree on every observable.
fn replay(commands: &[Command]) -> (State, State, Vec<CommandResult>) {
    let mut leader = State::default();
    let mut replica = State::default();
    let mut results = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let (r, d) = leader.apply_command(i as u64 + 2, c);
        assert!(replica.apply_delta(&d));
        results.push(r);
    }
    (leader, replica, results)
}

fn assert_same(a: &State, b: &State) {
    assert_eq!(a.index(), b.index());
    assert_eq!(a.kv.table_index(), b.kv.table_index());
    let ea: Vec<_> = a.kv.entries().cloned().collect();
    let eb: Vec<_> = b.kv.entries().cloned().collect();
    assert_eq!(ea, eb);
    let ta: Vec<_> = a.kv.tombstones().collect();
    let tb: Vec<_> = b.kv.tombstones().collect();
    assert_eq!(ta, tb);
    assert_eq!(a.nodes.len(), b.nodes.len());
}

#[test]
fn replica_from_deltas_matches_leader() {
    let cmds = vec![
        set("a/1", "one"),
        set("a/2", "two"),
        Command::KvCas {
            key: "a/1".into(),
            value: b"uno".to_vec(),
            flags: 7,
            index: 2,
        },
        Command::KvCas {
            key: "a/1".into(),
            value: b"stale".to_vec(),
            flags: 0,
            index: 2,
        },
        Command::KvDelete { key: "a/2".into() },
        Command::KvDeleteTree { prefix: "a/".into() },
        set("b", ""),
        Command::NodeRegister(NodeRegistration {
            id: "id".into(),
            node: "Node1".into(),
            address: "127.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
        }),
    ];
    let (leader, replica, results) = replay(&cmds);
    assert_same(&leader, &replica);
    assert_eq!(results[2], CommandResult::Bool(true));
    assert_eq!(results[3], CommandResult::Bool(false), "CAS with a stale index fails");
    assert!(leader.nodes.get("node1").is_some(), "node lookups are case-insensitive");
    assert!(leader.nodes.get("NODE1").is_some());
}

#[test]
fn cas_zero_creates_only() {
    let mut s = State::default();
    let cas0 = Command::KvCas {
        key: "k".into(),
        value: b"1".to_vec(),
        flags: 0,
        index: 0,
    };
    assert_eq!(s.apply_command(2, &cas0).0, CommandResult::Bool(true));
    assert_eq!(s.apply_command(3, &cas0).0, CommandResult::Bool(false));
    let e = s.kv.get("k").unwrap();
    assert_eq!((e.create_index, e.modify_index), (2, 2));
}

#[test]
fn delete_cas_zero_never_deletes() {
    let mut s = State::default();
    s.apply_command(2, &set("k", "v"));
    let (r, d) = s.apply_command(
        3,
        &Command::KvDeleteCas {
            key: "k".into(),
            index: 0,
        },
    );
    assert_eq!(r, CommandResult::Bool(false));
    assert!(d.ops.is_empty());
    assert_eq!(d.index, 3, "a failed write still advances the index");
    let (r, _) = s.apply_command(
        4,
        &Command::KvDeleteCas {
            key: "k".into(),
            index: 2,
        },
    );
    assert_eq!(r, CommandResult::Bool(true));
    assert!(s.kv.get("k").is_none());
}

#[test]
fn modify_keeps_create_index_and_flags_round_trip() {
    let mut s = State::default();
    s.apply_command(2, &set("k", "v"));
    let lock_flag = 0x2ddc_cbc0_58a5_0c18u64;
    s.apply_command(
        5,
        &Command::KvSet {
            key: "k".into(),
            value: b"w".to_vec(),
            flags: lock_flag,
        },
    );
    let e = s.kv.get("k").unwrap();
    assert_eq!((e.create_index, e.modify_index, e.flags), (2, 5, lock_flag));
}

#[test]
fn txn_is_all_or_nothing() {
    let mut s = State::default();
    s.apply_command(2, &set("exists", "v"));
    let ops = vec![
        op(KvVerb::Set, "new", 0),
        op(KvVerb::CheckNotExists, "exists", 0),
        op(KvVerb::Get, "missing", 0),
    ];
    let (r, d) = s.apply_command(3, &Command::Txn { ops });
    match r {
        CommandResult::TxnRolledBack(errors) => {
            let idx: Vec<_> = errors.iter().map(|e| e.op_index).collect();
            assert_eq!(idx, vec![1, 2], "every failing op is reported");
        }
        other => panic!("expected rollback, got {other:?}"),
    }
    assert!(d.ops.is_empty());
    assert!(s.kv.get("new").is_none(), "rolled-back write is not visible");

    let ops = vec![
        op(KvVerb::Set, "new", 0),
        op(KvVerb::Get, "new", 0),
        op(KvVerb::Delete, "exists", 0),
    ];
    let (r, d) = s.apply_command(4, &Command::Txn { ops });
    match r {
        CommandResult::TxnCommitted(results) => {
            assert_eq!(results.len(), 2, "deletes produce no result row");
            assert!(!results[0].with_value);
            assert!(results[1].with_value);
            assert_eq!(results[1].entry.value, b"x");
        }
        other => panic!("expected commit, got {other:?}"),
    }
    assert_eq!(d.ops.len(), 2);
}

#[test]
#[should_panic(expected = "raft index must increase")]
fn index_must_increase() {
    let mut s = State::default();
    s.apply_command(5, &set("a", "b"));
    s.apply_command(5, &set("a", "c"));
}

#[test]
fn snapshot_round_trip() {
    let (leader, _, _) = replay(&[set("a", "1"), set("b", "2"), Command::KvDelete { key: "a".into() }]);
    let bytes = crate::snapshot::encode(&leader);
    let restored = crate::snapshot::decode(&bytes).unwrap();
    assert_same(&leader, &restored);
    assert_eq!(restored.kv.key_index("a"), leader.kv.key_index("a"));
}

#[test]
fn snapshot_rejects_garbage() {
    let mut junk = rkyv::util::AlignedVec::<16>::new();
    junk.extend_from_slice(&[0xffu8; 64]);
    assert!(crate::snapshot::decode(&junk).is_err());
}

#[test]
fn delta_round_trip() {
    let mut s = State::default();
    let (_, d) = s.apply_command(9, &set("k", "value"));
    let bytes = d.encode();
    assert_eq!(Delta::decode(&bytes).unwrap(), d);
}

#[test]
fn a_batch_applies_its_members_in_order_at_one_index_with_one_delta() {
    let mut leader = State::default();
    let (_, first) = leader.apply_command(2, &set("a", "old"));
    let mut replica = State::default();
    assert!(replica.apply_delta(&first));

    let batch = Command::Batch(vec![
        set("b", "new"),
        // Sees the set of "b" just before it in the batch.
        Command::KvCas {
            key: "b".into(),
            value: b"newer".to_vec(),
            flags: 1,
            index: 3,
        },
        // A stale CAS against "a" (modified at 2, not 1) fails.
        Command::KvCas {
            key: "a".into(),
            value: b"lost".to_vec(),
            flags: 0,
            index: 1,
        },
        Command::KvDelete { key: "a".into() },
        Command::Txn {
            ops: vec![op(KvVerb::Cas, "b", 3)],
        },
    ]);
    let (result, delta) = leader.apply_command(3, &batch);
    let CommandResult::Batch(results) = result else {
        panic!("a batch answers per member: {result:?}");
    };
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[..4],
        [
            CommandResult::Bool(true),
            CommandResult::Bool(true),
            CommandResult::Bool(false),
            CommandResult::Bool(true),
        ]
    );
    assert!(matches!(results[4], CommandResult::TxnCommitted(_)), "{:?}", results[4]);
    assert_eq!(leader.index(), 3, "one raft index for the whole batch");
    assert_eq!(delta.index, 3);
    // set b, cas b, delete a, txn cas b: four ops; the failed cas adds none.
    assert_eq!(delta.ops.len(), 4, "{:?}", delta.ops);
    let b = leader.kv.get("b").unwrap();
    assert_eq!((b.value.as_slice(), b.modify_index), (&b"x"[..], 3));
    assert!(leader.kv.get("a").is_none());

    assert!(replica.apply_delta(&delta));
    assert_same(&leader, &replica);
    assert_eq!(replica.kv.get("b"), leader.kv.get("b"));
}

#[test]
fn every_event_of_one_batch_is_kept_in_batch_order_at_its_index() {
    let event = |name: &str| {
        Command::EventFire(crate::state::UserEvent {
            id: format!("id-{name}"),
            name: name.into(),
            ..Default::default()
        })
    };
    let mut leader = State::default();
    let batch = Command::Batch(vec![event("one"), set("k", "v"), event("two")]);
    let (result, delta) = leader.apply_command(5, &batch);
    let CommandResult::Batch(results) = result else {
        panic!("{result:?}");
    };
    assert_eq!(
        results,
        [CommandResult::Done, CommandResult::Bool(true), CommandResult::Done]
    );
    let fired = |s: &State| -> Vec<(String, u64)> { s.events.iter().map(|e| (e.name.clone(), e.ltime)).collect() };
    let want = [("one".to_string(), 5), ("two".to_string(), 5)];
    assert_eq!(fired(&leader), want);
    assert_eq!(leader.events.table_index(), 5);
    assert_eq!(delta.ops.len(), 3);
    let mut replica = State::default();
    assert!(replica.apply_delta(&delta));
    assert_eq!(fired(&replica), want, "the replica keeps both, in order");
    assert_same(&leader, &replica);
    // A later entry's event comes after both.
    let (_, delta) = leader.apply_command(6, &event("three"));
    assert!(replica.apply_delta(&delta));
    assert_eq!(replica.events.iter().last().unwrap().ltime, 6);
    assert_eq!(replica.events.len(), 3);
}

#[test]
#[should_panic(expected = "never a batch")]
fn a_nested_batch_is_a_broken_invariant() {
    let mut state = State::default();
    state.apply_command(1, &Command::Batch(vec![Command::Batch(vec![set("a", "b")])]));
}

#[test]
fn an_empty_batch_only_advances_the_index() {
    let mut state = State::default();
    let (result, delta) = state.apply_command(4, &Command::Batch(Vec::new()));
    assert_eq!(result, CommandResult::Batch(Vec::new()));
    assert_eq!((delta.index, delta.ops.len(), state.index()), (4, 0, 4));
}
