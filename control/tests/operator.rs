//! The operator endpoints on a real cluster (four servers, one client):
//! the raft configuration through a server and a client, `operator raft
//! list-peers`, autopilot health (200, then 429 when a follower dies),
//! leadership transfer, a server that leaves gracefully dropping out of the
//! raft configuration, `operator raft remove-peer` of the dead one, and
//! Consul's answers to bad input.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::agent::fresh_loopback_ip;
use common::cluster::{client_spec, eventually, kill_node, leader_of, server_spec, start_all};
use common::raft_peers::{peers, raft_addr};
use common::run::run_bin;
use common::{Agent, AgentSpec};
use serde_json::Value;
use tempfile::TempDir;

const CLI_WAIT: Duration = Duration::from_secs(30);

/// The raft configuration's servers as `agent` answers them.
fn configuration(agent: &Agent) -> Result<Vec<Value>, String> {
    let r = agent.get("/v1/operator/raft/configuration");
    if r.status != 200 {
        return Err(format!("{}: {} {}", agent.ip(), r.status, r.text()));
    }
    Ok(r.json()["Servers"].as_array().cloned().unwrap_or_default())
}

fn addresses(servers: &[Value]) -> Vec<String> {
    let mut a: Vec<String> = servers
        .iter()
        .filter_map(|s| s["Address"].as_str().map(String::from))
        .collect();
    a.sort();
    a
}

/// The index of the server agent leading now.
fn leader_index(agents: &[Agent], ips: &[Ipv4Addr]) -> usize {
    let leader = leader_of(&agents[0]).expect("a leader");
    ips.iter()
        .position(|ip| raft_addr(*ip) == leader)
        .unwrap_or_else(|| panic!("leader {leader} is not a server"))
}

#[test]
fn operator_endpoints_on_a_real_cluster() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..5).map(|_| fresh_loopback_ip()).collect();
    let servers = &ips[..4];
    let mut specs: Vec<AgentSpec> = (0..4)
        .map(|i| server_spec(&dir, &format!("s{i}"), ips[i], 4, servers))
        .collect();
    specs.push(client_spec(&dir, "c0", ips[4], &servers[..1]));
    let mut agents = start_all(specs);
    let client = 4;
    let all_servers: Vec<String> = servers.iter().map(|ip| raft_addr(*ip)).collect();

    // The configuration, through a server and through the client: four
    // named voters, exactly one leader.
    eventually("the configuration names four servers everywhere", || {
        for a in [&agents[1], &agents[client]] {
            let list = configuration(a)?;
            if addresses(&list) != all_servers {
                return Err(format!("{}: {list:?}", a.ip()));
            }
            let leaders = list.iter().filter(|s| s["Leader"] == true).count();
            let named = list
                .iter()
                .all(|s| s["Node"].as_str().is_some_and(|n| n.starts_with('s')));
            if leaders != 1 || !named || list.iter().any(|s| s["Voter"] != true) {
                return Err(format!("{}: {list:?}", a.ip()));
            }
        }
        Ok(())
    });
    let body = agents[client].get("/v1/operator/raft/configuration").json();
    assert!(body["Index"].is_u64(), "the configuration's raft index: {body}");
    assert_eq!(body["Servers"][0]["ProtocolVersion"], "3");
    let stale = agents[2].get("/v1/operator/raft/configuration?stale");
    assert_eq!(stale.status, 200, "{}", stale.text());

    // The CLI prints them.
    let flag = agents[client].http_addr_flag();
    let out = run_bin(&["operator", "raft", "list-peers", &flag], &[], b"", CLI_WAIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("Node "), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 5, "{}", out.stdout);
    assert_eq!(out.stdout.matches("leader ").count(), 1, "{}", out.stdout);
    for name in ["s0", "s1", "s2", "s3"] {
        assert!(out.stdout.contains(name), "{}", out.stdout);
    }

    // Autopilot: healthy, one failure tolerated.
    eventually("autopilot reports a healthy cluster", || {
        let r = agents[client].get("/v1/operator/autopilot/health");
        let body = r.json();
        if r.status == 200 && body["Healthy"] == true && body["FailureTolerance"] == 1 {
            Ok(())
        } else {
            Err(format!("{} {body}", r.status))
        }
    });

    // Bad input gets Consul's status and text.
    let r = agents[0].delete("/v1/operator/raft/peer");
    assert_eq!(
        (r.status, r.text()),
        (
            400,
            "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove".to_string()
        )
    );
    let r = agents[client].delete("/v1/operator/raft/peer?address=nope");
    assert_eq!(
        (r.status, r.text()),
        (
            500,
            "address \"nope\" was not found in the Raft configuration".to_string()
        )
    );
    let r = agents[0].delete("/v1/operator/raft/peer?id=nope");
    assert_eq!(
        (r.status, r.text()),
        (500, "id \"nope\" was not found in the Raft configuration".to_string())
    );
    let r = agents[0].get("/v1/operator/raft/peer");
    assert_eq!((r.status, r.header("Allow")), (405, Some("OPTIONS,DELETE")));
    assert_eq!(agents[0].get("/v1/operator/nope").status, 404);

    // Leadership moves to the server named by its node ID.
    let before = leader_index(&agents, servers);
    let target = (before + 1) % 4;
    let target_id = agents[target].get("/v1/agent/self").json()["Config"]["NodeID"]
        .as_str()
        .unwrap()
        .to_string();
    let r = agents[client].request(
        "POST",
        &format!("/v1/operator/raft/transfer-leader?id={target_id}"),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["Success"].clone()),
        (200, Value::Bool(true)),
        "{}",
        r.text()
    );
    eventually("every server follows the new leader", || {
        for a in &agents[..4] {
            if leader_of(a) != Some(raft_addr(servers[target])) {
                return Err(format!("{} follows {:?}", a.ip(), leader_of(a)));
            }
        }
        Ok(())
    });

    // A follower that leaves gracefully drops out of the raft configuration.
    let leaving = (target + 1) % 4;
    let r = agents[leaving].put("/v1/agent/leave", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let three: Vec<String> = all_servers
        .iter()
        .filter(|a| **a != raft_addr(servers[leaving]))
        .cloned()
        .collect();
    eventually("the leaver is out of the configuration and the peers", || {
        let list = addresses(&configuration(&agents[target])?);
        let p = peers(&agents[client]);
        if list == three && p == three {
            Ok(())
        } else {
            Err(format!("configuration {list:?}, peers {p:?}"))
        }
    });

    // A follower killed outright: autopilot turns unhealthy (429).
    let dead = (target + 2) % 4;
    kill_node(&mut agents[dead]);
    eventually("autopilot reports the dead follower", || {
        let r = agents[target].get("/v1/operator/autopilot/health");
        let body = r.json();
        let dead_row = body["Servers"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["Address"] == raft_addr(servers[dead])).cloned());
        match dead_row {
            Some(row) if r.status == 429 && body["Healthy"] == false && row["Healthy"] == false => Ok(()),
            _ => Err(format!("{} {body}", r.status)),
        }
    });

    // remove-peer takes it out of the configuration and the peers.
    let address_flag = format!("-address={}", raft_addr(servers[dead]));
    let out = run_bin(
        &["operator", "raft", "remove-peer", &flag, &address_flag],
        &[],
        b"",
        CLI_WAIT,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(&raft_addr(servers[dead])), "{}", out.stdout);
    let two: Vec<String> = three
        .iter()
        .filter(|a| **a != raft_addr(servers[dead]))
        .cloned()
        .collect();
    eventually("two servers remain", || {
        let list = addresses(&configuration(&agents[client])?);
        let p = peers(&agents[target]);
        if list == two && p == two {
            Ok(())
        } else {
            Err(format!("configuration {list:?}, peers {p:?}"))
        }
    });
}
