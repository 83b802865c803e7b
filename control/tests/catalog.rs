//! `/v1/catalog/*` end to end (spec HTTP.md §3, SUMMARY.md items 4, 7, 9,
//! 14): the agent's own node, registration through the control plane
//! (`PUT /v1/catalog/register` is forwarded whole), reads from the data
//! plane's replica with exact shapes and index headers, and bad input.

mod common;

use common::http::Response;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

fn node_name(agent: &Agent) -> String {
    let r = agent.get("/v1/agent/self");
    r.expect_status(200);
    r.json()["Config"]["NodeName"].as_str().expect("NodeName").to_string()
}

/// `PUT /v1/catalog/register` that must answer `200 true`.
#[track_caller]
fn register(agent: &Agent, body: Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    r.expect_status(200);
    assert_eq!(r.text(), "true", "register answers the JSON literal true");
}

fn web_on(node: &str, address: &str, id: &str, tags: &[&str], port: u16) -> Value {
    json!({
        "Node": node,
        "Address": address,
        "NodeMeta": {"rack": format!("rack-{node}")},
        "Service": {"ID": id, "Service": "web", "Tags": tags, "Port": port},
        "Check": {"CheckID": format!("{id}-alive"), "Name": "alive", "Status": "passing", "ServiceID": id}
    })
}

/// Asserts that `fields` appear in this order in the raw JSON text.
#[track_caller]
fn assert_field_order(text: &str, fields: &[&str]) {
    let positions: Vec<usize> = fields
        .iter()
        .map(|f| {
            text.find(&format!("\"{f}\""))
                .unwrap_or_else(|| panic!("field {f} missing in {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields not in Consul order {fields:?}: {text}"
    );
}

#[track_caller]
fn assert_read_headers(r: &Response) {
    assert!(r.index() >= 1, "X-Consul-Index is never 0");
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert!(r.header("X-Consul-LastContact").is_some());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
}

#[test]
fn the_agents_own_node_is_in_the_catalog() {
    let agent = dev();
    let name = node_name(&agent);
    let r = agent.get("/v1/catalog/nodes");
    r.expect_status(200);
    assert_read_headers(&r);
    let nodes = r.json();
    let own = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {nodes}"));
    assert_eq!(own["Datacenter"], "dc1");
    assert!(own["TaggedAddresses"].is_object() && own["Meta"].is_object());
    assert_field_order(
        &r.text(),
        &[
            "ID",
            "Node",
            "Address",
            "Datacenter",
            "TaggedAddresses",
            "Meta",
            "CreateIndex",
            "ModifyIndex",
        ],
    );

    let r = agent.get(&format!("/v1/catalog/node/{name}"));
    r.expect_status(200);
    assert_read_headers(&r);
    assert_eq!(r.json()["Node"]["Node"], name.as_str());
    assert!(r.json()["Services"].is_object());

    let r = agent.get(&format!("/v1/health/node/{name}"));
    r.expect_status(200);
    assert!(r.json().is_array());

    let r = agent.get("/v1/catalog/datacenters");
    r.expect_status(200);
    assert_eq!(r.json(), json!(["dc1"]));
    assert!(r.header("X-Consul-Index").is_none(), "datacenters has no index headers");
}

#[test]
fn unknown_names_answer_null_empty_or_404() {
    let agent = dev();
    let r = agent.get("/v1/catalog/node/no-such-node");
    r.expect_status(200);
    assert_eq!(r.json(), Value::Null, "an unknown node is null, not 404");
    assert!(r.index() >= 1);
    agent.get("/v1/catalog/node-services/no-such-node").expect_status(404);
    let r = agent.get("/v1/catalog/service/no-such-service");
    r.expect_status(200);
    assert_eq!(r.json(), json!([]));
    assert!(r.index() >= 1);
    let r = agent.get("/v1/catalog/service/");
    r.expect_status(400);
    assert_eq!(r.text(), "Missing service name");
}

#[test]
fn registered_services_are_read_back_in_consul_shapes() {
    let agent = dev();
    register(&agent, web_on("ext-1", "10.1.1.1", "web-1", &["v1", "primary"], 8080));
    register(&agent, web_on("ext-2", "10.1.1.2", "web-2", &["v1"], 8081));

    // Read-your-writes: the register answered after the replica had it.
    let r = agent.get("/v1/catalog/service/web");
    r.expect_status(200);
    assert_read_headers(&r);
    let instances = r.json();
    let ids: Vec<&str> = instances
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ServiceID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-1", "web-2"]);
    let first = &instances[0];
    assert_eq!(first["Node"], "ext-1");
    assert_eq!(first["Address"], "10.1.1.1");
    assert_eq!(first["ServiceAddress"], "");
    assert_eq!(first["ServicePort"], 8080);
    assert_eq!(first["ServiceTags"], json!(["v1", "primary"]));
    assert_eq!(first["ServiceWeights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(first["NodeMeta"]["rack"], "rack-ext-1");
    assert_eq!(first["Datacenter"], "dc1", "a body without Datacenter gets the agent's");
    assert_field_order(
        &r.text(),
        &[
            "ID",
            "Node",
            "Address",
            "Datacenter",
            "TaggedAddresses",
            "NodeMeta",
            "ServiceKind",
            "ServiceID",
            "ServiceName",
            "ServiceTags",
            "ServiceAddress",
            "ServiceWeights",
            "ServiceMeta",
            "ServicePort",
            "ServiceSocketPath",
            "ServiceEnableTagOverride",
            "ServiceProxy",
            "ServiceConnect",
            "CreateIndex",
            "ModifyIndex",
        ],
    );

    let ids_for = |query: &str| -> Vec<String> {
        let r = agent.get(&format!("/v1/catalog/service/web?{query}"));
        r.expect_status(200);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ServiceID"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_for("tag=primary"), ["web-1"]);
    assert_eq!(ids_for("tag=v1&tag=primary"), ["web-1"]);
    assert_eq!(ids_for("node-meta=rack:rack-ext-2"), ["web-2"]);

    let r = agent.get("/v1/catalog/services");
    r.expect_status(200);
    assert_eq!(r.json()["web"], json!(["primary", "v1"]));

    let r = agent.get("/v1/catalog/node/ext-1");
    r.expect_status(200);
    assert_eq!(r.json()["Node"]["Datacenter"], "dc1");
    let service = &r.json()["Services"]["web-1"];
    assert_eq!(service["Service"], "web");
    assert_eq!(service["Port"], 8080);
    let r = agent.get("/v1/catalog/node-services/ext-2");
    r.expect_status(200);
    assert_eq!(r.json()["Services"][0]["ID"], "web-2");

    // Deregistering the service leaves the node; the list is empty again.
    let r = agent.put(
        "/v1/catalog/deregister",
        json!({"Node": "ext-1", "ServiceID": "web-1"}).to_string().as_bytes(),
    );
    r.expect_status(200);
    assert_eq!(r.text(), "true");
    assert_eq!(ids_for(""), ["web-2"]);
    assert_eq!(agent.get("/v1/catalog/node/ext-1").json()["Services"], json!({}));
}

#[test]
fn the_service_index_moves_only_with_its_service() {
    let agent = dev();
    register(&agent, web_on("ext-1", "10.1.1.1", "web-1", &[], 80));
    let before = agent.get("/v1/catalog/service/web").index();
    register(
        &agent,
        json!({"Node": "ext-3", "Address": "10.1.1.3", "Service": {"ID": "db-1", "Service": "db", "Port": 5432}}),
    );
    assert_eq!(
        agent.get("/v1/catalog/service/web").index(),
        before,
        "another service does not move web's index"
    );
    assert!(
        agent.get("/v1/catalog/services").index() > before,
        "the services table moved"
    );
}

#[test]
fn bad_parameters_get_consul_errors() {
    let agent = dev();
    for path in [
        "/v1/catalog/nodes",
        "/v1/catalog/services",
        "/v1/catalog/service/web",
        "/v1/catalog/node/x",
    ] {
        let r = agent.get(&format!("{path}?dc=elsewhere"));
        r.expect_status(500);
        assert_eq!(r.text(), "No path to datacenter");
        let r = agent.get(&format!("{path}?index=abc"));
        r.expect_status(400);
        assert_eq!(r.text(), "Invalid index");
        let r = agent.get(&format!("{path}?stale&consistent"));
        r.expect_status(400);
        assert_eq!(
            r.text(),
            "Cannot specify ?stale with ?consistent, conflicting semantics."
        );
    }
    let elsewhere = json!({"Node": "n", "Address": "a", "Datacenter": "elsewhere"});
    let r = agent.put("/v1/catalog/register", elsewhere.to_string().as_bytes());
    r.expect_status(500);
    assert_eq!(r.text(), "No path to datacenter");
    let r = agent.request("GET", "/v1/catalog/register", &[], b"");
    r.expect_status(405);
    assert_eq!(r.header("Allow"), Some("OPTIONS,PUT"));
    let r = agent.put("/v1/catalog/nodes", b"");
    r.expect_status(405);
    let r = agent.put("/v1/catalog/register", b"{not json");
    r.expect_status(400);
}

#[test]
fn agent_endpoints_are_forwarded_whole_to_the_control_plane() {
    let agent = dev();
    let body = json!({"Name": "forwarded", "Port": 8181, "Tags": ["x"]}).to_string();
    let r = agent.request(
        "PUT",
        "/v1/agent/service/register",
        &[("X-Consul-Token", "anything")],
        body.as_bytes(),
    );
    r.expect_status(200);
    let r = agent.get("/v1/agent/services");
    r.expect_status(200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json()["forwarded"]["Port"], 8181);
    assert_eq!(r.header("X-Consul-Default-Acl-Policy"), Some("allow"));
    let r = agent.get("/v1/agent/no-such-endpoint");
    r.expect_status(404);
    let r = agent.request("POST", "/v1/agent/services", &[], b"");
    r.expect_status(405);
    // `/v1/agent/self` is still answered by the data plane.
    agent.get("/v1/agent/self").expect_status(200);
}
