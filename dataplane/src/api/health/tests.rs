//! Health handlers against a state built from real registrations.

use proconsul_shared::state::CheckStatus;

use crate::api::catalog::tests::{check, fixture, get, index_of, json, node_reg, ready, register, service, text};
use crate::api::test_support::view_with;
use crate::api::Outcome;
use crate::blocking::WatchItem;

fn check_ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["CheckID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn service_entries_carry_node_service_and_checks() {
    let view = fixture();
    let r = ready(get(&view, "/v1/health/service/web", ""));
    assert_eq!(r.status, 200);
    let v = json(&r);
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 2, "critical instances are listed without ?passing");
    let first = &entries[0];
    assert_eq!(first["Node"]["Node"], "n1");
    assert_eq!(first["Service"]["ID"], "web-1");
    assert_eq!(first["Service"]["Port"], 8080);
    assert_eq!(
        check_ids(&first["Checks"]),
        ["serfHealth", "web-1-alive"],
        "node checks count too"
    );
    assert_eq!(first["Checks"][1]["ServiceName"], "web");
    assert_eq!(first["Checks"][1]["ServiceTags"], serde_json::json!(["v1", "primary"]));
    assert_eq!(first["Checks"][0]["ServiceTags"], serde_json::json!([]));
    assert_eq!(index_of(&r), view.state.catalog.service_index("web"));
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);
    assert!(text(&r).starts_with(r#"[{"Node":{"ID":"id-n1","Node":"n1""#));
}

#[test]
fn passing_drops_warning_and_critical_instances() {
    let view = fixture();
    let ids = |q: &str| -> Vec<String> {
        let r = ready(get(&view, "/v1/health/service/web", q));
        assert_eq!(r.status, 200, "{q}");
        json(&r)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("passing"), ["web-1"]);
    assert_eq!(ids("passing=true"), ["web-1"]);
    assert_eq!(ids("passing=false"), ["web-1", "web-2"]);
    assert_eq!(ids("tag=primary"), ["web-1"]);
    assert_eq!(ids("node-meta=rack:r2"), ["web-2"]);
    let r = ready(get(&view, "/v1/health/service/web", "passing=maybe"));
    assert_eq!((r.status, text(&r)), (400, "Invalid value for ?passing"));

    let warned = view_with(&[register(
        node_reg("n9", "10.0.0.9", &[]),
        Some(service("web-9", "web", &[], 80)),
        vec![check("web-9-slow", "web-9", CheckStatus::Warning)],
    )]);
    let r = ready(get(&warned, "/v1/health/service/web", "passing"));
    assert_eq!(text(&r), "[]", "?passing drops warnings too");
    let r = ready(get(&warned, "/v1/health/service/web", ""));
    assert_eq!(json(&r).as_array().unwrap().len(), 1);
}

#[test]
fn unknown_service_and_missing_names() {
    let view = fixture();
    let r = ready(get(&view, "/v1/health/service/nope", ""));
    assert_eq!((r.status, text(&r)), (200, "[]"));
    let r = ready(get(&view, "/v1/health/checks/nope", ""));
    assert_eq!((r.status, text(&r)), (200, "[]"));
    let r = ready(get(&view, "/v1/health/node/ghost", ""));
    assert_eq!((r.status, text(&r)), (200, "[]"));
    for (path, message) in [
        ("/v1/health/service/", "Missing service name"),
        ("/v1/health/checks/", "Missing service name"),
        ("/v1/health/node/", "Missing node name"),
        ("/v1/health/state/", "Missing check state"),
    ] {
        let r = ready(get(&view, path, ""));
        assert_eq!((r.status, text(&r)), (400, message), "{path}");
    }
}

#[test]
fn service_checks_list_only_that_services_checks() {
    let view = fixture();
    let r = ready(get(&view, "/v1/health/checks/web", ""));
    assert_eq!(check_ids(&json(&r)), ["web-1-alive", "web-2-alive"]);
    assert_eq!(index_of(&r), view.state.catalog.service_index("web"));
    let r = ready(get(&view, "/v1/health/checks/web", "node-meta=rack:r1"));
    assert_eq!(check_ids(&json(&r)), ["web-1-alive"]);
}

#[test]
fn node_checks_list_node_and_service_checks() {
    let view = fixture();
    let r = ready(get(&view, "/v1/health/node/n1", ""));
    assert_eq!(check_ids(&json(&r)), ["serfHealth", "web-1-alive"]);
    let expected = view
        .state
        .catalog
        .checks_table_index()
        .max(view.state.nodes.table_index());
    assert_eq!(index_of(&r), expected);
}

#[test]
fn state_selects_by_status() {
    let view = fixture();
    let ids = |state: &str, q: &str| check_ids(&json(&ready(get(&view, &format!("/v1/health/state/{state}"), q))));
    assert_eq!(ids("any", ""), ["serfHealth", "web-1-alive", "web-2-alive"]);
    assert_eq!(ids("passing", ""), ["serfHealth", "web-1-alive"]);
    assert_eq!(ids("critical", ""), ["web-2-alive"]);
    assert_eq!(ids("warning", ""), Vec::<String>::new());
    assert_eq!(ids("bogus", ""), Vec::<String>::new(), "unknown words match nothing");
    assert_eq!(ids("any", "node-meta=rack:r1"), ["serfHealth", "web-1-alive"]);
    let r = ready(get(&view, "/v1/health/state/any", ""));
    assert_eq!(index_of(&r), view.state.catalog.checks_table_index());
}

#[test]
fn filter_expressions_select_entries_and_checks() {
    let view = fixture();
    let q = |expression: &str| format!("filter={}", expression.replace(' ', "%20").replace('"', "%22"));
    let r = ready(get(
        &view,
        "/v1/health/service/web",
        &q(r#"Checks.Status == "critical""#),
    ));
    let v = json(&r);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["Service"]["ID"], "web-2");
    let r = ready(get(
        &view,
        "/v1/health/service/web",
        &q(r#"Node.Meta.rack == "r1" and Service.Port == 8080"#),
    ));
    assert_eq!(json(&r)[0]["Service"]["ID"], "web-1");
    let r = ready(get(&view, "/v1/health/state/any", &q(r#"ServiceName == "web""#)));
    assert_eq!(check_ids(&json(&r)), ["web-1-alive", "web-2-alive"]);
    let r = ready(get(&view, "/v1/health/node/n1", &q(r#"CheckID == "serfHealth""#)));
    assert_eq!(check_ids(&json(&r)), ["serfHealth"]);
    let r = ready(get(&view, "/v1/health/checks/web", "filter=Status%20%3D%3D"));
    assert_eq!(r.status, 400);
}

#[test]
fn common_parameters_and_blocking() {
    let view = fixture();
    let cases = [
        ("/v1/health/service/web", vec![WatchItem::Service("web".into())]),
        ("/v1/health/checks/WEB", vec![WatchItem::Service("web".into())]),
        ("/v1/health/node/n1", vec![WatchItem::Checks, WatchItem::Nodes]),
        ("/v1/health/state/any", vec![WatchItem::Checks]),
    ];
    for (path, items) in cases {
        let r = ready(get(&view, path, "dc=other"));
        assert_eq!((r.status, text(&r)), (500, "No path to datacenter"), "{path}");
        let r = ready(get(&view, path, "index=x"));
        assert_eq!((r.status, text(&r)), (400, "Invalid index"), "{path}");
        let r = ready(get(&view, path, "wait=x"));
        assert_eq!((r.status, text(&r)), (400, "Invalid wait time"), "{path}");
        let r = ready(get(&view, path, "stale&consistent"));
        assert_eq!(r.status, 400, "{path}");
        let index = index_of(&ready(get(&view, path, "")));
        match get(&view, path, &format!("index={index}")) {
            Outcome::Block(b) => assert_eq!(b.watch.items, items, "{path}"),
            other => panic!("{path}: expected to block, got {other:?}"),
        }
    }
}
