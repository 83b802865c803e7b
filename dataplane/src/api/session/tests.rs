use proconsul_shared::delta::{Delta, DeltaOp};
use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::state::{Session, SessionBehavior};
use proconsul_shared::State;
use serde_json::{json, Value};

use super::{info, list, node, write};
use crate::api::test_support::{agent, leader, request, view_of};
use crate::api::{handle, Outcome, Response};
use crate::blocking::{ChangeSet, WatchItem, WatchRegistry, WatchSet};
use crate::core::View;

const ID_A: &str = "11111111-2222-3333-4444-555555555555";
const ID_B: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn session(id: &str, node: &str, index: u64) -> Session {
    Session {
        id: id.into(),
        name: format!("s-{node}"),
        node: node.into(),
        lock_delay_ns: 15_000_000_000,
        behavior: SessionBehavior::Release,
        ttl: String::new(),
        node_checks: vec!["serfHealth".into()],
        service_checks: Vec::new(),
        create_index: index,
        modify_index: index,
    }
}

/// Sessions A (node1, index 7) and B (node2, index 9).
fn view() -> View {
    let mut state = State::default();
    state.sessions.put(session(ID_A, "node1", 7));
    state.sessions.put(session(ID_B, "node2", 9));
    view_of(state, agent())
}

fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(r) => r,
        other => panic!("not ready: {other:?}"),
    }
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

fn ids(r: &Response) -> Vec<String> {
    body(r)
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["ID"].as_str().expect("an ID").to_string())
        .collect()
}

fn index(r: &Response) -> u64 {
    r.meta.as_ref().expect("index headers").index
}

#[test]
fn list_shows_every_session_by_id_at_the_table_index() {
    let v = view();
    let r = ready(list(&request("GET", "/v1/session/list", "", b""), &v, leader()));
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r), [ID_A, ID_B]);
    assert_eq!(index(&r), 9);
    assert_eq!(
        body(&r)[0],
        json!({
            "ID": ID_A, "Name": "s-node1", "Node": "node1", "LockDelay": 15_000_000_000u64,
            "Behavior": "release", "TTL": "", "NodeChecks": ["serfHealth"], "ServiceChecks": null,
            "CreateIndex": 7, "ModifyIndex": 7,
        })
    );
}

#[test]
fn an_empty_table_lists_nothing_at_index_one() {
    let v = view_of(State::default(), agent());
    let r = ready(list(&request("GET", "/v1/session/list", "", b""), &v, leader()));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
    assert_eq!(index(&r), 1, "never index 0");
}

#[test]
fn info_is_a_one_element_list_or_empty() {
    let v = view();
    let r = ready(info(&request("GET", "/v1/session/info/x", "", b""), ID_B, &v, leader()));
    assert_eq!(ids(&r), [ID_B]);
    assert_eq!(index(&r), 9, "the table's index, not the session's");
    let r = ready(info(
        &request("GET", "/v1/session/info/x", "", b""),
        "nope",
        &v,
        leader(),
    ));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
    let r = ready(info(&request("GET", "/v1/session/info/", "", b""), "", &v, leader()));
    assert_eq!((r.status, r.body.as_slice()), (400, &b"Missing session"[..]));
}

#[test]
fn node_lists_that_nodes_sessions() {
    let v = view();
    let r = ready(node(
        &request("GET", "/v1/session/node/x", "", b""),
        "node2",
        &v,
        leader(),
    ));
    assert_eq!(ids(&r), [ID_B]);
    let r = ready(node(
        &request("GET", "/v1/session/node/x", "", b""),
        "ghost",
        &v,
        leader(),
    ));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
    let r = ready(node(&request("GET", "/v1/session/node/", "", b""), "", &v, leader()));
    assert_eq!((r.status, r.body.as_slice()), (400, &b"Missing node name"[..]));
}

#[test]
fn options_are_checked_first() {
    let v = view();
    let r = ready(list(
        &request("GET", "/v1/session/list", "stale&consistent", b""),
        &v,
        leader(),
    ));
    assert_eq!(r.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "Cannot specify ?stale with ?consistent, conflicting semantics."
    );
    let r = ready(info(
        &request("GET", "/v1/session/info/", "index=zz", b""),
        "",
        &v,
        leader(),
    ));
    assert_eq!((r.status, r.body.as_slice()), (400, &b"Invalid index"[..]));
    let r = ready(list(&request("GET", "/v1/session/list", "stale", b""), &v, leader()));
    assert_eq!(r.meta.expect("headers").consistency.as_str(), "stale");
}

#[test]
fn pretty_indents() {
    let v = view();
    let r = ready(list(&request("GET", "/v1/session/list", "pretty", b""), &v, leader()));
    let text = String::from_utf8(r.body).expect("UTF-8");
    assert!(text.starts_with("[\n    {\n        \"ID\": "), "{text}");
    assert!(text.ends_with("]\n"), "{text}");
}

/// Whether applying `op` (one delta at the next index) wakes a read parked
/// on `watch`.
fn wakes(watch: &WatchSet, state: &State, op: DeltaOp) -> bool {
    let mut registry = WatchRegistry::new(4);
    let parked = registry.register(watch, ()).expect("room for one");
    let delta = Delta {
        index: state.index() + 1,
        ops: vec![op],
    };
    let mut changes = ChangeSet::default();
    changes.record_delta(&delta);
    let mut hits = Vec::new();
    registry.affected(&changes, &mut hits);
    hits.contains(&parked)
}

#[test]
fn blocking_reads_park_on_the_sessions_table() {
    let v = view();
    for (path, f) in [
        (
            "/v1/session/list",
            (|req, v| list(req, v, leader())) as fn(&crate::api::ApiRequest<'_>, &View) -> Outcome,
        ),
        ("/v1/session/info/x", |req, v| info(req, ID_A, v, leader())),
        ("/v1/session/node/x", |req, v| node(req, "node1", v, leader())),
    ] {
        let outcome = f(&request("GET", path, "index=9&wait=5s", b""), &v);
        let Outcome::Block(block) = outcome else {
            panic!("{path}: a read at the table index parks: {outcome:?}");
        };
        assert_eq!(block.min_index, 9, "{path}");
        assert_eq!(block.wait.as_secs(), 5, "{path}");
        assert_eq!(block.watch, WatchSet::one(WatchItem::Sessions), "{path}");
        let r = ready(f(&request("GET", path, "index=8", b""), &v));
        assert_eq!(r.status, 200, "{path}: an older index answers at once");
    }
    let watch = WatchSet::one(WatchItem::Sessions);
    let kv = DeltaOp::KvDelete {
        key: "k".into(),
        index: 10,
    };
    assert!(!wakes(&watch, &v.state, kv), "a KV change does not wake it");
    let created = DeltaOp::SessionPut(session("cccccccc-0000-0000-0000-000000000000", "node1", 10));
    assert!(wakes(&watch, &v.state, created), "a create does");
    let destroyed = DeltaOp::SessionDelete {
        id: ID_A.into(),
        index: 10,
    };
    assert!(wakes(&watch, &v.state, destroyed), "a destroy does");
}

#[test]
fn writes_go_whole_to_the_control_plane() {
    for (path, body) in [
        ("/v1/session/create", &b"{\"TTL\":\"10s\"}"[..]),
        ("/v1/session/destroy/abc", &b""[..]),
        ("/v1/session/renew/abc", &b""[..]),
    ] {
        let Outcome::Forward(f) = write(&request("PUT", path, "dc=dc1", body)) else {
            panic!("{path} is forwarded");
        };
        let ControlOp::Http(call) = f.op else {
            panic!("{path}: a whole HTTP call");
        };
        assert_eq!(
            (call.method.as_str(), call.path.as_str(), call.body.as_slice()),
            ("PUT", path, body)
        );
    }
}

#[test]
fn routing_methods_and_unknown_paths() {
    let v = view();
    let r = ready(handle(&request("GET", "/v1/session/create", "", b""), &v, leader()));
    assert_eq!((r.status, r.allow), (405, Some("OPTIONS,PUT")));
    assert_eq!(String::from_utf8_lossy(&r.body), "method GET not allowed");
    let r = ready(handle(&request("PUT", "/v1/session/list", "", b""), &v, leader()));
    assert_eq!((r.status, r.allow), (405, Some("OPTIONS,GET")));
    let r = ready(handle(
        &request("DELETE", "/v1/session/destroy/x", "", b""),
        &v,
        leader(),
    ));
    assert_eq!((r.status, r.allow), (405, Some("OPTIONS,PUT")));
    let r = ready(handle(&request("OPTIONS", "/v1/session/info/x", "", b""), &v, leader()));
    assert_eq!((r.status, r.allow), (200, Some("OPTIONS,GET")));
    let r = ready(handle(&request("GET", "/v1/session/nope", "", b""), &v, leader()));
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).as_ref()),
        (404, "Invalid URL path: not a recognized HTTP API endpoint")
    );
    let r = ready(handle(&request("GET", "/v1/session/list", "", b""), &v, leader()));
    assert_eq!(ids(&r), [ID_A, ID_B]);
    assert!(matches!(
        handle(&request("PUT", "/v1/session/renew/x", "", b""), &v, leader()),
        Outcome::Forward(_)
    ));
}

#[test]
fn consistent_session_reads_take_the_barrier() {
    use crate::api::consistent::needs_read_barrier;
    for path in ["/v1/session/list", "/v1/session/info/x", "/v1/session/node/n"] {
        assert!(needs_read_barrier(&request("GET", path, "consistent", b"")), "{path}");
        assert!(!needs_read_barrier(&request("GET", path, "", b"")), "{path}");
    }
    assert!(!needs_read_barrier(&request(
        "PUT",
        "/v1/session/create",
        "consistent",
        b""
    )));
}
