//! The `Stats` section of `/v1/agent/self` (what `consul info` prints):
//! sections of string key/value pairs, shaped like Consul's. Pure.

use std::collections::BTreeMap;

use proconsul_shared::agent_info::{AgentInfo, CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};
use proconsul_shared::ipc::messages::ClusterStatus;

/// Section name → key → value.
pub type Stats = BTreeMap<String, BTreeMap<String, String>>;

/// Everything the stats are computed from.
#[derive(Debug, Clone)]
pub struct StatsInputs<'a> {
    pub agent: &'a AgentInfo,
    pub cluster: &'a ClusterStatus,
    /// Our own server RPC address (`ip:port`), to tell whether we lead.
    pub own_rpc_addr: &'a str,
    /// The raft section (servers only).
    pub raft: Option<BTreeMap<String, String>>,
    /// Nodes in the catalog: the members this agent knows of.
    pub known_members: usize,
    pub local_services: usize,
    pub local_checks: usize,
    pub cpu_count: usize,
}

/// Go's name for the CPU architecture (`amd64`, `arm64`), as Consul reports it.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn section(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn serf_section(members: usize) -> BTreeMap<String, String> {
    // There is no gossip layer yet: the member count is what the catalog
    // knows, and every queue is empty.
    section(&[
        ("coordinate_resets", "0".into()),
        ("encrypted", "false".into()),
        ("event_queue", "0".into()),
        ("event_time", "1".into()),
        ("failed", "0".into()),
        ("health_score", "0".into()),
        ("intent_queue", "0".into()),
        ("left", "0".into()),
        ("member_time", "1".into()),
        ("members", members.to_string()),
        ("query_queue", "0".into()),
        ("query_time", "1".into()),
    ])
}

/// Builds the stats sections.
pub fn agent_stats(inputs: &StatsInputs<'_>) -> Stats {
    let agent = inputs.agent;
    let mut stats = Stats::new();
    stats.insert(
        "agent".into(),
        section(&[
            ("check_monitors", "0".into()),
            ("check_ttls", "0".into()),
            ("checks", inputs.local_checks.to_string()),
            ("services", inputs.local_services.to_string()),
        ]),
    );
    stats.insert(
        "build".into(),
        section(&[
            ("prerelease", String::new()),
            ("revision", agent.revision.clone()),
            ("version", CONSUL_COMPAT_VERSION.into()),
            ("version_metadata", String::new()),
            ("proconsul_version", PROCONSUL_VERSION.into()),
        ]),
    );
    let leader_addr = inputs.cluster.leader.clone().unwrap_or_default();
    let consul = if agent.server {
        section(&[
            ("acl", "disabled".into()),
            ("bootstrap", agent.bootstrap.to_string()),
            ("known_datacenters", "1".into()),
            (
                "leader",
                (!leader_addr.is_empty() && leader_addr == inputs.own_rpc_addr).to_string(),
            ),
            ("leader_addr", leader_addr),
            ("server", "true".into()),
        ])
    } else {
        section(&[
            ("acl", "disabled".into()),
            ("known_servers", inputs.cluster.peers.len().to_string()),
            ("server", "false".into()),
        ])
    };
    stats.insert("consul".into(), consul);
    if agent.server {
        stats.insert("raft".into(), inputs.raft.clone().unwrap_or_default());
        stats.insert("serf_wan".into(), serf_section(1));
    }
    stats.insert(
        "runtime".into(),
        section(&[
            ("arch", go_arch(std::env::consts::ARCH).into()),
            ("os", std::env::consts::OS.into()),
            ("cpu_count", inputs.cpu_count.to_string()),
            ("max_procs", inputs.cpu_count.to_string()),
            ("version", format!("proconsul {PROCONSUL_VERSION}")),
        ]),
    );
    stats.insert("serf_lan".into(), serf_section(inputs.known_members.max(1)));
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::agent_info::Ports;

    fn agent_info(server: bool) -> AgentInfo {
        AgentInfo {
            node_name: "n1".into(),
            node_id: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
            datacenter: "dc1".into(),
            primary_datacenter: "dc1".into(),
            server,
            bootstrap: server,
            bootstrap_expect: 0,
            dev_mode: true,
            bind_addr: "127.0.0.1".into(),
            advertise_addr: "127.0.0.1".into(),
            client_addrs: vec!["127.0.0.1".into()],
            ports: Ports::default(),
            domain: "consul.".into(),
            revision: "abc123".into(),
            build_date: "2025-01-01T00:00:00Z".into(),
            log_level: "info".into(),
            pretty_json: true,
            enable_script_checks: false,
            data_dir: String::new(),
            node_meta: Default::default(),
            default_query_time_ms: 300_000,
            max_query_time_ms: 600_000,
            dns: Default::default(),
        }
    }

    fn stats_for(server: bool, leader: Option<&str>) -> Stats {
        let agent = agent_info(server);
        let cluster = ClusterStatus {
            leader: leader.map(str::to_string),
            peers: vec!["127.0.0.1:8300".into()],
        };
        let mut raft = BTreeMap::new();
        raft.insert("applied_index".to_string(), "12".to_string());
        agent_stats(&StatsInputs {
            agent: &agent,
            cluster: &cluster,
            own_rpc_addr: "127.0.0.1:8300",
            raft: server.then_some(raft),
            known_members: 1,
            local_services: 2,
            local_checks: 3,
            cpu_count: 4,
        })
    }

    #[test]
    fn server_sections_match_consul() {
        let s = stats_for(true, Some("127.0.0.1:8300"));
        let names: Vec<&str> = s.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["agent", "build", "consul", "raft", "runtime", "serf_lan", "serf_wan"]
        );
        assert_eq!(s["consul"]["leader"], "true");
        assert_eq!(s["consul"]["leader_addr"], "127.0.0.1:8300");
        assert_eq!(s["consul"]["server"], "true");
        assert_eq!(s["consul"]["bootstrap"], "true");
        assert_eq!(s["consul"]["known_datacenters"], "1");
        assert_eq!(s["build"]["version"], CONSUL_COMPAT_VERSION);
        assert_eq!(s["build"]["revision"], "abc123");
        assert_eq!(s["build"]["prerelease"], "");
        assert_eq!(s["raft"]["applied_index"], "12");
        assert_eq!(s["agent"]["services"], "2");
        assert_eq!(s["agent"]["checks"], "3");
        assert_eq!(s["runtime"]["cpu_count"], "4");
        assert_eq!(s["runtime"]["os"], std::env::consts::OS);
        assert_eq!(s["serf_lan"]["members"], "1");
    }

    #[test]
    fn follower_and_leaderless_views() {
        let s = stats_for(true, Some("10.0.0.9:8300"));
        assert_eq!(s["consul"]["leader"], "false");
        assert_eq!(s["consul"]["leader_addr"], "10.0.0.9:8300");
        let s = stats_for(true, None);
        assert_eq!(s["consul"]["leader"], "false");
        assert_eq!(s["consul"]["leader_addr"], "");
    }

    #[test]
    fn client_agents_have_no_raft_section() {
        let s = stats_for(false, None);
        assert!(!s.contains_key("raft"));
        assert!(!s.contains_key("serf_wan"));
        assert_eq!(s["consul"]["server"], "false");
        assert_eq!(s["consul"]["known_servers"], "1");
    }

    #[test]
    fn go_architecture_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
