use std::path::Path;

use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::ring::{ReadOutcome, RingReader};
use proconsul_shared::{limits as shared_limits, Delta};

use super::*;

const ADDR: &str = "127.0.0.1:8300";

fn publisher() -> Arc<Publisher> {
    Publisher::new(1, shared_limits::DELTA_RING_BYTES_MIN).unwrap()
}

fn options(node_id: NodeId, data_dir: Option<&Path>) -> RaftOptions {
    RaftOptions {
        node_id,
        rpc_addr: ADDR.into(),
        data_dir: data_dir.map(Path::to_path_buf),
        dev: data_dir.is_none(),
        cluster: None,
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
    }
}

/// Writes `count` keys `prefix/i`, returning (key, index) in write order.
async fn write_keys(raft: &RaftHandle, prefix: &str, count: usize) -> Vec<(String, u64)> {
    let mut written = Vec::new();
    for i in 0..count {
        let key = format!("{prefix}/{i}");
        let (index, result) = raft.write(set(&key, &format!("v{i}"))).await.unwrap();
        assert_eq!(result, CommandResult::Bool(true));
        if let Some((_, previous)) = written.last() {
            assert!(index > *previous, "indexes increase: {index} after {previous}");
        }
        written.push((key, index));
    }
    written
}

fn assert_has(publisher: &Publisher, written: &[(String, u64)]) {
    let state = publisher.state();
    for (key, index) in written {
        let entry = state
            .kv
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged write {key} is missing"));
        assert_eq!(entry.modify_index, *index, "{key} keeps its index");
    }
}

#[tokio::test]
async fn dev_mode_leads_fast_and_publishes_writes() {
    let p = publisher();
    let mut reader = RingReader::open(SharedRegion::from_fd(p.ring_fd().unwrap()).unwrap(), 0).unwrap();
    let started = Instant::now();
    let raft = RaftHandle::start(options(1, None), p.clone()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a -dev server leads quickly, took {:?}",
        started.elapsed()
    );
    assert_eq!(raft.leader_status(), (true, 0));
    assert_eq!(
        raft.cluster_status(),
        ClusterStatus {
            leader: Some(ADDR.into()),
            peers: vec![ADDR.into()],
        }
    );

    let written = write_keys(&raft, "dev", 5).await;
    assert_has(&p, &written);
    let last = written.last().unwrap().1;
    assert_eq!(p.applied_index(), last);
    assert_eq!(raft.applied_index(), last);

    // Every applied entry reached the ring, the writes among them in order.
    let mut ring_indexes = Vec::new();
    for _ in 0..10_000 {
        match reader.read_next() {
            ReadOutcome::Record { index } => {
                let delta = Delta::decode(reader.payload()).unwrap();
                assert_eq!(delta.index, index);
                ring_indexes.push(index);
            }
            ReadOutcome::Empty => break,
            ReadOutcome::Overrun => panic!("overrun"),
        }
    }
    assert_eq!(ring_indexes.last(), Some(&last));
    for (_, index) in &written {
        assert!(ring_indexes.contains(index), "index {index} was published");
    }

    let stats = raft.stats();
    assert_eq!(stats["state"], "Leader");
    assert_eq!(stats["applied_index"], last.to_string());
    assert_eq!(stats["num_peers"], "0");
    assert_eq!(stats["last_contact"], "0");

    raft.shutdown().await;
    let err = raft.write(set("after", "shutdown")).await.unwrap_err();
    assert_eq!(err.status, 500);
}

#[tokio::test]
async fn durable_writes_survive_restart_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let first = publisher();
    let raft = RaftHandle::start(options(1, Some(dir.path())), first.clone())
        .await
        .unwrap();
    let mut written = write_keys(&raft, "a", 20).await;
    let cas = Command::KvCas {
        key: "a/0".into(),
        value: b"cas".to_vec(),
        flags: 0,
        index: written[0].1,
    };
    let (cas_index, cas_result) = raft.write(cas).await.unwrap();
    assert_eq!(cas_result, CommandResult::Bool(true));
    written[0].1 = cas_index;
    raft.shutdown().await;

    let second = publisher();
    let raft = RaftHandle::start(options(1, Some(dir.path())), second.clone())
        .await
        .unwrap();
    assert_has(&second, &written);
    assert_eq!(second.state().kv.get("a/0").unwrap().value, b"cas");
    let max_before = written.iter().map(|(_, i)| *i).max().unwrap();
    assert!(
        second.applied_index() >= max_before,
        "reads after restart are not behind"
    );
    let (next, _) = raft.write(set("b", "after restart")).await.unwrap();
    assert!(next > max_before, "next index {next} > {max_before}");
    raft.shutdown().await;

    // And once more: the post-restart write is durable too.
    let third = publisher();
    let raft = RaftHandle::start(options(1, Some(dir.path())), third.clone())
        .await
        .unwrap();
    assert_has(&third, &written);
    assert_eq!(third.state().kv.get("b").unwrap().modify_index, next);
    raft.shutdown().await;
}

#[tokio::test]
async fn restart_from_snapshot_plus_purged_log() {
    let dir = tempfile::tempdir().unwrap();
    let first = publisher();
    let raft = RaftHandle::start(options(1, Some(dir.path())), first.clone())
        .await
        .unwrap();
    let mut written = write_keys(&raft, "s", 15).await;
    let snapshot_at = raft.applied_index();
    let inner = &raft.inner.raft;
    // Read the term first: a metrics borrow must not live across an await.
    let term = inner.metrics().borrow().current_term;
    inner.trigger().snapshot().await.unwrap();
    inner
        .wait(Some(Duration::from_secs(10)))
        .snapshot(
            openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), snapshot_at),
            "snapshot built",
        )
        .await
        .unwrap();
    inner.trigger().purge_log(snapshot_at).await.unwrap();
    inner
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.index() == Some(snapshot_at), "log purged")
        .await
        .unwrap();
    written.extend(write_keys(&raft, "t", 5).await);
    assert_eq!(raft.stats()["last_snapshot_index"], snapshot_at.to_string());
    raft.shutdown().await;

    let second = publisher();
    let resets = second.resets();
    let raft = RaftHandle::start(options(1, Some(dir.path())), second.clone())
        .await
        .unwrap();
    assert_eq!(*resets.borrow(), 1, "the snapshot was restored into the publisher");
    assert_has(&second, &written);
    let (next, _) = raft.write(set("u", "1")).await.unwrap();
    assert!(next > written.last().unwrap().1);
    raft.shutdown().await;
}

#[tokio::test]
async fn a_changed_address_is_recorded_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let raft = RaftHandle::start(options(1, Some(dir.path())), publisher())
        .await
        .unwrap();
    let (before, _) = raft.write(set("k", "v")).await.unwrap();
    raft.shutdown().await;

    let moved = RaftOptions {
        rpc_addr: "127.0.0.1:8399".into(),
        ..options(1, Some(dir.path()))
    };
    let p = publisher();
    let raft = RaftHandle::start(moved.clone(), p.clone()).await.unwrap();
    let expected = ClusterStatus {
        leader: Some("127.0.0.1:8399".into()),
        peers: vec!["127.0.0.1:8399".into()],
    };
    assert_eq!(raft.cluster_status(), expected);
    assert!(p.applied_index() > before, "the change is a raft entry");
    raft.shutdown().await;

    let raft = RaftHandle::start(moved, publisher()).await.unwrap();
    assert_eq!(raft.cluster_status(), expected, "the new address is durable");
    raft.shutdown().await;
}

#[tokio::test]
async fn start_gives_up_when_leadership_needs_an_unreachable_peer() {
    use std::collections::BTreeSet;

    use openraft::{EntryPayload, Membership};

    // Storage whose configuration has two voters: node 2 never answers.
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = log_wal::Wal::open(&dir.path().join("raft"), WalOptions::default()).unwrap();
        let nodes = BTreeMap::from([(1, BasicNode::new(ADDR)), (2, BasicNode::new("127.0.0.2:8300"))]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        wal.append(&[types::Entry {
            log_id: log_mem::tests::log_id(0, 0),
            payload: EntryPayload::Membership(membership),
        }])
        .unwrap();
    }
    let started = Instant::now();
    let err = RaftHandle::start_within(options(1, Some(dir.path())), publisher(), 1500)
        .await
        .err()
        .expect("one of two voters cannot lead");
    assert!(
        format!("{err:#}").contains("did not take leadership within 1500 ms"),
        "{err:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The storage was released: the directory can be opened again.
    assert!(log_wal::Wal::open(&dir.path().join("raft"), WalOptions::default()).is_ok());
}

#[tokio::test]
async fn a_data_dir_serves_one_server_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let raft = RaftHandle::start(options(1, Some(dir.path())), publisher())
        .await
        .unwrap();
    let err = RaftHandle::start(options(1, Some(dir.path())), publisher())
        .await
        .err()
        .expect("a second server on the same directory is refused");
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    raft.shutdown().await;
}

#[tokio::test]
async fn a_different_node_id_on_existing_storage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raft = RaftHandle::start(options(1, Some(dir.path())), publisher())
        .await
        .unwrap();
    raft.shutdown().await;
    let started = Instant::now();
    let err = RaftHandle::start(options(2, Some(dir.path())), publisher())
        .await
        .err()
        .expect("node 2 is not in the stored configuration");
    assert!(format!("{err:#}").contains("not a voter"), "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without waiting out the timeout"
    );
}

#[tokio::test]
async fn refuses_a_publisher_that_already_holds_state() {
    let p = publisher();
    p.apply(3, Some(&set("k", "v")));
    let err = RaftHandle::start(options(1, None), p).await.err().unwrap();
    assert!(err.to_string().contains("empty publisher"), "{err}");
}

#[tokio::test]
async fn oversized_command_is_refused_with_413_before_raft() {
    let p = publisher();
    let raft = RaftHandle::start(options(1, None), p.clone()).await.unwrap();
    let before = p.applied_index();
    let huge = Command::KvSet {
        key: "huge".into(),
        value: vec![0u8; limits::ENTRY_COMMAND_BYTES_MAX],
        flags: 0,
    };
    let err = raft.write(huge).await.unwrap_err();
    assert_eq!(err.status, 413);
    assert!(err.message.contains("raft entry limit"), "{}", err.message);
    assert_eq!(p.applied_index(), before, "nothing was appended");
    raft.shutdown().await;
}
