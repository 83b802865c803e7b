//! Session writes through [`handle`](super::super::handle), against an
//! in-memory raft stand-in: create (defaults, decoding, every refusal with
//! Consul's status and text), destroy, renew and its shape.

use std::sync::Arc;

use proconsul_shared::command::{CatalogRegistration, Command};
use proconsul_shared::ipc::messages::{HttpAnswer, HttpCall};
use proconsul_shared::state::{CheckStatus, HealthCheck, SessionBehavior};
use serde_json::Value;

use super::*;
use crate::agent::local::tests::{node, settings, MemTarget};
use crate::agent::local::{LocalAgent, NoRunners, SyncTarget};
use crate::http_api::HttpEnv;

struct Fixture {
    local: Arc<LocalAgent>,
    target: MemTarget,
    agent: proconsul_shared::agent_info::AgentInfo,
}

fn no_reload() -> Result<(), String> {
    Err("no reload here".into())
}

impl Fixture {
    /// Node `n1` (this agent) registered with a passing `serfHealth`.
    async fn new() -> Fixture {
        let f = Fixture {
            local: LocalAgent::new(node(), settings(), Box::new(NoRunners)),
            target: MemTarget::default(),
            agent: crate::http_api::tests::agent_info(),
        };
        f.set_serf(CheckStatus::Passing).await;
        f
    }

    async fn set_serf(&self, status: CheckStatus) {
        let reg = Command::CatalogRegister(CatalogRegistration {
            node: node(),
            skip_node_update: false,
            service: None,
            checks: vec![HealthCheck {
                check_id: "serfHealth".into(),
                name: "Serf Health Status".into(),
                status,
                ..HealthCheck::default()
            }],
        });
        self.target.write(reg).await.expect("registered");
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> HttpAnswer {
        let env = HttpEnv {
            local: &self.local,
            target: &self.target,
            agent: &self.agent,
            reload: &no_reload,
            gossip: None,
            wan_gossip: None,
        };
        let call = HttpCall {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            body: body.as_bytes().to_vec(),
            token: None,
        };
        crate::http_api::handle(&env, &call).await
    }

    async fn create(&self, body: &str) -> String {
        let a = self.call("PUT", "/v1/session/create", body).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        v["ID"].as_str().expect("an ID").to_string()
    }
}

fn body_text(a: &HttpAnswer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

#[tokio::test]
async fn create_with_defaults() {
    let f = Fixture::new().await;
    let id = f.create("").await;
    assert_eq!(id.len(), 36, "a UUID");
    let state = f.target.replica();
    let s = state.sessions.get(&id).expect("stored");
    assert_eq!(s.node, "n1", "this agent's node");
    assert_eq!(s.lock_delay_ns, 15_000_000_000);
    assert_eq!(s.behavior, SessionBehavior::Release);
    assert_eq!(s.node_checks, vec!["serfHealth".to_string()]);
    assert!(s.service_checks.is_empty());
    assert_eq!(s.ttl, "");
}

#[tokio::test]
async fn create_decodes_fields_in_any_case() {
    let f = Fixture::new().await;
    let id = f
        .create(r#"{"name":"web-lock","BEHAVIOR":"delete","ttl":"30s","LockDelay":"2s","node":"N1"}"#)
        .await;
    let state = f.target.replica();
    let s = state.sessions.get(&id).unwrap();
    assert_eq!(
        (s.name.as_str(), s.behavior, s.ttl.as_str(), s.lock_delay_ns),
        ("web-lock", SessionBehavior::Delete, "30s", 2_000_000_000)
    );
    let id = f.create(r#"{"LockDelay": 5}"#).await;
    assert_eq!(
        f.target.replica().sessions.get(&id).unwrap().lock_delay_ns,
        5_000_000_000,
        "a number below 1000 is seconds"
    );
    let id = f.create(r#"{"LockDelay": 3000000000}"#).await;
    assert_eq!(
        f.target.replica().sessions.get(&id).unwrap().lock_delay_ns,
        3_000_000_000
    );
    let id = f.create(r#"{"LockDelay": "0s"}"#).await;
    assert_eq!(f.target.replica().sessions.get(&id).unwrap().lock_delay_ns, 0);
}

#[test]
fn checks_fix_up_follows_consul() {
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(fix_up_checks(None, None), v(&["serfHealth"]));
    assert_eq!(fix_up_checks(Some(vec![]), None), v(&[]), "Checks: [] means no checks");
    assert_eq!(fix_up_checks(None, Some(vec![])), v(&[]));
    assert_eq!(fix_up_checks(None, Some(v(&["a"]))), v(&["a"]));
    assert_eq!(fix_up_checks(Some(v(&["a"])), None), v(&["serfHealth", "a"]));
    assert_eq!(fix_up_checks(Some(v(&["a"])), Some(vec![])), v(&[]));
    assert_eq!(fix_up_checks(Some(v(&["serfHealth"])), Some(v(&["b"]))), v(&["b"]));
}

#[tokio::test]
async fn create_with_explicitly_empty_checks_survives_a_critical_serf_check() {
    let f = Fixture::new().await;
    f.set_serf(CheckStatus::Critical).await;
    let id = f.create(r#"{"Checks":[]}"#).await;
    assert!(f.target.replica().sessions.get(&id).unwrap().node_checks.is_empty());
}

#[tokio::test]
async fn null_check_lists_count_as_empty_as_in_consul() {
    let f = Fixture::new().await;
    f.set_serf(CheckStatus::Critical).await;
    // Go's decoder sets a slice written `null` to nil, and
    // `fixupEmptySessionChecks` then empties the default node checks.
    for body in [
        r#"{"Checks":null}"#,
        r#"{"checks":null,"NodeChecks":["serfHealth"]}"#,
        r#"{"NodeChecks":null}"#,
        r#"{"NODECHECKS":null,"ServiceChecks":null}"#,
    ] {
        let a = f.call("PUT", "/v1/session/create", body).await;
        assert_eq!(a.status, 200, "{body}: {}", body_text(&a));
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        let id = v["ID"].as_str().expect("an ID");
        let state = f.target.replica();
        let s = state.sessions.get(id).expect("stored");
        assert!(s.node_checks.is_empty(), "{body}: {:?}", s.node_checks);
        assert!(s.service_checks.is_empty());
    }
    // Absent lists keep the default, which a critical serfHealth refuses.
    let a = f.call("PUT", "/v1/session/create", r#"{"Name":"x"}"#).await;
    assert_eq!(
        (a.status, body_text(&a)),
        (500, "Check 'serfHealth' is in critical state".to_string())
    );
    // `null` for Checks with other NodeChecks: Consul empties NodeChecks too.
    let a = f
        .call("PUT", "/v1/session/create", r#"{"Checks":null,"NodeChecks":["nope"]}"#)
        .await;
    assert_eq!(a.status, 200, "{}", body_text(&a));
}

#[test]
fn null_lists_are_found_in_any_case() {
    let v: Value = serde_json::from_str(r#"{"cHeCkS":null,"NodeChecks":["a"]}"#).unwrap();
    let n = NullLists::of(&v);
    assert!(n.checks && !n.node_checks);
    let n = NullLists::of(&Value::Null);
    assert!(!n.checks && !n.node_checks);
}

#[tokio::test]
async fn create_refusals_carry_consul_status_and_text() {
    let f = Fixture::new().await;
    let cases: Vec<(&str, u16, String)> = vec![
        (
            r#"{"Behavior":"explode"}"#,
            500,
            "Invalid Behavior setting 'explode'".into(),
        ),
        (
            r#"{"TTL":"5s"}"#,
            500,
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]".into(),
        ),
        (
            r#"{"TTL":"25h"}"#,
            500,
            "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]".into(),
        ),
        (
            r#"{"TTL":"soon"}"#,
            500,
            "Session TTL 'soon' invalid: time: invalid duration \"soon\"".into(),
        ),
        (
            r#"{"LockDelay":"later"}"#,
            400,
            "Request decode failed: time: invalid duration \"later\"".into(),
        ),
        (
            r#"{"Name": 7}"#,
            400,
            "Request decode failed: json: cannot unmarshal number 7 into Go struct field .Name of type string".into(),
        ),
        (r#"{"Node":"ghost"}"#, 500, "Missing node registration".into()),
        (
            r#"{"NodeChecks":["serfHealth","nope"]}"#,
            500,
            "Missing check 'nope' registration".into(),
        ),
        (
            r#"{"ServiceChecks":[{"ID":"svc"}]}"#,
            500,
            "Missing check 'svc' registration".into(),
        ),
    ];
    for (body, status, message) in cases {
        let a = f.call("PUT", "/v1/session/create", body).await;
        assert_eq!((a.status, body_text(&a)), (status, message), "body {body}");
    }
    let a = f.call("PUT", "/v1/session/create", "[1]").await;
    assert_eq!(a.status, 400);
    assert!(body_text(&a).starts_with("Request decode failed: "));
    let big = format!(r#"{{"Name":"{}"}}"#, "x".repeat(SESSION_BODY_BYTES_MAX));
    assert_eq!(f.call("PUT", "/v1/session/create", &big).await.status, 413);
    f.set_serf(CheckStatus::Critical).await;
    let a = f.call("PUT", "/v1/session/create", "{}").await;
    assert_eq!(
        (a.status, body_text(&a)),
        (500, "Check 'serfHealth' is in critical state".into())
    );
    assert!(f.target.replica().sessions.is_empty(), "nothing refused was stored");
}

#[tokio::test]
async fn ttl_zero_and_bounds_are_accepted() {
    let f = Fixture::new().await;
    for ttl in ["0s", "10s", "24h", "86400s"] {
        f.create(&format!(r#"{{"TTL":"{ttl}"}}"#)).await;
    }
}

#[tokio::test]
async fn destroy_answers_true_and_releases_keys() {
    let f = Fixture::new().await;
    let id = f.create("{}").await;
    f.target
        .write(Command::KvLock {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 0,
            session: id.clone(),
        })
        .await
        .unwrap();
    let a = f.call("PUT", &format!("/v1/session/destroy/{id}"), "").await;
    assert_eq!((a.status, body_text(&a)), (200, "true".into()));
    assert!(a.wait_index > 0);
    let state = f.target.replica();
    assert!(state.sessions.get(&id).is_none());
    assert_eq!(state.kv.get("k").unwrap().session, None);
    let a = f.call("PUT", "/v1/session/destroy/unknown-id", "").await;
    assert_eq!((a.status, body_text(&a)), (200, "true".into()), "unknown IDs too");
}

#[tokio::test]
async fn renew_answers_the_session_or_404() {
    let f = Fixture::new().await;
    let id = f.create(r#"{"TTL":"15s","Name":"n"}"#).await;
    let a = f.call("PUT", &format!("/v1/session/renew/{id}"), "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/json");
    let s = f.target.replica().sessions.get(&id).unwrap().clone();
    let expected = format!(
        r#"[{{"ID":"{id}","Name":"n","Node":"n1","LockDelay":15000000000,"Behavior":"release","TTL":"15s","NodeChecks":["serfHealth"],"ServiceChecks":null,"CreateIndex":{c},"ModifyIndex":{c}}}]"#,
        c = s.create_index
    );
    assert_eq!(body_text(&a), expected);
    let a = f.call("PUT", "/v1/session/renew/nope", "").await;
    assert_eq!((a.status, body_text(&a)), (404, "Session id 'nope' not found".into()));
}

#[tokio::test]
async fn methods_and_paths() {
    let f = Fixture::new().await;
    let a = f.call("GET", "/v1/session/create", "").await;
    assert_eq!(a.status, 405);
    let a = f.call("POST", "/v1/session/renew/x", "").await;
    assert_eq!(a.status, 405);
    let a = f.call("PUT", "/v1/session/destroy/", "").await;
    assert_eq!((a.status, body_text(&a)), (400, "Missing session".into()));
    let a = f.call("PUT", "/v1/session/renew/", "").await;
    assert_eq!((a.status, body_text(&a)), (400, "Missing session".into()));
    let a = f.call("PUT", "/v1/session/bogus", "").await;
    assert_eq!(a.status, 404);
}
