use std::io::Write;

use super::*;
use crate::raft::log_mem::tests::{kv_entry, log_id};

fn open(dir: &Path) -> (Wal, MemLog) {
    Wal::open(dir, WalOptions::default()).unwrap()
}

/// Appends to both the WAL and the log, as the log store does.
fn append(wal: &mut Wal, log: &mut MemLog, term: u64, indexes: std::ops::Range<u64>) {
    let entries: Vec<Entry> = indexes.map(|i| kv_entry(term, i)).collect();
    wal.append(&entries).unwrap();
    for e in entries {
        log.append(e).unwrap();
    }
}

fn log_ids(log: &MemLog) -> Vec<LogId> {
    log.entries().map(|e| *e.get_log_id()).collect()
}

#[test]
fn round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let (mut wal, mut log) = open(dir.path());
        assert!(log.is_empty());
        append(&mut wal, &mut log, 1, 0..5);
        append(&mut wal, &mut log, 1, 5..8);
        // A new leader overwrites the tail.
        wal.truncate(6).unwrap();
        log.truncate(6);
        append(&mut wal, &mut log, 2, 6..10);
        wal.purge(log_id(1, 2)).unwrap();
        log.purge(log_id(1, 2));
        wal.set_committed(Some(log_id(2, 8)));
        log.set_committed(Some(log_id(2, 8)));
        append(&mut wal, &mut log, 2, 10..11);
        log_ids(&log)
    };
    let (_wal, log) = open(dir.path());
    assert_eq!(log_ids(&log), expected);
    assert_eq!(log.entries().next().unwrap().log_id.index, 3);
    assert_eq!(log.last_log_id(), Some(log_id(2, 10)));
    assert_eq!(log.last_purged(), Some(log_id(1, 2)));
    assert_eq!(log.committed(), Some(log_id(2, 8)));
    let entry = log.range(7..8).pop().unwrap();
    assert_eq!(entry, kv_entry(2, 7), "payloads survive byte for byte");
}

#[test]
fn committed_is_written_on_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, mut log) = open(dir.path());
        append(&mut wal, &mut log, 1, 0..3);
        wal.set_committed(Some(log_id(1, 2)));
    }
    let (_wal, log) = open(dir.path());
    assert_eq!(log.committed(), Some(log_id(1, 2)));
}

#[test]
fn torn_tail_is_dropped_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WAL_FILE);
    let good_len = {
        let (mut wal, mut log) = open(dir.path());
        append(&mut wal, &mut log, 1, 0..3);
        wal.file_bytes()
    };
    // A crash in the middle of writing the next batch: half a record.
    let mut half = Vec::new();
    append_record(&mut half, &WalRecord::Entry(&kv_entry(1, 3)), WAL_RECORD_BYTES_MAX).unwrap();
    half.truncate(half.len() / 2);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&half)
        .unwrap();

    {
        let (mut wal, mut log) = open(dir.path());
        assert_eq!(log.last_log_id(), Some(log_id(1, 2)));
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len, "torn bytes are cut off");
        append(&mut wal, &mut log, 1, 3..5);
    }
    let (_wal, log) = open(dir.path());
    assert_eq!(log.last_log_id(), Some(log_id(1, 4)));
    assert_eq!(log.len(), 5);
}

#[test]
fn corruption_before_the_last_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WAL_FILE);
    {
        let (mut wal, mut log) = open(dir.path());
        append(&mut wal, &mut log, 1, 0..3);
    }
    let mut bytes = fs::read(&path).unwrap();
    let inside_first_payload = WAL_MAGIC.len() + RECORD_HEADER_BYTES + 3;
    bytes[inside_first_payload] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    match Wal::open(dir.path(), WalOptions::default()) {
        Err(err @ WalError::Corrupt { .. }) => {
            let msg = err.to_string();
            assert!(msg.contains("refusing to start"), "{msg}");
            assert!(msg.contains(&format!("byte {}", WAL_MAGIC.len())), "{msg}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a corrupt WAL opened"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes, "a refused WAL is left untouched");
}

#[test]
fn foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(WAL_FILE), b"not a wal at all").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::BadMagic(_))
    ));
}

#[test]
fn vote_is_persisted_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path());
        let mut vote = Vote::new(4, 1);
        vote.commit();
        wal.save_vote(&vote).unwrap();
    }
    let (_wal, log) = open(dir.path());
    let vote = log.vote().unwrap();
    assert!(vote.is_committed());
    assert_eq!(vote.leader_id().get_term(), 4);
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    assert!(matches!(err, WalError::Locked(_)), "{err}");
    assert!(err.to_string().contains("in use"));
}

#[test]
fn compaction_drops_purged_records_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        compact_dead_bytes_min: 0,
    };
    let before = {
        let (mut wal, mut log) = Wal::open(dir.path(), options).unwrap();
        append(&mut wal, &mut log, 1, 0..100);
        assert!(!wal.needs_compaction());
        wal.purge(log_id(1, 89)).unwrap();
        log.purge(log_id(1, 89));
        wal.set_committed(Some(log_id(1, 95)));
        log.set_committed(Some(log_id(1, 95)));
        assert!(wal.needs_compaction());
        let big = wal.file_bytes();
        wal.compact(&log).unwrap();
        assert!(wal.file_bytes() * 5 < big, "{} -> {}", big, wal.file_bytes());
        assert_eq!(wal.file_bytes(), fs::metadata(dir.path().join(WAL_FILE)).unwrap().len());
        assert!(!wal.needs_compaction());
        append(&mut wal, &mut log, 1, 100..102);
        log_ids(&log)
    };
    let (_wal, log) = Wal::open(dir.path(), options).unwrap();
    assert_eq!(log_ids(&log), before);
    assert_eq!(log.entries().next().unwrap().log_id.index, 90);
    assert_eq!(log.last_purged(), Some(log_id(1, 89)));
    assert_eq!(log.committed(), Some(log_id(1, 95)));
}

#[test]
fn oversized_entry_is_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    let mut entry = kv_entry(1, 0);
    entry.payload = openraft::EntryPayload::Normal(proconsul_shared::Command::KvSet {
        key: "big".into(),
        value: vec![0u8; WAL_RECORD_BYTES_MAX + 1],
        flags: 0,
    });
    let before = wal.file_bytes();
    let err = wal.append(&[entry]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(wal.file_bytes(), before);
    assert_eq!(fs::metadata(dir.path().join(WAL_FILE)).unwrap().len(), before);
}
