//! Consistency modes across a cluster (BLOCKING.md §8): a `?consistent`
//! read on a follower or a client agent sees a write acknowledged a moment
//! before by another server (the raft read-index barrier), the
//! `X-Consul-KnownLeader` / `X-Consul-LastContact` headers tell the truth
//! on the leader, a follower and a client, and without a quorum a
//! consistent read answers `500` in bounded time while stale reads go on.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::cluster::{client_spec, eventually, kill_node, leader_of, server_spec, start_all};
use common::Agent;
use tempfile::TempDir;

/// Longest a consistent read may take to refuse without a quorum (the
/// barrier's own bounds are 3 s to confirm and 5 s to apply, plus a hop).
const REFUSAL_WAIT_MAX: Duration = Duration::from_secs(15);

/// Three servers (`s0..s2`) and a client agent (`c0`), with the leader's
/// position among the servers.
fn cluster(dir: &TempDir) -> (Vec<Agent>, usize) {
    let ips: Vec<Ipv4Addr> = (0..4).map(|_| fresh_loopback_ip()).collect();
    let servers = &ips[..3];
    let mut specs: Vec<_> = (0..3)
        .map(|i| server_spec(dir, &format!("s{i}"), ips[i], 3, servers))
        .collect();
    specs.push(client_spec(dir, "c0", ips[3], servers));
    let agents = start_all(specs);
    let mut leader = None;
    eventually("everyone agrees on a leader", || {
        let seen: Vec<Option<String>> = agents.iter().map(leader_of).collect();
        let Some(l) = seen[0].clone().filter(|_| seen.iter().all(|s| *s == seen[0])) else {
            return Err(format!("{seen:?}"));
        };
        leader = (0..3).find(|k| l.starts_with(&format!("{}:", agents[*k].ip())));
        leader.map(|_| ()).ok_or(format!("leader {l} is none of ours"))
    });
    (agents, leader.expect("eventually returned"))
}

fn header_u64(r: &common::http::Response, name: &str) -> u64 {
    let raw = r.header(name).unwrap_or_else(|| panic!("no {name} in {r:?}"));
    raw.parse().unwrap_or_else(|e| panic!("{name} {raw:?}: {e}"))
}

#[test]
fn consistent_reads_on_a_follower_and_a_client_see_a_write_made_elsewhere() {
    let dir = TempDir::new().unwrap();
    let (agents, leader) = cluster(&dir);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let client = 3;

    for n in 0..20 {
        // Written through the leader or the other follower, read at once
        // on the first follower or on the client.
        let writer = if n % 2 == 0 { leader } else { other };
        let reader = if n % 4 < 2 { follower } else { client };
        let value = format!("v{n}");
        let put = agents[writer].put("/v1/kv/fresh", value.as_bytes());
        assert_eq!((put.status, put.text().trim()), (200, "true"), "{}", put.text());
        let r = agents[reader].get("/v1/kv/fresh?consistent&raw");
        assert_eq!(
            (r.status, r.text()),
            (200, value.clone()),
            "a consistent read on {} after a write through {}",
            agents[reader].ip(),
            agents[writer].ip()
        );
        assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("consistent"));
        assert_eq!(r.header("X-Consul-Knownleader"), Some("true"));
    }

    // The barrier also guards catalog, health and read-only txn reads.
    for target in ["/v1/catalog/nodes?consistent", "/v1/health/node/s0?consistent"] {
        let r = agents[client].get(target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("consistent"));
    }
    let txn = agents[follower].put("/v1/txn?consistent", br#"[{"KV":{"Verb":"get","Key":"fresh"}}]"#);
    assert_eq!(txn.status, 200, "{}", txn.text());

    // LastContact: 0 on the leader; on a follower and a client the age of
    // the last contact, which heartbeats keep small.
    let on_leader = agents[leader].get("/v1/kv/fresh");
    assert_eq!(header_u64(&on_leader, "X-Consul-Lastcontact"), 0);
    for k in [follower, client] {
        let r = agents[k].get("/v1/kv/fresh");
        assert_eq!(r.header("X-Consul-Knownleader"), Some("true"));
        let ms = header_u64(&r, "X-Consul-Lastcontact");
        assert!(ms < 3_000, "{}: LastContact {ms} ms with a live leader", agents[k].ip());
    }
}

#[test]
fn without_a_quorum_consistent_reads_fail_in_bounded_time_and_stale_reads_go_on() {
    let dir = TempDir::new().unwrap();
    let (mut agents, leader) = cluster(&dir);
    let survivor = (leader + 1) % 3;
    let client = 3;
    let put = agents[survivor].put("/v1/kv/before", b"1");
    assert_eq!(put.status, 200, "{}", put.text());
    // The client's replica has it too before the servers go.
    eventually("the client replica has the write", || {
        let r = agents[client].get("/v1/kv/before?stale");
        (r.status == 200).then_some(()).ok_or(format!("{}", r.status))
    });

    kill_node(&mut agents[leader]);
    kill_node(&mut agents[(leader + 2) % 3]);

    // Consistent reads refuse, each within the bound, and soon say why in
    // Consul's words.
    for k in [survivor, client] {
        eventually("a consistent read refuses with No cluster leader", || {
            let started = Instant::now();
            let r = agents[k]
                .try_request(
                    "GET",
                    "/v1/kv/before?consistent",
                    &[],
                    b"",
                    REFUSAL_WAIT_MAX + Duration::from_secs(5),
                )
                .map_err(|e| e.to_string())?;
            let took = started.elapsed();
            assert!(took < REFUSAL_WAIT_MAX, "{}: refused after {took:?}", agents[k].ip());
            assert_eq!(r.status, 500, "{}: {} {}", agents[k].ip(), r.status, r.text());
            if r.text() == "No cluster leader" {
                Ok(())
            } else {
                Err(r.text())
            }
        });
    }

    // Stale and default reads still answer from the replica, saying that
    // no leader is known and for how long there has been no contact.
    thread_sleep_ms(1_500);
    for k in [survivor, client] {
        let r = agents[k].get("/v1/kv/before?stale&raw");
        assert_eq!((r.status, r.text()), (200, "1".to_string()));
        eventually("the headers admit there is no leader", || {
            let r = agents[k].get("/v1/kv/before");
            let known = r.header("X-Consul-Knownleader").unwrap_or("").to_string();
            let ms = header_u64(&r, "X-Consul-Lastcontact");
            if known == "false" && ms >= 1_000 {
                Ok(())
            } else {
                Err(format!("{}: KnownLeader {known}, LastContact {ms}", agents[k].ip()))
            }
        });
    }
}

fn thread_sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
