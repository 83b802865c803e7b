//! Server clusters seen through raft: start `n` servers that expect each
//! other, a server's raft address, and the sorted `/v1/status/peers`.

use std::net::Ipv4Addr;

use tempfile::TempDir;

use super::agent::fresh_loopback_ip;
use super::cluster::{server_spec, start_all};
use super::Agent;

/// The raft address of the server on `ip` (default server port).
pub fn raft_addr(ip: Ipv4Addr) -> String {
    format!("{ip}:8300")
}

/// `/v1/status/peers` as `agent` answers it, sorted (empty on any error).
pub fn peers(agent: &Agent) -> Vec<String> {
    let mut p: Vec<String> = agent
        .get("/v1/status/peers")
        .json()
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    p.sort();
    p
}

/// Starts `n` servers `s0..` (each `-bootstrap-expect=n`, joining all) on
/// fresh loopback addresses under `dir`; returns their addresses and the
/// agents, once each knows a leader.
pub fn start_servers(dir: &TempDir, n: usize) -> (Vec<Ipv4Addr>, Vec<Agent>) {
    let ips: Vec<Ipv4Addr> = (0..n).map(|_| fresh_loopback_ip()).collect();
    let specs = (0..n)
        .map(|i| server_spec(dir, &format!("s{i}"), ips[i], n as u32, &ips))
        .collect();
    (ips.clone(), start_all(specs))
}
