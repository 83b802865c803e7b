//! JSON shapes of the agent endpoints (`AgentService`, `HealthCheck`,
//! `Member`) and the writer that prints them the way the data plane does
//! (Go's `encoding/json`, 4-space indentation under `?pretty` or `-dev`).
//! Pure.

use proconsul_dataplane::api::json::JsonWriter;
use proconsul_shared::state::{HealthCheck, MeshGatewayConfig, ServiceInstance, ServiceProxy, KIND_CONNECT_PROXY};
use serde_json::{json, Map, Value};

/// Renders a value like Go's encoder (objects with sorted keys).
pub fn to_bytes(value: &Value, pretty: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out, pretty);
    write_value(&mut w, value);
    w.finish();
    out
}

fn write_value(w: &mut JsonWriter<'_>, value: &Value) {
    match value {
        Value::Null => w.null(),
        Value::Bool(b) => w.bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                w.u64(u)
            } else if let Some(i) = n.as_i64() {
                w.i64(i)
            } else {
                w.f64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => w.string(s),
        Value::Array(items) => {
            w.begin_array();
            for item in items {
                write_value(w, item);
            }
            w.end_array();
        }
        Value::Object(map) => {
            w.begin_object();
            for (k, v) in map {
                w.key(k);
                write_value(w, v);
            }
            w.end_object();
        }
    }
}

/// Go's `time.Duration.String()` for a non-negative duration.
pub fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let fraction = |value: u64, unit: u64| -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.ilog10() as usize;
        let text = format!("{rest:0digits$}");
        format!("{whole}.{}", text.trim_end_matches('0'))
    };
    if ns < 1_000_000 {
        return format!("{}µs", fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", fraction(ns, 1_000_000));
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = (ns / 60_000_000_000) % 60;
    let seconds_ns = ns % 60_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", fraction(seconds_ns, 1_000_000_000)));
    out
}

fn duration_or_empty(ns: u64) -> String {
    if ns == 0 {
        String::new()
    } else {
        go_duration(ns)
    }
}

/// An `AgentService` object.
pub fn agent_service(s: &ServiceInstance, datacenter: &str) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), json!(s.kind));
    }
    m.insert("ID".into(), json!(s.id));
    m.insert("Service".into(), json!(s.service));
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), json!(s.port));
    m.insert("Address".into(), json!(s.address));
    if !s.socket_path.is_empty() {
        m.insert("SocketPath".into(), json!(s.socket_path));
    }
    if !s.tagged_addresses.is_empty() {
        let tagged: Map<String, Value> = s
            .tagged_addresses
            .iter()
            .map(|(k, a)| (k.clone(), json!({"Address": a.address, "Port": a.port})))
            .collect();
        m.insert("TaggedAddresses".into(), Value::Object(tagged));
    }
    m.insert(
        "Weights".into(),
        json!({"Passing": s.weights.passing, "Warning": s.weights.warning}),
    );
    m.insert("EnableTagOverride".into(), json!(s.enable_tag_override));
    if s.kind == KIND_CONNECT_PROXY || s.kind.ends_with("-gateway") {
        m.insert("Proxy".into(), agent_proxy(&s.proxy));
    }
    if s.connect.native {
        m.insert("Connect".into(), json!({"Native": true}));
    }
    m.insert("Datacenter".into(), json!(datacenter));
    Value::Object(m)
}

/// Inserts `key: value` unless `value` is Go's zero value.
fn insert_nonzero(m: &mut Map<String, Value>, key: &str, value: Value) {
    let zero = match &value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_u64() == Some(0),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => true,
    };
    if !zero {
        m.insert(key.into(), value);
    }
}

fn mesh_gateway(g: &MeshGatewayConfig) -> Value {
    let mut m = Map::new();
    insert_nonzero(&mut m, "Mode", json!(g.mode));
    Value::Object(m)
}

fn opaque_config(config_json: &str) -> Value {
    serde_json::from_str(config_json).unwrap_or(Value::Null)
}

/// An `AgentServiceConnectProxyConfig` (the agent's `Proxy`: every
/// field `omitempty` but `MeshGateway` and `Expose`).
pub fn agent_proxy(p: &ServiceProxy) -> Value {
    let mut m = Map::new();
    insert_nonzero(&mut m, "DestinationServiceName", json!(p.destination_service_name));
    insert_nonzero(&mut m, "DestinationServiceID", json!(p.destination_service_id));
    insert_nonzero(&mut m, "LocalServiceAddress", json!(p.local_service_address));
    insert_nonzero(&mut m, "LocalServicePort", json!(p.local_service_port));
    insert_nonzero(&mut m, "LocalServiceSocketPath", json!(p.local_service_socket_path));
    insert_nonzero(&mut m, "Mode", json!(p.mode));
    let t = &p.transparent_proxy;
    if t.outbound_listener_port != 0 || t.dialed_directly {
        let mut tp = Map::new();
        insert_nonzero(&mut tp, "OutboundListenerPort", json!(t.outbound_listener_port));
        insert_nonzero(&mut tp, "DialedDirectly", json!(t.dialed_directly));
        m.insert("TransparentProxy".into(), Value::Object(tp));
    }
    insert_nonzero(&mut m, "Config", opaque_config(&p.config_json));
    let upstreams: Vec<Value> = p
        .upstreams
        .iter()
        .map(|u| {
            let mut um = Map::new();
            insert_nonzero(&mut um, "DestinationType", json!(u.destination_type));
            insert_nonzero(&mut um, "DestinationNamespace", json!(u.destination_namespace));
            insert_nonzero(&mut um, "DestinationPartition", json!(u.destination_partition));
            insert_nonzero(&mut um, "DestinationPeer", json!(u.destination_peer));
            insert_nonzero(&mut um, "DestinationName", json!(u.destination_name));
            insert_nonzero(&mut um, "Datacenter", json!(u.datacenter));
            insert_nonzero(&mut um, "LocalBindAddress", json!(u.local_bind_address));
            insert_nonzero(&mut um, "LocalBindPort", json!(u.local_bind_port));
            insert_nonzero(&mut um, "LocalBindSocketPath", json!(u.local_bind_socket_path));
            insert_nonzero(&mut um, "LocalBindSocketMode", json!(u.local_bind_socket_mode));
            insert_nonzero(&mut um, "Config", opaque_config(&u.config_json));
            um.insert("MeshGateway".into(), mesh_gateway(&u.mesh_gateway));
            insert_nonzero(&mut um, "CentrallyConfigured", json!(u.centrally_configured));
            Value::Object(um)
        })
        .collect();
    insert_nonzero(&mut m, "Upstreams", Value::Array(upstreams));
    m.insert("MeshGateway".into(), mesh_gateway(&p.mesh_gateway));
    let mut expose = Map::new();
    insert_nonzero(&mut expose, "Checks", json!(p.expose.checks));
    let paths: Vec<Value> = p
        .expose
        .paths
        .iter()
        .map(|path| {
            let mut pm = Map::new();
            insert_nonzero(&mut pm, "ListenerPort", json!(path.listener_port));
            insert_nonzero(&mut pm, "Path", json!(path.path));
            insert_nonzero(&mut pm, "LocalPathPort", json!(path.local_path_port));
            insert_nonzero(&mut pm, "Protocol", json!(path.protocol));
            insert_nonzero(&mut pm, "ParsedFromCheck", json!(path.parsed_from_check));
            Value::Object(pm)
        })
        .collect();
    insert_nonzero(&mut expose, "Paths", Value::Array(paths));
    m.insert("Expose".into(), Value::Object(expose));
    Value::Object(m)
}

/// A `HealthCheck` object as the agent reports it.
pub fn health_check(c: &HealthCheck) -> Value {
    let d = &c.definition;
    let mut def = Map::new();
    if !d.http.is_empty() {
        def.insert("HTTP".into(), json!(d.http));
        def.insert("Header".into(), json!(d.header));
        def.insert("Method".into(), json!(d.method));
        def.insert("Body".into(), json!(d.body));
        def.insert("TLSServerName".into(), json!(d.tls_server_name));
        def.insert("TLSSkipVerify".into(), json!(d.tls_skip_verify));
    }
    if !d.tcp.is_empty() {
        def.insert("TCP".into(), json!(d.tcp));
    }
    if d.interval_ns > 0 {
        def.insert("IntervalDuration".into(), json!(go_duration(d.interval_ns)));
    }
    if d.timeout_ns > 0 {
        def.insert("TimeoutDuration".into(), json!(go_duration(d.timeout_ns)));
    }
    if d.deregister_critical_service_after_ns > 0 {
        def.insert(
            "DeregisterCriticalServiceAfterDuration".into(),
            json!(go_duration(d.deregister_critical_service_after_ns)),
        );
    }
    json!({
        "Node": c.node,
        "CheckID": c.check_id,
        "Name": c.name,
        "Status": c.status.as_str(),
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "ServiceTags": c.service_tags,
        "Type": c.check_type,
        "Interval": duration_or_empty(d.interval_ns),
        "Timeout": duration_or_empty(d.timeout_ns),
        "ExposedPort": 0,
        "Definition": Value::Object(def),
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// FNV-1a of the rendered service: Consul's `ContentHash` is an opaque
/// 16-hex-digit hash of the service's content.
pub fn content_hash(service: &Value) -> String {
    let bytes = to_bytes(service, false);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::CheckStatus;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(10_000_000_000), "10s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(12), "12ns");
    }

    #[test]
    fn agent_service_shape_normalises_empties() {
        let s = ServiceInstance {
            id: "web".into(),
            service: "web".into(),
            port: 80,
            ..ServiceInstance::default()
        };
        let v = agent_service(&s, "dc1");
        assert_eq!(v["Tags"], json!([]));
        assert_eq!(v["Meta"], json!({}));
        assert_eq!(v["Weights"], json!({"Passing": 1, "Warning": 1}));
        assert_eq!(v["Datacenter"], "dc1");
        assert!(v.get("Kind").is_none() && v.get("TaggedAddresses").is_none());
        assert!(v.get("Proxy").is_none() && v.get("Connect").is_none());
    }

    #[test]
    fn agent_service_shape_of_a_proxy_and_a_native_service() {
        let mut s = ServiceInstance {
            id: "web-sidecar-proxy".into(),
            service: "web-sidecar-proxy".into(),
            kind: KIND_CONNECT_PROXY.into(),
            port: 21000,
            ..ServiceInstance::default()
        };
        s.proxy.destination_service_name = "web".into();
        s.proxy.local_service_port = 8080;
        s.proxy.config_json = r#"{"protocol":"http"}"#.into();
        let v = agent_service(&s, "dc1");
        assert_eq!(v["Kind"], "connect-proxy");
        assert_eq!(
            v["Proxy"],
            json!({"DestinationServiceName": "web", "LocalServicePort": 8080,
                   "Config": {"protocol": "http"}, "MeshGateway": {}, "Expose": {}})
        );
        assert!(v.get("Connect").is_none());
        let native = ServiceInstance {
            id: "api".into(),
            service: "api".into(),
            port: 80,
            connect: proconsul_shared::state::ServiceConnect { native: true },
            ..ServiceInstance::default()
        };
        let v = agent_service(&native, "dc1");
        assert_eq!(v["Connect"], json!({"Native": true}));
        assert!(v.get("Proxy").is_none());
    }

    #[test]
    fn health_check_shape() {
        let mut c = HealthCheck {
            check_id: "c".into(),
            status: CheckStatus::Warning,
            check_type: "http".into(),
            ..HealthCheck::default()
        };
        c.definition.http = "http://x/".into();
        c.definition.interval_ns = 5_000_000_000;
        let v = health_check(&c);
        assert_eq!(v["Status"], "warning");
        assert_eq!(v["Interval"], "5s");
        assert_eq!(v["Timeout"], "");
        assert_eq!(v["ServiceTags"], json!([]));
        assert_eq!(v["Definition"]["HTTP"], "http://x/");
    }

    #[test]
    fn pretty_output_matches_go_indent() {
        let v = json!({"B": [1], "A": "<"});
        assert_eq!(to_bytes(&v, false), br#"{"A":"\u003c","B":[1]}"#.to_vec());
        assert_eq!(
            String::from_utf8(to_bytes(&v, true)).unwrap(),
            "{\n    \"A\": \"\\u003c\",\n    \"B\": [\n        1\n    ]\n}\n"
        );
        assert_eq!(content_hash(&v).len(), 16);
        assert_ne!(content_hash(&v), content_hash(&json!({})));
    }
}
