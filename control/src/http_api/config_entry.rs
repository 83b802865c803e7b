//! Config entry writes: `PUT /v1/config[?cas=N]` and
//! `DELETE /v1/config/<kind>/<name>[?cas=N]`. The reads are the data
//! plane's (from its replica).
//!
//! A body is decoded into a [`ConfigEntry`]: its field names are made
//! canonical (Consul accepts `Kind`, `kind` and snake_case alike and
//! renders PascalCase), except inside free-form maps (`Meta`, `Config`);
//! the kinds served are [`SUPPORTED_KINDS`], and an `ingress-gateway`'s
//! listeners are also decoded typed (they drive `.ingress` DNS). Decoding
//! is pure; [`put`] and [`delete`] add the raft write.

use proconsul_shared::command::{Command, CommandResult};
use proconsul_shared::ipc::messages::HttpAnswer;
use proconsul_shared::state::{
    ConfigEntry, IngressListener, IngressService, CONFIG_ENTRY_BYTES_MAX, INGRESS_WILDCARD, KIND_INGRESS_GATEWAY,
    KIND_PROXY_DEFAULTS, KIND_SERVICE_DEFAULTS, KIND_SERVICE_RESOLVER, PROXY_DEFAULTS_NAME, SUPPORTED_KINDS,
};
use serde_json::{Map, Value};

mod proxy_defaults;
mod rules;
mod schema;
mod service_defaults;
mod service_resolver;

use super::answer::{json, query_param, rejected, text};
use super::check_def::Rejection;
use super::HttpEnv;
use crate::agent::local::SyncTarget;
use crate::rpc::validate::validate;

/// Most listeners on one ingress gateway.
pub const INGRESS_LISTENERS_MAX: usize = 64;
/// Most services on one ingress listener.
pub const INGRESS_LISTENER_SERVICES_MAX: usize = 256;
/// Deepest nesting of a config entry body.
pub const CONFIG_ENTRY_DEPTH_MAX: usize = 16;

/// Keys whose values are free-form maps: their own keys are kept as sent.
const FREE_FORM_KEYS: [&str; 2] = ["Meta", "Config"];
/// Keys whose values map a user's name (a subset, `*`) to a structure:
/// the names are kept as sent, the structures' fields made canonical.
const NAME_KEYED_MAPS: [&str; 2] = ["Subsets", "Failover"];
/// Lower-cased words that Consul spells in capitals in field names.
const ACRONYMS: [(&str, &str); 4] = [("tls", "TLS"), ("sds", "SDS"), ("sni", "SNI"), ("id", "ID")];
/// Protocols an ingress listener may speak.
const INGRESS_PROTOCOLS: [&str; 4] = ["tcp", "http", "http2", "grpc"];

fn decode_failed(why: impl std::fmt::Display) -> Rejection {
    Rejection::bad_request(format!("Request decoding failed: {why}"))
}

fn server_error(why: impl Into<String>) -> Rejection {
    Rejection {
        status: 500,
        message: why.into(),
    }
}

/// `?cas=`: absent or empty = none; not a number = Go's parse error (500).
pub fn cas_param(query: &str) -> Result<Option<u64>, Rejection> {
    match query_param(query, "cas") {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| server_error(format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))),
    }
}

/// A field name in Consul's spelling: `listeners` → `Listeners`,
/// `connect_timeout` → `ConnectTimeout`, `tls` → `TLS`.
pub fn canonical_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for word in key.split(['_', '-']).filter(|w| !w.is_empty()) {
        let lower = word.to_ascii_lowercase();
        if let Some((_, caps)) = ACRONYMS.iter().find(|(l, _)| *l == lower) {
            out.push_str(caps);
            continue;
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// Canonical field names at every level except inside free-form maps.
fn canonicalize(value: Value, depth: usize) -> Result<Value, Rejection> {
    if depth > CONFIG_ENTRY_DEPTH_MAX {
        return Err(decode_failed(format!(
            "config entry nested deeper than {CONFIG_ENTRY_DEPTH_MAX} levels"
        )));
    }
    Ok(match value {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                let key = canonical_key(&key);
                let value = match value {
                    free if FREE_FORM_KEYS.contains(&key.as_str()) => free,
                    Value::Object(named) if NAME_KEYED_MAPS.contains(&key.as_str()) => {
                        let mut out = Map::new();
                        for (name, inner) in named {
                            out.insert(name, canonicalize(inner, depth + 2)?);
                        }
                        Value::Object(out)
                    }
                    other => canonicalize(other, depth + 1)?,
                };
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| canonicalize(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn string_field<'v>(object: &'v Map<String, Value>, key: &str) -> Result<&'v str, Rejection> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(decode_failed(format!(
            "1 error(s) decoding:\n\n* '{key}' expected type 'string', got {}",
            schema::go_type_of(other)
        ))),
    }
}

/// Decodes a `PUT /v1/config` body into a config entry.
pub fn decode_entry(body: &[u8]) -> Result<ConfigEntry, Rejection> {
    if body.len() > CONFIG_ENTRY_BYTES_MAX {
        return Err(Rejection {
            status: 413,
            message: format!(
                "Config entry too large: {} bytes exceeds the {CONFIG_ENTRY_BYTES_MAX}-byte limit",
                body.len()
            ),
        });
    }
    let raw: Value = serde_json::from_slice(body).map_err(decode_failed)?;
    let Value::Object(_) = raw else {
        return Err(decode_failed(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match raw {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            }
        )));
    };
    let Value::Object(mut object) = canonicalize(raw, 0)? else {
        unreachable!("canonicalize keeps an object an object");
    };
    let kind = string_field(&object, "Kind")?.to_string();
    if kind.is_empty() {
        return Err(decode_failed(
            "Payload does not contain a kind/Kind key at the top level",
        ));
    }
    if !SUPPORTED_KINDS.contains(&kind.as_str()) {
        return Err(decode_failed(format!("invalid config entry kind: {kind}")));
    }
    let mut name = string_field(&object, "Name")?.to_string();
    if kind == KIND_PROXY_DEFAULTS {
        if !name.is_empty() && name != PROXY_DEFAULTS_NAME {
            return Err(server_error(format!(
                "invalid name ({name:?}), only {PROXY_DEFAULTS_NAME:?} is supported"
            )));
        }
        name = PROXY_DEFAULTS_NAME.to_string();
    }
    if name.is_empty() {
        return Err(server_error("Name is required"));
    }
    object.remove("CreateIndex");
    object.remove("ModifyIndex");
    object.insert("Kind".into(), Value::String(kind.clone()));
    object.insert("Name".into(), Value::String(name.clone()));
    match kind.as_str() {
        KIND_SERVICE_DEFAULTS => service_defaults::check(&mut object)?,
        KIND_PROXY_DEFAULTS => proxy_defaults::check(&mut object)?,
        KIND_SERVICE_RESOLVER => service_resolver::check(&mut object)?,
        _ => {}
    }
    let ingress_listeners = if kind == KIND_INGRESS_GATEWAY {
        ingress_listeners(&object)?
    } else {
        Vec::new()
    };
    Ok(ConfigEntry {
        kind,
        name,
        json: Value::Object(object).to_string(),
        ingress_listeners,
        ..ConfigEntry::default()
    })
}

/// The typed listeners of an ingress gateway entry (canonical names),
/// checked as Consul checks them.
fn ingress_listeners(object: &Map<String, Value>) -> Result<Vec<IngressListener>, Rejection> {
    let listeners = match object.get("Listeners") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(decode_failed(format!(
                "1 error(s) decoding:\n\n* 'Listeners': source data must be an array or slice, got {}",
                schema::go_type_of(other)
            )))
        }
    };
    if listeners.len() > INGRESS_LISTENERS_MAX {
        return Err(server_error(format!(
            "too many listeners ({} > {INGRESS_LISTENERS_MAX})",
            listeners.len()
        )));
    }
    let mut out = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let Value::Object(fields) = listener else {
            return Err(decode_failed("1 error(s) decoding:\n\n* 'Listeners[0]' expected a map"));
        };
        let port = fields.get("Port").and_then(Value::as_u64).unwrap_or(0);
        let Ok(port) = u16::try_from(port) else {
            return Err(server_error(format!("listener port {port} is out of range")));
        };
        if port == 0 {
            return Err(server_error("port 0 is not a valid listener port"));
        }
        if out.iter().any(|l: &IngressListener| l.port == port) {
            return Err(server_error(format!("port {port} declared on two listeners")));
        }
        let protocol = match string_field(fields, "Protocol")? {
            "" => "tcp".to_string(),
            p => p.to_ascii_lowercase(),
        };
        if !INGRESS_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(server_error(format!(
                "protocol must be 'tcp', 'http', 'grpc' or 'http2'. '{protocol}' is an unsupported protocol"
            )));
        }
        let services = ingress_services(fields, port, &protocol)?;
        out.push(IngressListener {
            port,
            protocol,
            services,
        });
    }
    Ok(out)
}

fn ingress_services(
    listener: &Map<String, Value>,
    port: u16,
    protocol: &str,
) -> Result<Vec<IngressService>, Rejection> {
    let items = match listener.get("Services") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    if items.len() > INGRESS_LISTENER_SERVICES_MAX {
        return Err(server_error(format!(
            "too many services on listener {port} ({} > {INGRESS_LISTENER_SERVICES_MAX})",
            items.len()
        )));
    }
    let http_like = protocol != "tcp";
    if items.len() > 1 && !http_like {
        return Err(server_error(format!(
            "Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return Err(decode_failed("1 error(s) decoding:\n\n* 'Services[0]' expected a map"));
        };
        let name = string_field(fields, "Name")?.to_string();
        if name.is_empty() {
            return Err(server_error(format!(
                "Service name cannot be blank (listener on port {port})"
            )));
        }
        if name == INGRESS_WILDCARD && !http_like {
            return Err(server_error(format!(
                "Wildcard service name is only valid for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"
            )));
        }
        let hosts = match fields.get("Hosts") {
            Some(Value::Array(hosts)) => hosts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        out.push(IngressService { name, hosts });
    }
    Ok(out)
}

/// The command of a `PUT /v1/config` request.
pub fn put_command(body: &[u8], query: &str) -> Result<Command, Rejection> {
    let cas = cas_param(query)?;
    let entry = decode_entry(body)?;
    Ok(Command::ConfigEntrySet { entry, cas })
}

/// The command of a `DELETE /v1/config/<kind>/<name>` request (`rest` is
/// the path after `/v1/config/`).
pub fn delete_command(rest: &str, query: &str) -> Result<Command, Rejection> {
    let Some((kind, name)) = rest.split_once('/').filter(|(k, n)| !k.is_empty() && !n.is_empty()) else {
        return Err(Rejection {
            status: 400,
            message: "Must provide both a kind and name to delete".into(),
        });
    };
    if !SUPPORTED_KINDS.contains(&kind) {
        return Err(server_error(format!("invalid config entry kind: {kind}")));
    }
    let cas = cas_param(query)?;
    Ok(Command::ConfigEntryDelete {
        kind: kind.to_string(),
        name: name.to_string(),
        cas,
    })
}

/// `PUT /v1/config`: `true`, or `false` when `?cas=` did not match.
pub async fn put<T: SyncTarget>(env: &HttpEnv<'_, T>, body: &[u8], query: &str) -> HttpAnswer {
    write(env, put_command(body, query), true).await
}

/// `DELETE /v1/config/<kind>/<name>`: `{}`, or `true`/`false` with `?cas=`.
pub async fn delete<T: SyncTarget>(env: &HttpEnv<'_, T>, rest: &str, query: &str) -> HttpAnswer {
    let command = delete_command(rest, query);
    let answers_bool = matches!(command, Ok(Command::ConfigEntryDelete { cas: Some(_), .. }));
    write(env, command, answers_bool).await
}

async fn write<T: SyncTarget>(
    env: &HttpEnv<'_, T>,
    command: Result<Command, Rejection>,
    answers_bool: bool,
) -> HttpAnswer {
    let command = match command {
        Ok(c) => c,
        Err(r) => return rejected(r),
    };
    if let Err(e) = validate(&command) {
        return text(e.status, e.message);
    }
    let (index, result) = match env.target.write(command).await {
        Ok(done) => done,
        Err(e) => return text(e.status, e.message),
    };
    let mut answer = match result {
        CommandResult::Failed(why) => text(500, why),
        CommandResult::Bool(ok) if answers_bool => json(200, &Value::Bool(ok), false),
        _ => json(200, &Value::Object(Map::new()), false),
    };
    answer.wait_index = index;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Result<ConfigEntry, Rejection> {
        decode_entry(body.as_bytes())
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_key("listeners"), "Listeners");
        assert_eq!(canonical_key("connect_timeout"), "ConnectTimeout");
        assert_eq!(canonical_key("ConnectTimeout"), "ConnectTimeout");
        assert_eq!(canonical_key("tls"), "TLS");
        assert_eq!(canonical_key("service_id"), "ServiceID");
    }

    #[test]
    fn decodes_an_ingress_gateway() {
        let entry = decode(
            r#"{"kind":"ingress-gateway","name":"gw","meta":{"team_name":"x"},
                "listeners":[{"port":8080,"protocol":"http","services":[{"name":"web","hosts":["a.example"]},{"name":"*"}]},
                             {"Port":9090,"Services":[{"Name":"db"}]}]}"#,
        )
        .unwrap();
        assert_eq!((entry.kind.as_str(), entry.name.as_str()), ("ingress-gateway", "gw"));
        assert_eq!(entry.ingress_listeners.len(), 2);
        assert_eq!(entry.ingress_listeners[0].services[0].hosts, ["a.example"]);
        assert_eq!(entry.ingress_listeners[1].protocol, "tcp", "tcp by default");
        assert!(entry.ingress_exposes("DB") && entry.ingress_exposes("anything"));
        let stored: Value = serde_json::from_str(&entry.json).unwrap();
        assert_eq!(stored["Listeners"][0]["Services"][0]["Name"], "web");
        assert_eq!(stored["Meta"]["team_name"], "x", "free-form maps keep their keys");
    }

    #[test]
    fn refuses_bad_bodies_with_consul_texts() {
        let cases = [
            ("not json", 400, "Request decoding failed: "),
            ("[1]", 400, "Request decoding failed: json: cannot unmarshal array"),
            (
                r#"{"Name":"x"}"#,
                400,
                "Request decoding failed: Payload does not contain a kind/Kind key",
            ),
            (
                r#"{"Kind":"nope","Name":"x"}"#,
                400,
                "Request decoding failed: invalid config entry kind: nope",
            ),
            (
                r#"{"Kind":5,"Name":"x"}"#,
                400,
                "Request decoding failed: 1 error(s) decoding",
            ),
            (
                r#"{"Kind":"proxy-defaults","Name":"x"}"#,
                500,
                "invalid name (\"x\"), only \"global\"",
            ),
            (r#"{"Kind":"service-defaults"}"#, 500, "Name is required"),
            (
                r#"{"Kind":"ingress-gateway","Name":"g","Listeners":[{"Port":1,"Services":[{"Name":"*"}]}]}"#,
                500,
                "Wildcard service name is only valid for L7 protocols",
            ),
            (
                r#"{"Kind":"ingress-gateway","Name":"g","Listeners":[{"Port":1,"Services":[{"Name":"a"},{"Name":"b"}]}]}"#,
                500,
                "Multiple services per listener",
            ),
            (
                r#"{"Kind":"ingress-gateway","Name":"g","Listeners":[{"Port":70000}]}"#,
                500,
                "listener port 70000 is out of range",
            ),
            (
                r#"{"Kind":"ingress-gateway","Name":"g","Listeners":[{"Port":1,"Protocol":"udp"}]}"#,
                500,
                "'udp' is an unsupported protocol",
            ),
        ];
        for (body, status, start) in cases {
            let r = decode(body).unwrap_err();
            assert_eq!(r.status, status, "{body}: {}", r.message);
            assert!(r.message.contains(start), "{body}: {}", r.message);
        }
    }

    #[test]
    fn proxy_defaults_is_always_global() {
        let entry = decode(r#"{"Kind":"proxy-defaults","Config":{"protocol":"http"}}"#).unwrap();
        assert_eq!(entry.name, "global");
        let stored: Value = serde_json::from_str(&entry.json).unwrap();
        assert_eq!(stored["Config"]["protocol"], "http");
    }

    #[test]
    fn limits_are_enforced() {
        let big = format!(
            r#"{{"Kind":"service-defaults","Name":"x","Meta":{{"k":"{}"}}}}"#,
            "v".repeat(CONFIG_ENTRY_BYTES_MAX)
        );
        assert_eq!(decode(&big).unwrap_err().status, 413);
        let deep = format!(
            r#"{{"Kind":"service-defaults","Name":"x","A":{}{}}}"#,
            "[".repeat(CONFIG_ENTRY_DEPTH_MAX + 1),
            "]".repeat(CONFIG_ENTRY_DEPTH_MAX + 1)
        );
        assert!(decode(&deep).unwrap_err().message.contains("nested deeper"));
        let listeners: Vec<String> = (1..=INGRESS_LISTENERS_MAX + 1)
            .map(|p| format!(r#"{{"Port":{p}}}"#))
            .collect();
        let many = format!(
            r#"{{"Kind":"ingress-gateway","Name":"g","Listeners":[{}]}}"#,
            listeners.join(",")
        );
        assert!(decode(&many).unwrap_err().message.contains("too many listeners"));
    }

    #[test]
    fn each_kind_is_checked_against_its_schema() {
        let entry = decode(
            r#"{"kind":"service-resolver","name":"web","default_subset":"v1",
                "subsets":{"v1":{"filter":"Service.Meta.version == v1","only_passing":true}},
                "failover":{"*":{"datacenters":["dc2"]}},"connect_timeout":"5s"}"#,
        )
        .unwrap();
        let stored: Value = serde_json::from_str(&entry.json).unwrap();
        assert_eq!(
            stored["Subsets"]["v1"]["OnlyPassing"], true,
            "subset names kept, fields canonical"
        );
        assert_eq!(stored["Failover"]["*"]["Datacenters"][0], "dc2");
        assert_eq!(stored["ConnectTimeout"], "5s");
        let entry = decode(r#"{"Kind":"service-defaults","Name":"web","Protocol":"GRPC"}"#).unwrap();
        let stored: Value = serde_json::from_str(&entry.json).unwrap();
        assert_eq!(stored["Protocol"], "grpc", "Consul lower-cases the protocol");
        let cases = [
            (r#"{"Kind":"service-defaults","Name":"web","Listeners":[]}"#, 400),
            (r#"{"Kind":"service-defaults","Name":"web","Mode":"x"}"#, 500),
            (r#"{"Kind":"proxy-defaults","Config":[1]}"#, 400),
            (r#"{"Kind":"proxy-defaults","MeshGateway":{"Mode":"x"}}"#, 500),
            (r#"{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1"}"#, 500),
            (r#"{"Kind":"service-resolver","Name":"web","ConnectTimeout":"x"}"#, 400),
        ];
        for (body, status) in cases {
            assert_eq!(decode(body).unwrap_err().status, status, "{body}");
        }
    }

    #[test]
    fn commands_and_cas() {
        let put = put_command(br#"{"Kind":"service-defaults","Name":"web"}"#, "cas=0").unwrap();
        assert!(matches!(put, Command::ConfigEntrySet { cas: Some(0), .. }));
        assert_eq!(
            cas_param("cas=abc").unwrap_err().message,
            "strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(cas_param("cas=").unwrap(), None);
        let delete = delete_command("service-defaults/web", "cas=7").unwrap();
        assert_eq!(
            delete,
            Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: Some(7),
            }
        );
        assert_eq!(delete_command("service-defaults", "").unwrap_err().status, 400);
        assert_eq!(delete_command("nope/x", "").unwrap_err().status, 500);
    }
}
