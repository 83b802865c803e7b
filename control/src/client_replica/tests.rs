//! A client replica following a real server over TCP on loopback.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};

use proconsul_shared::limits as shared_limits;
use proconsul_shared::{Command, CommandResult};

use super::*;
use crate::raft::cluster::ClusterOptions;
use crate::raft::{RaftHandle, RaftOptions};

const WAIT_MS: u64 = 10_000;

fn ip(n: u8) -> Ipv4Addr {
    let pid = std::process::id();
    Ipv4Addr::new(127, 73, (1 + pid % 250) as u8, n)
}

fn free_addr(ip: Ipv4Addr) -> SocketAddr {
    StdListener::bind((ip, 0)).unwrap().local_addr().unwrap()
}

fn publisher() -> Arc<Publisher> {
    Publisher::new(1, shared_limits::DELTA_RING_BYTES_MIN).unwrap()
}

async fn server(n: u8) -> (RaftHandle, Arc<Publisher>, String) {
    let addr = free_addr(ip(n));
    let p = publisher();
    let opts = RaftOptions {
        node_id: 1,
        rpc_addr: addr.to_string(),
        data_dir: None,
        dev: true,
        cluster: Some(ClusterOptions {
            listen: addr,
            bootstrap_expect: 1,
            join: vec![],
            datacenter: "dc1".into(),
            join_retry_ms: 100,
            servers: None,
            faults: PeerFaults::default(),
        }),
    };
    let raft = RaftHandle::start(opts, p.clone()).await.unwrap();
    (raft, p, addr.to_string())
}

fn set(key: &str) -> Command {
    Command::KvSet {
        key: key.into(),
        value: b"v".to_vec(),
        flags: 0,
    }
}

async fn wait_index(p: &Publisher, index: u64) {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    while p.applied_index() < index {
        assert!(
            Instant::now() < deadline,
            "replica stuck at {} < {index}",
            p.applied_index()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_replica_follows_writes_and_resumes_without_a_snapshot() {
    let (raft, _server_pub, addr) = server(1).await;
    let (i1, r) = raft.write(set("before")).await.unwrap();
    assert_eq!(r, CommandResult::Bool(true));

    let client = publisher();
    let status = Arc::new(ReplicaStatus::new(Instant::now()));
    let (servers_tx, servers) = watch::channel(vec![addr.clone()]);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(follow(
        client.clone(),
        servers,
        status.clone(),
        PeerFaults::default(),
        50,
        stop,
    ));
    wait_index(&client, i1).await;
    assert!(client.state().kv.get("before").is_some());
    assert_eq!(
        status.snapshots(),
        0,
        "the server still holds every delta since its start: no snapshot"
    );

    let (i2, _) = raft.write(set("after")).await.unwrap();
    wait_index(&client, i2).await;
    assert_eq!(client.state().kv.get("after").unwrap().modify_index, i2);
    assert!(status.leader_status(Instant::now()).0 || status.leader().is_none());

    // Stop following; write more; follow again: it resumes by deltas.
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let (i3, _) = raft.write(set("while-away")).await.unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(follow(
        client.clone(),
        servers_tx.subscribe(),
        status.clone(),
        PeerFaults::default(),
        50,
        stop,
    ));
    wait_index(&client, i3).await;
    assert!(client.state().kv.get("while-away").is_some());
    assert_eq!(status.snapshots(), 0, "resumed from its index by deltas");

    // The server learns who leads; the heartbeat carries it.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    while status.leader().as_deref() != Some(addr.as_str()) {
        assert!(Instant::now() < deadline, "no leader heard: {:?}", status.leader());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    raft.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_a_reset_starts_over_from_a_snapshot() {
    let (raft, server_pub, addr) = server(2).await;
    let (i1, _) = raft.write(set("a")).await.unwrap();
    let client = publisher();
    let status = ReplicaStatus::new(Instant::now());
    let (_stop_tx, stop) = watch::channel(false);
    // Follow once to get a state, then stop by letting the server reset.
    let follow_until = |index| {
        let client = client.clone();
        let addr = addr.clone();
        let stop = stop.clone();
        let status = &status;
        async move {
            let faults = PeerFaults::default();
            let run = follow_one(&addr, &client, status, &faults, stop);
            tokio::select! {
                _ = run => panic!("stream ended"),
                _ = wait_index(&client, index) => {}
            }
        }
    };
    follow_until(i1).await;
    assert_eq!(status.snapshots(), 0);
    // The server's state is replaced (as by a snapshot install): its
    // window restarts, so a reader at an older index needs a snapshot.
    let (i2, _) = raft.write(set("b")).await.unwrap();
    server_pub.restore(server_pub.state());
    follow_until(i2).await;
    assert_eq!(status.snapshots(), 1, "behind the window: a snapshot");
    assert!(client.state().kv.get("b").is_some());
    raft.shutdown().await;
}

#[tokio::test]
async fn a_bad_frame_fails_the_stream_instead_of_corrupting_the_replica() {
    let p = publisher();
    let status = ReplicaStatus::new(Instant::now());
    let err = apply_frame(&p, &status, StreamFrame::Deltas(vec![(5, vec![1, 2, 3])])).unwrap_err();
    assert!(err.contains("delta 5"), "{err}");
    let err = apply_frame(
        &p,
        &status,
        StreamFrame::Snapshot {
            index: 9,
            bytes: vec![0; 16],
        },
    )
    .unwrap_err();
    assert!(!err.is_empty());
    assert_eq!(p.applied_index(), 0, "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_write_goes_through_a_server_and_unreachable_ones_are_skipped() {
    let (raft, server_pub, addr) = server(3).await;
    let dead = free_addr(ip(4)).to_string();
    let (_tx, servers) = watch::channel(vec![dead.clone(), addr.clone()]);
    // Both orders of trying are covered by enough attempts.
    for i in 0..6 {
        let (index, result) = writes::forward_write(&servers, set(&format!("c/{i}")), &PeerFaults::default())
            .await
            .expect("a reachable server answers");
        assert_eq!(result, CommandResult::Bool(true));
        wait_index(&server_pub, index).await;
    }
    let (_tx, none) = watch::channel(vec![dead]);
    let err = writes::forward_write(&none, set("x"), &PeerFaults::default())
        .await
        .unwrap_err();
    assert_eq!(err.status, 500);
    let (_tx, empty) = watch::channel(Vec::new());
    let err = writes::forward_write(&empty, set("x"), &PeerFaults::default())
        .await
        .unwrap_err();
    assert_eq!(err.message, "No known Consul servers");
    raft.shutdown().await;
}

#[tokio::test]
async fn a_stream_silent_for_stream_silence_ms_max_is_dropped() {
    // A "server" that takes the subscription and then never sends a frame.
    let listener = tokio::net::TcpListener::bind((ip(5), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(STREAM_SILENCE_MS_MAX * 3)).await;
        drop(stream);
    });
    let status = ReplicaStatus::new(Instant::now());
    let (_stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let end = follow_one(&addr, &publisher(), &status, &PeerFaults::default(), stop).await;
    let waited = started.elapsed();
    match end {
        StreamEnd::Failed(why) => assert!(why.contains("silent for"), "{why}"),
        StreamEnd::Stopped => panic!("the stream was not stopped"),
    }
    assert!(waited >= Duration::from_millis(STREAM_SILENCE_MS_MAX), "{waited:?}");
    assert!(
        waited < Duration::from_millis(STREAM_SILENCE_MS_MAX + 2_000),
        "{waited:?}"
    );
    silent.abort();
}
