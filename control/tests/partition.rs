//! Network partitions with real processes: three servers started with the
//! hidden `-dev-fault-injection` flag; SIGUSR1 cuts one server's raft and
//! gossip links (the process keeps running and answering HTTP), SIGUSR2
//! restores them. An isolated leader is replaced and never acknowledges a
//! write; an isolated follower does not stop the majority; a healed server
//! converges on every acknowledged write and on the leader.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::cluster::{agent_spec, eventually, leader_of, start_all};
use common::{process, Agent};
use tempfile::TempDir;

/// How long a write sent to an isolated server is given to (wrongly) succeed.
const ISOLATED_WRITE_WAIT: Duration = Duration::from_secs(3);
/// Per-request bound for writes to the majority.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Acknowledged writes made while a server is isolated.
const WRITES_WHILE_ISOLATED: usize = 5;
/// Longest time the majority may take to elect a new leader.
const ELECTION_MAX: Duration = Duration::from_secs(20);

fn three_servers(dir: &TempDir) -> Vec<Agent> {
    let ips: Vec<Ipv4Addr> = (0..3).map(|_| fresh_loopback_ip()).collect();
    let role = [
        "-server".to_string(),
        "-bootstrap-expect=3".into(),
        "-dev-fault-injection".into(),
    ];
    let specs = (0..3)
        .map(|i| agent_spec(dir, &format!("s{i}"), ips[i], &role, &ips))
        .collect();
    start_all(specs)
}

/// The index of the agent whose raft address is `leader`.
fn index_of(agents: &[Agent], leader: &str) -> usize {
    agents
        .iter()
        .position(|a| leader.starts_with(&format!("{}:", a.ip())))
        .unwrap_or_else(|| panic!("leader {leader} is not one of ours"))
}

fn agreed_leader(agents: &[&Agent]) -> Result<String, String> {
    let leaders: Vec<Option<String>> = agents.iter().map(|a| leader_of(a)).collect();
    match &leaders[0] {
        Some(l) if leaders.iter().all(|x| x.as_ref() == Some(l)) => Ok(l.clone()),
        _ => Err(format!("leaders disagree: {leaders:?}")),
    }
}

fn all(agents: &[Agent]) -> Vec<&Agent> {
    agents.iter().collect()
}

/// `PUT /v1/kv/<key>` answered `200 true` within [`WRITE_TIMEOUT`].
fn acked(agent: &Agent, key: &str) -> bool {
    agent
        .try_request("PUT", &format!("/v1/kv/{key}"), &[], b"v", WRITE_TIMEOUT)
        .is_ok_and(|r| r.status == 200 && r.text().trim() == "true")
}

/// Writes until one is acknowledged (bounded by `eventually`).
fn write_acked(agent: &Agent, key: &str) {
    eventually(&format!("write {key} acknowledged by {}", agent.ip()), || {
        if acked(agent, key) {
            Ok(())
        } else {
            Err("not acknowledged".into())
        }
    });
}

fn has_all(agent: &Agent, keys: &[String]) -> Result<(), String> {
    for key in keys {
        let r = agent
            .try_request("GET", &format!("/v1/kv/{key}?stale"), &[], b"", WRITE_TIMEOUT)
            .map_err(|e| format!("{}: {e}", agent.ip()))?;
        if r.status != 200 {
            return Err(format!("{}: acknowledged key {key} missing ({})", agent.ip(), r.status));
        }
    }
    Ok(())
}

/// Sends `signal` and waits for the agent to log the transition `logged`.
fn switch(agent: &Agent, signal: i32, logged: &str) {
    let count = |a: &Agent| a.stdout().matches(logged).count() + a.stderr().matches(logged).count();
    let before = count(agent);
    assert!(process::send_signal(agent.control_pid(), signal), "signal delivered");
    eventually(&format!("{} logs {logged:?}", agent.ip()), || {
        if count(agent) > before {
            Ok(())
        } else {
            Err(agent.logs_tail())
        }
    });
}

fn isolate(agent: &Agent) {
    switch(agent, libc::SIGUSR1, "agent isolated");
}

fn heal(agent: &Agent) {
    switch(agent, libc::SIGUSR2, "agent healed");
}

/// A write to the isolated server gets an error, a timeout or a non-200,
/// never `200 true`.
fn assert_not_acknowledged(agent: &Agent, key: &str) {
    let started = Instant::now();
    let answer = agent.try_request("PUT", &format!("/v1/kv/{key}"), &[], b"lost", ISOLATED_WRITE_WAIT);
    if let Ok(r) = &answer {
        assert_ne!(
            (r.status, r.text().trim()),
            (200, "true"),
            "an isolated server acknowledged a write\n{}",
            agent.logs_tail()
        );
    }
    assert!(started.elapsed() < ISOLATED_WRITE_WAIT + Duration::from_secs(2));
}

#[test]
fn an_isolated_leader_is_replaced_acknowledges_nothing_and_converges_when_healed() {
    let dir = TempDir::new().unwrap();
    let agents = three_servers(&dir);
    let mut leader = String::new();
    eventually("agree on a leader", || agreed_leader(&all(&agents)).map(|l| leader = l));
    let old = index_of(&agents, &leader);
    let survivors: Vec<usize> = (0..3).filter(|k| *k != old).collect();
    let mut keys = vec!["p/before".to_string()];
    write_acked(&agents[survivors[0]], &keys[0]);

    isolate(&agents[old]);
    let isolated_at = Instant::now();
    eventually("the majority elects a new leader", || {
        let l = agreed_leader(&[&agents[survivors[0]], &agents[survivors[1]]])?;
        if l == leader {
            return Err(format!("still the isolated leader {l}"));
        }
        Ok(())
    });
    assert!(
        isolated_at.elapsed() < ELECTION_MAX,
        "election took {:?}",
        isolated_at.elapsed()
    );
    for i in 0..WRITES_WHILE_ISOLATED {
        let key = format!("p/during/{i}");
        write_acked(&agents[survivors[i % 2]], &key);
        keys.push(key);
    }
    assert_not_acknowledged(&agents[old], "p/isolated");

    heal(&agents[old]);
    eventually("all three agree on the new leader", || {
        let l = agreed_leader(&all(&agents))?;
        if l == leader {
            return Err(format!("the old leader {l} is back in charge"));
        }
        Ok(())
    });
    eventually("the healed server has every acknowledged write", || {
        has_all(&agents[old], &keys)
    });
    let key = "p/after".to_string();
    write_acked(&agents[old], &key);
    keys.push(key);
    for a in &agents {
        eventually("every server has every acknowledged write", || has_all(a, &keys));
    }
}

#[test]
fn an_isolated_follower_does_not_stop_the_majority_and_catches_up() {
    let dir = TempDir::new().unwrap();
    let agents = three_servers(&dir);
    let mut leader = String::new();
    eventually("agree on a leader", || agreed_leader(&all(&agents)).map(|l| leader = l));
    let lead = index_of(&agents, &leader);
    let follower = (lead + 1) % 3;
    let other = (lead + 2) % 3;

    isolate(&agents[follower]);
    let mut keys = Vec::new();
    for i in 0..WRITES_WHILE_ISOLATED {
        let key = format!("f/during/{i}");
        let writer = if i % 2 == 0 { lead } else { other };
        write_acked(&agents[writer], &key);
        keys.push(key);
    }
    assert_not_acknowledged(&agents[follower], "f/isolated");

    heal(&agents[follower]);
    eventually("all three agree on a leader", || {
        agreed_leader(&all(&agents)).map(|_| ())
    });
    eventually("the healed follower has every acknowledged write", || {
        has_all(&agents[follower], &keys)
    });
    let key = "f/after".to_string();
    write_acked(&agents[follower], &key);
    keys.push(key);
    for a in &agents {
        eventually("every server has every acknowledged write", || has_all(a, &keys));
    }
}

#[test]
fn fault_injection_cannot_be_enabled_from_a_config_file() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("faults.json");
    std::fs::write(&file, r#"{"dev_fault_injection": true}"#).unwrap();
    let config_flag = format!("-config-file={}", file.display());
    let out = common::run::run_bin(&["agent", "-dev", &config_flag], &[], b"", Duration::from_secs(10));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains("dev_fault_injection: is refused in config files"),
        "{out:?}"
    );
}
