//! Catalog fixtures for the DNS unit tests (services and checks).

use proconsul_shared::command::CatalogRegistration;
use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance, Weights};
use proconsul_shared::test_fixtures::node_registration;
use proconsul_shared::{Command, State};

/// A registration on the existing node `node` (the node left as it is).
fn registration(node: &str) -> CatalogRegistration {
    CatalogRegistration {
        skip_node_update: true,
        ..node_registration(node, "")
    }
}

/// Registers instance `id` of `service` on the existing node `node`.
#[allow(clippy::too_many_arguments)]
pub fn register_service(
    state: &mut State,
    index: u64,
    node: &str,
    id: &str,
    service: &str,
    tags: &[&str],
    address: &str,
    port: u16,
) {
    register_weighted(state, index, node, id, service, tags, address, port, Weights::default());
}

/// As [`register_service`] with explicit weights.
#[allow(clippy::too_many_arguments)]
pub fn register_weighted(
    state: &mut State,
    index: u64,
    node: &str,
    id: &str,
    service: &str,
    tags: &[&str],
    address: &str,
    port: u16,
    weights: Weights,
) {
    let mut reg = registration(node);
    reg.service = Some(ServiceInstance {
        node: node.into(),
        id: id.into(),
        service: service.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        address: address.into(),
        port,
        weights,
        ..ServiceInstance::default()
    });
    state.apply_command(index, &Command::CatalogRegister(reg));
}

/// Sets check `check_id` on `node` (a node check when `service_id` is
/// empty) to `status` (`passing`, `warning`, `critical`).
pub fn set_check(state: &mut State, index: u64, node: &str, service_id: &str, check_id: &str, status: &str) {
    let mut reg = registration(node);
    reg.checks.push(HealthCheck {
        node: node.into(),
        check_id: check_id.into(),
        name: check_id.into(),
        status: CheckStatus::parse(status).expect("a check status"),
        service_id: service_id.into(),
        ..HealthCheck::default()
    });
    state.apply_command(index, &Command::CatalogRegister(reg));
}
