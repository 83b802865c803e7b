//! The WAN gossip pool with real processes: two servers in dc1 (they join
//! each other's WAN pool on their own, flooded from the LAN pool) and one
//! in dc2 that `-retry-join-wan`s dc1. Every server lists the three WAN
//! members as `<node>.<datacenter>`, `/v1/catalog/datacenters` lists both
//! datacenters (own first), and a client agent answers `?wan` as Consul's
//! clients do (`null`, and no WAN join).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::agent::fresh_loopback_ip;
use common::cluster::{agent_spec, client_spec, eventually, start_all};
use common::run::run_bin;
use common::Agent;
use serde_json::Value;
use tempfile::TempDir;

/// Bound of one CLI run.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

fn server_role(extra: &[String]) -> Vec<String> {
    let mut role = vec!["-server".to_string()];
    role.extend(extra.iter().cloned());
    role
}

/// The WAN members an agent lists: (name, status) sorted by name.
fn wan_members(agent: &Agent) -> Vec<(String, i64)> {
    let list = agent.get("/v1/agent/members?wan=1").json();
    let mut rows: Vec<(String, i64)> = list
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| {
                    (
                        x["Name"].as_str().unwrap_or_default().to_string(),
                        x["Status"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort();
    rows
}

#[test]
fn servers_of_two_datacenters_share_a_wan_pool_and_clients_have_none() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..4).map(|_| fresh_loopback_ip()).collect();
    let dc1 = &ips[..2];
    let dc2_role = server_role(&[
        "-bootstrap-expect=1".into(),
        "-datacenter=dc2".into(),
        format!("-retry-join-wan={}", ips[0]),
        "-retry-interval-wan=200ms".into(),
    ]);
    let dc1_role = server_role(&["-bootstrap-expect=2".into()]);
    let specs = vec![
        agent_spec(&dir, "s0", ips[0], &dc1_role, dc1),
        agent_spec(&dir, "s1", ips[1], &dc1_role, dc1),
        agent_spec(&dir, "t0", ips[2], &dc2_role, &[]),
        client_spec(&dir, "c0", ips[3], &dc1[..1]),
    ];
    let agents = start_all(specs);
    let servers = &agents[..3];
    let expected: Vec<(String, i64)> = ["s0.dc1", "s1.dc1", "t0.dc2"]
        .iter()
        .map(|n| (n.to_string(), 1))
        .collect();
    for a in servers {
        eventually(&format!("{} lists the 3 WAN members alive", a.ip()), || {
            let seen = wan_members(a);
            if seen == expected {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        });
    }

    // The CLI prints them with their datacenter.
    for a in servers {
        let out = run_bin(&["members", "-wan", &a.http_addr_flag()], &[], b"", CLI_TIMEOUT);
        assert_eq!(out.code(), 0, "{out:?}");
        let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
        assert_eq!(rows.len(), 3, "{}", out.stdout);
        for (name, dc) in [("s0.dc1", "dc1"), ("s1.dc1", "dc1"), ("t0.dc2", "dc2")] {
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{}", out.stdout));
            let cols: Vec<&str> = row.split_whitespace().collect();
            assert_eq!((cols[2], cols[3], cols[6]), ("alive", "server", dc), "{row}");
            assert!(cols[1].ends_with(":8302"), "WAN port: {row}");
        }
    }

    // Datacenters: our own first, then the others by name.
    let dcs = |a: &Agent| a.get("/v1/catalog/datacenters").json();
    assert_eq!(dcs(&agents[0]), serde_json::json!(["dc1", "dc2"]));
    assert_eq!(dcs(&agents[1]), serde_json::json!(["dc1", "dc2"]));
    assert_eq!(dcs(&agents[2]), serde_json::json!(["dc2", "dc1"]));
    let out = run_bin(
        &["catalog", "datacenters", &agents[2].http_addr_flag()],
        &[],
        b"",
        CLI_TIMEOUT,
    );
    assert_eq!((out.code(), out.stdout.as_str()), (0, "dc2\ndc1\n"), "{out:?}");

    // The LAN pools stay per datacenter.
    let lan = agents[2].get("/v1/agent/members").json();
    assert_eq!(lan.as_array().map(Vec::len), Some(1), "dc2's LAN pool: {lan}");

    // A client agent: no WAN pool, as Consul answers it.
    let client = &agents[3];
    let r = client.get("/v1/agent/members?wan=1");
    assert_eq!((r.status, r.text().trim()), (200, "null"));
    assert_eq!(client.get("/v1/agent/members?wan=1").json(), Value::Null);
    let out = run_bin(&["members", "-wan", &client.http_addr_flag()], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 2, "{out:?}");
    let r = client.put(&format!("/v1/agent/join/{}?wan=1", ips[2]), b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "Must be a server to join WAN cluster")
    );
    let r = client.get("/v1/agent/members?wan=1&segment=alpha");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Cannot provide a segment with wan=true")
    );
}
