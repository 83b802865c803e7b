//! Agent configuration files (spec CLI_CONFIG.md §4): `-config-dir` and
//! `-config-file` merging, CLI precedence, unknown keys, bad JSON, ports.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::agent::fresh_loopback_ip;
use common::dns;
use common::process::poll_until;
use common::run::run_bin;
use common::AgentSpec;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// An agent that must refuse to start has this long to exit.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(15);

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.display().to_string()
}

#[test]
fn config_dir_files_merge_in_lexical_order() {
    let dir = tempfile::tempdir().expect("config dir");
    // Written in reverse so creation order cannot pass for lexical order.
    write(dir.path(), "10-override.json", r#"{"node_name": "second"}"#);
    write(
        dir.path(),
        "00-base.json",
        r#"{"datacenter": "dc7", "node_name": "first"}"#,
    );
    write(dir.path(), "zz-notes.txt", "not a config file {");
    let agent = AgentSpec::dev()
        .arg(format!("-config-dir={}", dir.path().display()))
        .spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    let config = &r.json()["Config"];
    assert_eq!(config["Datacenter"], "dc7");
    assert_eq!(config["NodeName"], "second", "the later file wins");
    let answer = agent.dns_udp("second.node.dc7.consul.", RecordType::A);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "{answer}");
}

#[test]
fn config_files_apply_in_order_and_flags_override_them() {
    let dir = tempfile::tempdir().expect("config dir");
    let a = write(dir.path(), "a.json", r#"{"node_name": "from-a", "datacenter": "dca"}"#);
    let b = write(dir.path(), "b.json", r#"{"node_name": "from-b"}"#);
    let agent = AgentSpec::dev()
        .arg(format!("-config-file={a}"))
        .arg("-config-file")
        .arg(b.clone())
        .spawn();
    let config = agent.get("/v1/agent/self").json()["Config"].clone();
    assert_eq!(config["NodeName"], "from-b");
    assert_eq!(config["Datacenter"], "dca");
    drop(agent);

    let agent = AgentSpec::dev()
        .arg(format!("-config-file={b}"))
        .arg("-node=from-flag")
        .spawn();
    assert_eq!(agent.get("/v1/agent/self").json()["Config"]["NodeName"], "from-flag");
}

#[test]
fn an_unknown_key_warns_but_the_agent_starts() {
    let dir = tempfile::tempdir().expect("config dir");
    let file = write(
        dir.path(),
        "odd.json",
        r#"{"totally_unknown_key": 1, "datacenter": "dc3"}"#,
    );
    let agent = AgentSpec::dev().arg(format!("-config-file={file}")).spawn();
    assert_eq!(agent.get("/v1/agent/self").json()["Config"]["Datacenter"], "dc3");
    let warned = poll_until(Duration::from_secs(3), Duration::from_millis(50), || {
        agent.stderr().contains("totally_unknown_key").then_some(())
    });
    assert!(
        warned.is_some(),
        "no warning naming the unknown key\n{}",
        agent.logs_tail()
    );
}

#[test]
fn bad_json_fails_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("config dir");
    let file = write(dir.path(), "broken.json", r#"{"datacenter": "#);
    let ip = fresh_loopback_ip().to_string();
    for how in [
        format!("-config-file={file}"),
        format!("-config-dir={}", dir.path().display()),
    ] {
        let out = run_bin(
            &["agent", "-dev", "-client", &ip, "-bind", &ip, &how],
            &[],
            b"",
            REFUSE_TIMEOUT,
        );
        let status = out
            .status
            .unwrap_or_else(|| panic!("agent with broken config still running after {REFUSE_TIMEOUT:?}: {out:?}"));
        assert!(!status.success(), "{how}: started with broken JSON: {out:?}");
        assert!(
            out.stderr.contains("broken.json"),
            "{how}: error names the file: {out:?}"
        );
    }
}

#[test]
fn ports_dns_minus_one_disables_dns() {
    let dir = tempfile::tempdir().expect("config dir");
    let file = write(dir.path(), "nodns.json", r#"{"ports": {"dns": -1}}"#);
    let agent = AgentSpec::dev().arg(format!("-config-file={file}")).spawn();
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    assert_eq!(r.json()["DebugConfig"]["DNSPort"], -1);
    let query = dns::query("x.node.consul.", RecordType::A, None);
    assert!(
        dns::udp_exchange(agent.dns_addr(), &query, Duration::from_millis(500)).is_err(),
        "DNS answered over UDP on 8600 although disabled"
    );
    assert!(
        TcpStream::connect_timeout(&agent.dns_addr(), Duration::from_secs(1)).is_err(),
        "something listens on TCP 8600 although DNS is disabled"
    );
    agent.get("/v1/status/leader").expect_status(200);
}

#[test]
fn ports_http_from_a_config_file_moves_the_api() {
    let dir = tempfile::tempdir().expect("config dir");
    let file = write(dir.path(), "port.json", r#"{"ports": {"http": 18511}}"#);
    let agent = AgentSpec::dev()
        .arg(format!("-config-file={file}"))
        .expect_http_port(18511)
        .spawn();
    assert_eq!(agent.get("/v1/agent/self").json()["DebugConfig"]["HTTPPort"], 18511);
    let default_port = SocketAddr::new(agent.ip().into(), 8500);
    assert!(
        TcpStream::connect_timeout(&default_port, Duration::from_secs(1)).is_err(),
        "the API still listens on 8500"
    );
}
