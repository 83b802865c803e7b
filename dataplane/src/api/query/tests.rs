use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::state::{
    CheckStatus, PreparedQuery, QueryTemplate, ServiceQuery, TEMPLATE_TYPE_NAME_PREFIX_MATCH,
};
use proconsul_shared::Command;
use serde_json::json;

use super::{collection, specific};
use crate::api::test_support::{agent, leader, request, view_of, wakes};
use crate::api::{Outcome, Response};
use crate::query_exec::test_support::catalog;

const ID_A: &str = "11111111-2222-3333-4444-555555555555";
const ID_T: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(r) => r,
        other => panic!("not ready: {other:?}"),
    }
}

fn body(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

/// Three `web` instances (n1 passing `primary`, n2 warning, n3 critical),
/// a plain query `web-q` (tag `primary` wanted) and a template `svc-`.
fn view() -> crate::core::View {
    let mut state = catalog(&[
        ("n1", &["primary"], CheckStatus::Passing),
        ("n2", &["primary"], CheckStatus::Warning),
        ("n3", &["primary"], CheckStatus::Critical),
    ]);
    let plain = PreparedQuery {
        id: ID_A.into(),
        name: "web-q".into(),
        token: "secret".into(),
        service: ServiceQuery {
            service: "web".into(),
            tags: vec!["primary".into()],
            ..ServiceQuery::default()
        },
        dns_ttl: "10s".into(),
        ..PreparedQuery::default()
    };
    let template = PreparedQuery {
        id: ID_T.into(),
        name: "svc-".into(),
        template: QueryTemplate {
            template_type: TEMPLATE_TYPE_NAME_PREFIX_MATCH.into(),
            ..QueryTemplate::default()
        },
        service: ServiceQuery {
            service: "${name.suffix}".into(),
            only_passing: true,
            ..ServiceQuery::default()
        },
        ..PreparedQuery::default()
    };
    state.apply_command(10, &Command::PreparedQueryCreate(plain));
    state.apply_command(11, &Command::PreparedQueryCreate(template));
    view_of(state, agent())
}

#[test]
fn list_and_get_render_consuls_shape() {
    let v = view();
    let r = ready(collection(&request("GET", "/v1/query", "", b""), &v, leader()));
    assert_eq!(r.status, 200);
    let all = body(&r);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let r = ready(specific(&request("GET", "/v1/query/x", "", b""), ID_A, &v, leader()));
    assert_eq!(
        body(&r),
        json!([{
            "ID": ID_A, "Name": "web-q", "Session": "", "Token": "secret",
            "Template": {"Type": "", "Regexp": "", "RemoveEmptyTags": false},
            "Service": {
                "Service": "web",
                "Failover": {"NearestN": 0, "Datacenters": null, "Targets": null},
                "OnlyPassing": false, "IgnoreCheckIDs": null, "Near": "", "Tags": ["primary"],
                "NodeMeta": null, "ServiceMeta": null, "Peer": "", "Connect": {"Enabled": false}
            },
            "DNS": {"TTL": "10s"},
            "CreateIndex": 10, "ModifyIndex": 10
        }])
    );
    let r = ready(specific(&request("GET", "/v1/query/x", "", b""), "nope", &v, leader()));
    assert_eq!((r.status, &r.body[..]), (404, &b"Query not found"[..]));
}

#[test]
fn execute_filters_health_and_tags_and_reports_ttl() {
    let v = view();
    let r = ready(specific(
        &request("GET", "/v1/query/x", "", b""),
        "web-q/execute",
        &v,
        leader(),
    ));
    assert_eq!(r.status, 200);
    let b = body(&r);
    assert_eq!(b["Service"], "web");
    assert_eq!(b["DNS"], json!({"TTL": "10s"}));
    assert_eq!(b["Failovers"], 0);
    assert_eq!(b["Datacenter"], "dc1");
    let mut nodes: Vec<&str> = b["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Node"]["Node"].as_str().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"], "critical dropped, warning kept");
    let entry = &b["Nodes"][0];
    assert_eq!(entry["Service"]["Service"], "web");
    assert_eq!(entry["Checks"].as_array().unwrap().len(), 1);
    let r = ready(specific(
        &request("GET", "/v1/query/x", "limit=1", b""),
        &format!("{ID_A}/execute"),
        &v,
        leader(),
    ));
    assert_eq!(body(&r)["Nodes"].as_array().unwrap().len(), 1);
    let r = ready(specific(
        &request("GET", "/v1/query/x", "limit=x", b""),
        "web-q/execute",
        &v,
        leader(),
    ));
    assert_eq!(r.status, 400);
    let r = ready(specific(
        &request("GET", "/v1/query/x", "", b""),
        "nope/execute",
        &v,
        leader(),
    ));
    assert_eq!((r.status, &r.body[..]), (404, &b"Query not found"[..]));
}

#[test]
fn templates_execute_by_name_and_explain_renders() {
    let v = view();
    let r = ready(specific(
        &request("GET", "/v1/query/x", "", b""),
        "svc-web/execute",
        &v,
        leader(),
    ));
    let b = body(&r);
    assert_eq!(b["Service"], "web");
    assert_eq!(b["Nodes"].as_array().unwrap().len(), 1, "OnlyPassing drops the warning");
    let r = ready(specific(
        &request("GET", "/v1/query/x", "", b""),
        "svc-web/explain",
        &v,
        leader(),
    ));
    let b = body(&r);
    assert_eq!(b["Query"]["Service"]["Service"], "web");
    assert_eq!(b["Query"]["Name"], "svc-");
    let r = ready(specific(
        &request("GET", "/v1/query/x", "", b""),
        &format!("{ID_T}/execute"),
        &v,
        leader(),
    ));
    assert_eq!(r.status, 500);
}

#[test]
fn writes_go_to_the_control_plane_whole() {
    let v = view();
    for (method, rest) in [("PUT", ID_A), ("DELETE", ID_A)] {
        let path = format!("/v1/query/{rest}");
        let outcome = specific(&request(method, &path, "", b"{}"), rest, &v, leader());
        let Outcome::Forward(f) = outcome else {
            panic!("{method} is forwarded");
        };
        assert!(matches!(f.op, ControlOp::Http(ref call) if call.method == method && call.path == path));
    }
    let Outcome::Forward(f) = collection(&request("POST", "/v1/query", "", b"{}"), &v, leader()) else {
        panic!("POST is forwarded");
    };
    assert!(matches!(f.op, ControlOp::Http(ref call) if call.method == "POST"));
}

#[test]
fn blocking_reads_park_until_the_table_index_passes() {
    let v = view();
    let index = v.state.prepared_queries.table_index();
    let target = format!("index={index}");
    let outcome = collection(&request("GET", "/v1/query", &target, b""), &v, leader());
    let Outcome::Block(block) = outcome else {
        panic!("a read at the current index parks: {outcome:?}");
    };
    assert_eq!(block.min_index, index, "parked at the client's index");
    assert_eq!(
        block.watch,
        crate::blocking::WatchSet::one(crate::blocking::WatchItem::PreparedQueries)
    );
    let kv_write = Command::KvSet {
        key: "unrelated".into(),
        value: b"v".to_vec(),
        flags: 0,
    };
    assert!(!wakes(&block.watch, &v.state, &kv_write), "a KV write does not wake it");
    let query_write = Command::PreparedQueryDelete { id: ID_A.into() };
    assert!(
        wakes(&block.watch, &v.state, &query_write),
        "a prepared query write does"
    );
    let older = format!("index={}", index - 1);
    let r = ready(specific(
        &request("GET", "/v1/query/x", &older, b""),
        ID_A,
        &v,
        leader(),
    ));
    assert_eq!(r.status, 200);
    let r = ready(collection(&request("GET", "/v1/query", "index=zz", b""), &v, leader()));
    assert_eq!(r.status, 400, "bad options are refused before anything else");
}

/// The node of the first entry `web-q/execute` answers for a client at `peer`.
fn first_node(v: &crate::core::View, query: &str, peer: &str) -> String {
    let req = request("GET", "/v1/query/x", query, b"").with_peer_ip(Some(peer.parse().unwrap()));
    let r = ready(specific(&req, "web-q/execute", v, leader()));
    body(&r)["Nodes"][0]["Node"]["Node"].as_str().unwrap().to_string()
}

#[test]
fn near_ip_puts_the_clients_node_first() {
    let v = view();
    for _ in 0..32 {
        assert_eq!(first_node(&v, "near=_ip", "10.0.0.2"), "n2");
        assert_eq!(first_node(&v, "near=_ip", "10.0.0.1"), "n1");
    }
    let unmatched: std::collections::BTreeSet<String> =
        (0..64).map(|_| first_node(&v, "near=_ip", "192.0.2.9")).collect();
    assert_eq!(unmatched.len(), 2, "no node at the address: shuffled, not sorted");
    assert!(super::answers_per_request("/v1/query/web-q/execute"));
    assert!(!super::answers_per_request("/v1/query/web-q"));
}
