//! The service-discovery CLI verbs against a real agent (spec CLI_CONFIG.md
//! §3): `services register|deregister` (flags and JSON/HCL files),
//! `catalog services|nodes|datacenters`, `maint`, `reload`, and `validate`.

mod common;

use std::time::Duration;

use common::run::{run_bin, RunOutput};
use common::{Agent, AgentSpec};

/// A CLI command against a local agent must finish well within this.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

/// `proconsul <args...> -http-addr=<agent>`, the address flag right after
/// the verb (and subcommand) words.
fn cli(agent: &Agent, words: &[&str], args: &[&str]) -> RunOutput {
    let addr = agent.http_addr_flag();
    let mut all: Vec<&str> = words.to_vec();
    all.push(addr.as_str());
    all.extend_from_slice(args);
    run_bin(&all, &[], b"", CLI_TIMEOUT)
}

#[track_caller]
fn assert_ok(out: &RunOutput, stdout: &str) {
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, stdout, "{out:?}");
}

fn node_name(agent: &Agent) -> String {
    agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .expect("NodeName")
        .to_string()
}

#[test]
fn register_by_flags_shows_in_the_catalog_and_deregister_removes_it() {
    let agent = dev();
    assert_ok(
        &cli(
            &agent,
            &["services", "register"],
            &[
                "-name=web",
                "-id=web-1",
                "-port=8080",
                "-tag=v2",
                "-tag=rails",
                "-meta=team=a",
            ],
        ),
        "Registered service: web\n",
    );
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["web-1"]["Service"], "web");
    assert_eq!(services["web-1"]["Port"], 8080);
    assert_eq!(services["web-1"]["Meta"]["team"], "a");

    let out = cli(&agent, &["catalog", "services"], &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    let names: Vec<&str> = out.stdout.lines().collect();
    assert!(names.contains(&"web"), "{out:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "names are sorted");

    let out = cli(&agent, &["catalog", "services"], &["-tags"]);
    let web_line = out.stdout.lines().find(|l| l.starts_with("web ")).expect("web row");
    assert!(
        web_line.ends_with("  rails,v2"),
        "tags sorted and comma-joined: {out:?}"
    );

    let node = node_name(&agent);
    let out = cli(&agent, &["catalog", "services"], &[&format!("-node={node}")]);
    assert!(out.stdout.lines().any(|l| l == "web"), "{out:?}");

    let out = cli(&agent, &["catalog", "nodes"], &["-service=web"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Node", "ID", "Address", "DC"]
    );
    assert!(lines[1].starts_with(&node), "{out:?}");
    assert!(lines[1].contains(&agent.ip().to_string()), "{out:?}");
    assert!(lines[1].ends_with("dc1"), "{out:?}");

    assert_ok(
        &cli(&agent, &["services", "deregister"], &["-id=web-1"]),
        "Deregistered service: web-1\n",
    );
    assert_eq!(agent.get("/v1/agent/services").json(), serde_json::json!({}));
    let out = cli(&agent, &["catalog", "nodes"], &["-service=web"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "No nodes match the given query - try expanding your search.\n"
    );

    let out = cli(&agent, &["services", "deregister"], &["-id=web-1"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error deregistering service \"web-1\": Unexpected response code: 404"),
        "{out:?}"
    );
}

#[test]
fn register_and_deregister_from_json_and_hcl_files() {
    let agent = dev();
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("api.json");
    std::fs::write(
        &json_file,
        r#"{"service":{"name":"api","id":"api-1","port":9000,"tags":["blue"],
            "check":{"ttl":"30s","DeregisterCriticalServiceAfter":"90m"}}}"#,
    )
    .unwrap();
    let hcl_file = dir.path().join("db.hcl");
    std::fs::write(
        &hcl_file,
        "service {\n  name = \"db\"\n  port = 5432\n  tags = [\"primary\"]\n}\n",
    )
    .unwrap();
    let json_path = json_file.display().to_string();
    let hcl_path = hcl_file.display().to_string();

    assert_ok(
        &cli(&agent, &["services", "register"], &[&json_path, &hcl_path]),
        "Registered service: api\nRegistered service: db\n",
    );
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["api-1"]["Port"], 9000, "{services}");
    assert_eq!(services["db"]["Tags"], serde_json::json!(["primary"]), "{services}");
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["service:api-1"]["ServiceID"], "api-1", "{checks}");

    let out = cli(&agent, &["catalog", "services"], &[]);
    assert!(out.stdout.lines().any(|l| l == "api"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l == "db"), "{out:?}");

    assert_ok(
        &cli(&agent, &["services", "deregister"], &[&json_path, &hcl_path]),
        "Deregistered service: api-1\nDeregistered service: db\n",
    );
    assert_eq!(agent.get("/v1/agent/services").json(), serde_json::json!({}));
}

#[test]
fn catalog_nodes_and_datacenters() {
    let agent = dev();
    assert_ok(&cli(&agent, &["catalog", "datacenters"], &[]), "dc1\n");

    let node = node_name(&agent);
    let out = cli(&agent, &["catalog", "nodes"], &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["Node", "ID", "Address", "DC"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], node);
    assert_eq!(row[1].len(), 8, "the ID is cut at its first dash: {out:?}");
    assert_eq!(row[2], agent.ip().to_string());
    assert_eq!(row[3], "dc1");

    let out = cli(&agent, &["catalog", "nodes"], &["-detailed"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("Node ") && lines[0].contains("TaggedAddresses") && lines[0].ends_with("Meta"));
    let ip = agent.ip().to_string();
    assert!(lines[1].contains(&format!("lan={ip}")), "{out:?}");
    let full_id = agent.get("/v1/agent/self").json()["Config"]["NodeID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !full_id.is_empty() {
        assert!(lines[1].contains(&full_id), "the full ID in detailed mode: {out:?}");
    }

    let out = cli(&agent, &["catalog", "nodes"], &["-node-meta=no-such-key=x"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stderr,
        "No nodes match the given query - try expanding your search.\n"
    );

    let out = cli(&agent, &["catalog", "nodes"], &["-node-meta=missing-equals"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains("Missing \"=\" value in argument: missing-equals"),
        "{out:?}"
    );
}

#[test]
fn maint_enables_lists_and_disables_node_and_service_maintenance() {
    let agent = dev();
    let node = node_name(&agent);
    assert_ok(
        &cli(&agent, &["services", "register"], &["-name=web", "-port=80"]),
        "Registered service: web\n",
    );
    assert_ok(&cli(&agent, &["maint"], &[]), "");
    assert_ok(
        &cli(&agent, &["maint"], &["-enable", "-reason=patch day"]),
        "Node maintenance is now enabled\n",
    );
    assert_ok(
        &cli(&agent, &["maint"], &["-enable", "-service=web", "-reason=deploying"]),
        "Service maintenance is now enabled for \"web\"\n",
    );
    assert_ok(
        &cli(&agent, &["maint"], &[]),
        &format!("Node:\n  Name:   {node}\n  Reason: patch day\n\nService:\n  ID:     web\n  Reason: deploying\n\n"),
    );
    assert_ok(
        &cli(&agent, &["maint"], &["-disable"]),
        "Node maintenance is now disabled\n",
    );
    assert_ok(
        &cli(&agent, &["maint"], &["-disable", "-service=web"]),
        "Service maintenance is now disabled for \"web\"\n",
    );
    assert_ok(&cli(&agent, &["maint"], &[]), "");

    let out = cli(&agent, &["maint"], &["-enable", "-service=nope"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error enabling service maintenance: Unexpected response code: 404"),
        "{out:?}"
    );
}

#[test]
fn reload_and_unreachable_agents() {
    let agent = dev();
    assert_ok(&cli(&agent, &["reload"], &[]), "Configuration reload triggered\n");

    // Nothing listens on port 1 of a fresh loopback address.
    let dead = format!("-http-addr={}:1", common::agent::fresh_loopback_ip());
    let out = run_bin(&["reload", &dead], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.starts_with("Error reloading: Put \"http://"), "{out:?}");
    assert!(out.stderr.contains("connection refused"), "{out:?}");
    let out = run_bin(&["catalog", "services", &dead], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.starts_with("Error listing services: Get \"http://"),
        "{out:?}"
    );
}

#[test]
fn validate_reports_valid_and_invalid_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        format!(
            r#"{{"data_dir":"{}","bind_addr":"127.0.0.1","service":{{"name":"web","port":80}}}}"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let good = good.display().to_string();
    let out = run_bin(&["validate", &good], &[], b"", CLI_TIMEOUT);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "Configuration is valid!\n"),
        "{out:?}"
    );
    let out = run_bin(&["validate", "-quiet", &good], &[], b"", CLI_TIMEOUT);
    assert_eq!((out.code(), out.stdout.as_str()), (0, ""), "{out:?}");

    let bad = dir.path().join("bad.hcl");
    std::fs::write(&bad, "datacenter = \n").unwrap();
    let out = run_bin(&["validate", &bad.display().to_string()], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.starts_with("Config validation failed: "), "{out:?}");
}
