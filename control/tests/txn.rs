//! `PUT /v1/txn` (spec HTTP.md §11, SUMMARY.md item 15): commit and
//! rollback shapes, all-or-nothing, the op limit, read-only transactions.

mod common;

use base64::Engine;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

/// Most operations in one transaction (Consul 1.x).
const TXN_OPS_MAX: usize = 128;
/// `limits.txn_max_req_len`.
const TXN_BODY_BYTES_MAX: usize = 512 * 1024;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

fn txn(agent: &Agent, ops: &Value) -> common::http::Response {
    agent.put("/v1/txn", ops.to_string().as_bytes())
}

#[test]
fn a_committed_transaction_answers_200_with_results_and_null_errors() {
    let agent = dev();
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "set", "Key": "t/a", "Value": b64(b"alpha")}},
            {"KV": {"Verb": "set", "Key": "t/b", "Value": b64(b"beta"), "Flags": 7}},
        ]),
    );
    r.expect_status(200);
    let body = r.json();
    assert_eq!(body["Errors"], Value::Null, "{}", r.text());
    assert!(
        r.text().contains("\"Errors\""),
        "Errors is present as null: {}",
        r.text()
    );
    let results = body["Results"].as_array().expect("Results is an array");
    assert_eq!(results.len(), 2);
    let a = &results[0]["KV"];
    let b = &results[1]["KV"];
    assert_eq!(a["Key"], "t/a");
    assert_eq!(b["Key"], "t/b");
    assert_eq!(b["Flags"], 7);
    assert_eq!(a["Value"], Value::Null, "set results carry no value");
    assert_eq!(a["LockIndex"], 0);
    let index = a["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert!(index >= 1);
    assert_eq!(b["ModifyIndex"], index, "one transaction is one raft index");
    assert_eq!(a["CreateIndex"], index);

    assert_eq!(agent.get("/v1/kv/t/a?raw").body, b"alpha");
    let e = &agent.get("/v1/kv/t/b").json()[0];
    assert_eq!(e["Value"], b64(b"beta"));
    assert_eq!(e["Flags"], 7);
    assert_eq!(e["ModifyIndex"], index);
}

#[test]
fn a_rolled_back_transaction_answers_409_and_changes_nothing() {
    let agent = dev();
    let index = agent.kv_put("rb/existing", b"old");
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "set", "Key": "rb/new", "Value": b64(b"new")}},
            {"KV": {"Verb": "set", "Key": "rb/existing", "Value": b64(b"changed")}},
            {"KV": {"Verb": "cas", "Key": "rb/existing", "Value": b64(b"cas"), "Index": index + 1000}},
        ]),
    );
    r.expect_status(409);
    let body = r.json();
    assert_eq!(body["Results"], Value::Null, "{}", r.text());
    let errors = body["Errors"].as_array().expect("Errors is an array");
    assert_eq!(errors.len(), 1, "{}", r.text());
    assert_eq!(errors[0]["OpIndex"], 2);
    assert!(
        errors[0]["What"].as_str().is_some_and(|w| !w.is_empty()),
        "What explains the failure: {}",
        r.text()
    );
    agent.get("/v1/kv/rb/new").expect_status(404);
    assert_eq!(agent.get("/v1/kv/rb/existing?raw").body, b"old", "all or nothing");
    assert_eq!(agent.kv_modify_index("rb/existing"), index);
}

#[test]
fn every_failing_op_is_reported() {
    let agent = dev();
    agent.kv_put("many/exists", b"v");
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "check-not-exists", "Key": "many/exists"}},
            {"KV": {"Verb": "set", "Key": "many/ok", "Value": b64(b"v")}},
            {"KV": {"Verb": "get", "Key": "many/missing"}},
        ]),
    );
    r.expect_status(409);
    let op_indexes: Vec<u64> = r.json()["Errors"]
        .as_array()
        .expect("Errors")
        .iter()
        .map(|e| e["OpIndex"].as_u64().expect("OpIndex"))
        .collect();
    assert_eq!(op_indexes, [0, 2]);
    agent.get("/v1/kv/many/ok").expect_status(404);
}

#[test]
fn cas_and_delete_verbs_apply_in_order() {
    let agent = dev();
    let index = agent.kv_put("ord/a", b"1");
    agent.kv_put("ord/tree/x", b"1");
    agent.kv_put("ord/tree/y", b"1");
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "cas", "Key": "ord/a", "Value": b64(b"2"), "Index": index}},
            {"KV": {"Verb": "delete-tree", "Key": "ord/tree/"}},
            {"KV": {"Verb": "set", "Key": "ord/b", "Value": b64(b"b")}},
            {"KV": {"Verb": "delete", "Key": "ord/b"}},
        ]),
    );
    r.expect_status(200);
    let results = r.json()["Results"].as_array().expect("Results").clone();
    let keys: Vec<&str> = results.iter().map(|r| r["KV"]["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["ord/a", "ord/b"], "deletes produce no result rows");
    assert_eq!(agent.get("/v1/kv/ord/a?raw").body, b"2");
    agent.get("/v1/kv/ord/tree/?recurse").expect_status(404);
    agent.get("/v1/kv/ord/b").expect_status(404);
}

#[test]
fn check_and_conditional_verbs_pass_when_their_condition_holds() {
    let agent = dev();
    let index = agent.kv_put("cond/a", b"a");
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "check-index", "Key": "cond/a", "Index": index}},
            {"KV": {"Verb": "check-not-exists", "Key": "cond/none"}},
            {"KV": {"Verb": "get-or-empty", "Key": "cond/none"}},
            {"KV": {"Verb": "delete-cas", "Key": "cond/a", "Index": index}},
        ]),
    );
    r.expect_status(200);
    let results = r.json()["Results"].as_array().expect("Results").clone();
    let keys: Vec<&str> = results.iter().map(|r| r["KV"]["Key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["cond/a", "cond/none"],
        "check-index and get-or-empty rows: {}",
        r.text()
    );
    assert_eq!(results[1]["KV"]["Value"], Value::Null);
    agent.get("/v1/kv/cond/a").expect_status(404);

    let r = txn(
        &agent,
        &json!([{"KV": {"Verb": "delete-cas", "Key": "cond/none", "Index": 0}}]),
    );
    r.expect_status(409);
}

#[test]
fn more_than_128_ops_is_413_and_128_is_accepted() {
    let agent = dev();
    let ops = |n: usize| -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({"KV": {"Verb": "set", "Key": format!("lim/{i:03}"), "Value": b64(b"v")}}))
                .collect(),
        )
    };
    let r = txn(&agent, &ops(TXN_OPS_MAX + 1));
    r.expect_status(413);
    assert!(
        r.text().contains("too many operations"),
        "413 body says why: {:?}",
        r.text()
    );
    agent.get("/v1/kv/lim/000").expect_status(404);

    let r = txn(&agent, &ops(TXN_OPS_MAX));
    r.expect_status(200);
    assert_eq!(r.json()["Results"].as_array().map(|a| a.len()), Some(TXN_OPS_MAX));
    let keys = agent.get("/v1/kv/lim/?keys");
    assert_eq!(keys.json().as_array().map(|a| a.len()), Some(TXN_OPS_MAX));
}

#[test]
fn a_body_over_512_kib_is_413() {
    let agent = dev();
    let big = b64(&vec![b'x'; TXN_BODY_BYTES_MAX]);
    let r = txn(&agent, &json!([{"KV": {"Verb": "set", "Key": "huge", "Value": big}}]));
    r.expect_status(413);
    assert!(r.text().contains("too large"), "{:?}", r.text());
    agent.get("/v1/kv/huge").expect_status(404);
}

#[test]
fn a_read_only_transaction_returns_values_and_read_headers() {
    let agent = dev();
    agent.kv_put("ro/a", b"alpha");
    agent.kv_put("ro/b/c", b"gamma");
    let r = txn(
        &agent,
        &json!([
            {"KV": {"Verb": "get", "Key": "ro/a"}},
            {"KV": {"Verb": "get-tree", "Key": "ro/b/"}},
        ]),
    );
    r.expect_status(200);
    let results = r.json()["Results"].as_array().expect("Results").clone();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["KV"]["Value"], b64(b"alpha"));
    assert_eq!(results[1]["KV"]["Key"], "ro/b/c");
    assert_eq!(results[1]["KV"]["Value"], b64(b"gamma"));
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert!(r.header("X-Consul-LastContact").is_some(), "{:?}", r.headers);

    let r = txn(&agent, &json!([{"KV": {"Verb": "get", "Key": "ro/missing"}}]));
    r.expect_status(409);
    assert_eq!(r.json()["Errors"][0]["OpIndex"], 0);
}

#[test]
fn malformed_bodies_are_400_and_write_nothing() {
    let agent = dev();
    for body in [
        "not json",
        "{\"KV\": {}}",
        "[{\"KV\": {\"Verb\": \"set\", \"Key\": \"mal\", \"Value\": \"***not base64***\"}}]",
    ] {
        let r = agent.put("/v1/txn", body.as_bytes());
        r.expect_status(400);
        assert!(!r.body.is_empty(), "{body}: the 400 says why");
    }
    agent.get("/v1/kv/mal").expect_status(404);
}

#[test]
fn txn_accepts_only_put() {
    let agent = dev();
    let r = agent.get("/v1/txn");
    r.expect_status(405);
    let allow = r.header("Allow").unwrap_or_default().to_string();
    assert!(allow.contains("PUT"), "Allow {allow:?}");
}
