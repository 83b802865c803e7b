//! Clusters of real agents on their own loopback addresses: three servers
//! bootstrapped with `-bootstrap-expect=3` and `-retry-join`, client
//! agents that follow them, leader loss under a stream of acknowledged
//! writes, a client killed with SIGKILL, and a graceful leave.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::cluster::{client_spec, eventually, kill_node, leader_of, server_spec, start_all, CONVERGE};
use common::{Agent, AgentSpec};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tempfile::TempDir;

#[test]
fn three_servers_and_two_clients_form_a_cluster_and_share_writes() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..5).map(|_| fresh_loopback_ip()).collect();
    let servers = &ips[..3];
    let mut specs: Vec<AgentSpec> = (0..3)
        .map(|i| server_spec(&dir, &format!("s{i}"), ips[i], 3, servers))
        .collect();
    specs.push(client_spec(&dir, "c0", ips[3], &servers[..1]));
    specs.push(client_spec(&dir, "c1", ips[4], &servers[1..2]));
    let agents = start_all(specs);

    // One leader, the same everywhere, and three voters.
    eventually("agree on the leader", || {
        let leaders: Vec<Option<String>> = agents.iter().map(leader_of).collect();
        if leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
            Ok(())
        } else {
            Err(format!("{leaders:?}"))
        }
    });
    let peers = agents[4].get("/v1/status/peers").json();
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "{peers}");

    // Every member sees all five alive.
    eventually("members converge", || {
        for a in &agents {
            let members = a.get("/v1/agent/members").json();
            let alive = members
                .as_array()
                .map(|m| m.iter().filter(|x| x["Status"] == 1).count())
                .unwrap_or(0);
            if alive != 5 {
                return Err(format!("{} sees {alive} alive: {members}", a.ip()));
            }
        }
        Ok(())
    });

    // A write through a client is readable at once there, and soon everywhere.
    let put = agents[3].put("/v1/kv/cluster/hello", b"world");
    assert_eq!((put.status, put.text().trim()), (200, "true"), "{}", put.text());
    assert_eq!(
        agents[3].get("/v1/kv/cluster/hello?raw").text(),
        "world",
        "read-your-writes on the client"
    );
    eventually("the write reaches every node", || {
        for a in &agents {
            let r = a.get("/v1/kv/cluster/hello?raw");
            if r.status != 200 || r.text() != "world" {
                return Err(format!("{}: {} {}", a.ip(), r.status, r.text()));
            }
        }
        Ok(())
    });

    // Every node is in the catalog with a passing serfHealth.
    eventually("catalog lists every node", || {
        let nodes = agents[0].get("/v1/catalog/nodes").json();
        let names: Vec<&str> = nodes
            .as_array()
            .map(|n| n.iter().filter_map(|x| x["Node"].as_str()).collect())
            .unwrap_or_default();
        if names.len() == 5 {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    let checks = agents[1].get("/v1/health/node/c1").json();
    assert!(
        checks.as_array().is_some_and(|c| c
            .iter()
            .any(|x| x["CheckID"] == "serfHealth" && x["Status"] == "passing")),
        "{checks}"
    );
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write_and_it_catches_up() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..3).map(|_| fresh_loopback_ip()).collect();
    let specs = (0..3)
        .map(|i| server_spec(&dir, &format!("s{i}"), ips[i], 3, &ips))
        .collect();
    let mut agents = start_all(specs);
    let leader = leader_of(&agents[0]).expect("a leader");
    let old = agents
        .iter()
        .position(|a| leader.starts_with(&format!("{}:", a.ip())))
        .expect("the leader is one of ours");
    let writer = (old + 1) % 3;

    let mut acked: Vec<u64> = Vec::new();
    let mut killed_at = None;
    let deadline = Instant::now() + CONVERGE;
    let mut i = 0u64;
    while acked.len() < 60 && Instant::now() < deadline {
        if killed_at.is_none() && acked.len() == 20 {
            kill_node(&mut agents[old]);
            killed_at = Some(Instant::now());
        }
        let target = format!("/v1/kv/acked/{i}");
        if let Ok(r) = agents[writer].try_request("PUT", &target, &[], b"v", Duration::from_secs(5)) {
            if r.status == 200 && r.text().trim() == "true" {
                acked.push(i);
            }
        }
        i += 1;
    }
    assert!(
        killed_at.is_some() && acked.len() >= 60,
        "only {} writes acknowledged",
        acked.len()
    );

    // A new leader among the survivors.
    let survivors: Vec<usize> = (0..3).filter(|k| *k != old).collect();
    eventually("a new leader", || match leader_of(&agents[survivors[0]]) {
        Some(l) if l != leader => Ok(()),
        other => Err(format!("{other:?}")),
    });

    let all_present = |a: &Agent| -> Result<(), String> {
        for k in &acked {
            let r = a.get(&format!("/v1/kv/acked/{k}?stale"));
            if r.status != 200 {
                return Err(format!("{}: acknowledged key acked/{k} missing ({})", a.ip(), r.status));
            }
        }
        Ok(())
    };
    for &s in &survivors {
        eventually("every acknowledged write on a survivor", || all_present(&agents[s]));
    }

    // The old leader restarts from its data dir and catches up.
    agents[old].respawn();
    eventually("the old leader catches up", || all_present(&agents[old]));
}

#[test]
fn a_killed_client_turns_critical_and_leaves_dns_and_a_left_one_is_deregistered() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..3).map(|_| fresh_loopback_ip()).collect();
    let specs = vec![
        server_spec(&dir, "s0", ips[0], 1, &[]),
        client_spec(&dir, "c0", ips[1], &ips[..1]),
        client_spec(&dir, "c1", ips[2], &ips[..1]),
    ];
    let mut agents = start_all(specs);

    // c1 runs a service; the server's DNS answers it.
    let reg = agents[2].put("/v1/agent/service/register", br#"{"Name":"web","Port":80}"#);
    assert_eq!(reg.status, 200, "{}", reg.text());
    eventually("web in the server's DNS", || {
        let m = agents[0].dns_udp("web.service.consul", RecordType::A);
        if m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", m.metadata.response_code, m.answers))
        }
    });

    // kill -9: gossip declares it failed, serfHealth goes critical, DNS drops it.
    kill_node(&mut agents[2]);
    eventually("serfHealth of c1 critical", || {
        let checks = agents[0].get("/v1/health/node/c1").json();
        let critical = checks.as_array().is_some_and(|c| {
            c.iter()
                .any(|x| x["CheckID"] == "serfHealth" && x["Status"] == "critical")
        });
        if critical {
            Ok(())
        } else {
            Err(checks.to_string())
        }
    });
    let m = agents[0].dns_udp("web.service.consul", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{:?}", m.answers);

    // A graceful leave deregisters the node.
    let left = agents[1].put("/v1/agent/leave", b"");
    assert_eq!(left.status, 200);
    eventually("c0 deregistered", || {
        let nodes = agents[0].get("/v1/catalog/nodes").json().to_string();
        if nodes.contains("\"c0\"") {
            Err(nodes)
        } else {
            Ok(())
        }
    });
}

/// The members `a` sees, by name, with their status codes.
fn member_statuses(a: &Agent) -> Vec<(String, u64)> {
    let members = a.get("/v1/agent/members").json();
    let mut out: Vec<(String, u64)> = members
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| {
                    (
                        x["Name"].as_str().unwrap_or("").to_string(),
                        x["Status"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn join_and_force_leave_over_http() {
    let a = AgentSpec::dev().arg("-node=join-a").spawn();
    let mut b = AgentSpec::dev().arg("-node=join-b").spawn();

    // Joining an address where no agent listens is an error, with the reason.
    let nobody = fresh_loopback_ip();
    let r = b.put(&format!("/v1/agent/join/{nobody}"), b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains(&nobody.to_string()), "{}", r.text());

    let r = b.put(&format!("/v1/agent/join/{}", a.ip()), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let both = vec![("join-a".to_string(), 1), ("join-b".to_string(), 1)];
    eventually("both see both alive", || {
        for x in [&a, &b] {
            let seen = member_statuses(x);
            if seen != both {
                return Err(format!("{} sees {seen:?}", x.ip()));
            }
        }
        Ok(())
    });

    // b dies: a marks it failed (4); force-leave turns it into left (3).
    kill_node(&mut b);
    eventually("b failed", || {
        match member_statuses(&a).iter().find(|(n, _)| n == "join-b") {
            Some((_, 4)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let r = a.put("/v1/agent/force-leave/join-b", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    eventually("b left", || {
        match member_statuses(&a).iter().find(|(n, _)| n == "join-b") {
            Some((_, 3)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
