//! Agent checks through the real binary (spec HTTP.md §2.3, §4, SUMMARY.md
//! item 8): standalone TTL checks and their updates, TTL expiry, an HTTP
//! check run by the agent, maintenance modes, serfHealth, local health.

mod common;

use std::time::Duration;

use common::process::poll_until;
use common::{Agent, AgentSpec};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(15);

fn node_name(agent: &Agent) -> String {
    agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .expect("NodeName")
        .to_string()
}

fn agent_check(agent: &Agent, id: &str) -> Value {
    agent.get("/v1/agent/checks").json()[id].clone()
}

#[test]
fn ttl_check_updates_and_errors() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.put(
        "/v1/agent/check/register",
        br#"{"Name":"mem","TTL":"60s","Notes":"memory"}"#,
    );
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    assert_eq!(agent_check(&agent, "mem")["Status"], "critical");

    for (path, status) in [("pass", "passing"), ("warn", "warning"), ("fail", "critical")] {
        let r = agent.put(&format!("/v1/agent/check/{path}/mem?note={path}ed"), b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let c = agent_check(&agent, "mem");
        assert_eq!(c["Status"], status);
        assert_eq!(c["Output"], format!("{path}ed"));
    }
    let r = agent.put("/v1/agent/check/update/mem", br#"{"Status":"passing","Output":"fine"}"#);
    assert_eq!(r.status, 200);
    let node = node_name(&agent);
    let in_catalog = agent.get(&format!("/v1/health/node/{node}")).json();
    let mem = in_catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "mem")
        .cloned();
    assert_eq!(mem.expect("mem in the catalog")["Status"], "passing");

    let cases: [(&str, &[u8], u16, &str); 6] = [
        (
            "/v1/agent/check/update/mem",
            br#"{"Status":"up"}"#,
            400,
            "Invalid check status: 'up'",
        ),
        ("/v1/agent/check/pass/ghost", b"", 404, "Unknown check ID \"ghost\""),
        (
            "/v1/agent/check/deregister/ghost",
            b"",
            404,
            "Unknown check ID \"ghost\"",
        ),
        (
            "/v1/agent/check/register",
            br#"{"TTL":"1s"}"#,
            400,
            "Missing check name",
        ),
        ("/v1/agent/check/register", br#"{"Name":"x"}"#, 400, "Invalid check: "),
        (
            "/v1/agent/check/register",
            br#"{"Name":"x","TTL":"1s","ServiceID":"nope"}"#,
            404,
            "ServiceID \"nope\" does not exist",
        ),
    ];
    for (path, body, status, prefix) in cases {
        let r = agent.put(path, body);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.text().starts_with(prefix), "{path}: {}", r.text());
    }
    let r = agent.put(
        "/v1/agent/check/register",
        br#"{"Name":"s","Args":["/bin/true"],"Interval":"10s"}"#,
    );
    assert_eq!(r.status, 500);
    assert!(
        r.text().starts_with("Scripts are disabled on this agent"),
        "{}",
        r.text()
    );

    let r = agent.put("/v1/agent/check/deregister/mem", b"");
    assert_eq!(r.status, 200);
    assert!(agent_check(&agent, "mem").is_null());
}

#[test]
fn ttl_expires_to_critical() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.put(
        "/v1/agent/check/register",
        br#"{"Name":"beat","TTL":"1s","Status":"passing"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(agent_check(&agent, "beat")["Status"], "passing");
    let expired = poll_until(WAIT, POLL, || {
        let c = agent_check(&agent, "beat");
        (c["Status"] == "critical").then_some(c)
    });
    let c = expired.expect("TTL check never expired");
    assert!(c["Output"].as_str().unwrap_or("").starts_with("TTL expired"), "{c}");
}

#[test]
fn http_check_runs_against_the_agent_itself() {
    let agent = AgentSpec::dev().spawn();
    let url = format!("http://{}/v1/status/leader", agent.http_addr());
    let body = format!(r#"{{"Name":"self","ID":"self-http","HTTP":"{url}","Interval":"1s"}}"#);
    let r = agent.put("/v1/agent/check/register", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let c = agent_check(&agent, "self-http");
    assert_eq!(c["Type"], "http");
    assert_eq!(c["Interval"], "1s");
    let passing = poll_until(WAIT, POLL, || {
        let c = agent_check(&agent, "self-http");
        (c["Status"] == "passing").then_some(c)
    });
    assert!(
        passing.is_some(),
        "HTTP check never passed: {}",
        agent_check(&agent, "self-http")
    );
}

#[test]
fn maintenance_modes_and_local_health() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.put(
        "/v1/agent/service/register",
        br#"{"Name":"web","Check":{"TTL":"60s","Status":"passing"}}"#,
    );
    assert_eq!(r.status, 200);
    let h = agent.get("/v1/agent/health/service/id/web?format=text");
    assert_eq!((h.status, h.text().as_str()), (200, "passing"));

    let r = agent.put("/v1/agent/maintenance?enable=true&reason=patching", b"");
    assert_eq!(r.status, 200);
    let m = agent_check(&agent, "_node_maintenance");
    assert_eq!(m["Name"], "Node Maintenance Mode");
    assert_eq!(m["Notes"], "patching");
    assert_eq!(m["Status"], "critical");
    let health = agent.get("/v1/health/service/web").json();
    let ids: Vec<&str> = health[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["CheckID"].as_str())
        .collect();
    assert!(ids.contains(&"_node_maintenance"), "{ids:?}");
    assert_eq!(
        agent.get("/v1/health/service/web?passing").json(),
        serde_json::json!([])
    );
    assert_eq!(agent.get("/v1/agent/health/service/id/web").status, 503);

    let r = agent.put("/v1/agent/maintenance?enable=false", b"");
    assert_eq!(r.status, 200);
    let r = agent.put("/v1/agent/service/maintenance/web?enable=true", b"");
    assert_eq!(r.status, 200);
    let m = agent_check(&agent, "_service_maintenance:web");
    assert_eq!(m["Name"], "Service Maintenance Mode");
    assert!(m["Notes"]
        .as_str()
        .unwrap()
        .starts_with("Maintenance mode is enabled for this service"));
    let r = agent.put("/v1/agent/service/maintenance/web?enable=false", b"");
    assert_eq!(r.status, 200);
    assert!(agent_check(&agent, "_service_maintenance:web").is_null());
    let r = agent.put("/v1/agent/maintenance", b"");
    assert_eq!((r.status, r.text().as_str()), (400, "Missing value for enable"));
    let h = agent.get("/v1/agent/health/service/name/nope");
    assert_eq!((h.status, h.text().as_str()), (404, "ServiceName nope Not Found"));
}

#[test]
fn serf_health_and_members() {
    let agent = AgentSpec::dev().spawn();
    let node = node_name(&agent);
    let checks = agent.get(&format!("/v1/health/node/{node}")).json();
    let serf = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .cloned();
    let serf = serf.expect("serfHealth registered at start");
    assert_eq!(serf["Name"], "Serf Health Status");
    assert_eq!(serf["Output"], "Agent alive and reachable");
    assert_eq!(serf["Status"], "passing");
    let members = agent.get("/v1/agent/members").json();
    assert_eq!(members[0]["Name"], node.as_str());
    assert_eq!(members[0]["Status"], 1);
    assert_eq!(members[0]["Tags"]["role"], "consul");
}
