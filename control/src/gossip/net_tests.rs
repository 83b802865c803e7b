//! Real UDP/TCP on loopback: several gossip agents in one process, each on
//! its own 127.x address, every wait bounded.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Gossip, GossipOptions, GossipTimings, MemberEvent, MemberStatus};

/// A fresh 127.a.b.0/24 block per test so tests never share addresses.
fn loopback_block() -> [u8; 2] {
    [100 + rand::random::<u8>() % 100, rand::random::<u8>()]
}

fn options(block: [u8; 2], index: u8, join: Vec<String>, timings: GossipTimings) -> GossipOptions {
    let ip = IpAddr::V4(Ipv4Addr::new(127, block[0], block[1], index + 1));
    GossipOptions {
        bind: SocketAddr::new(ip, 0),
        advertise: SocketAddr::new(ip, 0),
        node_name: format!("node-{index}"),
        tags: BTreeMap::from([
            ("role".to_string(), "node".to_string()),
            ("dc".to_string(), "dc1".to_string()),
        ]),
        join,
        join_retry_ms: 100,
        timings,
        pool: super::Pool::Lan,
        faults: crate::raft::transport::PeerFaults::default(),
    }
}

async fn wait_until(max: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < max {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

fn sees(observer: &Gossip, name: &str, status: MemberStatus) -> bool {
    observer.members().iter().any(|m| m.name == name && m.status == status)
}

fn all_alive(nodes: &[&Gossip], count: usize) -> bool {
    nodes.iter().all(|n| {
        let members = n.members();
        members.len() == count && members.iter().all(|m| m.status == MemberStatus::Alive)
    })
}

async fn start_cluster(block: [u8; 2], count: u8) -> Vec<Gossip> {
    let first = Gossip::start(options(block, 0, Vec::new(), GossipTimings::fast()))
        .await
        .unwrap();
    let seed = first.local_addr().to_string();
    let mut nodes = vec![first];
    for index in 1..count {
        let opts = options(block, index, vec![seed.clone()], GossipTimings::fast());
        nodes.push(Gossip::start(opts).await.unwrap());
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_leave_fail_and_restart() {
    let block = loopback_block();
    let nodes = start_cluster(block, 4).await;
    let mut events = nodes[0].subscribe();
    let refs: Vec<&Gossip> = nodes.iter().collect();
    assert!(
        wait_until(Duration::from_secs(5), || all_alive(&refs, 4)).await,
        "no convergence: {:?}",
        nodes[0].members()
    );
    let member = nodes[1].members().into_iter().find(|m| m.name == "node-0").unwrap();
    assert_eq!(
        (member.addr, member.port),
        (nodes[0].local_addr().ip(), nodes[0].local_addr().port())
    );
    assert_eq!(member.tags.get("role").map(String::as_str), Some("node"));

    // Graceful leave: left (3) everywhere; the wait is capped by
    // leave_propagate_ms_max (1 s in fast()), whatever the caller asks.
    let leave_started = Instant::now();
    nodes[3].leave(Duration::from_secs(60)).await;
    assert!(
        leave_started.elapsed() < Duration::from_secs(3),
        "leave wait not bounded"
    );
    nodes[3].shutdown().await;
    assert!(
        wait_until(Duration::from_secs(3), || (0..3).all(|i| sees(
            &nodes[i],
            "node-3",
            MemberStatus::Left
        )))
        .await
    );

    // Crash (no leave): failed (4) after the suspicion timeout.
    let crashed_addr = nodes[2].local_addr();
    nodes[2].shutdown().await;
    assert!(
        wait_until(Duration::from_secs(5), || (0..2).all(|i| sees(
            &nodes[i],
            "node-2",
            MemberStatus::Failed
        )))
        .await
    );

    // Restart with the same name and address: alive again.
    let mut opts = options(block, 2, vec![nodes[0].local_addr().to_string()], GossipTimings::fast());
    opts.bind = crashed_addr;
    opts.advertise = crashed_addr;
    let restarted = Gossip::start(opts).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || (0..2).all(|i| sees(
            &nodes[i],
            "node-2",
            MemberStatus::Alive
        )))
        .await
    );
    assert!(
        wait_until(Duration::from_secs(3), || sees(
            &restarted,
            "node-3",
            MemberStatus::Left
        ))
        .await
    );

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, MemberEvent::Left(m) if m.name == "node-3")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, MemberEvent::Failed(m) if m.name == "node-2")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, MemberEvent::Joined(m) if m.name == "node-2")),
        "{seen:?}"
    );

    restarted.shutdown().await;
    nodes[0].shutdown().await;
    nodes[1].shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_api_counts_and_reports_unreachable() {
    let block = loopback_block();
    let a = Gossip::start(options(block, 0, Vec::new(), GossipTimings::fast()))
        .await
        .unwrap();
    let b = Gossip::start(options(block, 1, Vec::new(), GossipTimings::fast()))
        .await
        .unwrap();
    // Alone (as in -dev): only itself, alive.
    let alone = a.members();
    assert_eq!(alone.len(), 1);
    assert_eq!((alone[0].name.as_str(), alone[0].status.code()), ("node-0", 1));
    let nobody = format!("127.{}.{}.200:9", block[0], block[1]);
    let error = b.join(std::slice::from_ref(&nobody)).await.unwrap_err();
    assert!(error.contains("Failed to join") && error.contains(&nobody), "{error}");
    assert!(b.join(&["not a host".to_string()]).await.is_err());
    let joined = b.join(&[a.local_addr().to_string(), nobody]).await.unwrap();
    assert_eq!(joined, 1);
    assert!(wait_until(Duration::from_secs(3), || all_alive(&[&a, &b], 2)).await);

    // Tags change propagates.
    let tags = BTreeMap::from([("role".to_string(), "consul".to_string())]);
    b.set_tags(tags).await.unwrap();
    let role_is_consul = || {
        a.members()
            .iter()
            .any(|m| m.name == "node-1" && m.tags.get("role").map(String::as_str) == Some("consul"))
    };
    assert!(wait_until(Duration::from_secs(3), role_is_consul).await);

    assert!(a.force_leave("node-0", false).is_err());
    assert!(a.force_leave("ghost", false).unwrap_err().contains("No node found"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_connections_and_payloads_are_bounded() {
    let block = loopback_block();
    let timings = GossipTimings {
        push_pull_connections_max: 1,
        push_pull_bytes_max: 4_096,
        ..GossipTimings::fast()
    };
    let a = Gossip::start(options(block, 0, Vec::new(), timings)).await.unwrap();
    let target = a.local_addr();

    // A silent client holds the only slot: the next connection is closed.
    let _holder = TcpStream::connect(target).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = TcpStream::connect(target).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(1), refused.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "second connection was not closed: {read:?}"
    );
    drop(_holder);

    // An oversized frame is refused and the listener keeps serving.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut big = TcpStream::connect(target).await.unwrap();
    let mut header = b"PCG1".to_vec();
    header.extend_from_slice(&1_000_000u32.to_be_bytes());
    big.write_all(&header).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(1), big.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "oversized frame was not refused: {read:?}"
    );
    drop(big);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = Gossip::start(options(block, 1, Vec::new(), GossipTimings::fast()))
        .await
        .unwrap();
    assert_eq!(b.join(&[target.to_string()]).await, Ok(1));
    assert!(wait_until(Duration::from_secs(3), || all_alive(&[&a, &b], 2)).await);

    // An oversized UDP datagram is dropped without harm.
    let udp = tokio::net::UdpSocket::bind(SocketAddr::new(target.ip(), 0))
        .await
        .unwrap();
    udp.send_to(&[0u8; 2_000], target).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(all_alive(&[&a, &b], 2));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_join_keeps_trying_until_the_seed_appears() {
    let block = loopback_block();
    let seed_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, block[0], block[1], 1)), 18_301);
    let joiner = Gossip::start(options(block, 1, vec![seed_addr.to_string()], GossipTimings::fast()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(joiner.members().len(), 1, "joined a seed that does not exist yet");
    let mut opts = options(block, 0, Vec::new(), GossipTimings::fast());
    opts.bind = seed_addr;
    opts.advertise = seed_addr;
    let seed = Gossip::start(opts).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || all_alive(&[&seed, &joiner], 2)).await,
        "retry-join gave up"
    );
    seed.shutdown().await;
    joiner.shutdown().await;
}

#[tokio::test]
async fn unspecified_advertise_address_is_refused() {
    let block = loopback_block();
    let mut opts = options(block, 0, Vec::new(), GossipTimings::fast());
    opts.advertise = "0.0.0.0:0".parse().unwrap();
    let error = Gossip::start(opts).await.err().expect("must refuse 0.0.0.0");
    assert!(error.to_string().contains("unspecified"), "{error}");
    let mut opts = options(
        block,
        0,
        Vec::new(),
        GossipTimings {
            members_max: 0,
            ..GossipTimings::fast()
        },
    );
    opts.node_name = "n".to_string();
    assert!(Gossip::start(opts).await.is_err(), "invalid timings must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_member_fails_for_the_others_and_comes_back_when_healed() {
    let block = loopback_block();
    let faults = crate::raft::transport::PeerFaults::default();
    let a = Gossip::start(options(block, 0, Vec::new(), GossipTimings::fast()))
        .await
        .unwrap();
    let mut opts = options(block, 1, vec![a.local_addr().to_string()], GossipTimings::fast());
    opts.faults = faults.clone();
    let b = Gossip::start(opts).await.unwrap();
    assert!(wait_until(Duration::from_secs(5), || all_alive(&[&a, &b], 2)).await);

    faults.set_isolated(true);
    assert!(
        wait_until(Duration::from_secs(10), || sees(&a, "node-1", MemberStatus::Failed)).await,
        "a stops hearing the isolated member"
    );
    assert!(
        wait_until(Duration::from_secs(10), || sees(&b, "node-0", MemberStatus::Failed)).await,
        "the isolated member stops hearing a"
    );
    let refused = b.join(&[a.local_addr().to_string()]).await;
    assert!(refused.unwrap_err().contains("isolated"), "no join while isolated");

    faults.set_isolated(false);
    assert!(
        wait_until(Duration::from_secs(15), || all_alive(&[&a, &b], 2)).await,
        "healed: both alive again: {:?} / {:?}",
        a.members(),
        b.members()
    );
    a.shutdown().await;
    b.shutdown().await;
}
