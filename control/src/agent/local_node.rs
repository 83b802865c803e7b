//! The agent's own catalog node, registered with a raft write at start-up
//! (so `<node>.node.consul` and `/v1/catalog/nodes` know it). Pure.

use std::collections::BTreeMap;

use proconsul_shared::agent_info::CONSUL_COMPAT_VERSION;
use proconsul_shared::command::{Command, NodeRegistration};

use crate::config::Config;

/// The node's metadata: the configured `node_meta` plus the keys Consul
/// always adds for the local node (`consul-network-segment`,
/// `consul-version`). Also what `/v1/agent/self` reports as `Meta`.
pub fn node_meta(config: &Config) -> BTreeMap<String, String> {
    let mut meta = config.node_meta.clone();
    meta.insert("consul-network-segment".into(), String::new());
    meta.insert("consul-version".into(), CONSUL_COMPAT_VERSION.into());
    meta
}

/// The registration command for this agent's node.
pub fn registration(config: &Config, node_id: &str) -> Command {
    let address = config.advertise_addr.to_string();
    let mut tagged_addresses = BTreeMap::new();
    let family = if config.advertise_addr.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    };
    for scope in ["lan", "wan"] {
        tagged_addresses.insert(scope.to_string(), address.clone());
        tagged_addresses.insert(format!("{scope}_{family}"), address.clone());
    }
    let meta = node_meta(config);
    Command::NodeRegister(NodeRegistration {
        id: node_id.to_string(),
        node: config.node_name.clone(),
        address,
        datacenter: config.datacenter.clone(),
        tagged_addresses,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, HostFacts, PartialConfig};

    #[test]
    fn registration_matches_consul_node_shape() {
        let mut p = PartialConfig {
            dev: Some(true),
            node_name: Some("n1".into()),
            bind_addr: Some("127.0.0.7".into()),
            ..Default::default()
        };
        p.node_meta.insert("rack".into(), "r1".into());
        let c = resolve(p, &HostFacts::default(), vec![]).unwrap();
        let Command::NodeRegister(reg) = registration(&c, "id-1") else {
            panic!("not a node registration");
        };
        assert_eq!(reg.node, "n1");
        assert_eq!(reg.id, "id-1");
        assert_eq!(reg.address, "127.0.0.7");
        assert_eq!(reg.datacenter, "dc1");
        assert_eq!(reg.tagged_addresses["lan"], "127.0.0.7");
        assert_eq!(reg.tagged_addresses["lan_ipv4"], "127.0.0.7");
        assert_eq!(reg.tagged_addresses["wan_ipv4"], "127.0.0.7");
        assert_eq!(reg.meta["consul-network-segment"], "");
        assert_eq!(reg.meta["consul-version"], CONSUL_COMPAT_VERSION);
        assert_eq!(reg.meta["rack"], "r1");
        assert_eq!(crate::rpc::validate::validate(&Command::NodeRegister(reg)), Ok(()));
    }
}
