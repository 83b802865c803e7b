//! Three raft servers in one process, over real TCP on their own loopback
//! addresses: bootstrap from `bootstrap_expect`, writes through a follower,
//! leader loss, isolation.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::time::{Duration, Instant};

use proconsul_shared::limits as shared_limits;

use super::cluster::ClusterOptions;
use super::transport::PeerFaults;
use super::*;

/// Longest wait for the cluster to reach a condition.
const CONVERGE_WAIT_MS: u64 = 20_000;

/// A free port on `ip`, for a server to bind right after.
fn free_addr(ip: Ipv4Addr) -> SocketAddr {
    let l = StdListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().unwrap()
}

/// A loopback block of our own: 127.72.<pid-derived>.x.
fn ip(n: u8) -> Ipv4Addr {
    let pid = std::process::id();
    Ipv4Addr::new(127, 72, (1 + pid % 250) as u8, n)
}

struct Server {
    raft: RaftHandle,
    publisher: Arc<Publisher>,
    addr: String,
}

async fn start_three(base: u8) -> Vec<Server> {
    let addrs: Vec<SocketAddr> = (0..3).map(|i| free_addr(ip(base + i))).collect();
    let join: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let mut starts = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let publisher = Publisher::new(1, shared_limits::DELTA_RING_BYTES_MIN).unwrap();
        let opts = RaftOptions {
            node_id: 100 + i as u64,
            rpc_addr: addr.to_string(),
            data_dir: None,
            dev: true,
            cluster: Some(ClusterOptions {
                listen: *addr,
                bootstrap_expect: 3,
                join: join.clone(),
                datacenter: "dc1".into(),
                join_retry_ms: 100,
                servers: None,
                faults: PeerFaults::default(),
            }),
        };
        let p = publisher.clone();
        starts.push(tokio::spawn(
            async move { (RaftHandle::start(opts, p).await, publisher) },
        ));
    }
    let mut servers = Vec::new();
    for (s, addr) in starts.into_iter().zip(&addrs) {
        let (raft, publisher) = s.await.unwrap();
        servers.push(Server {
            raft: raft.expect("cluster server starts"),
            publisher,
            addr: addr.to_string(),
        });
    }
    servers
}

/// Waits until every live server agrees on one leader and three voters.
async fn wait_for_leader(servers: &[&Server], voters: usize) -> String {
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_WAIT_MS);
    loop {
        let statuses: Vec<ClusterStatus> = servers.iter().map(|s| s.raft.cluster_status()).collect();
        if let Some(leader) = statuses[0].leader.clone() {
            if statuses
                .iter()
                .all(|st| st.leader.as_ref() == Some(&leader) && st.peers.len() == voters)
            {
                return leader;
            }
        }
        assert!(Instant::now() < deadline, "no agreed leader: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_applied(servers: &[&Server], index: u64) {
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_WAIT_MS);
    while servers.iter().any(|s| s.publisher.applied_index() < index) {
        assert!(Instant::now() < deadline, "replicas did not reach {index}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_bootstrap_replicate_forward_and_survive_the_leader() {
    let servers = start_three(10).await;
    let all: Vec<&Server> = servers.iter().collect();
    let leader = wait_for_leader(&all, 3).await;

    // A write through a follower is forwarded, and every server has it.
    let follower = servers.iter().find(|s| s.addr != leader).unwrap();
    let (index, result) = follower.raft.write(set("a", "1")).await.expect("forwarded write");
    assert_eq!(result, CommandResult::Bool(true));
    wait_applied(&all, index).await;
    for s in &servers {
        assert_eq!(s.publisher.state().kv.get("a").unwrap().modify_index, index);
    }

    // The leader goes: the other two elect a new one and keep writing.
    let old = servers.iter().position(|s| s.addr == leader).unwrap();
    servers[old].raft.shutdown().await;
    let survivors: Vec<&Server> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(_, s)| s)
        .collect();
    let started = Instant::now();
    let new_leader = loop {
        let st = survivors[0].raft.cluster_status();
        if let Some(l) = st.leader.filter(|l| *l != leader) {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no new leader after the old one left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(new_leader, leader);
    let mut last = index;
    for (i, s) in survivors.iter().enumerate() {
        let (idx, _) = s
            .raft
            .write(set(&format!("after/{i}"), "x"))
            .await
            .expect("write after failover");
        assert!(idx > last, "indexes keep increasing");
        last = idx;
    }
    wait_applied(&survivors, last).await;
    for s in &survivors {
        let st = s.publisher.state();
        assert!(st.kv.get("a").is_some(), "the acknowledged write survived");
        assert!(st.kv.get("after/0").is_some() && st.kv.get("after/1").is_some());
    }
    for s in &survivors {
        s.raft.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_server_cannot_acknowledge_and_converges_when_healed() {
    let servers = start_three(20).await;
    let all: Vec<&Server> = servers.iter().collect();
    let leader = wait_for_leader(&all, 3).await;
    let cut = servers.iter().position(|s| s.addr != leader).unwrap();
    servers[cut].raft.set_isolated(true);

    // The isolated server cannot get a write acknowledged.
    let refused = servers[cut].raft.write(set("cut", "1")).await;
    assert!(refused.is_err(), "an isolated server acknowledged a write: {refused:?}");

    // The majority goes on.
    let majority: Vec<&Server> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != cut)
        .map(|(_, s)| s)
        .collect();
    let mut index = 0;
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_WAIT_MS);
    for i in 0..5 {
        loop {
            match majority[0].raft.write(set(&format!("maj/{i}"), "v")).await {
                Ok((idx, _)) => {
                    index = idx;
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "majority could not write: {e:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert!(servers[cut].publisher.applied_index() < index);

    // Healed: it catches up with everything the majority acknowledged.
    servers[cut].raft.set_isolated(false);
    wait_applied(&all, index).await;
    let st = servers[cut].publisher.state();
    for i in 0..5 {
        assert!(
            st.kv.get(&format!("maj/{i}")).is_some(),
            "maj/{i} missing after healing"
        );
    }
    assert!(st.kv.get("cut").is_none(), "the refused write never appeared");
    for s in &servers {
        s.raft.shutdown().await;
    }
}

#[tokio::test]
async fn a_server_of_another_datacenter_is_refused() {
    let a = free_addr(ip(30));
    let publisher = Publisher::new(1, shared_limits::DELTA_RING_BYTES_MIN).unwrap();
    let opts = RaftOptions {
        node_id: 7,
        rpc_addr: a.to_string(),
        data_dir: None,
        dev: true,
        cluster: Some(ClusterOptions {
            listen: a,
            bootstrap_expect: 1,
            join: vec![],
            datacenter: "dc1".into(),
            join_retry_ms: 100,
            servers: None,
            faults: PeerFaults::default(),
        }),
    };
    let raft = RaftHandle::start(opts, publisher).await.unwrap();
    let hello = ServerHello {
        node_id: 8,
        rpc_addr: "127.72.0.99:8300".into(),
        datacenter: "dc2".into(),
    };
    let reply = transport::call::call(
        &a.to_string(),
        &PeerRequest::Hello(hello),
        Duration::from_secs(2),
        &PeerFaults::default(),
    )
    .await
    .unwrap();
    assert!(
        matches!(&reply, PeerReply::Refused(why) if why.contains("dc2")),
        "{reply:?}"
    );
    raft.shutdown().await;
}
