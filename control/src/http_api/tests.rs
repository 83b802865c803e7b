//! The endpoints through [`handle`], against an in-memory raft stand-in.

use std::sync::Arc;
use std::time::Duration;

use proconsul_shared::agent_info::{AgentInfo, DnsConfig, Ports};
use proconsul_shared::ipc::messages::{HttpAnswer, HttpCall};
use serde_json::{json, Value};

use super::*;
use crate::agent::local::tests::{node, settings, MemTarget};
use crate::agent::local::NoRunners;

pub(super) fn agent_info() -> AgentInfo {
    AgentInfo {
        node_name: "n1".into(),
        node_id: "id".into(),
        datacenter: "dc1".into(),
        primary_datacenter: "dc1".into(),
        server: true,
        bootstrap: true,
        bootstrap_expect: 0,
        dev_mode: true,
        bind_addr: "127.0.0.1".into(),
        advertise_addr: "127.0.0.1".into(),
        client_addrs: vec!["127.0.0.1".into()],
        ports: Ports::default(),
        domain: "consul.".into(),
        revision: "abc".into(),
        build_date: String::new(),
        log_level: "info".into(),
        pretty_json: false,
        enable_script_checks: false,
        data_dir: String::new(),
        node_meta: Default::default(),
        default_query_time_ms: 300_000,
        max_query_time_ms: 600_000,
        dns: DnsConfig::default(),
    }
}

struct Fixture {
    local: Arc<LocalAgent>,
    target: MemTarget,
    agent: AgentInfo,
}

fn no_reload() -> Result<(), String> {
    Err("reload: no config files".into())
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            local: LocalAgent::new(node(), settings(), Box::new(NoRunners)),
            target: MemTarget::default(),
            agent: agent_info(),
        }
    }

    async fn call(&self, method: &str, path_and_query: &str, body: &str) -> HttpAnswer {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
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
            query: query.into(),
            body: body.as_bytes().to_vec(),
            token: None,
        };
        handle(&env, &call).await
    }

    async fn json(&self, path: &str) -> Value {
        let a = self.call("GET", path, "").await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        serde_json::from_slice(&a.body).unwrap()
    }
}

fn body(a: &HttpAnswer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

#[tokio::test]
async fn register_list_pass_deregister() {
    let f = Fixture::new();
    let a = f
        .call(
            "PUT",
            "/v1/agent/service/register",
            r#"{"Name":"web","Port":80,"Check":{"TTL":"10s"}}"#,
        )
        .await;
    assert_eq!((a.status, body(&a).as_str()), (200, ""));
    assert!(a.wait_index > 0, "waits for the catalog write");
    let services = f.json("/v1/agent/services").await;
    assert_eq!(services["web"]["Port"], 80);
    assert_eq!(services["web"]["Weights"], json!({"Passing": 1, "Warning": 1}));
    let checks = f.json("/v1/agent/checks").await;
    assert_eq!(checks["service:web"]["Status"], "critical");
    let replica = f.target.replica();
    assert!(replica.catalog.service("n1", "web").is_some());

    let a = f.call("PUT", "/v1/agent/check/pass/service:web?note=fine", "").await;
    assert_eq!(a.status, 200);
    let c = f.target.replica().catalog.check("n1", "service:web").unwrap().clone();
    assert_eq!((c.status.as_str(), c.output.as_str()), ("passing", "fine"));
    let a = f.call("GET", "/v1/agent/check/warn/service:web", "").await;
    assert_eq!(a.status, 200, "GET accepted for old scripts");
    let a = f
        .call(
            "PUT",
            "/v1/agent/check/update/service:web",
            r#"{"Status":"critical","Output":"down"}"#,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(f.json("/v1/agent/checks").await["service:web"]["Output"], "down");
    let a = f
        .call("PUT", "/v1/agent/check/update/service:web", r#"{"Status":"bogus"}"#)
        .await;
    assert_eq!((a.status, body(&a).as_str()), (400, "Invalid check status: 'bogus'"));

    let a = f.call("PUT", "/v1/agent/service/deregister/web", "").await;
    assert_eq!(a.status, 200);
    assert!(f.target.replica().catalog.service("n1", "web").is_none());
    assert_eq!(f.json("/v1/agent/services").await, json!({}));
}

#[tokio::test]
async fn errors_and_methods() {
    let f = Fixture::new();
    let cases = [
        ("PUT", "/v1/agent/service/register", "{", 400, "Request decode failed: "),
        (
            "PUT",
            "/v1/agent/service/register",
            r#"{"Port":1}"#,
            400,
            "Missing service name",
        ),
        (
            "PUT",
            "/v1/agent/service/deregister/nope",
            "",
            404,
            "Unknown service ID \"nope\"",
        ),
        (
            "PUT",
            "/v1/agent/check/deregister/nope",
            "",
            404,
            "Unknown check ID \"nope\"",
        ),
        ("PUT", "/v1/agent/check/pass/nope", "", 404, "Unknown check ID \"nope\""),
        ("GET", "/v1/agent/service/nope", "", 404, "unknown service ID: nope"),
        ("PUT", "/v1/agent/maintenance", "", 400, "Missing value for enable"),
        (
            "PUT",
            "/v1/agent/maintenance?enable=maybe",
            "",
            400,
            "Invalid value for enable: \"maybe\"",
        ),
        (
            "PUT",
            "/v1/agent/service/maintenance/nope?enable=true",
            "",
            404,
            "Unknown service ID",
        ),
        (
            "GET",
            "/v1/agent/nonsense",
            "",
            404,
            "Invalid URL path: not a recognized HTTP API endpoint",
        ),
        ("POST", "/v1/agent/services", "", 405, "method POST not allowed"),
        ("GET", "/v1/agent/service/register", "", 405, "method GET not allowed"),
        ("PUT", "/v1/agent/reload", "", 500, "reload: no config files"),
        (
            "GET",
            "/v1/agent/health/service/id/nope",
            "",
            404,
            "ServiceId nope not found",
        ),
        (
            "GET",
            "/v1/agent/health/service/name/nope",
            "",
            404,
            "ServiceName nope Not Found",
        ),
        (
            "PUT",
            "/v1/agent/check/register",
            r#"{"Name":"x","Args":["true"],"Interval":"1s"}"#,
            500,
            "Scripts are disabled",
        ),
    ];
    for (method, path, b, status, prefix) in cases {
        let a = f.call(method, path, b).await;
        assert_eq!(a.status, status, "{method} {path}: {}", body(&a));
        assert!(body(&a).starts_with(prefix), "{method} {path}: {}", body(&a));
    }
    let a = f.call("GET", "/v1/agent/check/register", "").await;
    assert_eq!(a.headers, vec![("Allow".to_string(), "OPTIONS,PUT".to_string())]);
}

#[tokio::test]
async fn maintenance_modes_reach_the_catalog() {
    let f = Fixture::new();
    f.call("PUT", "/v1/agent/service/register", r#"{"Name":"web"}"#).await;
    let a = f.call("PUT", "/v1/agent/maintenance?enable=true", "").await;
    assert_eq!(a.status, 200);
    let c = f
        .target
        .replica()
        .catalog
        .check("n1", "_node_maintenance")
        .unwrap()
        .clone();
    assert_eq!(c.name, "Node Maintenance Mode");
    let a = f
        .call("PUT", "/v1/agent/service/maintenance/web?enable=true&reason=deploy", "")
        .await;
    assert_eq!(a.status, 200);
    let c = f
        .target
        .replica()
        .catalog
        .check("n1", "_service_maintenance:web")
        .unwrap()
        .clone();
    assert_eq!(c.notes, "deploy");
    let h = f.call("GET", "/v1/agent/health/service/id/web?format=text", "").await;
    assert_eq!((h.status, body(&h).as_str()), (503, "maintenance"));
    f.call("PUT", "/v1/agent/maintenance?enable=false", "").await;
    f.call("PUT", "/v1/agent/service/maintenance/web?enable=false", "")
        .await;
    assert!(f.target.replica().catalog.check("n1", "_node_maintenance").is_none());
    let h = f.call("GET", "/v1/agent/health/service/name/web", "").await;
    assert_eq!(h.status, 200);
    let v: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(v[0]["AggregatedStatus"], "passing");
}

#[tokio::test]
async fn catalog_register_and_deregister() {
    let f = Fixture::new();
    let a = f
        .call(
            "PUT",
            "/v1/catalog/register",
            r#"{"Node":"ext","Address":"10.0.0.1","Service":{"Service":"db","Port":5432}}"#,
        )
        .await;
    assert_eq!((a.status, body(&a).as_str()), (200, "true"));
    assert!(a.wait_index > 0);
    assert!(f.target.replica().catalog.service("ext", "db").is_some());
    assert!(
        f.local.lock().services().is_empty(),
        "catalog writes do not touch the agent"
    );
    let a = f
        .call(
            "PUT",
            "/v1/catalog/register",
            r#"{"Node":"ext","Address":"10.0.0.1","Check":{"Name":"c","ServiceID":"nope"}}"#,
        )
        .await;
    assert_eq!(
        (a.status, body(&a).as_str()),
        (500, "Unknown service ID 'nope' for check ID 'c'")
    );
    let a = f.call("PUT", "/v1/catalog/register", r#"{"Node":"ext"}"#).await;
    assert_eq!(
        (a.status, body(&a).as_str()),
        (500, "Must provide address if SkipNodeUpdate is not set")
    );
    // SkipNodeUpdate without an address: the node stays as it was.
    let a = f
        .call(
            "PUT",
            "/v1/catalog/register",
            r#"{"Node":"ext","SkipNodeUpdate":true,"NodeMeta":{"k":"v"},"Service":{"Service":"cache"}}"#,
        )
        .await;
    assert_eq!((a.status, body(&a).as_str()), (200, "true"));
    let replica = f.target.replica();
    let ext = replica.nodes.get("ext").expect("the node is still there");
    assert_eq!(ext.address, "10.0.0.1");
    assert!(ext.meta.is_empty(), "{:?}", ext.meta);
    assert!(replica.catalog.service("ext", "cache").is_some());
    let a = f
        .call(
            "PUT",
            "/v1/catalog/register",
            r#"{"Node":"ext","Address":"a","ID":"nope"}"#,
        )
        .await;
    assert_eq!(
        (a.status, body(&a).as_str()),
        (500, "Bad node ID: uuid string is wrong length")
    );
    let a = f
        .call("PUT", "/v1/catalog/deregister", r#"{"Node":"ext","ServiceID":"db"}"#)
        .await;
    assert_eq!((a.status, body(&a).as_str()), (200, "true"));
    assert!(f.target.replica().catalog.service("ext", "db").is_none());
    let a = f.call("GET", "/v1/catalog/register", "").await;
    assert_eq!(a.status, 405);
}

#[tokio::test]
async fn members_list_this_agent() {
    let f = Fixture::new();
    let v = f.json("/v1/agent/members").await;
    assert_eq!(v[0]["Name"], "n1");
    assert_eq!(v[0]["Status"], 1);
    assert_eq!(v[0]["Tags"]["role"], "consul");
    assert_eq!(v[0]["Tags"]["dc"], "dc1");
}

#[tokio::test]
async fn hash_blocking_wakes_on_change_and_times_out() {
    let f = Arc::new(Fixture::new());
    f.call("PUT", "/v1/agent/service/register", r#"{"Name":"web","Port":1}"#)
        .await;
    let first = f.call("GET", "/v1/agent/service/web", "").await;
    let hash = first
        .headers
        .iter()
        .find(|(k, _)| k == "X-Consul-ContentHash")
        .unwrap()
        .1
        .clone();
    let v: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(v["ContentHash"], hash.as_str());

    // Same hash, short wait: answers unchanged after the wait.
    let started = std::time::Instant::now();
    let a = f
        .call("GET", &format!("/v1/agent/service/web?hash={hash}&wait=50ms"), "")
        .await;
    assert!(started.elapsed() >= Duration::from_millis(45));
    assert_eq!(a.headers[0].1, hash);

    // A change wakes the waiter early with the new hash.
    let waiter = {
        let f = f.clone();
        let hash = hash.clone();
        tokio::spawn(async move {
            f.call("GET", &format!("/v1/agent/service/web?hash={hash}&wait=10s"), "")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    f.call("PUT", "/v1/agent/service/register", r#"{"Name":"web","Port":2}"#)
        .await;
    let a = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, 200);
    assert_ne!(a.headers[0].1, hash);
    let a = f
        .call("GET", &format!("/v1/agent/service/web?hash={hash}&wait=bogus"), "")
        .await;
    assert_eq!(a.status, 200, "a stale hash answers at once, wait unparsed");
    let cur = &f.call("GET", "/v1/agent/service/web", "").await.headers[0].1.clone();
    let a = f
        .call("GET", &format!("/v1/agent/service/web?hash={cur}&wait=bogus"), "")
        .await;
    assert_eq!((a.status, body(&a).as_str()), (400, "Invalid wait time"));
}

#[tokio::test]
async fn wan_membership_and_datacenters_answer_like_consul_without_a_wan_pool() {
    use super::membership::{FORCE_LEAVE_WAN_NOT_SERVER, JOIN_WAN_NOT_SERVER, WAN_SEGMENT_REFUSED};
    let mut f = Fixture::new();
    let a = f.call("GET", "/v1/agent/members?wan=1", "").await;
    assert_eq!((a.status, body(&a).as_str()), (200, "[]"), "a server with no WAN pool");
    let a = f.call("GET", "/v1/agent/members?wan=1&segment=alpha", "").await;
    assert_eq!((a.status, body(&a).as_str()), (400, WAN_SEGMENT_REFUSED));
    let v = f.json("/v1/agent/members?wan=&segment=_all").await;
    assert_eq!(v[0]["Name"], "n1", "an empty wan value is the LAN pool");
    let a = f.call("GET", "/v1/catalog/datacenters", "").await;
    assert_eq!((a.status, body(&a).as_str()), (200, r#"["dc1"]"#));
    let a = f.call("PUT", "/v1/catalog/datacenters", "").await;
    assert_eq!(a.status, 405);
    f.agent.server = false;
    let a = f.call("GET", "/v1/agent/members?wan=1", "").await;
    assert_eq!(
        (a.status, body(&a).as_str()),
        (200, "null"),
        "Consul encodes a client's nil list"
    );
    let a = f.call("PUT", "/v1/agent/join/127.0.0.1?wan=1", "").await;
    assert_eq!((a.status, body(&a).as_str()), (500, JOIN_WAN_NOT_SERVER));
    let a = f.call("PUT", "/v1/agent/force-leave/s1.dc2?wan=1", "").await;
    assert_eq!((a.status, body(&a).as_str()), (500, FORCE_LEAVE_WAN_NOT_SERVER));
}
