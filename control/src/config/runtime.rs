//! The resolved agent configuration: every default applied, every value
//! validated and typed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use proconsul_shared::agent_info::Ports;

/// Log verbosity, as Consul names the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Parses Consul's level names, any case (`WARN`, `warning`, `err`).
    pub fn parse(text: &str) -> Option<LogLevel> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "err" | "error" => LogLevel::Error,
            _ => return None,
        })
    }

    /// The lower-case name (`tracing` filter syntax, and what the data plane
    /// is launched with).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Everything the agent runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub dev: bool,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    /// `None` only in `-dev` without `-data-dir`.
    pub data_dir: Option<PathBuf>,
    pub node_name: String,
    /// Lower-case UUID from `-node-id`/`node_id`; otherwise the agent reads
    /// or creates `<data_dir>/node-id`.
    pub node_id: Option<String>,
    pub datacenter: String,
    /// Cluster (raft) address.
    pub bind_addr: IpAddr,
    /// The address other nodes and the catalog use for this node.
    pub advertise_addr: IpAddr,
    /// HTTP and DNS listen addresses.
    pub client_addrs: Vec<IpAddr>,
    pub ports: Ports,
    pub log_level: LogLevel,
    pub pid_file: Option<PathBuf>,
    pub enable_script_checks: bool,
    /// Script checks allowed from config files only.
    pub enable_local_script_checks: bool,
    /// `check_update_interval`: output-only check changes reach the
    /// catalog at most this often.
    pub check_update_interval_ms: u64,
    /// Proconsul extension: period of the full anti-entropy sync.
    pub anti_entropy_interval_ms: u64,
    /// Proconsul extension: period of the critical-service reaper.
    pub check_reap_interval_ms: u64,
    /// `service`/`services` blocks of the config files, as written.
    pub service_definitions: Vec<serde_json::Value>,
    /// `check`/`checks` blocks of the config files, as written.
    pub check_definitions: Vec<serde_json::Value>,
    /// The config files and directories read (again on reload).
    pub config_paths: Vec<super::flags::ConfigPath>,
    /// Lower-case, with a trailing dot (`consul.`), as Consul's runtime
    /// config holds it.
    pub domain: String,
    pub node_meta: BTreeMap<String, String>,
    pub default_query_time_ms: u64,
    pub max_query_time_ms: u64,
    /// 0 = no limit.
    pub http_max_conns_per_client: u32,
    /// `limits.wake_hold_ms_max` (Proconsul extension), ms; 0 = off.
    pub wake_hold_ms_max: u64,
    /// Data-plane serving threads; 0 = one per available core.
    pub dataplane_threads: usize,
    /// DNS settings (`dns_config`, `recursors`, `alt_domain`).
    pub dns: proconsul_shared::agent_info::DnsConfig,
    /// `retry_join`, `retry_interval`.
    pub cluster: super::cluster::ClusterConfig,
    /// Pretty-print every JSON response (`-dev`).
    pub pretty_json: bool,
    /// Things worth a warning at start-up (unknown keys, ignored flags).
    pub warnings: Vec<String>,
}

impl Config {
    /// `ip:port` of the server RPC (raft) address others reach us at.
    pub fn server_rpc_addr(&self) -> String {
        std::net::SocketAddr::new(self.advertise_addr, self.ports.server.max(0) as u16).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_parse_in_any_case() {
        assert_eq!(LogLevel::parse("WARN"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("ERR"), Some(LogLevel::Error));
        assert_eq!(LogLevel::parse(" Debug "), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("loud"), None);
        assert_eq!(LogLevel::Trace.as_str(), "trace");
    }
}
