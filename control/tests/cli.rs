//! The Consul-compatible client commands (spec CLI_CONFIG.md §1 and §3):
//! `kv put/get/delete` texts and exit codes against a running agent, and
//! `version`.

mod common;

use std::time::Duration;

use common::run::{run_bin, RunOutput};
use common::{Agent, AgentSpec};

/// A CLI command against a local agent must finish well within this.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

/// `proconsul kv <verb> -http-addr=<agent> args...`.
fn kv(agent: &Agent, verb: &str, args: &[&str]) -> RunOutput {
    kv_stdin(agent, verb, args, b"")
}

fn kv_stdin(agent: &Agent, verb: &str, args: &[&str], stdin: &[u8]) -> RunOutput {
    let addr = agent.http_addr_flag();
    let mut all = vec!["kv", verb, addr.as_str()];
    all.extend_from_slice(args);
    run_bin(&all, &[], stdin, CLI_TIMEOUT)
}

#[track_caller]
fn assert_ok(out: &RunOutput, stdout: &str) {
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, stdout, "{out:?}");
}

#[track_caller]
fn assert_fails_with(out: &RunOutput, stderr_contains: &str) {
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains(stderr_contains),
        "stderr lacks {stderr_contains:?}: {out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn kv_put_then_get_print_consuls_texts() {
    let agent = dev();
    assert_ok(
        &kv(&agent, "put", &["cli/key", "hello world"]),
        "Success! Data written to: cli/key\n",
    );
    assert_eq!(agent.get("/v1/kv/cli/key?raw").body, b"hello world");
    assert_ok(&kv(&agent, "get", &["cli/key"]), "hello world\n");
    // A leading slash is stripped, as Consul does.
    assert_ok(&kv(&agent, "get", &["/cli/key"]), "hello world\n");
}

#[test]
fn kv_get_of_a_missing_key_fails_with_exit_1() {
    let agent = dev();
    assert_fails_with(
        &kv(&agent, "get", &["cli/missing"]),
        "Error! No key exists at: cli/missing",
    );
}

#[test]
fn kv_get_of_an_empty_value_prints_no_value_and_succeeds() {
    let agent = dev();
    agent.kv_put("cli/empty", b"");
    let out = kv(&agent, "get", &["cli/empty"]);
    assert_eq!(out.code(), 0, "an existing empty key is not an error: {out:?}");
    assert!(out.stdout.trim().is_empty(), "{out:?}");
}

#[test]
fn kv_delete_prints_consuls_texts() {
    let agent = dev();
    agent.kv_put("cli/del", b"v");
    assert_ok(&kv(&agent, "delete", &["cli/del"]), "Success! Deleted key: cli/del\n");
    agent.get("/v1/kv/cli/del").expect_status(404);
    assert_fails_with(&kv(&agent, "get", &["cli/del"]), "Error! No key exists at: cli/del");

    agent.kv_put("cli/tree/a", b"v");
    agent.kv_put("cli/tree/b/c", b"v");
    assert_ok(
        &kv(&agent, "delete", &["-recurse", "cli/tree/"]),
        "Success! Deleted keys with prefix: cli/tree/\n",
    );
    agent.get("/v1/kv/cli/tree/?recurse").expect_status(404);
}

#[test]
fn kv_put_cas_reports_success_and_failure() {
    let agent = dev();
    assert_ok(
        &kv(&agent, "put", &["-cas", "-modify-index=0", "cli/cas", "first"]),
        "Success! Data written to: cli/cas\n",
    );
    let index = agent.kv_modify_index("cli/cas");
    let stale = format!("-modify-index={}", index + 1000);
    assert_fails_with(
        &kv(&agent, "put", &["-cas", &stale, "cli/cas", "second"]),
        "Error! Did not write to cli/cas: CAS failed",
    );
    assert_eq!(agent.get("/v1/kv/cli/cas?raw").body, b"first");
    let current = format!("-modify-index={index}");
    assert_ok(
        &kv(&agent, "put", &["-cas", &current, "cli/cas", "third"]),
        "Success! Data written to: cli/cas\n",
    );
    assert_eq!(agent.get("/v1/kv/cli/cas?raw").body, b"third");
}

#[test]
fn kv_delete_cas_reports_failure_and_refuses_recurse() {
    let agent = dev();
    let index = agent.kv_put("cli/dcas", b"v");
    let stale = format!("-modify-index={}", index + 1000);
    assert_fails_with(
        &kv(&agent, "delete", &["-cas", &stale, "cli/dcas"]),
        "Error! Did not delete key cli/dcas: CAS failed",
    );
    agent.get("/v1/kv/cli/dcas").expect_status(200);
    assert_fails_with(
        &kv(&agent, "delete", &["-cas", "-recurse", "cli/dcas"]),
        "Cannot specify both -cas and -recurse!",
    );
    let current = format!("-modify-index={index}");
    assert_ok(
        &kv(&agent, "delete", &["-cas", &current, "cli/dcas"]),
        "Success! Deleted key: cli/dcas\n",
    );
}

#[test]
fn kv_get_detailed_prints_padded_fields() {
    let agent = dev();
    assert_ok(
        &kv(&agent, "put", &["-flags=42", "cli/det", "hello"]),
        "Success! Data written to: cli/det\n",
    );
    let entry = agent.get("/v1/kv/cli/det").json()[0].clone();
    assert_eq!(entry["Flags"], 42, "-flags is sent as ?flags");
    let index = entry["ModifyIndex"].as_u64().unwrap();
    let expected: String = [
        ("CreateIndex", index.to_string()),
        ("Flags", "42".into()),
        ("Key", "cli/det".into()),
        ("LockIndex", "0".into()),
        ("ModifyIndex", index.to_string()),
        ("Session", "-".into()),
        ("Value", "hello".into()),
    ]
    .iter()
    .map(|(name, value)| format!("{name:<17}{value}\n"))
    .collect();
    assert_ok(&kv(&agent, "get", &["-detailed", "cli/det"]), &expected);
}

#[test]
fn kv_get_recurse_and_keys_list_entries() {
    let agent = dev();
    agent.kv_put("cli/r/a", b"1");
    agent.kv_put("cli/r/b", b"2");
    agent.kv_put("cli/r/sub/c", b"3");
    assert_ok(
        &kv(&agent, "get", &["-recurse", "cli/r/"]),
        "cli/r/a:1\ncli/r/b:2\ncli/r/sub/c:3\n",
    );
    assert_ok(
        &kv(&agent, "get", &["-keys", "cli/r/"]),
        "cli/r/a\ncli/r/b\ncli/r/sub/\n",
    );
    assert_ok(
        &kv(&agent, "get", &["-keys", "-separator=", "cli/r/"]),
        "cli/r/a\ncli/r/b\ncli/r/sub/c\n",
    );
}

#[test]
fn kv_put_reads_values_from_a_file_and_from_stdin() {
    let agent = dev();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("value.txt");
    std::fs::write(&file, b"from a file\n").expect("write value file");
    let at_file = format!("@{}", file.display());
    assert_ok(
        &kv(&agent, "put", &["cli/file", &at_file]),
        "Success! Data written to: cli/file\n",
    );
    assert_eq!(agent.get("/v1/kv/cli/file?raw").body, b"from a file\n");
    assert_ok(
        &kv_stdin(&agent, "put", &["cli/stdin", "-"], b"from stdin"),
        "Success! Data written to: cli/stdin\n",
    );
    assert_eq!(agent.get("/v1/kv/cli/stdin?raw").body, b"from stdin");
}

#[test]
fn missing_key_arguments_fail_with_exit_1() {
    let agent = dev();
    assert_fails_with(&kv(&agent, "get", &[]), "Error! Missing KEY argument");
    assert_fails_with(&kv(&agent, "put", &[]), "Error! Missing KEY argument");
}

#[test]
fn consul_http_addr_selects_the_agent() {
    let agent = dev();
    agent.kv_put("cli/env", b"via env");
    let addr = agent.http_addr().to_string();
    let out = run_bin(
        &["kv", "get", "cli/env"],
        &[("CONSUL_HTTP_ADDR", &addr)],
        b"",
        CLI_TIMEOUT,
    );
    assert_ok(&out, "via env\n");
    let url = format!("http://{addr}");
    let out = run_bin(
        &["kv", "get", "cli/env"],
        &[("CONSUL_HTTP_ADDR", &url)],
        b"",
        CLI_TIMEOUT,
    );
    assert_ok(&out, "via env\n");
}

#[test]
fn an_unreachable_agent_fails_with_exit_1() {
    // Nothing listens on port 1 of a fresh loopback address.
    let ip = common::agent::fresh_loopback_ip();
    let addr = format!("-http-addr={ip}:1");
    let out = run_bin(&["kv", "get", &addr, "k"], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "stderr says why: {out:?}"
    );
}

#[test]
fn version_prints_a_semver_and_the_protocol_line() {
    let out = run_bin(&["version"], &[], b"", CLI_TIMEOUT);
    assert_eq!(out.code(), 0, "{out:?}");
    let first = out.stdout.lines().next().unwrap_or_default();
    let version = first
        .strip_prefix("Consul v")
        .or_else(|| first.strip_prefix("Proconsul v"))
        .unwrap_or_else(|| panic!("first line {first:?} is not `Consul vX.Y.Z`"));
    let core = version.split(['-', '+', ' ']).next().unwrap_or("");
    assert_eq!(
        core.split('.').filter(|p| p.parse::<u32>().is_ok()).count(),
        3,
        "{first:?} carries no semver"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("Protocol 2 spoken by default")),
        "{out:?}"
    );
}
