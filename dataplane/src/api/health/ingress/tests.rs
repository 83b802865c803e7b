//! `/v1/health/ingress/<service>` against a state built from real
//! registrations and config entries.

use proconsul_shared::state::{
    CheckStatus, ConfigEntry, IngressListener, IngressService, ServiceInstance, KIND_INGRESS_GATEWAY,
};
use proconsul_shared::{Command, State};

use super::ingress;
use crate::api::catalog::tests::{check, get, index_of, json, node_reg, ready, register, service};
use crate::api::test_support::{agent, leader, request, view_of};
use crate::api::Outcome;
use crate::blocking::WatchItem;
use crate::core::View;

fn expose(gateway: &str, services: &[&str]) -> Command {
    Command::ConfigEntrySet {
        entry: ConfigEntry {
            kind: KIND_INGRESS_GATEWAY.into(),
            name: gateway.into(),
            json: "{}".into(),
            ingress_listeners: vec![IngressListener {
                port: 8080,
                protocol: "http".into(),
                services: services
                    .iter()
                    .map(|s| IngressService {
                        name: s.to_string(),
                        hosts: Vec::new(),
                    })
                    .collect(),
            }],
            ..Default::default()
        },
        cas: None,
    }
}

fn gateway(id: &str, name: &str, port: u16) -> ServiceInstance {
    ServiceInstance {
        kind: KIND_INGRESS_GATEWAY.into(),
        ..service(id, name, &[], port)
    }
}

/// 1: web on n1; 2: gateway gw-a (g1, passing) and 3: gw-a (g2, critical);
/// 4: gw-b (g3) on its own; 5: gw-a exposes web; 6: gw-b exposes `*`;
/// 7: gw-c exposes db only (no instance).
fn state() -> State {
    let commands = [
        register(
            node_reg("n1", "10.0.0.1", &[]),
            Some(service("web-1", "web", &[], 80)),
            vec![],
        ),
        register(
            node_reg("g1", "10.0.1.1", &[]),
            Some(gateway("gw-a-1", "gw-a", 21000)),
            vec![check("gw-a-1-alive", "gw-a-1", CheckStatus::Passing)],
        ),
        register(
            node_reg("g2", "10.0.1.2", &[]),
            Some(gateway("gw-a-2", "gw-a", 21001)),
            vec![check("gw-a-2-alive", "gw-a-2", CheckStatus::Critical)],
        ),
        register(
            node_reg("g3", "10.0.1.3", &[]),
            Some(gateway("gw-b-1", "gw-b", 22000)),
            vec![],
        ),
        expose("gw-a", &["Web"]),
        expose("gw-b", &["*"]),
        expose("gw-c", &["db"]),
    ];
    let mut state = State::default();
    for (i, command) in commands.iter().enumerate() {
        state.apply_command(i as u64 + 1, command);
    }
    state
}

fn view() -> View {
    view_of(state(), agent())
}

fn ids(view: &View, service: &str, query: &str) -> Vec<String> {
    let r = ready(ingress(&request("GET", "", query, b""), service, view, leader()));
    assert_eq!(r.status, 200, "{service}?{query}");
    json(&r)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lists_the_gateways_exposing_the_service() {
    let view = view();
    assert_eq!(ids(&view, "web", ""), ["gw-a-1", "gw-a-2", "gw-b-1"]);
    assert_eq!(ids(&view, "web", "passing"), ["gw-a-1", "gw-b-1"]);
    assert_eq!(
        ids(&view, "db", ""),
        Vec::<String>::new(),
        "gw-c has no instance; the wildcard covers registered services only"
    );
    assert_eq!(ids(&view, "nope", ""), Vec::<String>::new());
    let r = ready(get(&view, "/v1/health/ingress/web", ""));
    let entries = json(&r);
    let first = &entries[0];
    assert_eq!(
        (first["Node"]["Node"].as_str(), first["Service"]["Kind"].as_str()),
        (Some("g1"), Some("ingress-gateway"))
    );
    assert_eq!(first["Checks"][0]["CheckID"], "gw-a-1-alive");
    assert_eq!(index_of(&r), 7, "the config entry table's index here");
}

#[test]
fn refuses_bad_input_as_consul() {
    let view = view();
    let r = ready(ingress(&request("GET", "", "", b""), "", &view, leader()));
    assert_eq!((r.status, r.body.as_slice()), (400, b"Missing service name".as_slice()));
    let r = ready(ingress(
        &request("GET", "", "passing=maybe", b""),
        "web",
        &view,
        leader(),
    ));
    assert_eq!(r.status, 400);
}

#[test]
fn blocks_on_entries_the_service_and_its_gateways() {
    let mut state = state();
    let view = view_of(state.clone(), agent());
    let req = request("GET", "", "index=7&wait=1s", b"");
    let Outcome::Block(block) = ingress(&req, "web", &view, leader()) else {
        panic!("a read at the current index parks");
    };
    assert_eq!(
        block.watch.items,
        [
            WatchItem::ConfigEntries,
            WatchItem::Service("web".into()),
            WatchItem::Service("gw-a".into()),
            WatchItem::Service("gw-b".into()),
        ]
    );
    // A gateway's health moves the index past the client's.
    state.apply_command(
        8,
        &register(
            node_reg("g2", "10.0.1.2", &[]),
            None,
            vec![check("gw-a-2-alive", "gw-a-2", CheckStatus::Passing)],
        ),
    );
    let view = view_of(state, agent());
    let r = ready(ingress(&req, "web", &view, leader()));
    assert_eq!(index_of(&r), 8);
    assert_eq!(ids(&view, "web", "passing"), ["gw-a-1", "gw-a-2", "gw-b-1"]);
}

#[test]
fn a_tag_selects_the_services_own_instances_as_consul() {
    let mut state = state();
    // 8: web-2 on n2, tagged; 9: gw-a-1 re-registered with the same tag.
    state.apply_command(
        8,
        &register(
            node_reg("n2", "10.0.0.2", &[]),
            Some(service("web-2", "web", &["v2", "primary"], 81)),
            vec![],
        ),
    );
    state.apply_command(
        9,
        &register(
            node_reg("g1", "10.0.1.1", &[]),
            Some(ServiceInstance {
                tags: vec!["v2".into()],
                ..gateway("gw-a-1", "gw-a", 21000)
            }),
            vec![],
        ),
    );
    let view = view_of(state, agent());
    assert_eq!(
        ids(&view, "web", "tag=v2"),
        ["web-2"],
        "the service's instances with the tag, not the gateways carrying it"
    );
    assert_eq!(
        ids(&view, "web", "tag=V2&tag=primary"),
        ["web-2"],
        "every tag, any case"
    );
    assert_eq!(ids(&view, "web", "tag=v2&tag=canary"), Vec::<String>::new());
    assert_eq!(ids(&view, "db", "tag=v2"), Vec::<String>::new(), "no instance of db");
    assert_eq!(
        ids(&view, "web", ""),
        ["gw-a-1", "gw-a-2", "gw-b-1"],
        "without a tag: the gateways"
    );

    let r = ready(ingress(&request("GET", "", "tag=v2", b""), "web", &view, leader()));
    let entries = json(&r);
    assert_eq!(
        (
            entries[0]["Node"]["Node"].as_str(),
            entries[0]["Service"]["Service"].as_str()
        ),
        (Some("n2"), Some("web"))
    );
    assert_eq!(index_of(&r), 8, "the service's index, not the gateway's later write");
    let untagged = ready(ingress(&request("GET", "", "", b""), "web", &view, leader()));
    assert_eq!(index_of(&untagged), 9, "the gateway read counts its gateways");

    let req = request("GET", "", "tag=v2&index=8&wait=1s", b"");
    let Outcome::Block(block) = ingress(&req, "web", &view, leader()) else {
        panic!("a tagged read at the service's index parks");
    };
    assert_eq!(block.watch.items, [WatchItem::Service("web".into())]);
}
