//! A server that leaves gracefully takes itself out of the raft
//! configuration before it leaves gossip (Consul's leave), so the servers
//! that stay keep a quorum of their own: three servers, a follower leaves,
//! then the leader leaves (it hands leadership over first), and the last
//! server alone still leads and takes writes. Were a leaver only removed
//! by the leader after it had gone, the second leave would leave one
//! server of a two-voter configuration, without a quorum.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::cluster::{eventually, leader_of};
use common::raft_peers::{peers, raft_addr, start_servers};
use common::Agent;
use tempfile::TempDir;

/// Longest wait for a leaving agent's process to exit.
const EXIT_WAIT: Duration = Duration::from_secs(40);

fn addrs(ips: &[Ipv4Addr]) -> Vec<String> {
    let mut a: Vec<String> = ips.iter().map(|ip| raft_addr(*ip)).collect();
    a.sort();
    a
}

/// `PUT /v1/agent/leave` on `agents[i]`, then waits for it to exit.
fn leave(agents: &mut [Agent], i: usize) {
    let r = agents[i].put("/v1/agent/leave", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    if agents[i].wait_exit(EXIT_WAIT).is_none() {
        panic!(
            "server {} did not exit after leaving\n{}",
            agents[i].ip(),
            agents[i].logs_tail()
        );
    }
}

/// Waits until `agents[at]` sees exactly `ips` as peers and a leader among
/// them, then checks that a write goes through.
fn converged(agents: &[Agent], at: usize, ips: &[Ipv4Addr], key: &str) {
    let want = addrs(ips);
    eventually("the servers that stay are the peers and one leads", || {
        let p = peers(&agents[at]);
        let leader = leader_of(&agents[at]);
        match leader {
            Some(l) if p == want && want.contains(&l) => Ok(()),
            _ => Err(format!("peers {p:?}, leader {leader:?}")),
        }
    });
    eventually("a write goes through", || {
        let r = agents[at].put(&format!("/v1/kv/{key}"), b"v");
        if r.status == 200 && r.text() == "true" {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.text()))
        }
    });
}

#[test]
fn leaving_servers_leave_the_raft_configuration_first() {
    let dir = TempDir::new().unwrap();
    let (ips, mut agents) = start_servers(&dir, 3);
    converged(&agents, 0, &ips, "before");

    // A follower leaves: two servers stay.
    let leader = leader_of(&agents[0]).expect("a leader");
    let follower = (0..3).find(|i| raft_addr(ips[*i]) != leader).unwrap();
    leave(&mut agents, follower);
    let stay: Vec<usize> = (0..3).filter(|i| *i != follower).collect();
    let stay_ips: Vec<Ipv4Addr> = stay.iter().map(|i| ips[*i]).collect();
    converged(&agents, stay[0], &stay_ips, "after-follower");

    // The leader of the two leaves: the last server leads alone.
    let leader = leader_of(&agents[stay[0]]).expect("a leader");
    let (gone, last) = if raft_addr(ips[stay[0]]) == leader {
        (stay[0], stay[1])
    } else {
        (stay[1], stay[0])
    };
    leave(&mut agents, gone);
    converged(&agents, last, &[ips[last]], "after-leader");
    let r = agents[last].get("/v1/kv/after-leader");
    assert_eq!(r.status, 200, "{}", r.text());
}
