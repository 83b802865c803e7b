//! `service-defaults`: Consul's `ServiceConfigEntry` fields, its
//! `Normalize` (protocols lower-cased, a negative upstream connect timeout
//! made 0) and its `Validate`, in Consul's words. Pure.

use serde_json::{Map, Value};

use super::super::check_def::Rejection;
use super::rules::{
    check_expose, check_mesh_gateway_mode, check_mutual_tls_mode, check_proxy_mode, is_valid_connection_balance,
    meta_errors, rpc_error, Errors,
};
use super::schema::{check_entry, field, object_of, text_of, Field, Shape};
use crate::http_api::proxy_def::multierror_text;

/// Most upstream overrides on one entry.
pub const UPSTREAM_OVERRIDES_MAX: usize = 256;
/// Most `Destination.Addresses` on one entry.
pub const DESTINATION_ADDRESSES_MAX: usize = 64;

/// `MeshGatewayConfig`, shared with `proxy-defaults`.
pub const MESH_GATEWAY: &[Field] = &[field("Mode", Shape::Text)];

/// `TransparentProxyConfig`, shared with `proxy-defaults`.
pub const TRANSPARENT_PROXY: &[Field] = &[
    field("OutboundListenerPort", Shape::Integer),
    field("DialedDirectly", Shape::Flag),
];

const EXPOSE_PATH: &[Field] = &[
    field("ListenerPort", Shape::Integer),
    field("Path", Shape::Text),
    field("LocalPathPort", Shape::Integer),
    field("Protocol", Shape::Text),
];

/// `ExposeConfig`, shared with `proxy-defaults`.
pub const EXPOSE: &[Field] = &[
    field("Checks", Shape::Flag),
    field("Paths", Shape::ObjectList(EXPOSE_PATH)),
];

const UPSTREAM_LIMITS: &[Field] = &[
    field("MaxConnections", Shape::Integer),
    field("MaxPendingRequests", Shape::Integer),
    field("MaxConcurrentRequests", Shape::Integer),
];

const PASSIVE_HEALTH_CHECK: &[Field] = &[
    field("Interval", Shape::DurationNs),
    field("MaxFailures", Shape::Integer),
    field("EnforcingConsecutive5xx", Shape::Integer),
    field("MaxEjectionPercent", Shape::Integer),
    field("BaseEjectionTime", Shape::DurationNs),
];

const UPSTREAM: &[Field] = &[
    field("Name", Shape::Text),
    field("Peer", Shape::Text),
    field("EnvoyListenerJSON", Shape::Text),
    field("EnvoyClusterJSON", Shape::Text),
    field("Protocol", Shape::Text),
    field("ConnectTimeoutMs", Shape::Integer),
    field("Limits", Shape::Object(UPSTREAM_LIMITS)),
    field("PassiveHealthCheck", Shape::Object(PASSIVE_HEALTH_CHECK)),
    field("MeshGateway", Shape::Object(MESH_GATEWAY)),
    field("BalanceOutboundConnections", Shape::Text),
];

const UPSTREAM_CONFIG: &[Field] = &[
    field("Overrides", Shape::ObjectList(UPSTREAM)),
    field("Defaults", Shape::Object(UPSTREAM)),
];

const DESTINATION: &[Field] = &[field("Addresses", Shape::TextList), field("Port", Shape::Integer)];

/// The fields of a `service-defaults` entry besides `Kind` and `Name`.
pub const FIELDS: &[Field] = &[
    field("Protocol", Shape::Text),
    field("Mode", Shape::Text),
    field("TransparentProxy", Shape::Object(TRANSPARENT_PROXY)),
    field("MutualTLSMode", Shape::Text),
    field("MeshGateway", Shape::Object(MESH_GATEWAY)),
    field("Expose", Shape::Object(EXPOSE)),
    field("ExternalSNI", Shape::Text),
    field("UpstreamConfig", Shape::Object(UPSTREAM_CONFIG)),
    field("Destination", Shape::Object(DESTINATION)),
    field("MaxInboundConnections", Shape::Integer),
    field("LocalConnectTimeoutMs", Shape::Integer),
    field("LocalRequestTimeoutMs", Shape::Integer),
    field("BalanceInboundConnections", Shape::Text),
    field("RateLimits", Shape::Opaque),
    field("EnvoyExtensions", Shape::Opaque),
    field("Meta", Shape::TextMap),
];

/// Checks, normalizes and validates a `service-defaults` entry in place.
pub fn check(object: &mut Map<String, Value>) -> Result<(), Rejection> {
    check_entry(object, FIELDS)?;
    normalize(object);
    validate(object)
}

fn lower_text(object: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = object.get_mut(key) {
        s.make_ascii_lowercase();
    }
}

/// Consul's `Normalize`: protocols lower-cased, negative upstream connect
/// timeouts made 0.
fn normalize(object: &mut Map<String, Value>) {
    lower_text(object, "Protocol");
    let Some(Value::Object(upstreams)) = object.get_mut("UpstreamConfig") else {
        return;
    };
    let each = upstreams
        .iter_mut()
        .flat_map(|(key, value)| match (key.as_str(), value) {
            ("Overrides", Value::Array(overrides)) => overrides.iter_mut().filter_map(Value::as_object_mut).collect(),
            ("Defaults", Value::Object(defaults)) => vec![defaults],
            _ => Vec::new(),
        });
    for upstream in each {
        lower_text(upstream, "Protocol");
        if upstream
            .get("ConnectTimeoutMs")
            .and_then(Value::as_i64)
            .is_some_and(|ms| ms < 0)
        {
            upstream.insert("ConnectTimeoutMs".into(), Value::from(0));
        }
    }
}

/// `UpstreamConfig.validate(named)`: the name rule first (alone), then the
/// gathered errors.
fn upstream_error(upstream: &Map<String, Value>, named: bool) -> Option<String> {
    let name = text_of(upstream, "Name");
    if named {
        if name.is_empty() {
            return Some("Name is required".into());
        }
        if name == "*" {
            return Some("Wildcard name is not supported".into());
        }
    } else if !name.is_empty() {
        return Some("Name must be empty".into());
    }
    let balance = text_of(upstream, "BalanceOutboundConnections");
    if is_valid_connection_balance(balance) {
        return None;
    }
    Some(multierror_text(&[format!(
        "invalid value for balance_outbound_connections: {balance}"
    )]))
}

fn validate(object: &Map<String, Value>) -> Result<(), Rejection> {
    if text_of(object, "Name") == "*" {
        return Err(rpc_error(
            "service-defaults name must be the name of a service, and not a wildcard",
        ));
    }
    let mut errors = Errors::default();
    meta_errors(object, &mut errors);
    let balance = text_of(object, "BalanceInboundConnections");
    if !is_valid_connection_balance(balance) {
        errors.push(format!("invalid value for balance_inbound_connections: {balance}"));
    }
    let upstreams = object_of(object, "UpstreamConfig");
    let destination = object_of(object, "Destination");
    if upstreams.is_some() && destination.is_some() {
        errors.push("UpstreamConfig and Destination are mutually exclusive for service defaults");
        return errors.into_result();
    }
    if let Some(upstreams) = upstreams {
        let overrides = upstreams
            .get("Overrides")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if overrides.len() > UPSTREAM_OVERRIDES_MAX {
            errors.push(format!(
                "too many upstream overrides ({} > {UPSTREAM_OVERRIDES_MAX})",
                overrides.len()
            ));
        }
        for upstream in overrides.iter().filter_map(Value::as_object) {
            if let Some(why) = upstream_error(upstream, true) {
                let peer = text_of(upstream, "Peer");
                let name = text_of(upstream, "Name");
                let who = if peer.is_empty() {
                    name.to_string()
                } else {
                    format!("{peer}/{name}")
                };
                errors.push(format!("error in upstream override for {who}: {why}"));
            }
        }
        if let Some(why) = object_of(upstreams, "Defaults").and_then(|d| upstream_error(d, false)) {
            errors.push(format!("error in upstream defaults: {why}"));
        }
    }
    if let Some(destination) = destination {
        destination_errors(destination, &mut errors);
    }
    check_mutual_tls_mode(object)?;
    if !errors.is_empty() {
        return errors.into_result();
    }
    check_proxy_mode(object)?;
    check_mesh_gateway_mode(object)?;
    check_expose(object)
}

fn destination_errors(destination: &Map<String, Value>, errors: &mut Errors) {
    let addresses: Vec<&str> = destination
        .get("Addresses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if addresses.is_empty() {
        errors.push("Destination must contain at least one valid address");
    }
    if addresses.len() > DESTINATION_ADDRESSES_MAX {
        errors.push(format!(
            "too many Destination addresses ({} > {DESTINATION_ADDRESSES_MAX})",
            addresses.len()
        ));
        return;
    }
    let mut seen: Vec<&str> = Vec::with_capacity(addresses.len());
    for address in addresses {
        if seen.contains(&address) {
            errors.push(format!("Duplicate address '{address}' is not allowed"));
            continue;
        }
        seen.push(address);
        if !is_ip_or_hostname(address) {
            errors.push(format!(
                "Destination address '{address}' is invalid Could not validate address {address} as an IP or Hostname"
            ));
        }
    }
    let port = destination.get("Port").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=65535).contains(&port) {
        errors.push(format!("Invalid Port number {port}"));
    }
}

/// An IP address, or a domain name without wildcards (`dns.IsDomainName`:
/// labels of 1-63 bytes, 255 bytes in all).
fn is_ip_or_hostname(address: &str) -> bool {
    if address.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    !name.is_empty()
        && name.len() <= 254
        && !address.contains('*')
        && name.split('.').all(|label| !label.is_empty() && label.len() <= 63)
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
    fn a_full_entry_is_kept_normalized() {
        let out = run(json!({
            "Kind": "service-defaults", "Name": "web", "Protocol": "HTTP", "Mode": "transparent",
            "TransparentProxy": {"OutboundListenerPort": 15001, "DialedDirectly": true},
            "MeshGateway": {"Mode": "local"}, "Expose": {"Checks": true, "Paths": [{"Path": "/m", "ListenerPort": 21500, "LocalPathPort": 8080, "Protocol": "http"}]},
            "UpstreamConfig": {"Overrides": [{"Name": "db", "Protocol": "GRPC", "ConnectTimeoutMs": -5}],
                               "Defaults": {"ConnectTimeoutMs": 500, "PassiveHealthCheck": {"Interval": "10s", "MaxFailures": 3}}},
            "MaxInboundConnections": 10, "BalanceInboundConnections": "exact_balance", "Meta": {"team": "a"}
        }))
        .unwrap();
        assert_eq!(out["Protocol"], "http");
        assert_eq!(out["UpstreamConfig"]["Overrides"][0]["Protocol"], "grpc");
        assert_eq!(out["UpstreamConfig"]["Overrides"][0]["ConnectTimeoutMs"], 0);
        assert_eq!(
            out["UpstreamConfig"]["Defaults"]["PassiveHealthCheck"]["Interval"],
            10_000_000_000u64
        );
    }

    #[test]
    fn bad_entries_get_consuls_status_and_text() {
        let cases = [
            (json!({"Name": "*"}), 500, "service-defaults name must be the name of a service, and not a wildcard"),
            (json!({"Name": "w", "Mode": "sideways"}), 500, "Invalid Proxy Mode: \"sideways\""),
            (json!({"Name": "w", "MeshGateway": {"Mode": "far"}}), 500, "Invalid Mesh Gateway Mode: \"far\""),
            (json!({"Name": "w", "MutualTLSMode": "x"}), 500, "Invalid MutualTLSMode \"x\". Must be one of \"\", \"strict\", or \"permissive\"."),
            (json!({"Name": "w", "BalanceInboundConnections": "rr"}), 500, "1 error occurred:\n\t* invalid value for balance_inbound_connections: rr\n\n"),
            (
                json!({"Name": "w", "UpstreamConfig": {}, "Destination": {}}),
                500,
                "1 error occurred:\n\t* UpstreamConfig and Destination are mutually exclusive for service defaults\n\n",
            ),
            (
                json!({"Name": "w", "UpstreamConfig": {"Overrides": [{"Protocol": "http"}], "Defaults": {"Name": "x"}}}),
                500,
                "2 errors occurred:\n\t* error in upstream override for : Name is required\n\t* error in upstream defaults: Name must be empty\n\n",
            ),
            (
                json!({"Name": "w", "UpstreamConfig": {"Overrides": [{"Name": "db", "BalanceOutboundConnections": "rr"}]}}),
                500,
                "1 error occurred:\n\t* error in upstream override for db: 1 error occurred:\n\t* invalid value for balance_outbound_connections: rr\n\n\n\n",
            ),
            (
                json!({"Name": "w", "Destination": {"Addresses": ["a.example", "a.example", "*.x"], "Port": 0}}),
                500,
                "3 errors occurred:\n\t* Duplicate address 'a.example' is not allowed\n\t* Destination address '*.x' is invalid Could not validate address *.x as an IP or Hostname\n\t* Invalid Port number 0\n\n",
            ),
            (
                json!({"Name": "w", "Expose": {"Paths": [{"Path": "/m", "Protocol": "tcp"}]}}),
                500,
                "protocol 'tcp' not supported for path: /m, must be in: [http http2]",
            ),
            (json!({"Name": "w", "Protocol": ["http"]}), 400, "'Protocol' expected type 'string'"),
            (json!({"Name": "w", "Listeners": []}), 400, "invalid config key \"Listeners\""),
            (json!({"Name": "w", "UpstreamConfig": {"Overrides": [{"Name": "db", "Timeout": 1}]}}), 400, "invalid config key \"UpstreamConfig.Overrides[0].Timeout\""),
        ];
        for (body, status, want) in cases {
            let e = run(body.clone()).unwrap_err();
            assert_eq!(e.status, status, "{body}: {}", e.message);
            if status == 500 {
                assert_eq!(e.message, want, "{body}");
            } else {
                assert!(e.message.contains(want), "{body}: {}", e.message);
            }
        }
    }

    #[test]
    fn hostnames_and_ips() {
        assert!(is_ip_or_hostname("10.0.0.1") && is_ip_or_hostname("::1") && is_ip_or_hostname("api.example.com."));
        assert!(!is_ip_or_hostname("*.example") && !is_ip_or_hostname("a..b") && !is_ip_or_hostname(""));
    }
}
