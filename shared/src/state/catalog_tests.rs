//! The catalog on the state machine: registration, health, indexes, and a
//! replica fed only deltas (or a snapshot) agreeing with the leader.

use super::*;
use crate::command::{CatalogRegistration, NodeRegistration};
use crate::snapshot;

fn node(name: &str, address: &str) -> NodeRegistration {
    NodeRegistration {
        id: String::new(),
        node: name.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        tagged_addresses: Default::default(),
        meta: Default::default(),
    }
}

fn service(id: &str, name: &str, port: u16) -> ServiceInstance {
    ServiceInstance {
        id: id.into(),
        service: name.into(),
        port,
        tags: vec!["v1".into()],
        ..ServiceInstance::default()
    }
}

fn check(id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        check_id: id.into(),
        name: id.into(),
        service_id: service_id.into(),
        status,
        check_type: "ttl".into(),
        ..HealthCheck::default()
    }
}

fn register(n: &str, s: Option<ServiceInstance>, checks: Vec<HealthCheck>) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node: node(n, "10.0.0.1"),
        skip_node_update: false,
        service: s,
        checks,
    })
}

/// Applies commands on a leader and the deltas on a replica; returns both
/// and every (result, delta).
fn replay(commands: &[Command]) -> (State, State, Vec<(CommandResult, Delta)>) {
    let mut leader = State::default();
    let mut replica = State::default();
    let mut out = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let (r, d) = leader.apply_command(i as u64 + 10, c);
        assert!(replica.apply_delta(&d));
        out.push((r, d));
    }
    (leader, replica, out)
}

fn assert_same_catalog(a: &State, b: &State) {
    let sa: Vec<_> = a.catalog.services().cloned().collect();
    let sb: Vec<_> = b.catalog.services().cloned().collect();
    assert_eq!(sa, sb);
    let ca: Vec<_> = a.catalog.checks().cloned().collect();
    let cb: Vec<_> = b.catalog.checks().cloned().collect();
    assert_eq!(ca, cb);
    let na: Vec<_> = a.catalog.name_indexes().collect();
    let nb: Vec<_> = b.catalog.name_indexes().collect();
    assert_eq!(na, nb);
    assert_eq!(a.catalog.services_table_index(), b.catalog.services_table_index());
    assert_eq!(a.catalog.checks_table_index(), b.catalog.checks_table_index());
    let nodes_a: Vec<_> = a.nodes.iter().cloned().collect();
    let nodes_b: Vec<_> = b.nodes.iter().cloned().collect();
    assert_eq!(nodes_a, nodes_b);
}

#[test]
fn register_then_query_by_name_case_insensitively() {
    let (leader, replica, out) = replay(&[
        register(
            "n1",
            Some(service("web-1", "Web", 80)),
            vec![check("c1", "web-1", CheckStatus::Passing)],
        ),
        register("n2", Some(service("web-2", "web", 81)), vec![]),
    ]);
    assert!(matches!(out[0].0, CommandResult::Done));
    let web = leader.catalog.instances("WEB").expect("web has instances");
    assert_eq!(web.len(), 2);
    let c = leader.catalog.check("N1", "c1").unwrap();
    assert_eq!(c.service_name, "Web");
    assert_eq!(c.service_tags, vec!["v1".to_string()]);
    assert_eq!(c.node, "n1");
    assert_same_catalog(&leader, &replica);
}

#[test]
fn instance_health_is_the_worst_of_node_and_service_checks() {
    let (leader, _, _) = replay(&[
        register(
            "n1",
            Some(service("a", "api", 1)),
            vec![check("sa", "a", CheckStatus::Passing)],
        ),
        register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]),
        register(
            "n1",
            Some(service("b", "api", 2)),
            vec![check("sb", "b", CheckStatus::Warning)],
        ),
    ]);
    let a = leader.catalog.service("n1", "a").unwrap().clone();
    let b = leader.catalog.service("n1", "b").unwrap().clone();
    assert_eq!(leader.catalog.instance_status(&a), CheckStatus::Passing);
    assert_eq!(leader.catalog.instance_status(&b), CheckStatus::Warning);
    let (leader, _, _) = replay(&[
        register(
            "n1",
            Some(service("a", "api", 1)),
            vec![check("sa", "a", CheckStatus::Passing)],
        ),
        register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]),
    ]);
    let a = leader.catalog.service("n1", "a").unwrap().clone();
    assert_eq!(
        leader.catalog.instance_status(&a),
        CheckStatus::Critical,
        "node check counts"
    );
    assert_eq!(leader.catalog.instance_checks(&a).count(), 2);
}

#[test]
fn an_unchanged_registration_emits_nothing_and_keeps_indexes() {
    let reg = register(
        "n1",
        Some(service("web", "web", 80)),
        vec![check("c", "web", CheckStatus::Passing)],
    );
    let (leader, replica, out) = replay(&[reg.clone(), reg]);
    assert_eq!(out[0].1.ops.len(), 3, "node, service, check: {:?}", out[0].1.ops);
    assert!(out[1].1.ops.is_empty(), "{:?}", out[1].1.ops);
    assert_eq!(leader.catalog.service_index("web"), 10);
    assert_eq!(leader.index(), 11);
    assert_same_catalog(&leader, &replica);
}

#[test]
fn a_check_status_change_bumps_only_its_service() {
    let (leader, replica, _) = replay(&[
        register(
            "n1",
            Some(service("web", "web", 80)),
            vec![check("c", "web", CheckStatus::Passing)],
        ),
        register("n1", Some(service("db", "db", 5432)), vec![]),
        register("n1", None, vec![check("c", "web", CheckStatus::Critical)]),
    ]);
    assert_eq!(leader.catalog.service_index("web"), 12);
    assert_eq!(leader.catalog.service_index("db"), 11);
    assert_eq!(leader.catalog.checks_table_index(), 12);
    assert_eq!(leader.catalog.services_table_index(), 11);
    assert_same_catalog(&leader, &replica);
}

#[test]
fn a_node_check_change_bumps_every_service_on_the_node() {
    let (leader, _, _) = replay(&[
        register("n1", Some(service("web", "web", 80)), vec![]),
        register("n1", Some(service("db", "db", 5432)), vec![]),
        register("n2", Some(service("other", "other", 1)), vec![]),
        register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]),
    ]);
    assert_eq!(leader.catalog.service_index("web"), 13);
    assert_eq!(leader.catalog.service_index("db"), 13);
    assert_eq!(leader.catalog.service_index("other"), 12);
}

#[test]
fn a_check_for_an_unknown_service_is_refused_without_effect() {
    let (leader, _, out) = replay(&[register("n1", None, vec![check("c", "ghost", CheckStatus::Passing)])]);
    assert_eq!(
        out[0].0,
        CommandResult::Failed("Unknown service ID 'ghost' for check ID 'c'".into()),
        "Consul's text"
    );
    assert!(out[0].1.ops.is_empty());
    assert!(leader.nodes.get("n1").is_none(), "not even the node was written");
}

#[test]
fn deregistering_a_service_removes_its_checks_and_keeps_a_tombstone_index() {
    let (leader, replica, out) = replay(&[
        register(
            "n1",
            Some(service("web", "web", 80)),
            vec![check("c", "web", CheckStatus::Passing)],
        ),
        register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]),
        Command::CatalogDeregister {
            node: "n1".into(),
            service_id: Some("web".into()),
            check_id: None,
        },
    ]);
    assert_eq!(out[2].1.ops.len(), 1);
    assert!(leader.catalog.instances("web").is_none());
    assert!(leader.catalog.check("n1", "c").is_none());
    assert!(leader.catalog.check("n1", "serfHealth").is_some());
    assert_eq!(
        leader.catalog.service_index("web"),
        12,
        "the delete is the service's index"
    );
    assert_same_catalog(&leader, &replica);
}

#[test]
fn deregistering_a_node_removes_everything_on_it() {
    let (leader, replica, _) = replay(&[
        register(
            "n1",
            Some(service("web", "web", 80)),
            vec![check("c", "web", CheckStatus::Passing)],
        ),
        register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]),
        register("n2", Some(service("web2", "web", 80)), vec![]),
        Command::CatalogDeregister {
            node: "N1".into(),
            service_id: None,
            check_id: None,
        },
    ]);
    assert!(leader.nodes.get("n1").is_none());
    assert_eq!(leader.catalog.node_services("n1").count(), 0);
    assert_eq!(leader.catalog.node_checks("n1").count(), 0);
    assert_eq!(leader.catalog.instances("web").unwrap().len(), 1);
    assert_same_catalog(&leader, &replica);
}

#[test]
fn renaming_a_service_moves_it_between_names() {
    let (leader, replica, _) = replay(&[
        register(
            "n1",
            Some(service("x", "old", 80)),
            vec![check("c", "x", CheckStatus::Passing)],
        ),
        register("n1", Some(service("x", "new", 80)), vec![]),
    ]);
    assert!(leader.catalog.instances("old").is_none());
    assert_eq!(leader.catalog.instances("new").unwrap().len(), 1);
    assert_eq!(leader.catalog.check("n1", "c").unwrap().service_name, "new");
    assert_eq!(leader.catalog.service_index("old"), 11);
    assert_same_catalog(&leader, &replica);
}

#[test]
fn skip_node_update_keeps_the_node_but_creates_a_missing_one() {
    let mut s = State::default();
    let mut reg = CatalogRegistration {
        node: node("n1", "10.0.0.1"),
        skip_node_update: true,
        service: None,
        checks: vec![],
    };
    s.apply_command(2, &Command::CatalogRegister(reg.clone()));
    assert_eq!(s.nodes.get("n1").unwrap().address, "10.0.0.1");
    reg.node.address = "10.9.9.9".into();
    s.apply_command(3, &Command::CatalogRegister(reg.clone()));
    assert_eq!(s.nodes.get("n1").unwrap().address, "10.0.0.1");
    reg.skip_node_update = false;
    s.apply_command(4, &Command::CatalogRegister(reg));
    assert_eq!(s.nodes.get("n1").unwrap().address, "10.9.9.9");
}

#[test]
fn skip_node_update_without_an_address_leaves_the_node_alone() {
    let mut s = State::default();
    let mut first = CatalogRegistration {
        node: node("n1", "10.0.0.1"),
        skip_node_update: false,
        service: None,
        checks: vec![],
    };
    first.node.meta.insert("rack".into(), "r1".into());
    s.apply_command(2, &Command::CatalogRegister(first));
    let bare = CatalogRegistration {
        node: node("n1", ""),
        skip_node_update: true,
        service: Some(service("web", "web", 80)),
        checks: vec![],
    };
    let (r, d) = s.apply_command(3, &Command::CatalogRegister(bare.clone()));
    assert_eq!(r, CommandResult::Done);
    assert!(!d.ops.iter().any(|o| matches!(o, DeltaOp::NodePut(_))), "{:?}", d.ops);
    let n1 = s.nodes.get("n1").unwrap();
    assert_eq!((n1.address.as_str(), n1.meta["rack"].as_str()), ("10.0.0.1", "r1"));
    assert_eq!((n1.create_index, n1.modify_index), (2, 2));
    assert!(s.catalog.service("n1", "web").is_some());
    // A node that does not exist yet is created as sent, address or not,
    // as Consul's state store does.
    let missing = CatalogRegistration {
        node: node("n2", ""),
        ..bare
    };
    let (r, _) = s.apply_command(4, &Command::CatalogRegister(missing));
    assert_eq!(r, CommandResult::Done);
    assert_eq!(s.nodes.get("n2").unwrap().address, "");
    assert!(s.catalog.service("n2", "web").is_some());
}

#[test]
fn snapshot_round_trips_the_catalog() {
    let (leader, _, _) = replay(&[
        register(
            "n1",
            Some(service("web", "web", 80)),
            vec![check("c", "web", CheckStatus::Warning)],
        ),
        register(
            "n2",
            Some(service("db", "db", 5432)),
            vec![check("serfHealth", "", CheckStatus::Passing)],
        ),
        Command::CatalogDeregister {
            node: "n2".into(),
            service_id: Some("db".into()),
            check_id: None,
        },
    ]);
    let bytes = snapshot::encode(&leader);
    let restored = snapshot::decode(&bytes).expect("decodes");
    assert_same_catalog(&leader, &restored);
    assert_eq!(restored.catalog.service_index("db"), 12);
    assert_eq!(restored.catalog.instances("web").unwrap().len(), 1);
}

#[test]
fn node_checks_name_the_node_in_any_case_and_stop_at_its_end() {
    let (leader, _, _) = replay(&[
        register(
            "N1",
            None,
            vec![
                check("a", "", CheckStatus::Passing),
                check("b", "", CheckStatus::Critical),
            ],
        ),
        register("n10", None, vec![check("c", "", CheckStatus::Passing)]),
        register("n0", None, vec![check("z", "", CheckStatus::Passing)]),
    ]);
    for name in ["n1", "N1"] {
        let ids: Vec<&str> = leader.catalog.node_checks(name).map(|c| c.check_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "{name}: neither n0 before nor n10 after");
    }
    assert_eq!(leader.catalog.node_checks("n2").count(), 0);
    assert_eq!(leader.catalog.node_checks("").count(), 0);
}

#[test]
fn node_services_name_the_node_in_any_case_and_stop_at_its_end() {
    let (leader, _, _) = replay(&[
        register("N1", Some(service("b", "web", 80)), vec![]),
        register("N1", Some(service("a", "db", 81)), vec![]),
        register("n10", Some(service("c", "web", 82)), vec![]),
        register("n0", Some(service("z", "web", 83)), vec![]),
    ]);
    for name in ["n1", "N1"] {
        let ids: Vec<&str> = leader.catalog.node_services(name).map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "{name}: neither n0 before nor n10 after");
    }
    assert_eq!(leader.catalog.node_services("n2").count(), 0);
    assert_eq!(leader.catalog.node_services("").count(), 0);
}
