//! A small catalog for prepared query tests: one `web` instance per node.

use std::collections::BTreeMap;

use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance};
use proconsul_shared::{Command, State};

/// The check ID of the instance on `node`.
pub fn check(node: &str) -> String {
    format!("check-{node}")
}

/// Registers, per row, node `name` (address `10.0.0.<digits of name>`,
/// meta `rack=r-<name>`) with a `web` instance (meta `version=<name>`,
/// the row's tags) and one service check of the row's status.
pub fn catalog(rows: &[(&str, &[&str], CheckStatus)]) -> State {
    let mut state = State::default();
    for (i, (name, tags, status)) in rows.iter().enumerate() {
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        let reg = CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: name.to_string(),
                address: format!("10.0.0.{digits}"),
                datacenter: "dc1".into(),
                tagged_addresses: BTreeMap::new(),
                meta: [("rack".to_string(), format!("r-{name}"))].into(),
            },
            skip_node_update: false,
            service: Some(ServiceInstance {
                id: "web".into(),
                service: "web".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                meta: [("version".to_string(), name.to_string())].into(),
                port: 8080,
                ..Default::default()
            }),
            checks: vec![HealthCheck {
                check_id: check(name),
                name: "web check".into(),
                status: *status,
                service_id: "web".into(),
                ..Default::default()
            }],
        };
        let (result, _) = state.apply_command(i as u64 + 1, &Command::CatalogRegister(reg));
        assert_eq!(result, proconsul_shared::CommandResult::Done, "{name}");
    }
    state
}
