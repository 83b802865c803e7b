//! `/v1/health/*` end to end (spec HTTP.md §4, BLOCKING.md, SUMMARY.md
//! items 5, 7, 8): entries with node and service checks, `?passing`,
//! state lists, and blocking that wakes only the watchers of the service
//! whose health changed.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::http::Response;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

/// How long a test lets a watcher park before it makes the change.
const PARK_TIME: Duration = Duration::from_millis(400);
/// A wake-up must come well before a long wait would have expired.
const WAKE_DEADLINE: Duration = Duration::from_secs(5);
/// Extra time a response may take on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(750);

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

#[track_caller]
fn register(agent: &Agent, body: Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    r.expect_status(200);
    assert_eq!(r.text(), "true");
}

/// A node running one instance of `service` with one check in `status`.
fn instance(node: &str, service: &str, id: &str, status: &str) -> Value {
    json!({
        "Node": node,
        "Address": "10.2.0.1",
        "Service": {"ID": id, "Service": service, "Port": 80},
        "Check": {"CheckID": format!("{id}-check"), "Name": "probe", "Status": status, "ServiceID": id}
    })
}

fn timed_get(agent: &Agent, target: &str, wait: Duration) -> (Response, Duration) {
    let start = Instant::now();
    let r = agent.request_timeout("GET", target, &[], b"", wait * 17 / 16 + Duration::from_secs(10));
    (r, start.elapsed())
}

fn service_ids(r: &Response) -> Vec<String> {
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn service_entries_and_passing() {
    let agent = dev();
    register(&agent, instance("h-1", "web", "web-1", "passing"));
    register(&agent, instance("h-2", "web", "web-2", "warning"));
    register(&agent, instance("h-3", "web", "web-3", "critical"));

    let r = agent.get("/v1/health/service/web");
    r.expect_status(200);
    assert!(r.index() >= 1);
    assert_eq!(service_ids(&r), ["web-1", "web-2", "web-3"]);
    let entry = &r.json()[0];
    assert_eq!(entry["Node"]["Node"], "h-1");
    assert_eq!(entry["Service"]["Service"], "web");
    let checks = entry["Checks"].as_array().unwrap();
    let check = checks
        .iter()
        .find(|c| c["CheckID"] == "web-1-check")
        .expect("service check");
    assert_eq!(check["Status"], "passing");
    assert_eq!(check["ServiceName"], "web");
    assert_eq!(check["ServiceTags"], json!([]));
    assert!(check["Definition"].is_object());

    for query in ["passing", "passing=true", "passing=1"] {
        let r = agent.get(&format!("/v1/health/service/web?{query}"));
        assert_eq!(service_ids(&r), ["web-1"], "?{query} drops warning and critical");
    }
    assert_eq!(service_ids(&agent.get("/v1/health/service/web?passing=false")).len(), 3);
    let r = agent.get("/v1/health/service/web?passing=perhaps");
    r.expect_status(400);
    assert_eq!(r.text(), "Invalid value for ?passing");
    let r = agent.get("/v1/health/service/nothing-here");
    r.expect_status(200);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn check_lists_by_service_node_and_state() {
    let agent = dev();
    register(&agent, instance("h-1", "web", "web-1", "passing"));
    register(&agent, instance("h-2", "api", "api-1", "critical"));

    let r = agent.get("/v1/health/checks/web");
    r.expect_status(200);
    let ids: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CheckID"].clone())
        .collect();
    assert_eq!(ids, [json!("web-1-check")]);

    let r = agent.get("/v1/health/node/h-2");
    r.expect_status(200);
    assert_eq!(r.json()[0]["CheckID"], "api-1-check");

    let critical = agent.get("/v1/health/state/critical");
    critical.expect_status(200);
    let ids: Vec<String> = critical
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CheckID"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&"api-1-check".to_string()) && !ids.contains(&"web-1-check".to_string()),
        "{ids:?}"
    );
    let any = agent.get("/v1/health/state/any").json();
    assert!(any.as_array().unwrap().len() >= 2);
    assert_eq!(agent.get("/v1/health/state/bogus").json(), json!([]));
    let r = agent.get("/v1/health/state/");
    r.expect_status(400);
    assert_eq!(r.text(), "Missing check state");
    let r = agent.get("/v1/health/service/web?dc=nowhere");
    r.expect_status(500);
    assert_eq!(r.text(), "No path to datacenter");
    let r = agent.get("/v1/health/checks/web?wait=never&index=1");
    r.expect_status(400);
    assert_eq!(r.text(), "Invalid wait time");
}

#[test]
fn a_health_watcher_wakes_on_its_service_and_not_on_another() {
    let agent = dev();
    register(&agent, instance("h-1", "web", "web-1", "passing"));
    register(&agent, instance("h-2", "api", "api-1", "passing"));
    let web_index = agent.get("/v1/health/service/web").index();
    let api_index = agent.get("/v1/health/service/api").index();
    let api_wait = Duration::from_secs(2);
    thread::scope(|s| {
        let web = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/health/service/web?index={web_index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        let api = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/health/service/api?index={api_index}&wait=2s"),
                api_wait,
            )
        });
        thread::sleep(PARK_TIME);
        assert!(!web.is_finished(), "the web watcher returned before any change");
        // web's check turns critical.
        register(&agent, instance("h-1", "web", "web-1", "critical"));
        let (r, elapsed) = web.join().expect("web watcher");
        r.expect_status(200);
        assert!(r.index() > web_index, "woken with index {} <= {web_index}", r.index());
        assert!(elapsed < WAKE_DEADLINE, "woken only after {elapsed:?}");
        let body = r.json();
        let status = &body[0]["Checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["CheckID"] == "web-1-check")
            .expect("web check")["Status"];
        assert_eq!(status, "critical", "the woken watcher sees the new status");

        let (r, elapsed) = api.join().expect("api watcher");
        r.expect_status(200);
        assert_eq!(r.index(), api_index, "the api watcher was not woken by web's change");
        assert!(
            elapsed + Duration::from_millis(50) >= api_wait,
            "api returned early after {elapsed:?}"
        );
        assert!(
            elapsed <= api_wait * 17 / 16 + SLACK,
            "api returned late after {elapsed:?}"
        );
    });
}

#[test]
fn a_passing_watcher_sees_an_instance_leave_and_come_back() {
    let agent = dev();
    register(&agent, instance("h-1", "web", "web-1", "passing"));
    let index = agent.get("/v1/health/service/web?passing").index();
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/health/service/web?passing&index={index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        thread::sleep(PARK_TIME);
        register(&agent, instance("h-1", "web", "web-1", "critical"));
        let (r, elapsed) = watcher.join().expect("watcher");
        assert!(elapsed < WAKE_DEADLINE);
        assert_eq!(r.json(), json!([]), "the critical instance left the passing list");
    });
    register(&agent, instance("h-1", "web", "web-1", "passing"));
    assert_eq!(service_ids(&agent.get("/v1/health/service/web?passing")), ["web-1"]);
}
