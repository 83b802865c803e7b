//! Discovery endpoints clients probe first (spec HTTP.md §2 and §8,
//! SUMMARY.md item 14): `/v1/status/*`, `/v1/agent/self`, `GET /`, pretty
//! printing, `/v1/agent/leave`.

mod common;

use std::time::Duration;

use common::process;
use common::AgentSpec;
use serde_json::{json, Value};

/// Whether `v` looks like a semantic version (`1.21.0`, `1.21.0-dev`, `1.17.0+ent`).
fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `id` is a UUID in its 8-4-4-4-12 hex form.
fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn status_leader_and_peers_name_the_bind_address_and_server_port() {
    let agent = AgentSpec::dev().spawn();
    let expected = format!("{}:8300", agent.ip());
    let r = agent.get("/v1/status/leader");
    r.expect_status(200);
    assert_eq!(r.json(), json!(expected));
    assert!(r
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert!(r.header("X-Consul-Index").is_none(), "status endpoints carry no index");
    let r = agent.get("/v1/status/peers");
    r.expect_status(200);
    assert_eq!(r.json(), json!([expected]));
    // `dc` of the agent's own datacenter is accepted.
    agent.get("/v1/status/leader?dc=dc1").expect_status(200);
}

#[test]
fn agent_self_reports_config_member_stats_and_debug_config() {
    let agent = AgentSpec::dev().arg("-node").arg("self-node").spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    assert!(r.header("X-Consul-Index").is_none(), "agent endpoints carry no index");
    let body = r.json();

    let config = &body["Config"];
    assert_eq!(config["Datacenter"], "dc1");
    assert_eq!(config["PrimaryDatacenter"], "dc1");
    assert_eq!(config["NodeName"], "self-node");
    assert_eq!(config["Server"], true);
    let node_id = config["NodeID"].as_str().expect("Config.NodeID");
    assert!(is_uuid(node_id), "NodeID {node_id:?} is not a UUID");
    let version = config["Version"].as_str().expect("Config.Version");
    assert!(is_semver(version), "Config.Version {version:?} is not semver");
    assert!(config["Revision"].is_string(), "Config.Revision: {config}");
    assert!(config["BuildDate"].is_string(), "Config.BuildDate: {config}");

    let member = &body["Member"];
    assert_eq!(member["Name"], "self-node");
    assert_eq!(member["Addr"], agent.ip().to_string());
    assert_eq!(member["Port"], 8301);
    assert_eq!(member["Status"], 1, "alive");
    assert_eq!(member["Tags"]["role"], "consul", "a server's role tag");
    assert_eq!(member["Tags"]["dc"], "dc1");

    let stats = body["Stats"].as_object().expect("Stats is an object");
    for section in ["agent", "build", "consul", "raft", "runtime"] {
        let map = stats
            .get(section)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("Stats.{section} missing: {}", body["Stats"]));
        assert!(
            map.values().all(Value::is_string),
            "Stats.{section} values are strings (consul info prints them): {map:?}"
        );
    }
    assert_eq!(body["Stats"]["build"]["version"], version);

    let debug = &body["DebugConfig"];
    assert_eq!(debug["DNSPort"], 8600);
    assert_eq!(debug["HTTPPort"], 8500);
    assert!(debug["GRPCPort"].is_i64(), "DebugConfig.GRPCPort: {debug}");

    let meta = body["Meta"].as_object().expect("Meta is an object");
    assert!(
        meta.contains_key("consul-network-segment"),
        "node meta has consul-network-segment: {meta:?}"
    );
}

#[test]
fn the_startup_banner_and_log_look_like_consuls() {
    let agent = AgentSpec::dev().arg("-node=banner-node").spawn();
    let stdout = agent.stdout();
    assert!(stdout.starts_with("==> Starting Consul agent..."), "banner: {stdout}");
    for needle in [
        "Node name: 'banner-node'",
        "Datacenter: 'dc1'",
        "==> Log data will now stream in as it occurs:",
    ] {
        assert!(stdout.contains(needle), "banner lacks {needle:?}: {stdout}");
    }
    let running = common::process::poll_until(Duration::from_secs(3), Duration::from_millis(50), || {
        let logs = format!("{}{}", agent.stdout(), agent.stderr());
        logs.contains("Consul agent running!").then_some(())
    });
    assert!(
        running.is_some(),
        "no `Consul agent running!` log line\n{}",
        agent.logs_tail()
    );
}

#[test]
fn custom_ports_are_served_and_reported() {
    let agent = AgentSpec::dev().http_port(18500).dns_port(18600).spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    let debug = &r.json()["DebugConfig"];
    assert_eq!(debug["HTTPPort"], 18500);
    assert_eq!(debug["DNSPort"], 18600);
    let answer = agent.dns_udp(
        &format!("{}.node.consul.", r.json()["Config"]["NodeName"].as_str().unwrap()),
        hickory_proto::rr::RecordType::A,
    );
    assert_eq!(answer.metadata.response_code, hickory_proto::op::ResponseCode::NoError);
}

#[test]
fn the_root_path_answers_200() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.get("/");
    r.expect_status(200);
}

#[test]
fn dev_mode_pretty_prints_every_json_response() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    let text = r.text();
    assert!(
        text.contains("\n    \"Config\": {"),
        "4-space indented JSON: {text:.200}"
    );
    assert!(text.ends_with('\n'), "pretty JSON ends with a newline");
    agent.kv_put("p", b"v");
    let text = agent.get("/v1/kv/p").text();
    assert!(text.contains("\n        \"Key\": \"p\""), "{text}");
}

#[test]
fn a_non_dev_agent_answers_compact_json_unless_pretty_is_asked() {
    let data = tempfile::tempdir().expect("data dir");
    let agent = AgentSpec::durable(data.path(), "compact").spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    let compact = r.text();
    assert!(!compact.trim_end().contains('\n'), "compact JSON: {compact:.200}");
    let r = agent.get("/v1/agent/self?pretty");
    r.expect_status(200);
    let pretty = r.text();
    assert!(
        pretty.contains("\n    \"Config\": {"),
        "?pretty indents by 4 spaces: {pretty:.200}"
    );
    assert!(pretty.ends_with('\n'));
    assert_eq!(
        r.json()["Config"],
        serde_json::from_str::<Value>(&compact).unwrap()["Config"]
    );
    assert_eq!(r.json()["Config"]["Server"], true);
    assert_eq!(r.json()["Config"]["NodeName"], "compact");
}

#[test]
fn agent_leave_answers_200_and_stops_both_processes() {
    let mut agent = AgentSpec::dev().spawn();
    let dataplane = agent.wait_dataplane_pid(Duration::from_secs(5));
    let r = agent.put("/v1/agent/leave", b"");
    r.expect_status(200);
    assert!(r.body.is_empty(), "agent writes answer an empty body: {:?}", r.text());
    let status = agent.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some(),
        "the agent still runs 5 s after leave\n{}",
        agent.logs_tail()
    );
    assert!(
        process::wait_pid_gone(dataplane, Duration::from_secs(5)),
        "the data plane outlived the leave"
    );
}
