//! Decoding and validating the Connect parts of a service definition:
//! `Proxy` (Consul's `ConnectProxyConfig`) and `Connect` (`Native`).
//! PascalCase and snake_case keys are both accepted. Pure.
//!
//! The free-form `Config` maps are kept as compact JSON text (keys
//! sorted), bounded by [`PROXY_CONFIG_BYTES_MAX`].

use proconsul_shared::state::{
    ExposeConfig, ExposePath, MeshGatewayConfig, ServiceConnect, ServiceProxy, TransparentProxyConfig, Upstream,
    KIND_CONNECT_PROXY,
};
use serde_json::Value;

use super::check_def::Rejection;
use super::fields::{DecodeError, Fields};

/// Longest `Proxy.Config` or `Upstreams[].Config`, as compact JSON bytes.
pub const PROXY_CONFIG_BYTES_MAX: usize = 16 * 1024;
/// Most upstreams of one proxy.
pub const UPSTREAMS_MAX: usize = 128;
/// Most `Expose.Paths` of one proxy.
pub const EXPOSE_PATHS_MAX: usize = 64;
/// Longest text field of a proxy or upstream, in bytes.
pub const PROXY_TEXT_BYTES_MAX: usize = 1024;

/// The Connect blocks of a decoded service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectParts {
    pub proxy: ServiceProxy,
    pub connect: ServiceConnect,
}

fn port(f: &Fields<'_>, names: &[&str]) -> Result<u16, DecodeError> {
    Ok(f.int(names, 0, i64::from(u16::MAX), "int")?.unwrap_or(0) as u16)
}

fn text(f: &Fields<'_>, names: &[&str]) -> Result<String, Rejection> {
    let value = f.string(names)?;
    if value.len() > PROXY_TEXT_BYTES_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: Proxy field {} exceeds {PROXY_TEXT_BYTES_MAX} bytes",
            names[0]
        )));
    }
    Ok(value)
}

/// A `Config` map as compact JSON text; `""` when absent or empty.
fn opaque_config(f: &Fields<'_>) -> Result<String, Rejection> {
    let Some(map) = f.raw_map(&["Config"])? else {
        return Ok(String::new());
    };
    if map.is_empty() {
        return Ok(String::new());
    }
    let sorted: serde_json::Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let text = Value::Object(sorted).to_string();
    if text.len() > PROXY_CONFIG_BYTES_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: Proxy.Config exceeds {PROXY_CONFIG_BYTES_MAX} bytes"
        )));
    }
    Ok(text)
}

fn mesh_gateway(f: &Fields<'_>) -> Result<MeshGatewayConfig, Rejection> {
    let Some(m) = f.object(&["MeshGateway", "mesh_gateway"], "MeshGatewayConfig")? else {
        return Ok(MeshGatewayConfig::default());
    };
    let mode = m.string(&["Mode"])?;
    if !matches!(mode.as_str(), "" | "none" | "local" | "remote") {
        return Err(Rejection::bad_request(format!("Invalid Mesh Gateway Mode: {mode:?}")));
    }
    Ok(MeshGatewayConfig { mode })
}

fn upstream(u: &Fields<'_>) -> Result<Upstream, Rejection> {
    let mut destination_type = text(u, &["DestinationType"])?;
    if destination_type.is_empty() {
        destination_type = "service".into();
    }
    Ok(Upstream {
        destination_type,
        destination_namespace: text(u, &["DestinationNamespace"])?,
        destination_partition: text(u, &["DestinationPartition"])?,
        destination_peer: text(u, &["DestinationPeer"])?,
        destination_name: text(u, &["DestinationName"])?,
        datacenter: text(u, &["Datacenter"])?,
        local_bind_address: text(u, &["LocalBindAddress"])?,
        local_bind_port: port(u, &["LocalBindPort"])?,
        local_bind_socket_path: text(u, &["LocalBindSocketPath"])?,
        local_bind_socket_mode: text(u, &["LocalBindSocketMode"])?,
        config_json: opaque_config(u)?,
        mesh_gateway: mesh_gateway(u)?,
        centrally_configured: u.bool(&["CentrallyConfigured"])?,
    })
}

fn expose(f: &Fields<'_>) -> Result<ExposeConfig, Rejection> {
    let Some(e) = f.object(&["Expose"], "ExposeConfig")? else {
        return Ok(ExposeConfig::default());
    };
    let paths = e.objects(&["Paths"], "ExposePath")?;
    if paths.len() > EXPOSE_PATHS_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: more than {EXPOSE_PATHS_MAX} exposed paths"
        )));
    }
    let paths = paths
        .iter()
        .map(|p| {
            Ok(ExposePath {
                listener_port: port(p, &["ListenerPort"])?,
                path: text(p, &["Path"])?,
                local_path_port: port(p, &["LocalPathPort"])?,
                protocol: text(p, &["Protocol"])?,
                parsed_from_check: p.bool(&["ParsedFromCheck"])?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    Ok(ExposeConfig {
        checks: e.bool(&["Checks"])?,
        paths,
    })
}

fn proxy(p: &Fields<'_>) -> Result<ServiceProxy, Rejection> {
    let upstreams = p.objects(&["Upstreams"], "Upstream")?;
    if upstreams.len() > UPSTREAMS_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: more than {UPSTREAMS_MAX} upstreams"
        )));
    }
    let transparent_proxy = match p.object(&["TransparentProxy", "transparent_proxy"], "TransparentProxyConfig")? {
        None => TransparentProxyConfig::default(),
        Some(t) => TransparentProxyConfig {
            outbound_listener_port: port(&t, &["OutboundListenerPort"])?,
            dialed_directly: t.bool(&["DialedDirectly"])?,
        },
    };
    let mode = text(p, &["Mode"])?;
    if !matches!(mode.as_str(), "" | "direct" | "transparent") {
        return Err(Rejection::bad_request(format!("Invalid Proxy Mode: {mode:?}")));
    }
    Ok(ServiceProxy {
        destination_service_name: text(p, &["DestinationServiceName"])?,
        destination_service_id: text(p, &["DestinationServiceID"])?,
        local_service_address: text(p, &["LocalServiceAddress"])?,
        local_service_port: port(p, &["LocalServicePort"])?,
        local_service_socket_path: text(p, &["LocalServiceSocketPath"])?,
        mode,
        transparent_proxy,
        config_json: opaque_config(p)?,
        upstreams: upstreams.iter().map(upstream).collect::<Result<_, _>>()?,
        mesh_gateway: mesh_gateway(p)?,
        expose: expose(p)?,
    })
}

/// Decodes `Proxy` and `Connect` of a service definition.
pub fn decode_connect_parts(f: &Fields<'_>) -> Result<ConnectParts, Rejection> {
    let proxy = match f.object(&["Proxy"], "ConnectProxyConfig")? {
        None => ServiceProxy::default(),
        Some(p) => proxy(&p)?,
    };
    let native = match f.object(&["Connect"], "ServiceConnect")? {
        None => false,
        Some(c) => c.bool(&["Native"])?,
    };
    Ok(ConnectParts {
        proxy,
        connect: ServiceConnect { native },
    })
}

/// Validates the Connect rules of Consul's `NodeService.Validate`, all
/// violations at once, in Consul's words. `Ok` when there is none.
pub fn validate_connect(kind: &str, port: u16, socket_path: &str, parts: &ConnectParts) -> Result<(), Rejection> {
    let mut errors: Vec<String> = Vec::new();
    let no_port = port == 0 && socket_path.is_empty();
    if kind == KIND_CONNECT_PROXY {
        if no_port {
            errors.push(format!("Port or SocketPath must be set for a {kind}"));
        }
        let destination = parts.proxy.destination_service_name.trim();
        if destination.is_empty() {
            errors.push("Proxy.DestinationServiceName must be non-empty for Connect proxy services".into());
        }
        if destination == "*" {
            errors.push("Proxy.DestinationServiceName must not be a wildcard for Connect proxy services".into());
        }
        if parts.connect.native {
            errors.push("A Proxy cannot also be Connect Native, only typical services".into());
        }
        let mut binds: Vec<String> = Vec::new();
        for u in &parts.proxy.upstreams {
            if !matches!(u.destination_type.as_str(), "service" | "prepared_query") {
                errors.push(format!("unknown upstream destination type: {:?}", u.destination_type));
                continue;
            }
            if u.destination_name.is_empty() {
                errors.push("upstream destination name cannot be empty".into());
                continue;
            }
            if u.local_bind_port == 0 && u.local_bind_socket_path.is_empty() && !u.centrally_configured {
                errors.push("upstream local bind port or local socket path must be defined and nonzero".into());
                continue;
            }
            let bind = if u.local_bind_socket_path.is_empty() {
                let address = if u.local_bind_address.is_empty() {
                    "127.0.0.1"
                } else {
                    &u.local_bind_address
                };
                format!("{address}:{}", u.local_bind_port)
            } else {
                u.local_bind_socket_path.clone()
            };
            if !u.centrally_configured && binds.contains(&bind) {
                errors.push(format!(
                    "upstreams cannot contain duplicates by local bind address and port or unix path; {bind:?} is specified twice"
                ));
                continue;
            }
            binds.push(bind);
        }
        let mut listeners: Vec<u16> = Vec::new();
        for path in &parts.proxy.expose.paths {
            if path.path.is_empty() {
                errors.push("expose.paths: empty path exposed".into());
            }
            if listeners.contains(&path.listener_port) {
                errors.push("expose.paths: duplicate listener ports exposed".into());
            }
            listeners.push(path.listener_port);
            if path.listener_port == 0 {
                errors.push(format!("expose.paths: invalid listener port: {}", path.listener_port));
            }
            let protocol = path.protocol.to_ascii_lowercase();
            if !matches!(protocol.as_str(), "" | "http" | "http2") {
                errors.push(format!(
                    "protocol '{protocol}' not supported for path: {}, must be in: [http http2]",
                    path.path
                ));
            }
        }
    }
    if parts.connect.native && no_port {
        errors.push("Port or SocketPath must be set for a Connect native service.".into());
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(validation_failed(&errors))
}

/// How the agent endpoint words a failed `NodeService.Validate`: 400, this
/// prefix, then the error list.
pub const VALIDATION_FAILED_PREFIX: &str = "Validation failed: ";

/// The agent endpoint's rejection of a service that fails Consul's
/// `NodeService.Validate` with `errors`.
pub fn validation_failed(errors: &[String]) -> Rejection {
    assert!(!errors.is_empty(), "a validation failure names at least one error");
    Rejection::bad_request(format!("{VALIDATION_FAILED_PREFIX}{}", multierror_text(errors)))
}

/// The same failure as `/v1/catalog/register` answers it: that endpoint
/// hands the request to the `Catalog.Register` RPC, whose errors come back
/// as `500` with the error list alone. Other rejections pass unchanged.
pub fn as_rpc_error(rejection: Rejection) -> Rejection {
    match rejection.message.strip_prefix(VALIDATION_FAILED_PREFIX) {
        Some(list) if rejection.status == 400 => Rejection {
            status: 500,
            message: list.to_string(),
        },
        _ => rejection,
    }
}

/// Go's `hashicorp/go-multierror` rendering of a list of errors.
pub fn multierror_text(errors: &[String]) -> String {
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    let mut out = format!("{} {noun} occurred:\n", errors.len());
    for e in errors {
        out.push_str(&format!("\t* {e}\n"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(v: Value) -> Result<ConnectParts, Rejection> {
        decode_connect_parts(&Fields::of(&v, "ServiceDefinition").unwrap())
    }

    #[test]
    fn pascal_and_snake_case_proxies_decode_alike() {
        let pascal = decode(json!({"Proxy": {
            "DestinationServiceName": "web", "DestinationServiceID": "web-1",
            "LocalServiceAddress": "127.0.0.1", "LocalServicePort": 8080, "Mode": "transparent",
            "Config": {"b": 1, "a": {"x": true}},
            "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191, "Config": {"c": "d"}}],
            "MeshGateway": {"Mode": "local"},
            "Expose": {"Checks": true, "Paths": [{"Path": "/h", "ListenerPort": 21500, "LocalPathPort": 8080}]}
        }}))
        .unwrap();
        let snake = decode(json!({"proxy": {
            "destination_service_name": "web", "destination_service_id": "web-1",
            "local_service_address": "127.0.0.1", "local_service_port": 8080, "mode": "transparent",
            "config": {"a": {"x": true}, "b": 1},
            "upstreams": [{"destination_name": "db", "local_bind_port": 9191, "config": {"c": "d"}}],
            "mesh_gateway": {"mode": "local"},
            "expose": {"checks": true, "paths": [{"path": "/h", "listener_port": 21500, "local_path_port": 8080}]}
        }}))
        .unwrap();
        assert_eq!(pascal, snake);
        let p = &pascal.proxy;
        assert_eq!(p.destination_service_name, "web");
        assert_eq!(p.local_service_port, 8080);
        assert_eq!(p.config_json, r#"{"a":{"x":true},"b":1}"#, "keys sorted, compact");
        assert_eq!(p.upstreams[0].destination_type, "service", "the default type");
        assert_eq!(p.upstreams[0].config_json, r#"{"c":"d"}"#);
        assert_eq!(p.mesh_gateway.mode, "local");
        assert_eq!(p.expose.paths[0].listener_port, 21500);
        assert!(!pascal.connect.native);
        assert!(decode(json!({"connect": {"native": true}})).unwrap().connect.native);
        assert_eq!(decode(json!({})).unwrap(), ConnectParts::default());
    }

    #[test]
    fn limits_are_enforced() {
        let big = "x".repeat(PROXY_CONFIG_BYTES_MAX);
        let e = decode(json!({"Proxy": {"Config": {"k": big}}})).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Invalid service: Proxy.Config exceeds 16384 bytes")
        );
        let many: Vec<Value> = (0..=UPSTREAMS_MAX)
            .map(|i| json!({"DestinationName": format!("s{i}")}))
            .collect();
        let e = decode(json!({"Proxy": {"Upstreams": many}})).unwrap_err();
        assert_eq!(e.message, "Invalid service: more than 128 upstreams");
        let e = decode(json!({"Proxy": {"DestinationServiceName": "w".repeat(PROXY_TEXT_BYTES_MAX + 1)}})).unwrap_err();
        assert_eq!(e.status, 400);
        let e = decode(json!({"Proxy": {"Mode": "sideways"}})).unwrap_err();
        assert_eq!(e.message, "Invalid Proxy Mode: \"sideways\"");
        let e = decode(json!({"Proxy": {"LocalServicePort": 70000}})).unwrap_err();
        assert!(
            e.message.starts_with("Request decode failed: json: cannot unmarshal"),
            "{}",
            e.message
        );
        let e = decode(json!({"Connect": {"Native": "yes"}})).unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn connect_proxy_validation_uses_consuls_texts() {
        let parts = decode(json!({"Connect": {"Native": true}})).unwrap();
        let e = validate_connect(KIND_CONNECT_PROXY, 0, "", &parts).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "Validation failed: 4 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t* \
             Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\t* \
             A Proxy cannot also be Connect Native, only typical services\n\t* \
             Port or SocketPath must be set for a Connect native service.\n\n"
        );
        let ok = decode(json!({"Proxy": {"DestinationServiceName": "web"}})).unwrap();
        assert!(validate_connect(KIND_CONNECT_PROXY, 21000, "", &ok).is_ok());
        assert!(
            validate_connect("", 0, "", &ok).is_ok(),
            "a typical service is not checked"
        );
        let native = decode(json!({"Connect": {"Native": true}})).unwrap();
        let e = validate_connect("", 0, "", &native).unwrap_err();
        assert_eq!(
            e.message,
            "Validation failed: 1 error occurred:\n\t* Port or SocketPath must be set for a Connect native service.\n\n"
        );
    }

    #[test]
    fn upstream_and_expose_validation() {
        let parts = decode(json!({"Proxy": {"DestinationServiceName": "web",
            "Upstreams": [
                {"DestinationName": "db", "LocalBindPort": 9191},
                {"DestinationName": "cache", "LocalBindPort": 9191},
                {"DestinationName": "", "LocalBindPort": 1},
                {"DestinationType": "garbage", "DestinationName": "x", "LocalBindPort": 2}
            ],
            "Expose": {"Paths": [{"Path": "", "ListenerPort": 1, "Protocol": "tcp"}]}}}))
        .unwrap();
        let e = validate_connect(KIND_CONNECT_PROXY, 21000, "", &parts).unwrap_err();
        assert!(
            e.message.starts_with("Validation failed: 5 errors occurred:\n"),
            "{}",
            e.message
        );
        assert!(e.message.contains("\"127.0.0.1:9191\" is specified twice"));
        assert!(e.message.contains("upstream destination name cannot be empty"));
        assert!(e.message.contains("unknown upstream destination type: \"garbage\""));
        assert!(e.message.contains("expose.paths: empty path exposed"));
        assert!(e
            .message
            .contains("protocol 'tcp' not supported for path: , must be in: [http http2]"));
    }
}
