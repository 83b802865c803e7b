//! Config entries (`/v1/config`, HTTP.md §14) and `.ingress` DNS (DNS.md
//! §1) against the real binary: put/get/list/delete with and without
//! `?cas=`, Consul's error answers, a blocking read woken by a write, and
//! an ingress gateway answering for the services its entry lists (DNS and
//! `/v1/health/ingress/<service>`).

mod common;

use std::time::{Duration, Instant};

use common::dns::of_type;
use common::{Agent, AgentSpec};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

fn put_entry(agent: &Agent, query: &str, body: serde_json::Value) -> common::http::Response {
    agent.put(&format!("/v1/config{query}"), body.to_string().as_bytes())
}

#[test]
fn put_get_list_delete_and_cas() {
    let agent = AgentSpec::dev().spawn();
    let r = put_entry(
        &agent,
        "",
        json!({"kind": "service-defaults", "name": "web", "protocol": "http"}),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "true"), "{}", agent.logs_tail());

    let r = agent.get("/v1/config/service-defaults/web");
    r.expect_status(200);
    let entry = r.json();
    assert_eq!(entry["Kind"], "service-defaults");
    assert_eq!(entry["Name"], "web");
    assert_eq!(
        entry["Protocol"], "http",
        "snake/lower-case fields come back in Consul's case"
    );
    let modify = entry["ModifyIndex"].as_u64().unwrap();
    assert_eq!(entry["CreateIndex"].as_u64(), Some(modify));
    assert_eq!(r.index(), modify);

    // cas: 0 only creates; a stale index fails; the current one succeeds.
    let body = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    assert_eq!(put_entry(&agent, "?cas=0", body.clone()).text(), "false");
    assert_eq!(
        put_entry(&agent, &format!("?cas={}", modify - 1), body.clone()).text(),
        "false"
    );
    assert_eq!(put_entry(&agent, &format!("?cas={modify}"), body).text(), "true");
    let updated = agent.get("/v1/config/service-defaults/web").json();
    assert_eq!(updated["Protocol"], "grpc");
    assert_eq!(updated["CreateIndex"].as_u64(), Some(modify));
    let modify = updated["ModifyIndex"].as_u64().unwrap();

    put_entry(&agent, "", json!({"Kind": "service-defaults", "Name": "api"})).expect_status(200);
    put_entry(
        &agent,
        "",
        json!({"Kind": "proxy-defaults", "Config": {"protocol": "http"}}),
    )
    .expect_status(200);
    let list = agent.get("/v1/config/service-defaults").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    let proxy = agent.get("/v1/config/proxy-defaults/global").json();
    assert_eq!(proxy["Config"]["protocol"], "http", "free-form keys are kept");
    assert_eq!(agent.get("/v1/config/mesh").json(), json!([]));

    // Deletes: cas answers a bool, a plain delete answers `{}`.
    let r = agent.delete(&format!("/v1/config/service-defaults/web?cas={}", modify - 1));
    assert_eq!((r.status, r.text().as_str()), (200, "false"));
    let r = agent.delete(&format!("/v1/config/service-defaults/web?cas={modify}"));
    assert_eq!((r.status, r.text().as_str()), (200, "true"));
    let r = agent.delete("/v1/config/service-defaults/api");
    assert_eq!((r.status, r.text().as_str()), (200, "{}"));
    let r = agent.get("/v1/config/service-defaults/web");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "Config entry not found for \"service-defaults\" / \"web\"")
    );
    assert_eq!(agent.get("/v1/config/service-defaults").json(), json!([]));
}

#[test]
fn errors_in_consul_words() {
    let agent = AgentSpec::dev().spawn();
    let cases = [
        (
            json!({"Name": "x"}),
            400,
            "Request decoding failed: Payload does not contain a kind/Kind key at the top level",
        ),
        (
            json!({"Kind": "bogus", "Name": "x"}),
            400,
            "Request decoding failed: invalid config entry kind: bogus",
        ),
        (
            json!({"Kind": "proxy-defaults", "Name": "x"}),
            500,
            "invalid name (\"x\"), only \"global\" is supported",
        ),
    ];
    for (body, status, text) in cases {
        let r = put_entry(&agent, "", body.clone());
        assert_eq!((r.status, r.text().as_str()), (status, text), "{body}");
    }
    let r = agent.put("/v1/config", b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Request decoding failed: "), "{}", r.text());
    let r = agent.get("/v1/config/bogus");
    assert_eq!((r.status, r.text().as_str()), (500, "invalid config entry kind: bogus"));
    let r = agent.request("POST", "/v1/config", &[], b"{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("OPTIONS,PUT"));
    let r = agent.delete("/v1/config/service-defaults");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Must provide both a kind and name to delete")
    );
}

#[test]
fn a_blocking_read_wakes_on_a_write() {
    let agent = AgentSpec::dev().spawn();
    put_entry(&agent, "", json!({"Kind": "service-defaults", "Name": "web"})).expect_status(200);
    let index = agent.get("/v1/config/service-defaults").index();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!("/v1/config/service-defaults?index={index}&wait=5s"));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        // An unrelated write does not end the wait; a config write does.
        agent.kv_put("unrelated", b"x");
        put_entry(&agent, "", json!({"Kind": "service-defaults", "Name": "api"})).expect_status(200);
        let (r, waited) = waiter.join().unwrap();
        assert!(r.index() > index, "woken with a newer index");
        assert!(
            waited < Duration::from_secs(4),
            "woken by the write, not the timeout: {waited:?}"
        );
        assert_eq!(r.json().as_array().unwrap().len(), 2);
    });
}

fn register(agent: &Agent, body: serde_json::Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "register {body}: {}", r.text());
}

#[test]
fn ingress_dns_answers_with_the_gateways() {
    let agent = AgentSpec::dev().spawn();
    register(
        &agent,
        json!({"Node": "app", "Address": "127.0.0.10", "Service": {"Service": "web", "Port": 80, "Tags": ["v1"]}}),
    );
    register(
        &agent,
        json!({"Node": "edge", "Address": "127.0.0.20",
               "Service": {"Kind": "ingress-gateway", "Service": "gw", "Port": 21000, "Tags": ["v1"]}}),
    );
    let entry = json!({"Kind": "ingress-gateway", "Name": "gw",
                       "Listeners": [{"Port": 8080, "Protocol": "tcp", "Services": [{"Name": "web"}]}]});
    put_entry(&agent, "", entry).expect_status(200);

    let answer = agent.dns_udp("web.ingress.consul", RecordType::A);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "{answer}");
    let ips: Vec<_> = of_type(&answer.answers, RecordType::A)
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ips,
        ["127.0.0.20"],
        "the gateway's address, not the service's: {answer}"
    );

    let answer = agent.dns_tcp("web.ingress.consul", RecordType::SRV);
    let srv = of_type(&answer.answers, RecordType::SRV);
    assert_eq!(srv.len(), 1, "{answer}");
    let RData::SRV(srv) = &srv[0].data else {
        panic!("not SRV")
    };
    assert_eq!(srv.port, 21000, "the gateway's port");
    assert!(
        srv.target.to_ascii().starts_with("edge.node.dc1.consul"),
        "{}",
        srv.target
    );
    assert_eq!(of_type(&answer.additionals, RecordType::A).len(), 1, "{answer}");

    let answer = agent.dns_udp("db.ingress.consul", RecordType::A);
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::NXDomain,
        "not listed: {answer}"
    );

    // /v1/health/ingress/<service>: the gateway's health entries, blocking.
    let r = agent.get("/v1/health/ingress/web");
    r.expect_status(200);
    let entries = r.json();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert_eq!(entries[0]["Node"]["Node"], "edge");
    assert_eq!(entries[0]["Service"]["Kind"], "ingress-gateway");
    assert_eq!(entries[0]["Service"]["Port"], 21000);
    assert_eq!(agent.get("/v1/health/ingress/db").json(), json!([]));
    // With a tag, Consul's tag lookup wins: web's own tagged instances.
    let tagged = agent.get("/v1/health/ingress/web?tag=v1").json();
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged}");
    assert_eq!(
        (&tagged[0]["Node"]["Node"], &tagged[0]["Service"]["Service"]),
        (&json!("app"), &json!("web"))
    );
    let index = r.index();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!("/v1/health/ingress/web?passing&index={index}&wait=5s"));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        agent.kv_put("unrelated", b"x");
        register(
            &agent,
            json!({"Node": "edge", "Address": "127.0.0.20",
                   "Check": {"CheckID": "gw-alive", "Name": "gw", "ServiceID": "gw", "Status": "critical"}}),
        );
        let (r, waited) = waiter.join().unwrap();
        assert!(r.index() > index, "woken by the gateway's check");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        assert_eq!(r.json(), json!([]), "?passing drops the critical gateway");
    });

    agent.delete("/v1/config/ingress-gateway/gw").expect_status(200);
    let answer = agent.dns_udp("web.ingress.consul", RecordType::A);
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::NXDomain,
        "entry deleted: {answer}"
    );
}
