//! Config entry schemas per kind against the real binary: a
//! `service-defaults`, `proxy-defaults` and `service-resolver` entry is
//! stored in Consul's normalized form and read back exactly, and bad
//! fields get Consul's status and text (400 for what does not decode,
//! 500 for what `Validate` refuses).

mod common;

use common::AgentSpec;
use serde_json::{json, Value};

fn without_indexes(mut entry: Value) -> Value {
    let object = entry.as_object_mut().expect("an entry is an object");
    assert!(object.remove("CreateIndex").is_some_and(|i| i.as_u64().is_some()));
    assert!(object.remove("ModifyIndex").is_some_and(|i| i.as_u64().is_some()));
    entry
}

#[test]
fn each_kind_reads_back_what_was_stored() {
    let agent = AgentSpec::dev().spawn();
    let cases = [
        (
            json!({"kind": "service-defaults", "name": "web", "protocol": "HTTP", "mode": "transparent",
                   "mesh_gateway": {"mode": "local"},
                   "upstream_config": {"overrides": [{"name": "db", "protocol": "GRPC", "connect_timeout_ms": 250}],
                                       "defaults": {"passive_health_check": {"interval": "10s", "max_failures": 2}}},
                   "meta": {"team_name": "a"}}),
            "/v1/config/service-defaults/web",
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http", "Mode": "transparent",
                   "MeshGateway": {"Mode": "local"},
                   "UpstreamConfig": {"Overrides": [{"Name": "db", "Protocol": "grpc", "ConnectTimeoutMs": 250}],
                                      "Defaults": {"PassiveHealthCheck": {"Interval": 10_000_000_000u64, "MaxFailures": 2}}},
                   "Meta": {"team_name": "a"}}),
        ),
        (
            json!({"Kind": "proxy-defaults", "Config": {"protocol": "http", "Nested_Key": {"x": [1]}},
                   "MeshGateway": {"Mode": "remote"}}),
            "/v1/config/proxy-defaults/global",
            json!({"Kind": "proxy-defaults", "Name": "global",
                   "Config": {"protocol": "http", "Nested_Key": {"x": [1]}}, "MeshGateway": {"Mode": "remote"}}),
        ),
        (
            json!({"Kind": "service-resolver", "Name": "api", "DefaultSubset": "v1",
                   "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"filter": "Service.Meta.version == v2", "only_passing": true}},
                   "Failover": {"*": {"Datacenters": ["dc2", "dc3"]}},
                   "ConnectTimeout": "15s", "RequestTimeout": 90_000_000_000u64}),
            "/v1/config/service-resolver/api",
            json!({"Kind": "service-resolver", "Name": "api", "DefaultSubset": "v1",
                   "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true}},
                   "Failover": {"*": {"Datacenters": ["dc2", "dc3"]}},
                   "ConnectTimeout": "15s", "RequestTimeout": "1m30s"}),
        ),
    ];
    for (body, path, want) in cases {
        let r = agent.put("/v1/config", body.to_string().as_bytes());
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "true"),
            "{body}: {}",
            agent.logs_tail()
        );
        let r = agent.get(path);
        r.expect_status(200);
        assert_eq!(without_indexes(r.json()), want, "{path}");
    }
}

#[test]
fn bad_fields_get_consuls_status_and_text() {
    let agent = AgentSpec::dev().spawn();
    let cases = [
        (
            json!({"Kind": "service-defaults", "Name": "web", "Listeners": []}),
            400,
            "Request decoding failed: 1 error occurred:\n\t* invalid config key \"Listeners\"\n\n",
        ),
        (
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": {"x": 1}}),
            400,
            "Request decoding failed: 1 error(s) decoding:\n\n* 'Protocol' expected type 'string', got unconvertible type 'map[string]interface {}'",
        ),
        (
            json!({"Kind": "service-defaults", "Name": "*"}),
            500,
            "service-defaults name must be the name of a service, and not a wildcard",
        ),
        (
            json!({"Kind": "service-defaults", "Name": "web", "MeshGateway": {"Mode": "far"}}),
            500,
            "Invalid Mesh Gateway Mode: \"far\"",
        ),
        (
            json!({"Kind": "service-defaults", "Name": "web", "UpstreamConfig": {"Defaults": {"Name": "db"}}}),
            500,
            "1 error occurred:\n\t* error in upstream defaults: Name must be empty\n\n",
        ),
        (
            json!({"Kind": "proxy-defaults", "Mode": "sideways"}),
            500,
            "Invalid Proxy Mode: \"sideways\"",
        ),
        (
            json!({"Kind": "proxy-defaults", "Config": "protocol=http"}),
            400,
            "Request decoding failed: 1 error(s) decoding:\n\n* 'Config' expected a map, got 'string'",
        ),
        (
            json!({"Kind": "service-resolver", "Name": "api", "DefaultSubset": "v9"}),
            500,
            "DefaultSubset \"v9\" is not a valid subset",
        ),
        (
            json!({"Kind": "service-resolver", "Name": "api", "Redirect": {"Service": "x"}, "Failover": {"*": {"Service": "y"}}}),
            500,
            "Redirect and Failover cannot both be set",
        ),
        (
            json!({"Kind": "service-resolver", "Name": "api", "ConnectTimeout": "-2s"}),
            500,
            "Bad ConnectTimeout '-2s', must be >= 0",
        ),
        (
            json!({"Kind": "service-resolver", "Name": "api", "RequestTimeout": "later"}),
            400,
            "Request decoding failed: 1 error(s) decoding:\n\n* error decoding 'RequestTimeout': time: invalid duration \"later\"",
        ),
    ];
    for (body, status, text) in cases {
        let r = agent.put("/v1/config", body.to_string().as_bytes());
        assert_eq!((r.status, r.text().as_str()), (status, text), "{body}");
    }
    let r = agent.put(
        "/v1/config",
        json!({"Kind": "service-resolver", "Name": "api", "Subsets": {"v1": {"Filter": "Service.Meta.version =="}}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .starts_with("Filter for subset \"v1\" is not a valid expression: "),
        "{}",
        r.text()
    );
    for kind in ["service-defaults", "proxy-defaults", "service-resolver"] {
        assert_eq!(
            agent.get(&format!("/v1/config/{kind}")).json(),
            json!([]),
            "nothing refused was stored"
        );
    }
}
