//! The [`AgentInfo`] the data plane reports (`/v1/agent/self`, DNS, status
//! endpoints), from the configuration. Pure.

use proconsul_shared::agent_info::AgentInfo;

use super::build_info::{BUILD_DATE, REVISION};
use crate::config::Config;

/// Builds the agent's description for the data plane.
pub fn agent_info(config: &Config, node_id: &str) -> AgentInfo {
    AgentInfo {
        node_name: config.node_name.clone(),
        node_id: node_id.to_string(),
        datacenter: config.datacenter.clone(),
        primary_datacenter: config.datacenter.clone(),
        server: config.server,
        bootstrap: config.bootstrap,
        bootstrap_expect: config.bootstrap_expect,
        dev_mode: config.dev,
        bind_addr: config.bind_addr.to_string(),
        advertise_addr: config.advertise_addr.to_string(),
        client_addrs: config.client_addrs.iter().map(|a| a.to_string()).collect(),
        ports: config.ports.clone(),
        domain: config.domain.clone(),
        revision: REVISION.to_string(),
        build_date: BUILD_DATE.to_string(),
        log_level: config.log_level.as_str().to_string(),
        pretty_json: config.pretty_json,
        enable_script_checks: config.enable_script_checks,
        data_dir: config
            .data_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        node_meta: super::local_node::node_meta(config),
        default_query_time_ms: config.default_query_time_ms,
        max_query_time_ms: config.max_query_time_ms,
        dns: config.dns.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, HostFacts, PartialConfig};

    #[test]
    fn carries_the_config() {
        let mut p = PartialConfig {
            dev: Some(true),
            node_name: Some("n1".into()),
            datacenter: Some("East".into()),
            ..Default::default()
        };
        p.node_meta.insert("rack".into(), "r1".into());
        p.ports.http = Some(18500);
        p.dns.recursors = Some(vec!["127.0.0.53".into()]);
        let c = resolve(p, &HostFacts::default(), vec![]).unwrap();
        let a = agent_info(&c, "adf4238a-882b-9ddc-4a9d-5b6758e4159e");
        assert_eq!(a.node_name, "n1");
        assert_eq!(a.node_id, "adf4238a-882b-9ddc-4a9d-5b6758e4159e");
        assert_eq!(a.datacenter, "east");
        assert_eq!(a.primary_datacenter, "east");
        assert!(a.server && a.bootstrap && a.dev_mode && a.pretty_json);
        assert_eq!(a.ports.http, 18500);
        assert_eq!(a.client_addrs, vec!["127.0.0.1"]);
        assert_eq!(a.domain, "consul.");
        assert_eq!(a.log_level, "debug");
        assert_eq!(a.data_dir, "");
        assert_eq!(a.node_meta.get("rack").map(String::as_str), Some("r1"));
        assert_eq!(a.node_meta.get("consul-network-segment").map(String::as_str), Some(""));
        assert!(a.node_meta.contains_key("consul-version"));
        assert_eq!(a.default_query_time_ms, 300_000);
        assert_eq!(a.dns.recursors, vec!["127.0.0.53:53"], "DNS settings travel too");
    }
}
