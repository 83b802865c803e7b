//! Services and checks from config files (spec CLI_CONFIG.md, HTTP.md §2):
//! JSON and HCL definitions at start, SIGHUP and `/v1/agent/reload`
//! diffing (unchanged services keep their index), invalid definitions.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::process::poll_until;
use common::{Agent, AgentSpec};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(15);

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn services(agent: &Agent) -> Value {
    agent.get("/v1/agent/services").json()
}

fn catalog_modify_index(agent: &Agent, service: &str) -> u64 {
    let v = agent.get(&format!("/v1/catalog/service/{service}")).json();
    v[0]["ModifyIndex"]
        .as_u64()
        .unwrap_or_else(|| panic!("{service} not in the catalog: {v}"))
}

fn agent_with_dir(dir: &Path) -> Agent {
    AgentSpec::dev().arg(format!("-config-dir={}", dir.display())).spawn()
}

#[test]
fn json_and_hcl_definitions_load_at_start() {
    let dir = tempfile::tempdir().expect("config dir");
    write(
        dir.path(),
        "web.json",
        r#"{"service":{"name":"web","port":80,"tags":["a"],"check":{"ttl":"30s"}}}"#,
    );
    write(
        dir.path(),
        "db.hcl",
        r#"
        service {
          name = "db"
          port = 5432
          meta = { Engine = "pg" }
        }
        check {
          id   = "disk"
          name = "Disk"
          ttl  = "30s"
        }
        "#,
    );
    let agent = agent_with_dir(dir.path());
    let s = services(&agent);
    assert_eq!(s["web"]["Port"], 80);
    assert_eq!(s["db"]["Port"], 5432);
    assert_eq!(s["db"]["Meta"]["Engine"], "pg");
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["service:web"]["ServiceID"], "web");
    assert_eq!(checks["disk"]["Name"], "Disk");
    assert!(catalog_modify_index(&agent, "web") > 0);
    assert!(catalog_modify_index(&agent, "db") > 0);
}

#[test]
fn sighup_and_reload_diff_definitions() {
    let dir = tempfile::tempdir().expect("config dir");
    write(dir.path(), "keep.json", r#"{"service":{"name":"keep","port":1}}"#);
    write(dir.path(), "gone.json", r#"{"service":{"name":"gone","port":2}}"#);
    let agent = agent_with_dir(dir.path());
    let keep_index = catalog_modify_index(&agent, "keep");
    // An API service is not the files' business.
    assert_eq!(
        agent.put("/v1/agent/service/register", br#"{"Name":"api"}"#).status,
        200
    );

    fs::remove_file(dir.path().join("gone.json")).expect("remove gone.json");
    write(dir.path(), "new.hcl", "service {\n  name = \"new\"\n  port = 3\n}\n");
    // SAFETY: plain kill(2) on the control plane this test started.
    let rc = unsafe { libc::kill(agent.control_pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP");
    let reloaded = poll_until(WAIT, POLL, || {
        let s = services(&agent);
        (s.get("new").is_some() && s.get("gone").is_none()).then_some(s)
    });
    let s = reloaded.expect("SIGHUP did not apply the new definitions");
    assert!(s.get("keep").is_some() && s.get("api").is_some(), "{s}");
    assert_eq!(agent.get("/v1/catalog/service/gone").json(), serde_json::json!([]));
    assert_eq!(
        catalog_modify_index(&agent, "keep"),
        keep_index,
        "unchanged service not rewritten"
    );

    // `/v1/agent/reload`: a broken definition is a 500 and changes nothing.
    write(dir.path(), "bad.json", r#"{"service":{"port":9}}"#);
    let r = agent.put("/v1/agent/reload", b"");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("Missing service name"), "{}", r.text());
    assert!(services(&agent).get("new").is_some());
    fs::remove_file(dir.path().join("bad.json")).expect("remove bad.json");
    write(dir.path(), "keep.json", r#"{"service":{"name":"keep","port":11}}"#);
    let r = agent.put("/v1/agent/reload", b"");
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    assert_eq!(
        services(&agent)["keep"]["Port"],
        11,
        "a changed definition is re-registered"
    );
}

#[test]
fn invalid_definitions_stop_the_start() {
    let dir = tempfile::tempdir().expect("config dir");
    write(
        dir.path(),
        "script.json",
        r#"{"check":{"name":"s","args":["/bin/true"],"interval":"10s"}}"#,
    );
    let mut agent = AgentSpec::dev()
        .arg(format!("-config-dir={}", dir.path().display()))
        .start();
    let status = agent
        .wait_exit(Duration::from_secs(20))
        .expect("agent should refuse to start");
    assert!(!status.success());
    assert!(agent.stderr().contains("Scripts are disabled"), "{}", agent.stderr());

    // Allowed by enable_local_script_checks (config files only).
    write(dir.path(), "allow.json", r#"{"enable_local_script_checks":true}"#);
    let agent = AgentSpec::dev()
        .arg(format!("-config-dir={}", dir.path().display()))
        .spawn();
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["s"]["Type"], "script");
    let passing = poll_until(WAIT, POLL, || {
        let c = agent.get("/v1/agent/checks").json();
        (c["s"]["Status"] == "passing").then_some(())
    });
    assert!(passing.is_some(), "script check never passed");
}
