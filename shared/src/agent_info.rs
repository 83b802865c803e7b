//! What the data plane needs to know about its agent: identity, ports and
//! versions (for `/v1/agent/self`, `/v1/status/*`, DNS), and how it was
//! launched (listen addresses, threads).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The Consul API version whose behaviour we match (reported as
/// `Config.Version`; Nomad and others parse it as semver).
pub const CONSUL_COMPAT_VERSION: &str = "1.21.0";
/// Our own version.
pub const PROCONSUL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Ports as Consul reports them; -1 means disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub http: i32,
    pub https: i32,
    pub dns: i32,
    pub grpc: i32,
    pub grpc_tls: i32,
    pub server: i32,
    pub serf_lan: i32,
    pub serf_wan: i32,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            http: 8500,
            https: -1,
            dns: 8600,
            grpc: -1,
            grpc_tls: -1,
            server: 8300,
            serf_lan: 8301,
            serf_wan: 8302,
        }
    }
}

/// The agent's identity and configuration as the data plane reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    pub primary_datacenter: String,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    pub dev_mode: bool,
    /// Cluster address (`-bind`).
    pub bind_addr: String,
    pub advertise_addr: String,
    /// HTTP/DNS listen addresses (`-client`).
    pub client_addrs: Vec<String>,
    pub ports: Ports,
    pub domain: String,
    pub revision: String,
    pub build_date: String,
    pub log_level: String,
    /// Pretty-print every JSON response (as `-dev` does).
    pub pretty_json: bool,
    pub enable_script_checks: bool,
    pub data_dir: String,
    pub node_meta: BTreeMap<String, String>,
    /// `default_query_time` / `max_query_time` for blocking queries.
    pub default_query_time_ms: u64,
    pub max_query_time_ms: u64,
}

/// How the control plane launches the data plane (passed as JSON on the
/// hidden `__dataplane` subcommand's command line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneLaunch {
    /// Directory holding `control.sock` and `dataplane.pid`.
    pub run_dir: String,
    pub http_addrs: Vec<SocketAddr>,
    pub dns_addrs: Vec<SocketAddr>,
    /// Serving threads; 0 = one per available core.
    pub threads: usize,
    pub log_level: String,
    /// Exit with the control plane instead of outliving it (`-dev`: there is
    /// no durable state to re-attach to).
    pub exit_with_control_plane: bool,
    pub http_max_conns_per_client: u32,
}

impl DataplaneLaunch {
    /// A stable identity of the listen configuration.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(&(
            &self.http_addrs,
            &self.dns_addrs,
            self.threads,
            self.http_max_conns_per_client,
        ))
        .expect("launch config serializes")
    }
}
