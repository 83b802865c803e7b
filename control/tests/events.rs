//! User events over real sockets: `PUT /v1/event/fire/<name>` and
//! `GET /v1/event/list` with Consul's shapes, errors and hash-style
//! blocking index, a list watcher woken by a new event and by nothing
//! else, and events reaching the other agents of a cluster.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::cluster::{client_spec, eventually, server_spec, start_all};
use common::{Agent, AgentSpec};
use serde_json::Value;
use tempfile::TempDir;

/// A woken watcher must answer well within this.
const WAKE_DEADLINE: Duration = Duration::from_secs(5);

/// Consul's list index for an event ID: first 64 bits XOR last 64 bits.
fn uuid_index(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    assert_eq!(hex.len(), 32, "{id}");
    u64::from_str_radix(&hex[..16], 16).unwrap() ^ u64::from_str_radix(&hex[16..], 16).unwrap()
}

fn fire(agent: &Agent, target: &str, payload: &[u8]) -> Value {
    let r = agent.put(target, payload);
    r.expect_status(200);
    r.json()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fire_and_list_with_consuls_shapes_and_errors() {
    let agent = AgentSpec::dev().spawn();
    let empty = agent.get("/v1/event/list");
    empty.expect_status(200);
    assert_eq!(empty.json(), Value::Array(vec![]));
    assert_eq!(empty.header("X-Consul-Index"), Some("1"), "an empty list is index 1");

    let fired = fire(&agent, "/v1/event/fire/deploy", b"v1.2.3");
    let id = fired["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a version-4 UUID: {id}");
    assert_eq!(fired["Name"], "deploy");
    assert_eq!(fired["Payload"], "djEuMi4z");
    assert_eq!(fired["NodeFilter"], "");
    assert_eq!(fired["Version"], 1);
    assert_eq!(fired["LTime"], 0);
    let bare = fire(&agent, "/v1/event/fire/restart", b"");
    assert_eq!(bare["Payload"], Value::Null);

    let list = agent.get("/v1/event/list");
    let events = list.json();
    assert_eq!(names(&events), ["deploy", "restart"], "oldest first");
    assert_eq!(events[0]["ID"], id.as_str());
    assert_eq!(events[0]["Payload"], "djEuMi4z");
    assert!(events[0]["LTime"].as_u64().unwrap() > 0);
    assert!(events[1]["LTime"].as_u64() > events[0]["LTime"].as_u64());
    let newest = events[1]["ID"].as_str().unwrap();
    assert_eq!(list.index(), uuid_index(newest));
    let only_deploy = agent.get("/v1/event/list?name=deploy");
    assert_eq!(names(&only_deploy.json()), ["deploy"]);
    assert_eq!(only_deploy.index(), uuid_index(&id));

    // Filters are applied by the listing agent to itself.
    let node = agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .unwrap()
        .to_string();
    fire(&agent, &format!("/v1/event/fire/mine?node=^{node}$"), b"");
    fire(&agent, "/v1/event/fire/theirs?node=^some-other-node$", b"");
    fire(&agent, "/v1/event/fire/no-such-service?service=^nothing-here$", b"");
    let listed = names(&agent.get("/v1/event/list").json());
    assert!(listed.contains(&"mine".to_string()), "{listed:?}");
    assert!(!listed.contains(&"theirs".to_string()), "{listed:?}");
    assert!(!listed.contains(&"no-such-service".to_string()), "{listed:?}");

    // Bad input: Consul's statuses and texts.
    let r = agent.put("/v1/event/fire/", b"");
    r.expect_status(400);
    assert_eq!(r.text(), "Missing name");
    let r = agent.put("/v1/event/fire/x?tag=v1", b"");
    r.expect_status(500);
    assert_eq!(r.text(), "Cannot provide tag filter without service filter");
    let r = agent.put("/v1/event/fire/x?node=(", b"");
    r.expect_status(500);
    assert!(r.text().starts_with("Invalid node filter: "), "{}", r.text());
    let r = agent.put("/v1/event/fire/x", &[b'p'; 600]);
    r.expect_status(500);
    assert!(
        r.text().contains("exceeds configured limit of 512 bytes"),
        "{}",
        r.text()
    );
    agent.get("/v1/event/fire/x").expect_status(405);
    agent.put("/v1/event/list", b"").expect_status(405);
    let r = agent.get("/v1/event/list?index=1&wait=bogus");
    r.expect_status(400);
    assert_eq!(r.text().trim(), "Invalid wait time");
    let after = names(&agent.get("/v1/event/list").json());
    assert_eq!(after, listed, "refused events were not recorded");
}

#[test]
fn a_list_watcher_wakes_on_a_new_event_and_not_on_other_writes() {
    let agent = AgentSpec::dev().spawn();
    fire(&agent, "/v1/event/fire/first", b"");
    let index = agent.get("/v1/event/list").index();

    // A timeout answers 200 with the unchanged index.
    let start = Instant::now();
    let r = agent.get(&format!("/v1/event/list?index={index}&wait=300ms"));
    r.expect_status(200);
    assert_eq!(r.index(), index);
    assert!(start.elapsed() >= Duration::from_millis(300), "{:?}", start.elapsed());

    thread::scope(|s| {
        let watcher = s.spawn(|| {
            let r = agent.request_timeout(
                "GET",
                &format!("/v1/event/list?index={index}&wait=30s"),
                &[],
                b"",
                Duration::from_secs(40),
            );
            (r, Instant::now())
        });
        thread::sleep(Duration::from_millis(500));
        agent.kv_put("unrelated", b"x");
        fire(&agent, "/v1/event/fire/elsewhere?node=^not-this-node$", b"");
        thread::sleep(Duration::from_millis(700));
        assert!(
            !watcher.is_finished(),
            "woken by a KV write or an event not for this agent"
        );
        let fired = fire(&agent, "/v1/event/fire/second", b"");
        let fired_at = Instant::now();
        let (r, answered_at) = watcher.join().expect("watcher");
        r.expect_status(200);
        assert_eq!(r.index(), uuid_index(fired["ID"].as_str().unwrap()));
        assert_eq!(names(&r.json()), ["first", "second"]);
        assert!(answered_at.saturating_duration_since(fired_at) < WAKE_DEADLINE);
    });
}

#[test]
fn events_reach_the_other_agents_of_a_cluster() {
    let dir = TempDir::new().unwrap();
    let server_ip = fresh_loopback_ip();
    let client_ip = fresh_loopback_ip();
    let agents = start_all(vec![
        server_spec(&dir, "ev-server", server_ip, 1, &[]),
        client_spec(&dir, "ev-client", client_ip, &[server_ip]),
    ]);
    let (server, client) = (&agents[0], &agents[1]);
    let fired = fire(client, "/v1/event/fire/rollout", b"all");
    fire(client, "/v1/event/fire/client-only?node=^ev-client$", b"");
    eventually("the server lists the client's event", || {
        let listed = names(&server.get("/v1/event/list").json());
        if listed == ["rollout"] {
            Ok(())
        } else {
            Err(format!("{listed:?}"))
        }
    });
    let on_server = server.get("/v1/event/list").json();
    assert_eq!(on_server[0]["ID"], fired["ID"]);
    assert_eq!(on_server[0]["Payload"], "YWxs");
    eventually("the client lists both", || {
        let listed = names(&client.get("/v1/event/list").json());
        if listed == ["rollout", "client-only"] {
            Ok(())
        } else {
            Err(format!("{listed:?}"))
        }
    });
}
