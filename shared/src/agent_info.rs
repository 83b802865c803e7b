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
    /// `dns_config`, `alt_domain` and `recursors`.
    #[serde(default)]
    pub dns: DnsConfig,
}

/// How the DNS interface answers (Consul's `dns_config` block plus the
/// top-level `alt_domain` and `recursors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsConfig {
    /// Second domain answered like `domain` (empty = none).
    pub alt_domain: String,
    /// Drop warning instances too (`dns_config.only_passing`).
    pub only_passing: bool,
    /// TTL of node records (`dns_config.node_ttl`), seconds.
    pub node_ttl_s: u32,
    /// Per-service TTLs (`dns_config.service_ttl`), seconds; key `*` is the
    /// default for every service. Keys are lower-cased service names.
    pub service_ttl_s: BTreeMap<String, u32>,
    /// Set TC when a UDP answer was cut (`dns_config.enable_truncate`).
    pub enable_truncate: bool,
    /// Answers in a UDP response without EDNS (`dns_config.udp_answer_limit`).
    pub udp_answer_limit: u32,
    /// Most A/AAAA records per answer (`dns_config.a_record_limit`; 0 = no limit).
    pub a_record_limit: u32,
    /// Upstream resolvers (`ip:port`) for names outside the domain.
    pub recursors: Vec<String>,
    /// Time to wait for a recursor (`dns_config.recursor_timeout`), ms.
    pub recursor_timeout_ms: u64,
    /// Put node-meta TXT records in ADDITIONAL (`dns_config.enable_additional_node_meta_txt`).
    pub enable_additional_node_meta_txt: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            alt_domain: String::new(),
            only_passing: false,
            node_ttl_s: 0,
            service_ttl_s: BTreeMap::new(),
            enable_truncate: false,
            udp_answer_limit: 3,
            a_record_limit: 0,
            recursors: Vec::new(),
            recursor_timeout_ms: 2000,
            enable_additional_node_meta_txt: true,
        }
    }
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
    /// `limits.wake_hold_ms_max` (Proconsul extension): longest a parked
    /// query's wake-up is held while DNS datagrams wait; 0 = off.
    #[serde(default)]
    pub wake_hold_ms_max: u64,
}

impl DataplaneLaunch {
    /// A stable identity of the listen configuration.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(&(
            &self.http_addrs,
            &self.dns_addrs,
            self.threads,
            self.http_max_conns_per_client,
            self.wake_hold_ms_max,
        ))
        .expect("launch config serializes")
    }
}
