//! Anti-entropy: the commands that make the catalog's view of this node
//! match the agent's local services and checks. Pure: it compares the
//! local state with a replica [`State`] and returns the writes; a write is
//! planned only for what differs, so an in-sync agent costs nothing.
//!
//! Output-only changes of a check are written at most every
//! `check_update_interval` (status changes always are), as Consul does.

use proconsul_shared::command::{CatalogRegistration, Command, NodeRegistration};
use proconsul_shared::state::{CheckStatus, HealthCheck, TAGGED_ADDRESS_VIRTUAL_IP};
use proconsul_shared::State;

use super::state::AgentLocalState;

/// Check id of the agent's own liveness check.
pub const SERF_HEALTH_CHECK_ID: &str = "serfHealth";

/// The node's `serfHealth` check (alive while this agent runs).
pub fn serf_health(node: &str) -> HealthCheck {
    HealthCheck {
        node: node.to_string(),
        check_id: SERF_HEALTH_CHECK_ID.into(),
        name: "Serf Health Status".into(),
        status: CheckStatus::Passing,
        output: "Agent alive and reachable".into(),
        ..HealthCheck::default()
    }
}

/// The writes one sync round performs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncPlan {
    pub commands: Vec<Command>,
    /// Checks whose output these writes carry (their output sync clock
    /// restarts once the writes succeed).
    pub output_synced: Vec<String>,
}

/// Whether the catalog's copy of a check needs a write. The state machine
/// fills `service_name`/`service_tags` itself, so they are not compared;
/// output alone counts only once `output_due`.
fn check_differs(wanted: &HealthCheck, have: &HealthCheck, output_due: bool) -> bool {
    let mut w = wanted.clone();
    w.service_name = have.service_name.clone();
    w.service_tags = have.service_tags.clone();
    if w.status == have.status && !output_due {
        w.output = have.output.clone();
    }
    // Node names compare case-insensitively in the catalog.
    w.node = have.node.clone();
    !w.same_registration(have)
}

fn register(
    node: &NodeRegistration,
    service: Option<proconsul_shared::state::ServiceInstance>,
    checks: Vec<HealthCheck>,
) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node: node.clone(),
        skip_node_update: true,
        service,
        checks,
    })
}

/// Plans the writes that bring the catalog in line with `local`.
pub fn plan(
    local: &AgentLocalState,
    node: &NodeRegistration,
    replica: &State,
    now_ms: u64,
    check_update_interval_ms: u64,
) -> SyncPlan {
    let mut out = SyncPlan::default();
    let catalog = &replica.catalog;
    let node_name = &node.node;
    let node_missing = replica.nodes.get(node_name).is_none();

    let wanted_checks = |service_id: &str, out: &mut SyncPlan| -> Vec<HealthCheck> {
        let mut list = Vec::new();
        if service_id.is_empty() {
            let serf = serf_health(node_name);
            let differs = match catalog.check(node_name, SERF_HEALTH_CHECK_ID) {
                Some(have) => check_differs(&serf, have, true),
                None => true,
            };
            if differs {
                list.push(serf);
            }
        }
        for c in local.checks().values().filter(|c| c.check.service_id == service_id) {
            let output_due = now_ms.saturating_sub(c.output_synced_ms) >= check_update_interval_ms;
            let differs = match catalog.check(node_name, &c.check.check_id) {
                Some(have) => check_differs(&c.check, have, output_due),
                None => true,
            };
            if differs {
                out.output_synced.push(c.check.check_id.clone());
                list.push(c.check.clone());
            }
        }
        list
    };

    // Node checks (serfHealth, node maintenance, standalone node checks).
    let node_checks = wanted_checks("", &mut out);
    if !node_checks.is_empty() || node_missing {
        out.commands.push(register(node, None, node_checks));
    }
    // Services with their checks.
    for (id, s) in local.services() {
        let service_differs = match catalog.service(node_name, id) {
            Some(have) => {
                let mut wanted = s.service.clone();
                wanted.node = have.node.clone();
                // The state machine stamps a Connect instance's virtual IP.
                if let Some(vip) = have.tagged_addresses.get(TAGGED_ADDRESS_VIRTUAL_IP) {
                    wanted
                        .tagged_addresses
                        .insert(TAGGED_ADDRESS_VIRTUAL_IP.to_string(), vip.clone());
                }
                !wanted.same_registration(have)
            }
            None => true,
        };
        let checks = wanted_checks(id, &mut out);
        if service_differs || !checks.is_empty() {
            out.commands.push(register(node, Some(s.service.clone()), checks));
        }
    }
    // What the catalog has on this node that the agent does not know.
    for have in catalog.node_services(node_name) {
        if local.service(&have.id).is_none() {
            out.commands.push(Command::CatalogDeregister {
                node: node_name.clone(),
                service_id: Some(have.id.clone()),
                check_id: None,
            });
        }
    }
    for have in catalog.node_checks(node_name) {
        let owner_gone = !have.service_id.is_empty() && local.service(&have.service_id).is_none();
        if have.check_id != SERF_HEALTH_CHECK_ID && !owner_gone && !local.checks().contains_key(&have.check_id) {
            out.commands.push(Command::CatalogDeregister {
                node: node_name.clone(),
                service_id: None,
                check_id: Some(have.check_id.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::local::state::Source;
    use crate::http_api::check_def::ScriptPolicy;
    use crate::http_api::fields::Fields;
    use crate::http_api::service_def::decode_service;
    use serde_json::json;

    const API: ScriptPolicy = ScriptPolicy {
        enable_script_checks: false,
        enable_local_script_checks: false,
        from_config_file: false,
    };

    fn node() -> NodeRegistration {
        NodeRegistration {
            id: "id".into(),
            node: "n1".into(),
            address: "127.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
        }
    }

    fn local_with_web() -> AgentLocalState {
        let mut s = AgentLocalState::new("n1");
        let v = json!({"Name": "web", "Port": 80, "Check": {"TTL": "10s"}});
        let reg = decode_service(&Fields::of(&v, "S").unwrap(), API).unwrap();
        s.add_service(reg, Source::Api, false, 0).unwrap();
        s
    }

    /// Applies a plan to a replica the way raft would.
    fn apply(replica: &mut State, plan: &SyncPlan) {
        for c in &plan.commands {
            let index = replica.index() + 1;
            replica.apply_command(index, c);
        }
    }

    fn replica_with_node() -> State {
        let mut st = State::default();
        st.apply_command(1, &Command::NodeRegister(node()));
        st
    }

    #[test]
    fn first_sync_registers_serf_health_and_services_then_nothing() {
        let local = local_with_web();
        let mut replica = replica_with_node();
        let p = plan(&local, &node(), &replica, 0, 300_000);
        assert_eq!(p.commands.len(), 2, "{p:?}");
        apply(&mut replica, &p);
        assert_eq!(
            replica.catalog.check("n1", SERF_HEALTH_CHECK_ID).unwrap().status,
            CheckStatus::Passing
        );
        assert!(replica.catalog.service("n1", "web").is_some());
        assert_eq!(replica.catalog.check("n1", "service:web").unwrap().service_name, "web");
        let again = plan(&local, &node(), &replica, 1, 300_000);
        assert!(again.commands.is_empty(), "in sync: {again:?}");
    }

    #[test]
    fn a_connect_proxy_stays_in_sync_despite_its_virtual_ip() {
        let mut local = AgentLocalState::new("n1");
        let v = json!({"Name": "p", "Kind": "connect-proxy", "Port": 21000,
                       "Proxy": {"DestinationServiceName": "web"}});
        let reg = decode_service(&Fields::of(&v, "S").unwrap(), API).unwrap();
        local.add_service(reg, Source::Api, false, 0).unwrap();
        let mut replica = replica_with_node();
        let first = plan(&local, &node(), &replica, 0, 300_000);
        apply(&mut replica, &first);
        let stored = replica.catalog.service("n1", "p").unwrap();
        assert_eq!(stored.tagged_addresses[TAGGED_ADDRESS_VIRTUAL_IP].address, "240.0.0.1");
        let again = plan(&local, &node(), &replica, 1, 300_000);
        assert!(again.commands.is_empty(), "in sync: {again:?}");
    }

    #[test]
    fn status_changes_sync_at_once_output_only_changes_wait() {
        let mut local = local_with_web();
        let mut replica = replica_with_node();
        let first = plan(&local, &node(), &replica, 0, 300_000);
        apply(&mut replica, &first);
        local.mark_output_synced(&["service:web".into()], 0);
        local
            .update_ttl("service:web", CheckStatus::Passing, "ok".into(), 10)
            .unwrap();
        let p = plan(&local, &node(), &replica, 10, 300_000);
        assert_eq!(p.commands.len(), 1);
        apply(&mut replica, &p);
        local.mark_output_synced(&p.output_synced, 10);
        assert_eq!(replica.catalog.check("n1", "service:web").unwrap().output, "ok");
        local
            .update_ttl("service:web", CheckStatus::Passing, "still ok".into(), 20)
            .unwrap();
        assert!(
            plan(&local, &node(), &replica, 20, 300_000).commands.is_empty(),
            "output only, not due"
        );
        let due = plan(&local, &node(), &replica, 300_010, 300_000);
        assert_eq!(due.commands.len(), 1, "output due after the interval");
    }

    #[test]
    fn catalog_rewrites_are_repaired() {
        let local = local_with_web();
        let mut replica = replica_with_node();
        let first = plan(&local, &node(), &replica, 0, 300_000);
        apply(&mut replica, &first);
        // Someone deregisters our service and adds a stranger on our node.
        let i = replica.index();
        replica.apply_command(
            i + 1,
            &Command::CatalogDeregister {
                node: "n1".into(),
                service_id: Some("web".into()),
                check_id: None,
            },
        );
        let mut stranger = replica
            .catalog
            .check("n1", SERF_HEALTH_CHECK_ID)
            .unwrap()
            .as_ref()
            .clone();
        stranger.check_id = "stranger".into();
        replica.apply_command(
            i + 2,
            &Command::CatalogRegister(CatalogRegistration {
                node: node(),
                skip_node_update: true,
                service: None,
                checks: vec![stranger],
            }),
        );
        let p = plan(&local, &node(), &replica, 1, 300_000);
        apply(&mut replica, &p);
        assert!(replica.catalog.service("n1", "web").is_some());
        assert!(replica.catalog.check("n1", "service:web").is_some());
        assert!(replica.catalog.check("n1", "stranger").is_none());
        assert!(
            replica.catalog.check("n1", SERF_HEALTH_CHECK_ID).is_some(),
            "serfHealth stays"
        );
        assert!(plan(&local, &node(), &replica, 2, 300_000).commands.is_empty());
    }

    #[test]
    fn removed_local_services_are_deregistered() {
        let mut local = local_with_web();
        let mut replica = replica_with_node();
        let first = plan(&local, &node(), &replica, 0, 300_000);
        apply(&mut replica, &first);
        local.remove_service("web").unwrap();
        let p = plan(&local, &node(), &replica, 1, 300_000);
        assert_eq!(
            p.commands,
            vec![Command::CatalogDeregister {
                node: "n1".into(),
                service_id: Some("web".into()),
                check_id: None
            }],
            "its checks go with it"
        );
    }

    #[test]
    fn missing_node_is_registered_even_without_checks_to_write() {
        let local = AgentLocalState::new("n1");
        let replica = State::default();
        let p = plan(&local, &node(), &replica, 0, 300_000);
        assert_eq!(p.commands.len(), 1);
        match &p.commands[0] {
            Command::CatalogRegister(r) => assert_eq!(r.checks[0].check_id, SERF_HEALTH_CHECK_ID),
            other => panic!("{other:?}"),
        }
    }
}
