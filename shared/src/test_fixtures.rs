//! Catalog registrations the tests of every crate build on (the
//! `test-fixtures` feature exports them beyond this crate's own tests).

use crate::command::{CatalogRegistration, NodeRegistration};
use crate::state::{CheckStatus, HealthCheck};
use crate::Command;

/// The check ID of a node's gossip health check.
pub const SERF_HEALTH: &str = "serfHealth";

/// Node `node` at `address` in `dc1`: no ID, no tagged addresses, no meta.
pub fn node_at(node: &str, address: &str) -> NodeRegistration {
    NodeRegistration {
        id: String::new(),
        node: node.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        tagged_addresses: Default::default(),
        meta: Default::default(),
    }
}

/// A registration of [`node_at`]`(node, address)` alone (node updated, no
/// service, no checks); fill in the rest with struct update syntax.
pub fn node_registration(node: &str, address: &str) -> CatalogRegistration {
    CatalogRegistration {
        node: node_at(node, address),
        skip_node_update: false,
        service: None,
        checks: Vec::new(),
    }
}

/// A passing `serfHealth` node check.
pub fn serf_health_passing() -> HealthCheck {
    HealthCheck {
        check_id: SERF_HEALTH.into(),
        name: SERF_HEALTH.into(),
        status: CheckStatus::Passing,
        ..HealthCheck::default()
    }
}

/// Registers node `node` at `address` with a passing `serfHealth`.
pub fn node_with_passing_serf_health(node: &str, address: &str) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        checks: vec![serf_health_passing()],
        ..node_registration(node, address)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommandResult, State};

    #[test]
    fn a_node_with_a_passing_serf_health_is_healthy_in_the_state() {
        let mut state = State::default();
        let (result, _) = state.apply_command(2, &node_with_passing_serf_health("n1", "10.0.0.1"));
        assert_eq!(result, CommandResult::Done);
        let node = state.nodes.get("n1").expect("registered");
        assert_eq!((node.address.as_str(), node.datacenter.as_str()), ("10.0.0.1", "dc1"));
        let check = state.catalog.check("n1", SERF_HEALTH).expect("serfHealth");
        assert_eq!((check.status, check.service_id.as_str()), (CheckStatus::Passing, ""));
    }
}
