use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proconsul_shared::shm::ring::{ReadOutcome, RingReader};
use proconsul_shared::snapshot::StateSnapshot;

use super::*;

fn set(key: &str, value: &[u8]) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.to_vec(),
        flags: 0,
    }
}

fn reader_at(p: &Publisher, cursor: u64) -> RingReader {
    let region = SharedRegion::from_fd(p.ring_fd().unwrap()).unwrap();
    RingReader::open(region, cursor).unwrap()
}

/// Reads every available record and applies it to `state`. Returns the
/// indexes read, in order. Panics on an overrun or a bad record.
fn drain_into(reader: &mut RingReader, state: &mut State) -> Vec<u64> {
    let mut indexes = Vec::new();
    for _ in 0..1_000_000 {
        match reader.read_next() {
            ReadOutcome::Record { index } => {
                let delta = Delta::decode(reader.payload()).expect("a published delta decodes");
                assert_eq!(delta.index, index);
                assert!(state.apply_delta(&delta), "delta {index} applies once");
                indexes.push(index);
            }
            ReadOutcome::Empty => return indexes,
            ReadOutcome::Overrun => panic!("reader overrun"),
        }
    }
    panic!("ring never ran empty");
}

fn same_state(a: &State, b: &State) -> bool {
    StateSnapshot::of(a) == StateSnapshot::of(b)
}

fn publisher() -> Arc<Publisher> {
    Publisher::new(9, limits::DELTA_RING_BYTES_MIN).unwrap()
}

#[test]
fn rejects_a_ring_below_the_minimum() {
    let err = Publisher::new(1, 4096).err().expect("a 4 KiB ring is refused");
    assert!(err.to_string().contains("4096"), "{err}");
}

#[test]
fn applies_publish_deltas_a_reader_replays_into_the_same_state() {
    let p = publisher();
    assert_eq!(p.epoch(), 9);
    let mut reader = reader_at(&p, 0);
    assert_eq!(reader.epoch(), 9);

    assert_eq!(p.apply(0, None), CommandResult::Done, "index 0 is skipped");
    assert_eq!(p.applied_index(), 0);
    assert_eq!(p.apply(1, None), CommandResult::Done);
    assert_eq!(p.apply(2, Some(&set("a", b"1"))), CommandResult::Bool(true));
    assert_eq!(p.apply(3, Some(&set("b", b"2"))), CommandResult::Bool(true));
    let cas_miss = Command::KvCas {
        key: "a".into(),
        value: b"x".to_vec(),
        flags: 0,
        index: 99,
    };
    assert_eq!(p.apply(4, Some(&cas_miss)), CommandResult::Bool(false));
    assert_eq!(
        p.apply(5, Some(&Command::KvDelete { key: "b".into() })),
        CommandResult::Bool(true)
    );
    assert_eq!(p.applied_index(), 5);

    let mut replica = State::default();
    assert_eq!(drain_into(&mut reader, &mut replica), vec![1, 2, 3, 4, 5]);
    let authoritative = p.state();
    assert_eq!(authoritative.index(), 5);
    assert_eq!(authoritative.kv.get("a").unwrap().value, b"1");
    assert!(authoritative.kv.get("b").is_none());
    assert!(same_state(&replica, &authoritative));
}

#[test]
fn command_at_index_zero_is_refused_not_applied() {
    let p = publisher();
    assert_eq!(p.apply(0, Some(&set("k", b"v"))), CommandResult::Bool(false));
    assert_eq!(p.applied_index(), 0);
    assert!(p.state().kv.get("k").is_none());
}

#[test]
fn snapshot_region_pairs_with_the_next_delta() {
    let p = publisher();
    p.apply(1, Some(&set("a", b"1")));
    p.apply(2, Some(&set("b", b"2")));
    let (region, meta) = p.snapshot_region().unwrap();
    assert_eq!(meta.index, 2);
    p.apply(3, Some(&set("c", b"3")));

    let (mut replica, read_meta) = snapshot_region::read(&region).unwrap();
    assert_eq!(read_meta, meta);
    let mut reader = reader_at(&p, meta.ring_pos);
    assert_eq!(drain_into(&mut reader, &mut replica), vec![3]);
    assert!(same_state(&replica, &p.state()));
}

#[test]
fn oversized_delta_writes_a_resync_marker_and_bumps_resets() {
    let p = publisher();
    let mut resets = p.resets();
    let mut reader = reader_at(&p, 0);
    p.apply(1, Some(&set("small", b"x")));

    let huge = vec![7u8; limits::DELTA_BYTES_MAX + 1];
    assert_eq!(p.apply(2, Some(&set("huge", &huge))), CommandResult::Bool(true));
    assert!(resets.has_changed().unwrap(), "readers are told to resync");
    assert_eq!(*resets.borrow_and_update(), 1);
    assert_eq!(p.applied_index(), 2, "the write itself is applied");

    assert_eq!(reader.read_next(), ReadOutcome::Record { index: 1 });
    assert_eq!(reader.read_next(), ReadOutcome::Record { index: 2 });
    assert_eq!(reader.payload(), RESYNC_MARKER);
    assert!(
        Delta::decode(reader.payload()).is_err(),
        "the marker must never decode as a delta"
    );

    // The resync path: a snapshot has the huge value, and the ring goes on.
    let (region, meta) = p.snapshot_region().unwrap();
    let (mut replica, _) = snapshot_region::read(&region).unwrap();
    assert_eq!(replica.kv.get("huge").unwrap().value.len(), huge.len());
    p.apply(3, Some(&set("after", b"y")));
    let mut fresh = reader_at(&p, meta.ring_pos);
    assert_eq!(drain_into(&mut fresh, &mut replica), vec![3]);
    assert!(same_state(&replica, &p.state()));
    assert!(!resets.has_changed().unwrap(), "normal applies do not reset");
}

#[test]
fn restore_replaces_state_and_bumps_resets() {
    let source = publisher();
    source.apply(10, Some(&set("k", b"v")));
    let p = publisher();
    let resets = p.resets();
    p.restore(source.state());
    assert_eq!(p.applied_index(), 10);
    assert_eq!(*resets.borrow(), 1);
    assert_eq!(p.state().kv.get("k").unwrap().modify_index, 10);
    let (_, meta) = p.snapshot_region().unwrap();
    assert_eq!(meta.index, 10);
    // Applies continue after the restored index and reach ring readers.
    let mut reader = reader_at(&p, meta.ring_pos);
    p.apply(11, Some(&set("k2", b"v2")));
    let (region, _) = source.snapshot_region().unwrap();
    let (mut replica, _) = snapshot_region::read(&region).unwrap();
    assert_eq!(drain_into(&mut reader, &mut replica), vec![11]);
    assert!(same_state(&replica, &p.state()));
}

#[test]
fn heartbeat_reaches_the_ring_header() {
    let p = publisher();
    let reader = reader_at(&p, 0);
    p.heartbeat(true, 0);
    let beat = reader.heartbeat();
    assert!(beat.leader_known);
    assert!(beat.unix_ms > 1_600_000_000_000, "wall clock in ms: {}", beat.unix_ms);
    p.heartbeat(false, 1234);
    let beat = reader.heartbeat();
    assert!(!beat.leader_known);
    assert_eq!(beat.last_contact_ms, 1234);
}

#[test]
#[should_panic(expected = "raft index must increase")]
fn applying_an_old_index_is_an_invariant_violation() {
    let p = publisher();
    p.apply(5, None);
    p.apply(5, None);
}

#[test]
fn snapshots_taken_during_concurrent_applies_pair_with_their_cursor() {
    const WRITES: u64 = 3_000;
    let p = publisher();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let p = p.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 1..=WRITES {
                let key = format!("k/{}", i % 50);
                p.apply(i, Some(&set(&key, &i.to_le_bytes())));
            }
            done.store(true, Ordering::Release);
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut taken = Vec::new();
    while !done.load(Ordering::Acquire) && taken.len() < 200 && Instant::now() < deadline {
        taken.push(p.snapshot_region().unwrap());
        std::thread::yield_now();
    }
    writer.join().unwrap();
    assert!(!taken.is_empty());

    let final_state = p.state();
    assert_eq!(final_state.index(), WRITES);
    for (region, meta) in &taken {
        let (mut replica, _) = snapshot_region::read(region).unwrap();
        assert_eq!(replica.index(), meta.index);
        let mut reader = reader_at(&p, meta.ring_pos);
        let indexes = drain_into(&mut reader, &mut replica);
        let expected: Vec<u64> = (meta.index + 1..=WRITES).collect();
        assert_eq!(indexes, expected, "snapshot at {} resumes with no gap", meta.index);
        assert!(same_state(&replica, &final_state));
    }
}
