//! Connect instances on the state machine: the Connect index by target,
//! virtual IPs assigned inside the registration's raft entry and freed
//! with the last Connect instance, and replicas (deltas or a snapshot)
//! agreeing with the leader.

use std::net::Ipv4Addr;

use super::*;
use crate::command::{CatalogRegistration, NodeRegistration};
use crate::snapshot;

fn register(node: &str, service: ServiceInstance) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node: NodeRegistration {
            id: String::new(),
            node: node.into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
        },
        skip_node_update: false,
        service: Some(service),
        checks: vec![],
    })
}

fn deregister(node: &str, service_id: Option<&str>) -> Command {
    Command::CatalogDeregister {
        node: node.into(),
        service_id: service_id.map(str::to_string),
        check_id: None,
    }
}

fn plain(id: &str, name: &str) -> ServiceInstance {
    ServiceInstance {
        id: id.into(),
        service: name.into(),
        port: 80,
        ..ServiceInstance::default()
    }
}

fn proxy(id: &str, destination: &str, port: u16) -> ServiceInstance {
    ServiceInstance {
        id: id.into(),
        service: format!("{destination}-sidecar-proxy"),
        kind: KIND_CONNECT_PROXY.into(),
        port,
        proxy: ServiceProxy {
            destination_service_name: destination.into(),
            ..ServiceProxy::default()
        },
        ..ServiceInstance::default()
    }
}

fn native(id: &str, name: &str) -> ServiceInstance {
    ServiceInstance {
        connect: ServiceConnect { native: true },
        ..plain(id, name)
    }
}

/// Applies `commands` on a leader and their deltas on a replica, checks
/// both (and a snapshot of the leader) agree, and returns the leader with
/// every delta.
fn replay(commands: &[Command]) -> (State, Vec<Delta>) {
    let mut leader = State::default();
    let mut replica = State::default();
    let mut deltas = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let (result, delta) = leader.apply_command(i as u64 + 10, c);
        assert_eq!(result, CommandResult::Done, "{c:?}");
        assert!(replica.apply_delta(&delta));
        deltas.push(delta);
    }
    let restored = snapshot::decode(&snapshot::encode(&leader)).unwrap();
    for other in [&replica, &restored] {
        let ips = |s: &State| {
            s.virtual_ips
                .entries()
                .map(|(n, o)| (n.clone(), *o))
                .collect::<Vec<_>>()
        };
        assert_eq!(ips(other), ips(&leader));
        assert_eq!(other.virtual_ips.counter(), leader.virtual_ips.counter());
        let free = |s: &State| s.virtual_ips.free_offsets().copied().collect::<Vec<_>>();
        assert_eq!(free(other), free(&leader));
        let connect = |s: &State| {
            s.catalog
                .connect_indexes()
                .map(|(n, i)| (n.clone(), *i))
                .collect::<Vec<_>>()
        };
        assert_eq!(connect(other), connect(&leader));
        let services = |s: &State| s.catalog.services().cloned().collect::<Vec<_>>();
        assert_eq!(services(other), services(&leader));
    }
    (leader, deltas)
}

#[test]
fn proxies_and_native_instances_are_grouped_by_target() {
    let (s, _) = replay(&[
        register("n1", plain("web", "web")),
        register("n1", proxy("web-proxy", "Web", 21000)),
        register("n2", native("web-native", "web")),
        register("n2", native("api", "api")),
    ]);
    let web: Vec<&str> = s
        .catalog
        .connect_instances("WEB")
        .unwrap()
        .values()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(web, ["web-proxy", "web-native"]);
    assert!(s.catalog.connect_instances("web-sidecar-proxy").is_none());
    assert_eq!(s.catalog.connect_index("web"), 12);
    assert_eq!(s.catalog.connect_index("api"), 13);
    assert_eq!(s.catalog.connect_index("never"), s.catalog.services_table_index());
}

#[test]
fn a_connect_registration_assigns_a_virtual_ip_in_the_same_entry() {
    let (s, deltas) = replay(&[
        register("n1", plain("web", "web")),
        register("n1", proxy("web-proxy", "web", 21000)),
        register("n1", native("api", "api")),
    ]);
    assert_eq!(s.virtual_ips.get("web"), Some(Ipv4Addr::new(240, 0, 0, 1)));
    assert_eq!(s.virtual_ips.get("api"), Some(Ipv4Addr::new(240, 0, 0, 2)));
    assert!(
        deltas[0]
            .ops
            .iter()
            .all(|op| !matches!(op, DeltaOp::VirtualIpPut { .. })),
        "a plain service gets none"
    );
    assert!(matches!(&deltas[1].ops[0], DeltaOp::VirtualIpPut { service, offset: 1 } if service == "web"));
    let p = s.catalog.service("n1", "web-proxy").unwrap();
    let vip = &p.tagged_addresses[TAGGED_ADDRESS_VIRTUAL_IP];
    assert_eq!((vip.address.as_str(), vip.port), ("240.0.0.1", 21000));
}

#[test]
fn re_registering_the_same_proxy_changes_nothing() {
    let (s, deltas) = replay(&[
        register("n1", proxy("p", "web", 21000)),
        register("n1", proxy("p", "web", 21000)),
    ]);
    assert!(
        deltas[1]
            .ops
            .iter()
            .all(|op| !matches!(op, DeltaOp::ServicePut(_) | DeltaOp::VirtualIpPut { .. })),
        "{:?}",
        deltas[1].ops
    );
    assert_eq!(s.catalog.service("n1", "p").unwrap().modify_index, 10);
}

#[test]
fn the_virtual_ip_is_freed_with_the_last_connect_instance_and_reused() {
    let (s, deltas) = replay(&[
        register("n1", proxy("p1", "web", 21000)),
        register("n2", proxy("p2", "web", 21000)),
        register("n1", native("api", "api")),
        deregister("n1", Some("p1")),
        deregister("n2", None),
        register("n3", native("db", "db")),
    ]);
    assert!(
        deltas[3]
            .ops
            .iter()
            .all(|op| !matches!(op, DeltaOp::VirtualIpFree { .. })),
        "p2 still serves web"
    );
    assert!(matches!(deltas[4].ops.last(), Some(DeltaOp::VirtualIpFree { service }) if service == "web"));
    assert_eq!(s.virtual_ips.get("web"), None);
    assert_eq!(
        s.virtual_ips.get("db"),
        Some(Ipv4Addr::new(240, 0, 0, 1)),
        "the freed address is reused"
    );
    assert_eq!(s.catalog.connect_index("web"), 14, "the delete is the index");
}

#[test]
fn retargeting_a_proxy_frees_the_old_targets_address() {
    let (s, _) = replay(&[
        register("n1", proxy("p", "web", 21000)),
        register("n1", proxy("p", "api", 21000)),
    ]);
    assert_eq!(s.virtual_ips.get("web"), None);
    assert_eq!(s.virtual_ips.get("api"), Some(Ipv4Addr::new(240, 0, 0, 2)));
    assert!(s.catalog.connect_instances("web").is_none());
    assert_eq!(s.catalog.connect_instances("api").unwrap().len(), 1);
}

#[test]
fn an_exhausted_range_fails_the_registration_without_effect() {
    let mut s = State {
        virtual_ips: VirtualIpTable::restore(vec![], vec![], VIRTUAL_IP_OFFSET_MAX),
        ..State::default()
    };
    let (result, delta) = s.apply_command(10, &register("n1", proxy("p", "web", 21000)));
    assert_eq!(
        result,
        CommandResult::Failed("failed updating virtual IP: cannot allocate any more unique service virtual IPs".into())
    );
    assert!(delta.ops.is_empty(), "all or nothing: {:?}", delta.ops);
    assert!(s.nodes.get("n1").is_none());
    let (result, _) = s.apply_command(11, &register("n1", plain("web", "web")));
    assert_eq!(result, CommandResult::Done, "a plain service needs no address");
}
