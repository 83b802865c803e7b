//! `proxy-defaults`: Consul's `ProxyConfigEntry` fields and its
//! `Validate` (the name is always `global`; `Config` is a free-form map),
//! in Consul's words. Pure.

use serde_json::{Map, Value};

use super::super::check_def::Rejection;
use super::rules::{check_expose, check_mesh_gateway_mode, check_meta, check_mutual_tls_mode, check_proxy_mode};
use super::schema::{check_entry, field, Field, Shape};
use super::service_defaults::{EXPOSE, MESH_GATEWAY, TRANSPARENT_PROXY};

/// The fields of a `proxy-defaults` entry besides `Kind` and `Name`.
pub const FIELDS: &[Field] = &[
    field("Config", Shape::Opaque),
    field("Mode", Shape::Text),
    field("TransparentProxy", Shape::Object(TRANSPARENT_PROXY)),
    field("MutualTLSMode", Shape::Text),
    field("MeshGateway", Shape::Object(MESH_GATEWAY)),
    field("Expose", Shape::Object(EXPOSE)),
    field("AccessLogs", Shape::Opaque),
    field("EnvoyExtensions", Shape::Opaque),
    field("FailoverPolicy", Shape::Opaque),
    field("PrioritizeByLocality", Shape::Opaque),
    field("Meta", Shape::TextMap),
];

/// Checks and validates a `proxy-defaults` entry in place (its name is
/// already `global`).
pub fn check(object: &mut Map<String, Value>) -> Result<(), Rejection> {
    check_entry(object, FIELDS)?;
    match object.get("Config") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(Rejection::bad_request(format!(
                "Request decoding failed: 1 error(s) decoding:\n\n* 'Config' expected a map, got '{}'",
                match other {
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "float64",
                    Value::String(_) => "string",
                    _ => "slice",
                }
            )))
        }
    }
    check_meta(object)?;
    check_mutual_tls_mode(object)?;
    check_proxy_mode(object)?;
    check_mesh_gateway_mode(object)?;
    check_expose(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Result<Value, Rejection> {
        let Value::Object(mut map) = v else { panic!("an object") };
        check(&mut map)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn config_is_free_form_and_kept_as_sent() {
        let out = run(json!({"Kind": "proxy-defaults", "Name": "global",
            "Config": {"protocol": "http", "envoy_prometheus_bind_addr": "0.0.0.0:9102", "nested": {"Any_Case": [1]}},
            "Mode": "direct", "MeshGateway": {"Mode": "remote"}, "TransparentProxy": {"DialedDirectly": "true"}}))
        .unwrap();
        assert_eq!(out["Config"]["nested"]["Any_Case"], json!([1]));
        assert_eq!(out["TransparentProxy"]["DialedDirectly"], true);
    }

    #[test]
    fn bad_entries_get_consuls_status_and_text() {
        let cases = [
            (
                json!({"Config": "protocol=http"}),
                400,
                "'Config' expected a map, got 'string'",
            ),
            (json!({"Mode": "sideways"}), 500, "Invalid Proxy Mode: \"sideways\""),
            (
                json!({"MeshGateway": {"Mode": "x"}}),
                500,
                "Invalid Mesh Gateway Mode: \"x\"",
            ),
            (json!({"Protocol": "http"}), 400, "invalid config key \"Protocol\""),
            (
                json!({"Meta": {"k": "v".repeat(513)}}),
                500,
                "Meta value for key \"k\" exceeds maximum length 512",
            ),
        ];
        for (body, status, want) in cases {
            let e = run(body.clone()).unwrap_err();
            assert_eq!(e.status, status, "{body}: {}", e.message);
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }
}
