//! Agent services through the real binary (spec HTTP.md §2, §3, SUMMARY.md
//! items 7–10): register with an embedded TTL check, list, catalog and
//! health views, TTL pass, deregister, errors, hash blocking, catalog
//! writes, anti-entropy repair.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::process::poll_until;
use common::{Agent, AgentSpec};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(10);

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

fn node_name(agent: &Agent) -> String {
    agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .expect("NodeName")
        .to_string()
}

fn register_web(agent: &Agent) {
    let body = br#"{"Name":"web","ID":"web1","Port":8080,"Tags":["v1"],"Meta":{"Team":"a"},
                    "Check":{"TTL":"30s"}}"#;
    let r = agent.put("/v1/agent/service/register", body);
    assert_eq!((r.status, r.text().as_str()), (200, ""), "register");
}

#[test]
fn registered_service_shows_everywhere_and_goes_away() {
    let agent = dev();
    register_web(&agent);

    let services = agent.get("/v1/agent/services").json();
    let web = &services["web1"];
    assert_eq!(web["Service"], "web");
    assert_eq!(web["Port"], 8080);
    assert_eq!(web["Tags"], serde_json::json!(["v1"]));
    assert_eq!(web["Meta"]["Team"], "a", "user map keys keep their case");
    assert_eq!(web["Weights"]["Passing"], 1);

    let checks = agent.get("/v1/agent/checks").json();
    let check = &checks["service:web1"];
    assert_eq!(check["Status"], "critical", "new checks start critical");
    assert_eq!(check["Name"], "Service 'web' check");
    assert_eq!(check["ServiceName"], "web");

    // Read-your-writes: the catalog already has it when register answers.
    let catalog = agent.get("/v1/catalog/service/web").json();
    assert_eq!(catalog[0]["ServiceID"], "web1", "{catalog}");
    assert_eq!(catalog[0]["Node"], node_name(&agent).as_str());

    let r = agent.put("/v1/agent/check/pass/service:web1?note=all%20good", b"");
    assert_eq!(r.status, 200);
    let health = agent.get("/v1/health/service/web").json();
    let checks = health[0]["Checks"].as_array().expect("Checks");
    let ttl = checks
        .iter()
        .find(|c| c["CheckID"] == "service:web1")
        .expect("ttl check");
    assert_eq!(
        (ttl["Status"].as_str(), ttl["Output"].as_str()),
        (Some("passing"), Some("all good"))
    );
    assert!(
        checks.iter().any(|c| c["CheckID"] == "serfHealth"),
        "node checks count: {health}"
    );
    let passing = agent.get("/v1/health/service/web?passing").json();
    assert_eq!(passing.as_array().map(Vec::len), Some(1));

    let r = agent.put("/v1/agent/service/deregister/web1", b"");
    assert_eq!(r.status, 200);
    assert_eq!(agent.get("/v1/agent/services").json(), serde_json::json!({}));
    assert_eq!(agent.get("/v1/catalog/service/web").json(), serde_json::json!([]));
    assert!(agent.get("/v1/agent/checks").json().get("service:web1").is_none());
}

#[test]
fn snake_case_bodies_and_errors() {
    let agent = dev();
    let r = agent.put(
        "/v1/agent/service/register",
        br#"{"name":"api","id":"api-1","port":81,"enable_tag_override":true,"tagged_addresses":{"lan":{"address":"127.0.0.1","port":81}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let api = &agent.get("/v1/agent/service/api-1").json();
    assert_eq!(api["EnableTagOverride"], true);
    assert_eq!(api["TaggedAddresses"]["lan"]["Port"], 81);

    let cases: [(&str, &str, &[u8], u16, &str); 7] = [
        (
            "PUT",
            "/v1/agent/service/register",
            b"{bad",
            400,
            "Request decode failed: ",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            br#"{"Port":1}"#,
            400,
            "Missing service name",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            br#"{"Name":"x","Port":70000}"#,
            400,
            "Request decode failed: ",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            br#"{"Name":"x","Address":"0.0.0.0"}"#,
            400,
            "Invalid service address",
        ),
        (
            "PUT",
            "/v1/agent/service/deregister/nope",
            b"",
            404,
            "Unknown service ID \"nope\"",
        ),
        ("GET", "/v1/agent/service/nope", b"", 404, "unknown service ID: nope"),
        ("POST", "/v1/agent/services", b"", 405, "method POST not allowed"),
    ];
    for (method, path, body, status, prefix) in cases {
        let r = agent.request(method, path, &[], body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(r.text().starts_with(prefix), "{method} {path}: {}", r.text());
    }
}

#[test]
fn hash_blocking_on_one_service() {
    let agent = dev();
    register_web(&agent);
    let first = agent.get("/v1/agent/service/web1");
    let hash = first.header("X-Consul-ContentHash").expect("content hash").to_string();
    assert_eq!(first.json()["ContentHash"], hash.as_str());

    // Unchanged: waits out `wait`.
    let started = Instant::now();
    let r = agent.get(&format!("/v1/agent/service/web1?hash={hash}&wait=300ms"));
    assert!(started.elapsed() >= Duration::from_millis(250), "returned early");
    assert_eq!(r.header("X-Consul-ContentHash"), Some(hash.as_str()));

    // A change wakes it.
    let addr = agent.http_addr();
    let target = format!("/v1/agent/service/web1?hash={hash}&wait=20s");
    let waiter = std::thread::spawn(move || {
        common::http::request(addr, "GET", &target, &[], b"", Duration::from_secs(30)).expect("blocked read")
    });
    std::thread::sleep(Duration::from_millis(200));
    let r = agent.put(
        "/v1/agent/service/register",
        br#"{"Name":"web","ID":"web1","Port":9090}"#,
    );
    assert_eq!(r.status, 200);
    let woke = waiter.join().expect("waiter thread");
    assert_eq!(woke.status, 200);
    assert_ne!(woke.header("X-Consul-ContentHash"), Some(hash.as_str()));
    assert_eq!(woke.json()["Port"], 9090);
}

#[test]
fn catalog_register_and_deregister() {
    let agent = dev();
    let r = agent.put(
        "/v1/catalog/register",
        br#"{"Node":"ext-1","Address":"10.9.9.9","Service":{"Service":"redis","Port":6379},
            "Check":{"Name":"redis alive","Status":"passing","ServiceID":"redis"}}"#,
    );
    assert_eq!((r.status, r.text().trim()), (200, "true"));
    let catalog = agent.get("/v1/catalog/service/redis").json();
    assert_eq!(catalog[0]["Node"], "ext-1");
    assert_eq!(catalog[0]["Address"], "10.9.9.9");
    assert_eq!(
        agent.get("/v1/agent/services").json(),
        serde_json::json!({}),
        "not an agent service"
    );

    let r = agent.put("/v1/catalog/register", br#"{"Node":"ext-1"}"#);
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "Must provide address if SkipNodeUpdate is not set")
    );
    // Consul's RPC argument errors: 500 and the error's text.
    let refused: [(&[u8], &str); 3] = [
        (
            br#"{"Node":"ext-1","Address":"10.9.9.9","ID":"ext-1-id"}"#,
            "Bad node ID: uuid string is wrong length",
        ),
        (
            br#"{"Node":"ext-1","Address":"10.9.9.9","Service":{"ID":"redis-2"}}"#,
            "Must provide service name (Service.Service) when service ID is provided",
        ),
        (
            br#"{"Node":"ext-1","Address":"10.9.9.9","Check":{"Name":"c","Node":"ext-2"}}"#,
            "Node 'ext-2' for check 'c' doesn't match register request node 'ext-1'",
        ),
    ];
    for (body, want) in refused {
        let r = agent.put("/v1/catalog/register", body);
        assert_eq!((r.status, r.text().as_str()), (500, want));
    }
    // SkipNodeUpdate without an address: the node keeps its address and
    // metadata, and the service is registered on it.
    let r = agent.put(
        "/v1/catalog/register",
        br#"{"Node":"ext-1","SkipNodeUpdate":true,"NodeMeta":{"rack":"r9"},
            "Service":{"Service":"memcached","Port":11211}}"#,
    );
    assert_eq!((r.status, r.text().trim()), (200, "true"));
    let node = agent.get("/v1/catalog/node/ext-1").json();
    assert_eq!(node["Node"]["Address"], "10.9.9.9");
    assert!(node["Node"]["Meta"].get("rack").is_none(), "{node}");
    assert_eq!(node["Services"]["memcached"]["Port"], 11211);
    // Node metadata Consul's agent would refuse is stored as sent.
    let r = agent.put(
        "/v1/catalog/register",
        br#"{"Node":"ext-3","Address":"10.9.9.10","NodeMeta":{"consul-rack":"r1"}}"#,
    );
    assert_eq!((r.status, r.text().trim()), (200, "true"));
    let node = agent.get("/v1/catalog/node/ext-3").json();
    assert_eq!(node["Node"]["Meta"]["consul-rack"], "r1");
    let r = agent.put("/v1/catalog/deregister", br#"{"Node":"ext-1","ServiceID":"redis"}"#);
    assert_eq!((r.status, r.text().trim()), (200, "true"));
    assert_eq!(agent.get("/v1/catalog/service/redis").json(), serde_json::json!([]));
    let r = agent.put("/v1/catalog/deregister", b"{}");
    assert_eq!((r.status, r.text().as_str()), (500, "Must provide node"));
}

#[test]
fn anti_entropy_repairs_a_catalog_rewrite() {
    let dir = tempfile::tempdir().expect("config dir");
    let file = dir.path().join("sync.json");
    fs::write(&file, r#"{"anti_entropy_interval": "300ms"}"#).expect("write config");
    let agent = AgentSpec::dev().arg(format!("-config-file={}", file.display())).spawn();
    register_web(&agent);
    let node = node_name(&agent);
    let r = agent.put(
        "/v1/catalog/deregister",
        format!(r#"{{"Node":"{node}","ServiceID":"web1"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let back = poll_until(WAIT, POLL, || {
        let v: Value = agent.get("/v1/catalog/service/web").json();
        (v.as_array().map(Vec::len) == Some(1)).then_some(v)
    });
    assert!(back.is_some(), "anti-entropy did not re-register the service");
    let checks = agent.get(&format!("/v1/health/node/{node}")).json();
    let ids: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["CheckID"].as_str())
        .collect();
    assert!(ids.contains(&"serfHealth") && ids.contains(&"service:web1"), "{ids:?}");
}
