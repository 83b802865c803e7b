//! Clusters of real agents on their own loopback addresses: specs for
//! servers (`-server -bootstrap-expect`) and client agents that
//! `-retry-join` each other, each with its own data dir and 127.x address,
//! and the polling helpers the cluster tests share.

use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{process, Agent, AgentSpec};

/// Longest wait for a cluster to form or converge.
pub const CONVERGE: Duration = Duration::from_secs(40);

pub fn server_spec(dir: &TempDir, name: &str, ip: Ipv4Addr, expect: u32, join: &[Ipv4Addr]) -> AgentSpec {
    agent_spec(
        dir,
        name,
        ip,
        &["-server".into(), format!("-bootstrap-expect={expect}")],
        join,
    )
}

pub fn client_spec(dir: &TempDir, name: &str, ip: Ipv4Addr, join: &[Ipv4Addr]) -> AgentSpec {
    agent_spec(dir, name, ip, &[], join)
}

/// A durable agent on `ip` (every port at its default) with its own data
/// dir under `dir`, `role` flags, and `-retry-join` for each of `join`.
pub fn agent_spec(dir: &TempDir, name: &str, ip: Ipv4Addr, role: &[String], join: &[Ipv4Addr]) -> AgentSpec {
    let data_dir = dir.path().join(name);
    let mut args = vec!["agent".to_string()];
    args.extend(role.iter().cloned());
    args.extend([
        format!("-data-dir={}", data_dir.display()),
        format!("-node={name}"),
        "-client".into(),
        ip.to_string(),
        "-bind".into(),
        ip.to_string(),
        "-retry-interval=200ms".into(),
    ]);
    args.extend(join.iter().map(|j| format!("-retry-join={j}")));
    AgentSpec {
        ip,
        http_port: 8500,
        dns_port: 8600,
        data_dir: Some(data_dir),
        args,
    }
}

/// Starts every spec, then waits until each knows a leader.
pub fn start_all(specs: Vec<AgentSpec>) -> Vec<Agent> {
    let mut agents: Vec<Agent> = specs.into_iter().map(AgentSpec::start).collect();
    for a in &mut agents {
        if let Err(why) = a.try_wait_ready(CONVERGE) {
            panic!("agent {} not ready: {why}\n{}", a.ip(), a.logs_tail());
        }
    }
    agents
}

/// Polls `check` until it holds or `CONVERGE` passes.
#[track_caller]
pub fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => panic!("{what}: {why}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

pub fn leader_of(a: &Agent) -> Option<String> {
    let r = a
        .try_request("GET", "/v1/status/leader", &[], b"", Duration::from_secs(2))
        .ok()?;
    match r.json() {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// SIGKILL of a whole node: control plane and data plane.
pub fn kill_node(a: &mut Agent) {
    let dataplanes = a.live_dataplanes();
    a.kill_control_plane();
    for pid in dataplanes {
        process::kill9(pid);
        process::wait_pid_gone(pid, Duration::from_secs(5));
    }
}
