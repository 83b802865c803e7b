//! A durable server (`-server -bootstrap -data-dir`): clean stops, restarts
//! from the same data dir, and crash recovery keep every acknowledged write
//! with its indexes (spec BLOCKING.md §5: indexes persist across restarts).

mod common;

use std::time::Duration;

use base64::Engine;
use common::agent::STOP_TIMEOUT;
use common::process;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

/// How long the data plane may outlive a control plane that stopped cleanly.
const DATAPLANE_EXIT_TIMEOUT: Duration = Duration::from_secs(5);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes a varied data set: plain puts, updates, flags, binary values,
/// deletes, CAS and a transaction. Returns the highest index acknowledged.
fn write_data_set(agent: &Agent) -> u64 {
    let mut highest = 0;
    for i in 0..30u64 {
        let mut value = format!("value-{i}-").into_bytes();
        value.extend([0u8, 255, i as u8]);
        let r = agent.put(&format!("/v1/kv/d/{i:02}?flags={}", i * 1_000_000_007), &value);
        r.expect_status(200);
        assert_eq!(r.json(), json!(true));
    }
    for i in [3, 4, 5] {
        highest = highest.max(agent.kv_put(&format!("d/{i:02}"), format!("updated-{i}").as_bytes()));
    }
    agent.delete("/v1/kv/d/10").expect_status(200);
    agent.delete("/v1/kv/d/2?recurse").expect_status(200);
    let index = agent.kv_modify_index("d/11");
    let r = agent.put(&format!("/v1/kv/d/11?cas={index}"), b"cas-updated");
    assert_eq!(r.json(), json!(true));
    let r = agent.put(
        "/v1/txn",
        json!([
            {"KV": {"Verb": "set", "Key": "txn/a", "Value": b64(b"ta")}},
            {"KV": {"Verb": "set", "Key": "txn/b", "Value": b64(b"tb"), "Flags": u64::MAX}},
            {"KV": {"Verb": "delete", "Key": "d/12"}},
        ])
        .to_string()
        .as_bytes(),
    );
    r.expect_status(200);
    highest = highest.max(agent.get("/v1/kv/?recurse").index());
    highest.max(agent.get("/v1/kv/d/10").index())
}

/// Everything a client can observe about the KV store.
fn kv_snapshot(agent: &Agent) -> Value {
    let r = agent.get("/v1/kv/?recurse");
    r.expect_status(200);
    r.json()
}

fn node_id(agent: &Agent) -> String {
    agent.get("/v1/agent/self").json()["Config"]["NodeID"]
        .as_str()
        .expect("NodeID")
        .to_string()
}

#[track_caller]
fn assert_clean_stop(agent: &mut Agent) {
    let dataplane = agent.wait_dataplane_pid(Duration::from_secs(5));
    let status = agent.terminate(STOP_TIMEOUT);
    assert!(
        status.success(),
        "SIGTERM is a clean stop, got {status}\n{}",
        agent.logs_tail()
    );
    assert!(
        process::wait_pid_gone(dataplane, DATAPLANE_EXIT_TIMEOUT),
        "the data plane outlived a clean stop"
    );
}

#[test]
fn sigterm_stops_both_processes_cleanly() {
    let mut dev = AgentSpec::dev().spawn();
    assert_clean_stop(&mut dev);
    let data = tempfile::tempdir().expect("data dir");
    let mut durable = AgentSpec::durable(data.path(), "term").spawn();
    assert_clean_stop(&mut durable);
}

#[test]
fn acknowledged_writes_survive_clean_restarts_with_the_same_indexes() {
    let data = tempfile::tempdir().expect("data dir");
    let mut agent = AgentSpec::durable(data.path(), "durable-node").spawn();
    let id = node_id(&agent);
    let mut highest = write_data_set(&agent);
    let before = kv_snapshot(&agent);
    assert_eq!(
        before.as_array().map(|a| a.len()),
        Some(30 - 1 - 10 - 1 + 2),
        "data set shape"
    );
    let missing = agent.get("/v1/kv/d/10");
    missing.expect_status(404);
    let missing_index = missing.index();

    for round in 0..2 {
        assert_clean_stop(&mut agent);
        agent.respawn();
        assert_eq!(kv_snapshot(&agent), before, "round {round}: KV differs after restart");
        let r = agent.get("/v1/kv/d/10");
        r.expect_status(404);
        assert!(
            r.index() >= missing_index,
            "round {round}: X-Consul-Index went backwards ({} < {missing_index})",
            r.index()
        );
        assert_eq!(node_id(&agent), id, "round {round}: the node ID is persisted");
        let scratch = format!("scratch/{round}");
        let index = agent.kv_put(&scratch, b"after restart");
        assert!(
            index > highest,
            "round {round}: a write after restart got index {index} <= {highest}"
        );
        highest = index;
        agent.delete(&format!("/v1/kv/{scratch}")).expect_status(200);
        highest = highest.max(agent.get(&format!("/v1/kv/{scratch}")).index());
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_of_both_processes() {
    let data = tempfile::tempdir().expect("data dir");
    let mut agent = AgentSpec::durable(data.path(), "crash-node").spawn();
    let highest = write_data_set(&agent);
    let before = kv_snapshot(&agent);
    let dataplane = agent.wait_dataplane_pid(Duration::from_secs(5));
    agent.kill_control_plane();
    process::kill9(dataplane);
    assert!(process::wait_pid_gone(dataplane, Duration::from_secs(5)));
    agent.respawn();
    assert_eq!(kv_snapshot(&agent), before, "acknowledged writes lost in a crash");
    let index = agent.kv_put("after/crash", b"v");
    assert!(index > highest, "index {index} after the crash is not above {highest}");
}
