//! `Connect.SidecarService` of an agent service registration: the nested
//! definition becomes a second local service, `<id>-sidecar-proxy`, a
//! `connect-proxy` for the parent with Consul's defaults (name
//! `<name>-sidecar-proxy`, the parent's address, tags and meta when it has
//! none of its own, `Proxy.Destination*` = the parent, the local service
//! address `127.0.0.1` and the parent's port), a port picked from
//! [`SIDECAR_PORT_MIN`]..=[`SIDECAR_PORT_MAX`] when none is given, and a
//! TCP "Connect Sidecar Listening" check when it defines none.
//!
//! Decoding ([`decode_sidecar`]) is pure; the port is chosen against the
//! agent's current services ([`finish_sidecar`], also pure). Consul's
//! second default check (an alias of the parent) is not added: alias
//! checks are not run here, so it would stay critical.

use proconsul_shared::state::{ServiceInstance, KIND_CONNECT_PROXY};
use serde_json::{json, Map, Value};

use super::check_def::{decode_check, EmbeddedIn, Rejection, ScriptPolicy};
use super::fields::Fields;
use super::proxy_def::validation_failed;
use super::service_def::{decode_service, ServiceRegistration};

/// Suffix of a sidecar's id and default name.
pub const SIDECAR_SUFFIX: &str = "-sidecar-proxy";
/// Lowest automatically assigned sidecar port (`ports.sidecar_min_port`).
pub const SIDECAR_PORT_MIN: u16 = 21000;
/// Highest automatically assigned sidecar port (`ports.sidecar_max_port`).
pub const SIDECAR_PORT_MAX: u16 = 21255;
/// Interval of the default listening check, in nanoseconds.
const LISTENING_CHECK_INTERVAL: &str = "10s";

/// A decoded sidecar, its port possibly still to be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarRequest {
    /// Port 0 when `port_auto`.
    pub registration: ServiceRegistration,
    pub port_auto: bool,
}

fn canonical(key: &str) -> String {
    key.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

/// Whether `obj` has `key` (any case, `_` ignored) with a non-null,
/// non-empty value.
fn has(obj: &Map<String, Value>, key: &str) -> bool {
    let wanted = canonical(key);
    obj.iter().any(|(k, v)| {
        canonical(k) == wanted
            && match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Bool(_) => true,
            }
    })
}

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if !has(obj, key) {
        let wanted = canonical(key);
        obj.retain(|k, _| canonical(k) != wanted);
        obj.insert(key.to_string(), value);
    }
}

fn invalid(reason: &str) -> Rejection {
    validation_failed(&[reason.to_string()])
}

/// Decodes `Connect.SidecarService` of the service definition `f`, whose
/// own fields decoded to `parent`. `None` without one.
pub fn decode_sidecar(
    f: &Fields<'_>,
    parent: &ServiceInstance,
    scripts: ScriptPolicy,
) -> Result<Option<SidecarRequest>, Rejection> {
    let Some(connect) = f.object(&["Connect"], "ServiceConnect")? else {
        return Ok(None);
    };
    let Some(def) = connect.object(&["SidecarService"], "ServiceDefinition")? else {
        return Ok(None);
    };
    if parent.kind.ends_with("-gateway") {
        return Err(invalid(&format!(
            "A {} cannot have a sidecar service defined",
            parent.kind
        )));
    }
    if !def.string(&["ID"])?.is_empty() {
        return Err(invalid(
            "A SidecarService cannot specify an ID as this is managed by the agent",
        ));
    }
    if let Some(nested) = def.object(&["Connect"], "ServiceConnect")? {
        if nested.get(&["SidecarService"]).is_some() {
            return Err(invalid("A SidecarService cannot have a nested SidecarService"));
        }
    }
    let mut obj = def.clone_object();
    obj.insert("ID".into(), json!(format!("{}{SIDECAR_SUFFIX}", parent.id)));
    set_default(&mut obj, "Name", json!(format!("{}{SIDECAR_SUFFIX}", parent.service)));
    set_default(&mut obj, "Kind", json!(KIND_CONNECT_PROXY));
    if !parent.address.is_empty() {
        set_default(&mut obj, "Address", json!(parent.address));
    }
    if !parent.tags.is_empty() {
        set_default(&mut obj, "Tags", json!(parent.tags));
    }
    if !parent.meta.is_empty() {
        set_default(&mut obj, "Meta", json!(parent.meta));
    }
    let proxy_key = obj
        .keys()
        .find(|k| canonical(k) == "proxy")
        .cloned()
        .unwrap_or_else(|| "Proxy".into());
    let mut proxy = match obj.remove(&proxy_key) {
        Some(Value::Object(p)) => p,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(Rejection::bad_request("Request decode failed: Proxy must be an object")),
    };
    set_default(&mut proxy, "DestinationServiceName", json!(parent.service));
    set_default(&mut proxy, "DestinationServiceID", json!(parent.id));
    let no_socket = !has(&proxy, "LocalServiceSocketPath");
    if no_socket && (!has(&proxy, "LocalServiceAddress") || !has(&proxy, "LocalServicePort")) {
        if !parent.socket_path.is_empty() {
            set_default(&mut proxy, "LocalServiceSocketPath", json!(parent.socket_path));
        } else {
            set_default(&mut proxy, "LocalServiceAddress", json!("127.0.0.1"));
            set_default(&mut proxy, "LocalServicePort", json!(parent.port));
        }
    }
    obj.insert(proxy_key, Value::Object(proxy));
    let port_auto = !has(&obj, "Port") && !has(&obj, "SocketPath");
    if port_auto {
        // Stands in for the port chosen at registration (validation needs one).
        set_default(&mut obj, "Port", json!(SIDECAR_PORT_MIN));
    }
    let value = Value::Object(obj);
    let mut registration = decode_service(&Fields::of(&value, "ServiceDefinition")?, scripts)?;
    if port_auto {
        registration.service.port = 0;
    }
    Ok(Some(SidecarRequest {
        registration,
        port_auto,
    }))
}

/// Completes a sidecar against the agent's current services: picks its
/// port (the one it already has, else the lowest free one in the range)
/// and adds the default check when it defines none.
pub fn finish_sidecar<'a>(
    request: SidecarRequest,
    services: impl Iterator<Item = &'a ServiceInstance>,
    scripts: ScriptPolicy,
) -> Result<ServiceRegistration, Rejection> {
    let mut reg = request.registration;
    if request.port_auto {
        let mut used = [false; (SIDECAR_PORT_MAX - SIDECAR_PORT_MIN + 1) as usize];
        let mut own = None;
        for s in services {
            if !(SIDECAR_PORT_MIN..=SIDECAR_PORT_MAX).contains(&s.port) {
                continue;
            }
            if s.id == reg.service.id {
                own = Some(s.port);
            }
            used[(s.port - SIDECAR_PORT_MIN) as usize] = true;
        }
        let free = (SIDECAR_PORT_MIN..=SIDECAR_PORT_MAX).find(|p| !used[(p - SIDECAR_PORT_MIN) as usize]);
        reg.service.port = own.or(free).ok_or_else(|| Rejection {
            status: 500,
            message: format!(
                "no port provided for sidecar_service and none left in the configured range \
                 [{SIDECAR_PORT_MIN}, {SIDECAR_PORT_MAX}]"
            ),
        })?;
    }
    if reg.checks.is_empty() && reg.service.socket_path.is_empty() {
        let host = if reg.service.address.is_empty() {
            reg.service.proxy.local_service_address.as_str()
        } else {
            reg.service.address.as_str()
        };
        let target = if host.contains(':') {
            format!("[{host}]:{}", reg.service.port)
        } else {
            format!("{host}:{}", reg.service.port)
        };
        let def = json!({"Name": "Connect Sidecar Listening", "TCP": target, "Interval": LISTENING_CHECK_INTERVAL});
        let embedded = EmbeddedIn {
            service_id: &reg.service.id,
            service_name: &reg.service.service,
            position: Some(1),
        };
        let check = decode_check(&Fields::of(&def, "CheckType")?, Some(&embedded), scripts)?;
        reg.checks.push(check);
    }
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: ScriptPolicy = ScriptPolicy {
        enable_script_checks: false,
        enable_local_script_checks: false,
        from_config_file: false,
    };

    fn parent_and_sidecar(v: Value) -> (ServiceRegistration, Option<SidecarRequest>) {
        let reg = decode_service(&Fields::of(&v, "ServiceDefinition").unwrap(), API).unwrap();
        let sidecar = reg.sidecar.clone().map(|b| *b);
        (reg, sidecar)
    }

    #[test]
    fn an_empty_sidecar_gets_consuls_defaults() {
        let (parent, sidecar) = parent_and_sidecar(json!({
            "Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["v1"], "Meta": {"m": "1"},
            "Connect": {"SidecarService": {}}
        }));
        assert_eq!(parent.service.id, "web-1");
        let request = sidecar.expect("a sidecar");
        assert!(request.port_auto);
        let s = &request.registration.service;
        assert_eq!(
            (s.id.as_str(), s.service.as_str()),
            ("web-1-sidecar-proxy", "web-sidecar-proxy")
        );
        assert_eq!(s.kind, "connect-proxy");
        assert_eq!(s.port, 0);
        assert_eq!(s.tags, ["v1"]);
        assert_eq!(s.meta["m"], "1");
        assert_eq!(s.proxy.destination_service_name, "web");
        assert_eq!(s.proxy.destination_service_id, "web-1");
        assert_eq!(s.proxy.local_service_address, "127.0.0.1");
        assert_eq!(s.proxy.local_service_port, 8080);

        let other = ServiceInstance {
            id: "api-sidecar-proxy".into(),
            port: SIDECAR_PORT_MIN,
            ..ServiceInstance::default()
        };
        let done = finish_sidecar(request.clone(), [&other].into_iter(), API).unwrap();
        assert_eq!(done.service.port, 21001, "the lowest free port");
        assert_eq!(done.checks.len(), 1);
        let check = &done.checks[0].check;
        assert_eq!(check.check_id, "service:web-1-sidecar-proxy:1");
        assert_eq!(check.name, "Connect Sidecar Listening");
        assert_eq!(check.definition.tcp, "127.0.0.1:21001");
        assert_eq!(check.definition.interval_ns, 10_000_000_000);

        let mut existing = done.service.clone();
        existing.port = 21100;
        let again = finish_sidecar(request, [&other, &existing].into_iter(), API).unwrap();
        assert_eq!(again.service.port, 21100, "a re-registration keeps its port");
    }

    #[test]
    fn given_fields_win_and_errors_use_consuls_texts() {
        let (_, sidecar) = parent_and_sidecar(json!({
            "name": "web", "port": 8080,
            "connect": {"sidecar_service": {"port": 9999, "tags": ["own"],
                                            "proxy": {"local_service_port": 7070},
                                            "checks": [{"ttl": "10s"}]}}
        }));
        let request = sidecar.unwrap();
        assert!(!request.port_auto);
        let done = finish_sidecar(request, std::iter::empty(), API).unwrap();
        assert_eq!(done.service.port, 9999);
        assert_eq!(done.service.tags, ["own"]);
        assert_eq!(done.service.proxy.local_service_port, 7070);
        assert_eq!(done.checks.len(), 1, "its own check, no default");

        let decode = |v: Value| decode_service(&Fields::of(&v, "ServiceDefinition").unwrap(), API).unwrap_err();
        let e = decode(json!({"Name": "w", "Port": 1, "Connect": {"SidecarService": {"ID": "x"}}}));
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                400,
                "Validation failed: 1 error occurred:\n\t* A SidecarService cannot specify an ID as this is managed by the agent\n\n"
            )
        );
        let e = decode(json!({"Name": "w", "Port": 1,
            "Connect": {"SidecarService": {"Connect": {"SidecarService": {}}}}}));
        assert!(e
            .message
            .contains("A SidecarService cannot have a nested SidecarService"));
    }

    #[test]
    fn the_port_range_is_bounded() {
        let (_, sidecar) = parent_and_sidecar(json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}));
        let taken: Vec<ServiceInstance> = (SIDECAR_PORT_MIN..=SIDECAR_PORT_MAX)
            .map(|p| ServiceInstance {
                id: format!("s{p}"),
                port: p,
                ..ServiceInstance::default()
            })
            .collect();
        let e = finish_sidecar(sidecar.unwrap(), taken.iter(), API).unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(
            e.message,
            "no port provided for sidecar_service and none left in the configured range [21000, 21255]"
        );
    }
}
