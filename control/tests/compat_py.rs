//! A real client library against the agent: the Python `py-consul`
//! package (`import consul`), installed by `.ci/run`.

mod common;

use std::time::Duration;

use common::run::run_program;
use common::AgentSpec;

/// The whole client session must finish within this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Drives KV, blocking, txn, status and agent/self through py-consul and
/// asserts what the library hands back. Prints `OK` at the end.
const SCRIPT: &str = r#"
import base64, sys, threading, time
try:
    import consul
except ImportError:
    sys.exit("py-consul is not installed: run `bash .ci/run` or `pip install py-consul`")

host, port = sys.argv[1], int(sys.argv[2])
c = consul.Consul(host=host, port=port)

leader = c.status.leader()
assert leader == f"{host}:8300", leader
assert c.status.peers() == [leader], c.status.peers()
assert c.agent.self()["Config"]["Datacenter"] == "dc1"

assert c.kv.put("py/a", "hello") is True
index, data = c.kv.get("py/a")
assert data["Key"] == "py/a" and data["Value"] == b"hello", data
assert int(index) == data["ModifyIndex"], (index, data)
assert "Session" not in data, data

index, data = c.kv.get("py/missing")
assert data is None and int(index) >= 1, (index, data)

assert c.kv.put("py/a", "nope", cas=0) is False
assert c.kv.put("py/a", "world", cas=c.kv.get("py/a")[1]["ModifyIndex"]) is True
assert c.kv.get("py/a")[1]["Value"] == b"world"

lock_flag = 0x2DDCCBC058A50C18
assert c.kv.put("py/flags", "f", flags=lock_flag) is True
assert c.kv.get("py/flags")[1]["Flags"] == lock_flag

binary = bytes(range(256))
assert c.kv.put("py/bin", binary) is True
assert c.kv.get("py/bin")[1]["Value"] == binary

assert c.kv.put("py/empty", None) is True
assert c.kv.get("py/empty")[1]["Value"] is None

c.kv.put("py/dir/x", "1")
c.kv.put("py/dir/y", "2")
_, items = c.kv.get("py/dir/", recurse=True)
assert [i["Key"] for i in items] == ["py/dir/x", "py/dir/y"], items
_, keys = c.kv.get("py/", keys=True, separator="/")
assert keys == ["py/a", "py/bin", "py/dir/", "py/empty", "py/flags"], keys

index, _ = c.kv.get("py/a")
def writer():
    time.sleep(0.5)
    c.kv.put("py/a", "changed")
t = threading.Thread(target=writer)
t.start()
start = time.time()
new_index, data = c.kv.get("py/a", index=index, wait="10s")
t.join()
assert int(new_index) > int(index), (index, new_index)
assert data["Value"] == b"changed", data
assert time.time() - start < 5, time.time() - start

start = time.time()
same_index, _ = c.kv.get("py/a", index=new_index, wait="1s")
elapsed = time.time() - start
assert same_index == new_index, (same_index, new_index)
assert 0.95 <= elapsed <= 1.0 * 17 / 16 + 0.75, elapsed

assert c.kv.delete("py/dir", recurse=True) is True
assert c.kv.get("py/dir/", recurse=True)[1] is None

r = c.txn.put([
    {"KV": {"Verb": "set", "Key": "py/t1", "Value": base64.b64encode(b"one").decode()}},
    {"KV": {"Verb": "get", "Key": "py/a"}},
])
assert r["Errors"] is None and len(r["Results"]) == 2, r
assert c.kv.get("py/t1")[1]["Value"] == b"one"

print("OK")
"#;

#[test]
fn py_consul_drives_kv_blocking_txn_and_status() {
    let agent = AgentSpec::dev().spawn();
    let ip = agent.ip().to_string();
    let port = agent.spec.http_port.to_string();
    let out = run_program("python3", &["-c", SCRIPT, &ip, &port], &[], b"", SCRIPT_TIMEOUT);
    assert!(
        out.status.is_some_and(|s| s.success()) && out.stdout.trim() == "OK",
        "py-consul session failed ({:?}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr,
        agent.logs_tail()
    );
}

/// Sessions and KV locks through py-consul (its lower-case create keys,
/// `acquire=`/`release=`, info, node, renew, destroy). Prints `OK`.
const SESSION_SCRIPT: &str = r#"
import sys
import consul

host, port = sys.argv[1], int(sys.argv[2])
c = consul.Consul(host=host, port=port)
node = c.agent.self()["Config"]["NodeName"]

sid = c.session.create(name="py-lock", ttl=30, lock_delay=0)
assert isinstance(sid, str) and len(sid) == 36, sid
_, s = c.session.info(sid)
assert s["Name"] == "py-lock" and s["TTL"] == "30s" and s["LockDelay"] == 0, s
assert s["Node"] == node and s["Behavior"] == "release" and s["NodeChecks"] == ["serfHealth"], s
_, listed = c.session.list()
assert [x["ID"] for x in listed] == [sid], listed
_, mine = c.session.node(node)
assert [x["ID"] for x in mine] == [sid], mine
assert c.session.renew(sid)["ID"] == sid

other = c.session.create()
assert c.kv.put("py/lock", "held", acquire=sid) is True
_, e = c.kv.get("py/lock")
assert e["Session"] == sid and e["LockIndex"] == 1, e
assert c.kv.put("py/lock", "mine", acquire=other) is False
assert c.kv.put("py/lock", "free", release=sid) is True
_, e = c.kv.get("py/lock")
assert "Session" not in e and e["Value"] == b"free", e

assert c.session.destroy(sid) is True
_, gone = c.session.info(sid)
assert gone is None, gone
assert c.session.destroy(other) is True
assert c.session.list()[1] == [], c.session.list()
print("OK")
"#;

#[test]
fn py_consul_drives_sessions_and_kv_locks() {
    let agent = AgentSpec::dev().spawn();
    let ip = agent.ip().to_string();
    let port = agent.spec.http_port.to_string();
    let out = run_program("python3", &["-c", SESSION_SCRIPT, &ip, &port], &[], b"", SCRIPT_TIMEOUT);
    assert!(
        out.status.is_some_and(|s| s.success()) && out.stdout.trim() == "OK",
        "py-consul session script failed ({:?}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr,
        agent.logs_tail()
    );
}
