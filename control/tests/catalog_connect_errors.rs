//! Connect registration errors on the two register endpoints against the
//! real binary: `/v1/agent/service/register` answers Consul's `400
//! Validation failed: ...`, while `/v1/catalog/register` (Consul's handler
//! hands it to the `Catalog.Register` RPC) answers `500` with the error
//! list alone. Nothing refused is stored.

mod common;

use common::AgentSpec;
use serde_json::json;

#[test]
fn catalog_connect_errors_are_500_and_agent_ones_400() {
    let agent = AgentSpec::dev().spawn();
    let proxy_without_destination = json!({"Kind": "connect-proxy", "Name": "p", "Port": 21000});
    let one = "1 error occurred:\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n";

    let r = agent.put(
        "/v1/agent/service/register",
        proxy_without_destination.to_string().as_bytes(),
    );
    assert_eq!((r.status, r.text()), (400, format!("Validation failed: {one}")));

    let mut service = proxy_without_destination.clone();
    service["Service"] = json!("p");
    let body = json!({"Node": "ext", "Address": "10.0.0.9", "Service": service});
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!((r.status, r.text().as_str()), (500, one));

    let sidecar_with_id = json!({"Node": "ext", "Address": "10.0.0.9",
        "Service": {"Service": "web", "Port": 80, "Connect": {"SidecarService": {"ID": "mine"}}}});
    let r = agent.put("/v1/catalog/register", sidecar_with_id.to_string().as_bytes());
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            500,
            "1 error occurred:\n\t* A SidecarService cannot specify an ID as this is managed by the agent\n\n"
        )
    );

    let bad_upstream = json!({"Node": "ext", "Address": "10.0.0.9",
        "Service": {"Kind": "connect-proxy", "Service": "p", "Port": 21000,
                    "Proxy": {"DestinationServiceName": "web", "Upstreams": [{"DestinationType": "queue", "DestinationName": "db", "LocalBindPort": 9000}]}}});
    let r = agent.put("/v1/catalog/register", bad_upstream.to_string().as_bytes());
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            500,
            "1 error occurred:\n\t* unknown upstream destination type: \"queue\"\n\n"
        )
    );

    assert_eq!(agent.get("/v1/catalog/service/p").json(), json!([]));
    assert_eq!(agent.get("/v1/catalog/service/web").json(), json!([]));
}
