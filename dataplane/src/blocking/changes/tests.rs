//! Change sets: KV items, catalog targeting, limits.

use super::*;
use proconsul_shared::state::{KvEntry, Node};

fn put(key: &str, index: u64) -> DeltaOp {
    DeltaOp::KvPut(KvEntry {
        key: key.into(),
        value: vec![],
        flags: 0,
        lock_index: 0,
        session: None,
        create_index: index,
        modify_index: index,
    })
}

#[test]
fn records_each_kind_of_op() {
    let mut c = ChangeSet::default();
    assert!(c.is_empty());
    c.record_delta(&Delta {
        index: 5,
        ops: vec![
            put("a", 5),
            DeltaOp::KvDelete {
                key: "b".into(),
                index: 5,
            },
            DeltaOp::KvDeleteTree {
                prefix: "t/".into(),
                index: 5,
            },
            DeltaOp::NodeDelete {
                node: "n".into(),
                index: 5,
            },
        ],
    });
    assert!(c.index_advanced && c.nodes && !c.wake_all);
    assert_eq!(c.kv_keys, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(c.kv_trees, vec!["t/".to_string()]);
}

#[test]
fn empty_delta_only_advances_the_index() {
    let mut c = ChangeSet::default();
    c.record_delta(&Delta { index: 9, ops: vec![] });
    assert!(c.index_advanced);
    assert!(!c.is_empty());
    assert!(c.kv_keys.is_empty() && !c.nodes && !c.wake_all);
}

#[test]
fn node_put_marks_nodes() {
    let mut c = ChangeSet::default();
    c.record_op(
        &DeltaOp::NodePut(Node {
            id: String::new(),
            node: "n1".into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
            create_index: 1,
            modify_index: 1,
        }),
        None,
    );
    assert!(c.nodes);
    assert!(c.all_services, "without the state every service watcher wakes");
}

#[test]
fn too_many_items_collapse_to_wake_all() {
    let mut c = ChangeSet::default();
    for i in 0..CHANGE_ITEMS_MAX {
        c.record_op(&put(&format!("k{i}"), 1), None);
    }
    assert!(!c.wake_all, "exactly the limit still lists keys");
    assert_eq!(c.kv_keys.len(), CHANGE_ITEMS_MAX);
    c.record_op(&put("one-more", 2), None);
    assert!(c.wake_all);
    assert!(c.kv_keys.is_empty(), "a collapsed set frees its list");
}

#[test]
fn merge_keeps_items_and_collapses_past_the_limit() {
    let mut a = ChangeSet::default();
    a.record_op(&put("x", 1), None);
    let mut b = ChangeSet::default();
    b.record_op(&put("y", 2), None);
    b.nodes = true;
    a.merge(&b);
    assert_eq!(a.kv_keys, vec!["x".to_string(), "y".to_string()]);
    assert!(a.nodes);
    a.merge(&ChangeSet::everything());
    assert!(a.wake_all && a.kv_keys.is_empty());

    let big = ChangeSet {
        kv_keys: (0..CHANGE_ITEMS_MAX).map(|i| i.to_string()).collect(),
        ..ChangeSet::default()
    };
    let mut small = ChangeSet::default();
    small.record_op(&put("z", 3), None);
    small.merge(&big);
    assert!(small.wake_all);
}

#[test]
fn repeated_key_is_listed_once_in_a_row() {
    let mut c = ChangeSet::default();
    c.record_op(&put("same", 1), None);
    c.record_op(&put("same", 2), None);
    assert_eq!(c.kv_keys.len(), 1);
}

mod catalog {
    use super::*;
    use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
    use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance};
    use proconsul_shared::Command;

    fn register(node: &str, service: Option<(&str, &str)>, checks: Vec<HealthCheck>) -> Command {
        Command::CatalogRegister(CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: node.into(),
                address: "10.0.0.1".into(),
                datacenter: "dc1".into(),
                tagged_addresses: Default::default(),
                meta: Default::default(),
            },
            skip_node_update: true,
            service: service.map(|(id, name)| ServiceInstance {
                id: id.into(),
                service: name.into(),
                ..ServiceInstance::default()
            }),
            checks,
        })
    }

    fn check(id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            name: id.into(),
            service_id: service_id.into(),
            status,
            ..HealthCheck::default()
        }
    }

    /// n1 runs web and db, n2 runs api; n1 has a node check.
    fn base() -> (State, u64) {
        let mut state = State::default();
        let commands = [
            register(
                "n1",
                Some(("web-1", "Web")),
                vec![check("web-alive", "web-1", CheckStatus::Passing)],
            ),
            register("n1", Some(("db-1", "db")), vec![]),
            register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]),
            register("n2", Some(("api-1", "api")), vec![]),
        ];
        let mut index = 10;
        for c in &commands {
            state.apply_command(index, c);
            index += 1;
        }
        (state, index)
    }

    /// The change set of `command`'s delta, resolved against `before` as
    /// the replica does (before applying it).
    fn changes_of(before: &State, index: u64, command: &Command) -> ChangeSet {
        let mut leader = before.clone();
        let (_, delta) = leader.apply_command(index, command);
        let mut c = ChangeSet::default();
        c.record_delta_from(before, &delta);
        c
    }

    fn names(c: &ChangeSet) -> Vec<&str> {
        let mut v: Vec<&str> = c.services.iter().map(String::as_str).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn service_check_change_marks_only_its_service() {
        let (state, index) = base();
        let c = changes_of(
            &state,
            index,
            &register("n1", None, vec![check("web-alive", "web-1", CheckStatus::Critical)]),
        );
        assert_eq!(names(&c), vec!["web"]);
        assert!(c.checks_table && !c.services_table && !c.nodes && !c.all_services);
    }

    #[test]
    fn node_check_change_marks_every_service_on_that_node_only() {
        let (state, index) = base();
        let c = changes_of(
            &state,
            index,
            &register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]),
        );
        assert_eq!(names(&c), vec!["db", "web"], "api lives on n2");
        assert!(c.checks_table);
    }

    #[test]
    fn service_delete_marks_its_service_and_tables() {
        let (state, index) = base();
        let deregister = Command::CatalogDeregister {
            node: "n1".into(),
            service_id: Some("web-1".into()),
            check_id: None,
        };
        let c = changes_of(&state, index, &deregister);
        assert_eq!(names(&c), vec!["web"]);
        assert!(c.services_table && c.checks_table, "web-1 took its check with it");
        let deregister_db = Command::CatalogDeregister {
            node: "n1".into(),
            service_id: Some("db-1".into()),
            check_id: None,
        };
        let c = changes_of(&state, index, &deregister_db);
        assert_eq!(names(&c), vec!["db"]);
        assert!(!c.checks_table, "db-1 had no checks");
    }

    #[test]
    fn check_delete_marks_what_the_check_decided() {
        let (state, index) = base();
        let c = changes_of(
            &state,
            index,
            &Command::CatalogDeregister {
                node: "n1".into(),
                service_id: None,
                check_id: Some("serfHealth".into()),
            },
        );
        assert_eq!(names(&c), vec!["db", "web"]);
    }

    #[test]
    fn node_update_and_delete_mark_the_node_services() {
        let (state, index) = base();
        let mut moved = register("n2", None, vec![]);
        if let Command::CatalogRegister(reg) = &mut moved {
            reg.skip_node_update = false;
            reg.node.address = "10.9.9.9".into();
        }
        let c = changes_of(&state, index, &moved);
        assert_eq!(names(&c), vec!["api"]);
        assert!(c.nodes && !c.services_table);
        let c = changes_of(
            &state,
            index,
            &Command::CatalogDeregister {
                node: "n1".into(),
                service_id: None,
                check_id: None,
            },
        );
        assert_eq!(names(&c), vec!["db", "web"]);
        assert!(c.nodes && c.services_table && c.checks_table);
    }

    #[test]
    fn rename_marks_old_and_new_names_and_new_services_are_marked() {
        let (state, index) = base();
        let c = changes_of(&state, index, &register("n1", Some(("web-1", "frontend")), vec![]));
        assert_eq!(names(&c), vec!["frontend", "web"]);
        assert!(c.services_table);
        let c = changes_of(&state, index, &register("n2", Some(("cache-1", "Cache")), vec![]));
        assert_eq!(names(&c), vec!["cache"], "names are lower-cased");
    }

    #[test]
    fn unchanged_registration_marks_nothing() {
        let (state, index) = base();
        let c = changes_of(&state, index, &register("n2", Some(("api-1", "api")), vec![]));
        assert!(c.services.is_empty() && !c.services_table && !c.checks_table && !c.nodes);
        assert!(c.index_advanced);
    }

    #[test]
    fn too_many_service_names_collapse_to_wake_all() {
        let mut c = ChangeSet::default();
        for i in 0..CHANGE_ITEMS_MAX {
            c.push_service(&format!("s{i}"));
        }
        assert!(!c.wake_all);
        c.push_service("one-more");
        assert!(c.wake_all && c.services.is_empty());
    }
}

#[test]
fn a_connect_instance_wakes_its_targets_watchers() {
    use proconsul_shared::state::{ServiceInstance, ServiceProxy, KIND_CONNECT_PROXY};
    let proxy = ServiceInstance {
        node: "n1".into(),
        id: "p".into(),
        service: "web-sidecar-proxy".into(),
        kind: KIND_CONNECT_PROXY.into(),
        proxy: ServiceProxy {
            destination_service_name: "Web".into(),
            ..ServiceProxy::default()
        },
        ..ServiceInstance::default()
    };
    let mut c = ChangeSet::default();
    c.record_op(&DeltaOp::ServicePut(proxy), Some(&State::default()));
    assert_eq!(c.services, vec!["web-sidecar-proxy".to_string(), "web".to_string()]);
}
