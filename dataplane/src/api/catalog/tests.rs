//! Catalog handlers against a state built from real registrations.

use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance};
use proconsul_shared::Command;
use serde_json::Value;

use crate::api::test_support::{leader, request, view_with};
use crate::api::{handle, Outcome, Response};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::View;

pub(crate) fn node_reg(name: &str, address: &str, meta: &[(&str, &str)]) -> NodeRegistration {
    NodeRegistration {
        id: format!("id-{name}"),
        node: name.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        tagged_addresses: [("lan".to_string(), address.to_string())].into(),
        meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

pub(crate) fn service(id: &str, name: &str, tags: &[&str], port: u16) -> ServiceInstance {
    ServiceInstance {
        id: id.into(),
        service: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        port,
        ..ServiceInstance::default()
    }
}

pub(crate) fn check(id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        check_id: id.into(),
        name: id.into(),
        service_id: service_id.into(),
        status,
        ..HealthCheck::default()
    }
}

pub(crate) fn register(node: NodeRegistration, s: Option<ServiceInstance>, checks: Vec<HealthCheck>) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node,
        skip_node_update: false,
        service: s,
        checks,
    })
}

/// Index 1: n1 (rack r1) with web-1 (v1, primary) and a passing node
/// check; 2: n2 (rack r2) with web-2 (v1) critical; 3: n2 db-1;
/// 4: n1 serfHealth passing.
pub(crate) fn fixture() -> View {
    view_with(&[
        register(
            node_reg("n1", "10.0.0.1", &[("rack", "r1")]),
            Some(service("web-1", "web", &["v1", "primary"], 8080)),
            vec![check("web-1-alive", "web-1", CheckStatus::Passing)],
        ),
        register(
            node_reg("n2", "10.0.0.2", &[("rack", "r2")]),
            Some(service("web-2", "web", &["v1"], 8081)),
            vec![check("web-2-alive", "web-2", CheckStatus::Critical)],
        ),
        register(
            node_reg("n2", "10.0.0.2", &[("rack", "r2")]),
            Some(service("db-1", "db", &[], 5432)),
            vec![],
        ),
        register(
            node_reg("n1", "10.0.0.1", &[("rack", "r1")]),
            None,
            vec![check("serfHealth", "", CheckStatus::Passing)],
        ),
    ])
}

pub(crate) fn get(view: &View, path: &str, query: &str) -> Outcome {
    handle(&request("GET", path, query, b""), view, leader())
}

pub(crate) fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(r) => r,
        other => panic!("expected a ready response, got {other:?}"),
    }
}

pub(crate) fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

pub(crate) fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

pub(crate) fn index_of(r: &Response) -> u64 {
    r.meta.expect("index headers").index
}

#[test]
fn datacenters_are_answered_by_the_control_plane_after_flag_checks() {
    let Outcome::Forward(forward) = get(&fixture(), "/v1/catalog/datacenters", "pretty") else {
        panic!("datacenters come from the control plane's WAN pool");
    };
    let proconsul_shared::ipc::messages::ControlOp::Http(call) = forward.op else {
        panic!("forwarded whole");
    };
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("GET", "/v1/catalog/datacenters")
    );
    let r = ready(get(&fixture(), "/v1/catalog/datacenters", "stale&consistent"));
    assert_eq!(r.status, 400);
}

#[test]
fn nodes_list_with_node_meta_and_table_index() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/nodes", ""));
    assert_eq!(r.status, 200);
    let v = json(&r);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2"]);
    assert_eq!(v[0]["TaggedAddresses"]["lan"], "10.0.0.1");
    assert_eq!(v[0]["Meta"]["rack"], "r1");
    assert_eq!(index_of(&r), view.state.nodes.table_index());
    let r = ready(get(&view, "/v1/catalog/nodes", "node-meta=rack:r2"));
    let v = json(&r);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["Node"], "n2");
    let r = ready(get(&view, "/v1/catalog/nodes", "node-meta=rack:nowhere"));
    assert_eq!(text(&r), "[]");
}

#[test]
fn services_map_names_to_deduplicated_tags() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/services", ""));
    assert_eq!(text(&r), r#"{"db":[],"web":["primary","v1"]}"#);
    assert_eq!(index_of(&r), view.state.catalog.services_table_index());
    let r = ready(get(&view, "/v1/catalog/services", "node-meta=rack:r2"));
    assert_eq!(text(&r), r#"{"db":[],"web":["v1"]}"#);
    let empty = view_with(&[]);
    let r = ready(get(&empty, "/v1/catalog/services", ""));
    assert_eq!((text(&r), index_of(&r)), ("{}", 1), "never index 0");
}

#[test]
fn service_instances_with_tag_and_node_meta_selectors() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/service/web", ""));
    let v = json(&r);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["ServiceID"], "web-1");
    assert_eq!(v[0]["Node"], "n1");
    assert_eq!(v[0]["Address"], "10.0.0.1");
    assert_eq!(v[0]["NodeMeta"]["rack"], "r1");
    assert_eq!(v[0]["ServicePort"], 8080);
    assert_eq!(v[0]["ServiceWeights"]["Passing"], 1);
    assert_eq!(index_of(&r), view.state.catalog.service_index("web"));
    let ids = |q: &str| -> Vec<String> {
        let r = ready(get(&view, "/v1/catalog/service/web", q));
        json(&r)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ServiceID"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("tag=primary"), ["web-1"]);
    assert_eq!(ids("tag=V1"), ["web-1", "web-2"], "tags compare case-insensitively");
    assert_eq!(ids("tag=v1&tag=primary"), ["web-1"]);
    assert_eq!(ids("tag=v2"), Vec::<String>::new());
    assert_eq!(ids("node-meta=rack:r2"), ["web-2"]);
    assert_eq!(ids(""), ids("").clone());
    let r = ready(get(&view, "/v1/catalog/service/WEB", ""));
    assert_eq!(
        json(&r).as_array().unwrap().len(),
        2,
        "service names are case-insensitive"
    );
}

#[test]
fn unknown_service_is_an_empty_list_and_empty_name_is_400() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/service/nope", ""));
    assert_eq!((r.status, text(&r)), (200, "[]"));
    assert!(index_of(&r) >= 1);
    let r = ready(get(&view, "/v1/catalog/service/", ""));
    assert_eq!((r.status, text(&r)), (400, "Missing service name"));
}

#[test]
fn node_view_and_node_services() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/node/n2", ""));
    let v = json(&r);
    assert_eq!(v["Node"]["Node"], "n2");
    let ids: Vec<&String> = v["Services"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["db-1", "web-2"]);
    assert_eq!(v["Services"]["web-2"]["Tags"][0], "v1");
    assert_eq!(v["Services"]["db-1"]["Tags"], serde_json::json!([]));
    let expected = view
        .state
        .nodes
        .table_index()
        .max(view.state.catalog.services_table_index());
    assert_eq!(index_of(&r), expected);
    let r = ready(get(&view, "/v1/catalog/node-services/N2", ""));
    let v = json(&r);
    assert_eq!(v["Services"].as_array().unwrap().len(), 2);
    assert_eq!(v["Services"][0]["ID"], "db-1");
}

#[test]
fn unknown_node_is_null_or_404() {
    let view = fixture();
    let r = ready(get(&view, "/v1/catalog/node/ghost", ""));
    assert_eq!((r.status, text(&r)), (200, "null"));
    assert!(r.meta.is_some(), "watchers can block on a missing node");
    let r = ready(get(&view, "/v1/catalog/node-services/ghost", ""));
    assert_eq!(r.status, 404);
    assert!(r.meta.is_some());
    let r = ready(get(&view, "/v1/catalog/node/", ""));
    assert_eq!((r.status, text(&r)), (400, "Missing node name"));
}

#[test]
fn common_parameters_are_validated_like_kv() {
    let view = fixture();
    for path in [
        "/v1/catalog/nodes",
        "/v1/catalog/services",
        "/v1/catalog/service/web",
        "/v1/catalog/node/n1",
        "/v1/catalog/node-services/n1",
    ] {
        let r = ready(get(&view, path, "dc=elsewhere"));
        assert_eq!((r.status, text(&r)), (500, "No path to datacenter"), "{path}");
        let r = ready(get(&view, path, "index=abc"));
        assert_eq!((r.status, text(&r)), (400, "Invalid index"), "{path}");
        let r = ready(get(&view, path, "index=1&wait=soon"));
        assert_eq!((r.status, text(&r)), (400, "Invalid wait time"), "{path}");
        let r = ready(get(&view, path, "stale&consistent"));
        assert_eq!(
            (r.status, text(&r)),
            (400, "Cannot specify ?stale with ?consistent, conflicting semantics."),
            "{path}"
        );
        let r = ready(get(&view, path, "dc=dc1&stale"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.meta.unwrap().consistency.as_str(), "stale");
        let r = ready(get(&view, path, "filter=Node%20%3D%3D"));
        assert_eq!(r.status, 400, "{path}: a bad filter is refused");
        assert!(
            text(&r).starts_with("Failed to create boolean expression evaluator: "),
            "{path}"
        );
    }
}

#[test]
fn filter_expressions_select_rows() {
    let view = fixture();
    let q = |expression: &str| format!("filter={}", expression.replace(' ', "%20").replace('"', "%22"));
    let r = ready(get(&view, "/v1/catalog/nodes", &q(r#"Meta.rack == "r2""#)));
    assert_eq!(json(&r)[0]["Node"], "n2");
    assert_eq!(json(&r).as_array().unwrap().len(), 1);
    let r = ready(get(
        &view,
        "/v1/catalog/service/web",
        &q(r#"ServiceTags contains "primary""#),
    ));
    let v = json(&r);
    assert_eq!(
        (v.as_array().unwrap().len(), &v[0]["ServiceID"]),
        (1, &serde_json::json!("web-1"))
    );
    let r = ready(get(&view, "/v1/catalog/services", &q("ServicePort == 5432")));
    assert_eq!(text(&r), r#"{"db":[]}"#);
    let r = ready(get(&view, "/v1/catalog/node/n2", &q(r#"Service == "db""#)));
    let v = json(&r);
    let ids: Vec<&String> = v["Services"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["db-1"]);
}

#[test]
fn pretty_output_is_indented() {
    let r = ready(get(&fixture(), "/v1/catalog/nodes", "pretty"));
    assert!(text(&r).starts_with("[\n    {\n"), "{}", text(&r));
}

fn block(outcome: Outcome) -> crate::api::Block {
    match outcome {
        Outcome::Block(b) => b,
        other => panic!("expected to block, got {other:?}"),
    }
}

#[test]
fn reads_block_on_their_own_watch_items() {
    let view = fixture();
    let at = |path: &str| index_of(&ready(get(&view, path, "")));
    let cases = [
        ("/v1/catalog/nodes", vec![WatchItem::Nodes]),
        ("/v1/catalog/services", vec![WatchItem::Services]),
        ("/v1/catalog/service/Web", vec![WatchItem::Service("web".into())]),
        ("/v1/catalog/node/n1", vec![WatchItem::Nodes, WatchItem::Services]),
        (
            "/v1/catalog/node-services/n1",
            vec![WatchItem::Nodes, WatchItem::Services],
        ),
    ];
    for (path, items) in cases {
        let index = at(path);
        let b = block(get(&view, path, &format!("index={index}&wait=2s")));
        assert_eq!(b.watch, WatchSet { items }, "{path}");
        assert_eq!(b.min_index, index);
        assert_eq!(b.wait, std::time::Duration::from_secs(2));
        let r = ready(get(&view, path, &format!("index={}", index - 1)));
        assert_eq!(r.status, 200, "{path}: an older index answers at once");
    }
    let b = block(get(&view, "/v1/catalog/services", "index=99&node-meta=rack:r1"));
    assert_eq!(b.watch.items, vec![WatchItem::Services, WatchItem::Nodes]);
    assert!(
        matches!(get(&view, "/v1/catalog/datacenters", "index=99"), Outcome::Forward(_)),
        "datacenters never blocks"
    );
}
