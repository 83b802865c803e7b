//! Test fixtures shared by the data plane's unit tests.

use std::collections::BTreeMap;

use proconsul_shared::agent_info::{AgentInfo, Ports};
use proconsul_shared::command::NodeRegistration;
use proconsul_shared::{Command, State};

/// A dev-mode server agent `node1` in `dc1`, domain `consul.`.
pub fn test_agent() -> AgentInfo {
    AgentInfo {
        node_name: "node1".into(),
        node_id: "8bd2c8a4-0000-0000-0000-000000000001".into(),
        datacenter: "dc1".into(),
        primary_datacenter: "dc1".into(),
        server: true,
        bootstrap: true,
        bootstrap_expect: 1,
        dev_mode: true,
        bind_addr: "127.0.0.1".into(),
        advertise_addr: "127.0.0.1".into(),
        client_addrs: vec!["127.0.0.1".into()],
        ports: Ports::default(),
        domain: "consul.".into(),
        revision: String::new(),
        build_date: String::new(),
        log_level: "info".into(),
        pretty_json: false,
        enable_script_checks: false,
        data_dir: String::new(),
        node_meta: BTreeMap::new(),
        default_query_time_ms: 300_000,
        max_query_time_ms: 600_000,
        dns: Default::default(),
    }
}

/// Registers node `name` at `address` with `meta`, at raft index `index`.
pub fn register_node(state: &mut State, index: u64, name: &str, address: &str, meta: &[(&str, &str)]) {
    state.apply_command(
        index,
        &Command::NodeRegister(NodeRegistration {
            id: String::new(),
            node: name.into(),
            address: address.into(),
            datacenter: "dc1".into(),
            tagged_addresses: BTreeMap::new(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }),
    );
}

/// A plain KV write at `index`.
pub fn kv_set(state: &mut State, index: u64, key: &str, value: &[u8]) {
    state.apply_command(
        index,
        &Command::KvSet {
            key: key.into(),
            value: value.to_vec(),
            flags: 0,
        },
    );
}
