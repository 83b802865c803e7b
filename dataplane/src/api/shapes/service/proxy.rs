//! The Connect blocks of a service in the catalog and health shapes:
//! `Proxy`/`ServiceProxy` (Go's `structs.ConnectProxyConfig`, whose
//! custom marshaller puts a non-empty `TransparentProxy` first) and
//! `Connect`/`ServiceConnect` (`structs.ServiceConnect`). Field order and
//! `omitempty` follow the Go structs; a service that is not a proxy
//! renders `{"Mode":"","MeshGateway":{},"Expose":{}}` and `{}`.

use proconsul_shared::state::{ExposeConfig, MeshGatewayConfig, ServiceConnect, ServiceProxy, Upstream};
use serde_json::Value;

use crate::api::json::JsonWriter;

/// Writes a `ConnectProxyConfig`.
pub fn write_proxy(w: &mut JsonWriter<'_>, p: &ServiceProxy) {
    w.begin_object();
    let t = &p.transparent_proxy;
    if t.outbound_listener_port != 0 || t.dialed_directly {
        w.key("TransparentProxy");
        w.begin_object();
        if t.outbound_listener_port != 0 {
            w.key("OutboundListenerPort");
            w.u64(u64::from(t.outbound_listener_port));
        }
        if t.dialed_directly {
            w.key("DialedDirectly");
            w.bool(true);
        }
        w.end_object();
    }
    optional_string(w, "DestinationServiceName", &p.destination_service_name);
    optional_string(w, "DestinationServiceID", &p.destination_service_id);
    optional_string(w, "LocalServiceAddress", &p.local_service_address);
    optional_port(w, "LocalServicePort", p.local_service_port);
    optional_string(w, "LocalServiceSocketPath", &p.local_service_socket_path);
    w.key("Mode");
    w.string(&p.mode);
    optional_config(w, &p.config_json);
    if !p.upstreams.is_empty() {
        w.key("Upstreams");
        w.begin_array();
        for u in &p.upstreams {
            write_upstream(w, u);
        }
        w.end_array();
    }
    w.key("MeshGateway");
    write_mesh_gateway(w, &p.mesh_gateway);
    w.key("Expose");
    write_expose(w, &p.expose);
    w.end_object();
}

/// Writes a `ServiceConnect`: `{}` or `{"Native":true}`.
pub fn write_connect(w: &mut JsonWriter<'_>, c: ServiceConnect) {
    w.begin_object();
    if c.native {
        w.key("Native");
        w.bool(true);
    }
    w.end_object();
}

fn write_upstream(w: &mut JsonWriter<'_>, u: &Upstream) {
    w.begin_object();
    w.key("DestinationType");
    w.string(&u.destination_type);
    optional_string(w, "DestinationNamespace", &u.destination_namespace);
    optional_string(w, "DestinationPartition", &u.destination_partition);
    optional_string(w, "DestinationPeer", &u.destination_peer);
    w.key("DestinationName");
    w.string(&u.destination_name);
    w.key("Datacenter");
    w.string(&u.datacenter);
    optional_string(w, "LocalBindAddress", &u.local_bind_address);
    optional_port(w, "LocalBindPort", u.local_bind_port);
    optional_string(w, "LocalBindSocketPath", &u.local_bind_socket_path);
    optional_string(w, "LocalBindSocketMode", &u.local_bind_socket_mode);
    optional_config(w, &u.config_json);
    w.key("MeshGateway");
    write_mesh_gateway(w, &u.mesh_gateway);
    if u.centrally_configured {
        w.key("CentrallyConfigured");
        w.bool(true);
    }
    w.end_object();
}

fn write_mesh_gateway(w: &mut JsonWriter<'_>, m: &MeshGatewayConfig) {
    w.begin_object();
    optional_string(w, "Mode", &m.mode);
    w.end_object();
}

fn write_expose(w: &mut JsonWriter<'_>, e: &ExposeConfig) {
    w.begin_object();
    if e.checks {
        w.key("Checks");
        w.bool(true);
    }
    if !e.paths.is_empty() {
        w.key("Paths");
        w.begin_array();
        for p in &e.paths {
            w.begin_object();
            optional_port(w, "ListenerPort", p.listener_port);
            optional_string(w, "Path", &p.path);
            optional_port(w, "LocalPathPort", p.local_path_port);
            optional_string(w, "Protocol", &p.protocol);
            if p.parsed_from_check {
                w.key("ParsedFromCheck");
                w.bool(true);
            }
            w.end_object();
        }
        w.end_array();
    }
    w.end_object();
}

fn optional_string(w: &mut JsonWriter<'_>, key: &str, value: &str) {
    if !value.is_empty() {
        w.key(key);
        w.string(value);
    }
}

fn optional_port(w: &mut JsonWriter<'_>, key: &str, value: u16) {
    if value != 0 {
        w.key(key);
        w.u64(u64::from(value));
    }
}

/// `"Config": {...}` from the stored compact JSON text, if any. Text that
/// does not parse (never stored by the decoder) is left out.
fn optional_config(w: &mut JsonWriter<'_>, config_json: &str) {
    if config_json.is_empty() {
        return;
    }
    let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(config_json) else {
        return;
    };
    w.key("Config");
    write_json_value(w, &value);
}

/// A decoded `interface{}` value as Go re-encodes it: object keys sorted,
/// numbers as `float64`.
fn write_json_value(w: &mut JsonWriter<'_>, value: &Value) {
    match value {
        Value::Null => w.null(),
        Value::Bool(b) => w.bool(*b),
        Value::Number(n) => w.f64(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => w.string(s),
        Value::Array(items) => {
            w.begin_array();
            for item in items {
                write_json_value(w, item);
            }
            w.end_array();
        }
        Value::Object(map) => {
            w.begin_object();
            for (k, v) in map {
                w.key(k);
                write_json_value(w, v);
            }
            w.end_object();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::{ExposePath, TransparentProxyConfig};

    fn render(f: impl FnOnce(&mut JsonWriter<'_>)) -> String {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, false);
        f(&mut w);
        w.finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_typical_service_renders_the_empty_proxy() {
        assert_eq!(
            render(|w| write_proxy(w, &ServiceProxy::default())),
            r#"{"Mode":"","MeshGateway":{},"Expose":{}}"#
        );
        assert_eq!(render(|w| write_connect(w, ServiceConnect::default())), "{}");
        assert_eq!(
            render(|w| write_connect(w, ServiceConnect { native: true })),
            r#"{"Native":true}"#
        );
    }

    #[test]
    fn a_sidecar_proxy_renders_like_consul() {
        let p = ServiceProxy {
            destination_service_name: "web".into(),
            destination_service_id: "web-1".into(),
            local_service_address: "127.0.0.1".into(),
            local_service_port: 8080,
            mode: "transparent".into(),
            transparent_proxy: TransparentProxyConfig {
                outbound_listener_port: 15001,
                dialed_directly: false,
            },
            config_json: r#"{"a":1.5,"b":[1,"x"],"protocol":"http"}"#.into(),
            upstreams: vec![Upstream {
                destination_type: "service".into(),
                destination_name: "db".into(),
                local_bind_port: 9191,
                ..Upstream::default()
            }],
            mesh_gateway: MeshGatewayConfig { mode: "local".into() },
            expose: ExposeConfig {
                checks: true,
                paths: vec![ExposePath {
                    listener_port: 21500,
                    path: "/health".into(),
                    local_path_port: 8080,
                    ..ExposePath::default()
                }],
            },
            ..ServiceProxy::default()
        };
        assert_eq!(
            render(|w| write_proxy(w, &p)),
            concat!(
                r#"{"TransparentProxy":{"OutboundListenerPort":15001},"DestinationServiceName":"web","#,
                r#""DestinationServiceID":"web-1","LocalServiceAddress":"127.0.0.1","LocalServicePort":8080,"#,
                r#""Mode":"transparent","Config":{"a":1.5,"b":[1,"x"],"protocol":"http"},"#,
                r#""Upstreams":[{"DestinationType":"service","DestinationName":"db","Datacenter":"","#,
                r#""LocalBindPort":9191,"MeshGateway":{}}],"MeshGateway":{"Mode":"local"},"#,
                r#""Expose":{"Checks":true,"Paths":[{"ListenerPort":21500,"Path":"/health","LocalPathPort":8080}]}}"#
            )
        );
    }
}
