//! Prepared queries against the real binary (HTTP.md §10, DNS.md §2):
//! create, list, get, update and delete with Consul's shapes and errors;
//! execute with health, tag and only-passing filtering; a template query;
//! and `<name>.query.consul` / `_<name>._tcp.query.consul` over DNS.

mod common;

use std::time::{Duration, Instant};

use common::dns::{self, of_type, query, DNS_TIMEOUT};
use common::{Agent, AgentSpec};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};

/// Slack for a write to show in DNS (writes answer after the data plane
/// applied them, so this is never waited for in practice).
const VISIBLE_WITHIN: Duration = Duration::from_secs(5);

fn post(agent: &Agent, target: &str, body: &Value) -> common::http::Response {
    agent.request("POST", target, &[], body.to_string().as_bytes())
}

fn create(agent: &Agent, body: &Value) -> String {
    let r = post(agent, "/v1/query", body);
    r.expect_status(200);
    let id = r.json()["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    id
}

/// Node `node` at `address` with a `web` instance tagged `tags` and one
/// service check of `status`.
fn register(agent: &Agent, node: &str, address: &str, tags: &[&str], status: &str) {
    let body = json!({
        "Node": node,
        "Address": address,
        "NodeMeta": {"rack": format!("r-{node}")},
        "Service": {"ID": "web-1", "Service": "web", "Tags": tags, "Port": 8080},
        "Check": {"CheckID": "web-check", "Name": "web check", "ServiceID": "web-1", "Status": status},
    });
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "register {node}: {}", r.text());
}

fn executed_nodes(agent: &Agent, target: &str) -> Vec<String> {
    let r = agent.get(target);
    r.expect_status(200);
    let mut nodes: Vec<String> = r.json()["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Node"]["Node"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    nodes
}

fn ask(agent: &Agent, name: &str, rtype: RecordType) -> Message {
    dns::udp_exchange(agent.dns_addr(), &query(name, rtype, None), DNS_TIMEOUT)
        .unwrap_or_else(|e| panic!("{name} {rtype}: {e}\n{}", agent.logs_tail()))
}

/// Asks until an answer arrives (bounded by [`VISIBLE_WITHIN`]).
fn ask_until_answered(agent: &Agent, name: &str, rtype: RecordType) -> Message {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    for _ in 0..200 {
        let m = ask(agent, name, rtype);
        if !m.answers.is_empty() || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    unreachable!("the deadline ends the loop first")
}

#[test]
fn create_list_get_update_delete_with_consuls_shapes_and_errors() {
    let agent = AgentSpec::dev().spawn();
    let empty = agent.get("/v1/query");
    empty.expect_status(200);
    assert_eq!(empty.json(), json!([]));

    let id = create(
        &agent,
        &json!({"Name": "web-q", "Token": "tok", "Service": {"Service": "web", "Tags": ["primary"]}, "DNS": {"TTL": "10s"}}),
    );
    let got = agent.get(&format!("/v1/query/{id}"));
    got.expect_status(200);
    let q = got.json();
    let index = q[0]["CreateIndex"].as_u64().unwrap();
    assert!(index > 0);
    assert_eq!(
        q,
        json!([{
            "ID": id, "Name": "web-q", "Session": "", "Token": "tok",
            "Template": {"Type": "", "Regexp": "", "RemoveEmptyTags": false},
            "Service": {
                "Service": "web",
                "Failover": {"NearestN": 0, "Datacenters": null, "Targets": null},
                "OnlyPassing": false, "IgnoreCheckIDs": null, "Near": "", "Tags": ["primary"],
                "NodeMeta": null, "ServiceMeta": null, "Peer": "", "Connect": {"Enabled": false}
            },
            "DNS": {"TTL": "10s"},
            "CreateIndex": index, "ModifyIndex": index
        }])
    );
    assert_eq!(agent.get("/v1/query").json().as_array().unwrap().len(), 1);

    // Errors, in Consul's words.
    let r = post(&agent, "/v1/query", &json!({"Name": "other"}));
    assert_eq!(
        (r.status, r.text()),
        (
            500,
            "Invalid prepared query: Must provide a Service name to query".into()
        )
    );
    let r = post(
        &agent,
        "/v1/query",
        &json!({"Name": "WEB-Q", "Service": {"Service": "db"}}),
    );
    assert_eq!(
        (r.status, r.text()),
        (500, "name 'WEB-Q' aliases an existing query name".into())
    );
    let r = post(&agent, "/v1/query", &json!({"Name": id, "Service": {"Service": "db"}}));
    assert_eq!(
        (r.status, r.text()),
        (500, format!("name '{id}' aliases an existing query ID"))
    );
    let r = post(
        &agent,
        "/v1/query",
        &json!({"Service": {"Service": "db"}, "DNS": {"TTL": "soon"}}),
    );
    assert_eq!(r.status, 500);
    assert!(
        r.text().starts_with("Invalid prepared query: Bad DNS TTL 'soon'"),
        "{}",
        r.text()
    );
    let r = post(
        &agent,
        "/v1/query",
        &json!({"Name": "t-", "Template": {"Type": "bogus"}, "Service": {"Service": "x"}}),
    );
    assert_eq!(
        (r.status, r.text()),
        (500, "failed compiling template: Bad Template.Type 'bogus'".into())
    );
    let r = agent.request("POST", "/v1/query", &[], b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Request decode failed: "), "{}", r.text());
    let r = agent.get("/v1/query/00000000-0000-0000-0000-000000000000");
    assert_eq!((r.status, r.text()), (404, "Query not found".into()));
    let unknown = "00000000-0000-0000-0000-000000000000";
    let r = agent.put(&format!("/v1/query/{unknown}"), br#"{"Service":{"Service":"web"}}"#);
    assert_eq!(
        (r.status, r.text()),
        (500, format!("Cannot modify non-existent prepared query: '{unknown}'"))
    );

    // Update replaces the whole query and keeps its CreateIndex.
    let r = agent.put(
        &format!("/v1/query/{id}"),
        json!({"Name": "web-q2", "Service": {"Service": "web", "OnlyPassing": true}})
            .to_string()
            .as_bytes(),
    );
    r.expect_status(200);
    assert!(r.body.is_empty());
    let q = agent.get(&format!("/v1/query/{id}")).json();
    assert_eq!(q[0]["Name"], "web-q2");
    assert_eq!(q[0]["Service"]["Tags"], Value::Null, "a full replace");
    assert_eq!(q[0]["Service"]["OnlyPassing"], true);
    assert_eq!(q[0]["CreateIndex"].as_u64(), Some(index));
    assert!(q[0]["ModifyIndex"].as_u64().unwrap() > index);

    // A blocking list wakes on the next write.
    let listed = agent.get("/v1/query");
    let before = listed.index();
    let waiter = std::thread::scope(|scope| {
        let blocked = scope.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!("/v1/query?index={before}&wait=10s"));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        create(&agent, &json!({"Name": "wakes-the-list", "Service": {"Service": "db"}}));
        blocked.join().unwrap()
    });
    let (woken, waited) = waiter;
    woken.expect_status(200);
    assert!(woken.index() > before);
    assert!(
        waited < Duration::from_secs(5),
        "woken by the write, not the wait: {waited:?}"
    );
    assert_eq!(woken.json().as_array().unwrap().len(), 2);

    let r = agent.delete(&format!("/v1/query/{id}"));
    r.expect_status(200);
    assert_eq!(agent.get(&format!("/v1/query/{id}")).status, 404);
    let left: Vec<String> = agent
        .get("/v1/query")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["wakes-the-list"]);
}

#[test]
fn execute_filters_templates_and_dns() {
    let agent = AgentSpec::dev().spawn();
    register(&agent, "n1", "10.7.0.1", &["primary"], "passing");
    register(&agent, "n2", "10.7.0.2", &["primary"], "warning");
    register(&agent, "n3", "10.7.0.3", &["primary"], "critical");
    register(&agent, "n4", "10.7.0.4", &["primary", "canary"], "passing");
    register(&agent, "n5", "10.7.0.5", &["secondary"], "passing");

    let id = create(
        &agent,
        &json!({"Name": "web-q", "Service": {"Service": "web", "Tags": ["primary", "!canary"]}, "DNS": {"TTL": "30s"}}),
    );
    let r = agent.get("/v1/query/web-q/execute");
    r.expect_status(200);
    let b = r.json();
    assert_eq!(b["Service"], "web");
    assert_eq!(b["DNS"], json!({"TTL": "30s"}));
    assert_eq!(b["Datacenter"], "dc1");
    assert_eq!(b["Failovers"], 0);
    let entry = &b["Nodes"][0];
    assert_eq!(entry["Service"]["Service"], "web");
    assert_eq!(entry["Service"]["Port"], 8080);
    assert!(entry["Node"]["Address"].as_str().unwrap().starts_with("10.7.0."));
    assert_eq!(entry["Checks"][0]["CheckID"], "web-check");
    assert_eq!(
        executed_nodes(&agent, &format!("/v1/query/{id}/execute")),
        ["n1", "n2"],
        "critical, canary and untagged instances are left out; the warning stays"
    );
    assert_eq!(executed_nodes(&agent, "/v1/query/web-q/execute?limit=1").len(), 1);
    let r = agent.get("/v1/query/nope/execute");
    assert_eq!((r.status, r.text()), (404, "Query not found".into()));

    let strict = create(
        &agent,
        &json!({"Name": "web-strict", "Service": {"Service": "web", "OnlyPassing": true}}),
    );
    assert_eq!(
        executed_nodes(&agent, &format!("/v1/query/{strict}/execute")),
        ["n1", "n4", "n5"]
    );

    // A template: `svc-<service>` executes the service named by the suffix.
    create(
        &agent,
        &json!({"Name": "svc-", "Template": {"Type": "name_prefix_match", "Regexp": "^svc-(.+)$"},
                "Service": {"Service": "${match(1)}", "Tags": ["${name.suffix}", "primary"]}}),
    );
    let r = agent.get("/v1/query/svc-web/explain");
    r.expect_status(200);
    assert_eq!(r.json()["Query"]["Service"]["Service"], "web");
    assert_eq!(r.json()["Query"]["Service"]["Tags"], json!(["web", "primary"]));
    assert_eq!(
        executed_nodes(&agent, "/v1/query/svc-web/execute"),
        Vec::<String>::new()
    );
    create(
        &agent,
        &json!({"Name": "tagged-", "Template": {"Type": "name_prefix_match"},
                "Service": {"Service": "web", "Tags": ["${name.suffix}"]}}),
    );
    assert_eq!(executed_nodes(&agent, "/v1/query/tagged-secondary/execute"), ["n5"]);

    // DNS: A and SRV by name, ID and template, the query's TTL, NXDOMAIN.
    let m = ask_until_answered(&agent, "web-q.query.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let mut ips: Vec<String> = of_type(&m.answers, RecordType::A)
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    ips.sort();
    assert_eq!(ips, ["10.7.0.1", "10.7.0.2"]);
    assert!(m.answers.iter().all(|r| r.ttl == 30), "the query's DNS.TTL");
    let m = ask(&agent, &format!("{id}.query.consul."), RecordType::A);
    assert_eq!(of_type(&m.answers, RecordType::A).len(), 2, "by ID");
    let m = ask(&agent, "_web-q._tcp.query.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let srvs = of_type(&m.answers, RecordType::SRV);
    assert_eq!(srvs.len(), 2);
    for r in &srvs {
        let RData::SRV(srv) = &r.data else {
            panic!("{r:?}");
        };
        assert_eq!(srv.port, 8080);
        assert!(srv.target.to_ascii().ends_with(".node.dc1.consul."), "{}", srv.target);
    }
    assert!(
        !of_type(&m.additionals, RecordType::A).is_empty(),
        "targets resolve in ADDITIONAL"
    );
    let m = ask(&agent, "tagged-secondary.query.consul.", RecordType::A);
    assert_eq!(of_type(&m.answers, RecordType::A).len(), 1, "template over DNS");
    for unknown in [
        "nope.query.consul.",
        "_nope._tcp.query.consul.",
        "svc-web.query.consul.",
    ] {
        let m = ask(&agent, unknown, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{unknown}");
        assert_eq!(of_type(&m.authorities, RecordType::SOA).len(), 1, "{unknown}");
    }
}

#[test]
fn a_blocking_list_sleeps_through_kv_writes() {
    let agent = AgentSpec::dev().spawn();
    create(&agent, &json!({"Name": "web-q", "Service": {"Service": "web"}}));
    let before = agent.get("/v1/query").index();
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!("/v1/query?index={before}&wait=1500ms"));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..5 {
            agent.kv_put(&format!("unrelated/{i}"), b"x");
        }
        let (r, waited) = blocked.join().unwrap();
        r.expect_status(200);
        assert_eq!(r.index(), before, "KV writes do not move the query table");
        assert!(
            waited >= Duration::from_millis(1400),
            "slept through the KV writes until its wait ended: {waited:?}"
        );
    });
}

/// The first node `target` executes to.
fn first_node(agent: &Agent, target: &str) -> String {
    let r = agent.get(target);
    r.expect_status(200);
    r.json()["Nodes"][0]["Node"]["Node"].as_str().unwrap().to_string()
}

#[test]
fn ignored_checks_reach_dns_and_near_ip_sorts_by_the_client() {
    let agent = AgentSpec::dev().spawn();
    register(&agent, "n1", "10.7.0.1", &[], "passing");
    register(&agent, "n2", "10.7.0.2", &[], "critical");
    register(&agent, "n3", "10.7.0.3", &[], "passing");
    // IgnoreCheckIDs: n2 is critical only through the ignored check.
    create(
        &agent,
        &json!({"Name": "lenient", "Service": {"Service": "web", "IgnoreCheckIDs": ["web-check"]}}),
    );
    assert_eq!(executed_nodes(&agent, "/v1/query/lenient/execute"), ["n1", "n2", "n3"]);
    ask_until_answered(&agent, "lenient.query.consul.", RecordType::A);
    // Over TCP: UDP answers stop at `udp_answer_limit` (3) records.
    let m = agent.dns_tcp("lenient.query.consul.", RecordType::A);
    let mut ips: Vec<String> = of_type(&m.answers, RecordType::A)
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    ips.sort();
    assert_eq!(
        ips,
        ["10.7.0.1", "10.7.0.2", "10.7.0.3"],
        "DNS answers what HTTP execute does"
    );
    create(&agent, &json!({"Name": "strict", "Service": {"Service": "web"}}));
    ask_until_answered(&agent, "strict.query.consul.", RecordType::A);
    let m = agent.dns_tcp("strict.query.consul.", RecordType::A);
    assert_eq!(
        of_type(&m.answers, RecordType::A).len(),
        2,
        "n2 left out without the ignore"
    );

    // A `web` instance on a node at the address this client connects from.
    let client_ip = std::net::TcpStream::connect(agent.http_addr())
        .and_then(|probe| probe.local_addr())
        .expect("a probe connection")
        .ip()
        .to_string();
    let own = "client-node".to_string();
    register(&agent, &own, &client_ip, &[], "passing");
    // A node written after the others that sorts before them once killed
    // the serving core building this set: ask again.
    ask_until_answered(&agent, "lenient.query.consul.", RecordType::A);
    let m = agent.dns_tcp("lenient.query.consul.", RecordType::A);
    assert_eq!(
        of_type(&m.answers, RecordType::A).len(),
        4,
        "the client's node joined the set"
    );

    // near=_ip: the instance on the client's node comes first, every time;
    // without it the order is shuffled.
    for _ in 0..16 {
        assert_eq!(first_node(&agent, "/v1/query/lenient/execute?near=_ip"), own);
    }
    create(
        &agent,
        &json!({"Name": "near-ip", "Service": {"Service": "web", "Near": "_ip"}}),
    );
    for _ in 0..16 {
        assert_eq!(first_node(&agent, "/v1/query/near-ip/execute"), own, "the query's Near");
    }
    let firsts: std::collections::BTreeSet<String> = (0..48)
        .map(|_| first_node(&agent, "/v1/query/lenient/execute"))
        .collect();
    assert!(firsts.len() > 1, "shuffled per request without near: {firsts:?}");
}
