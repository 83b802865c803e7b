//! Decoding a service definition (`PUT /v1/agent/service/register`, a
//! config file's `service`/`services`, the `Service` of a catalog
//! registration) into a [`ServiceInstance`] and its embedded checks. Pure.

use std::collections::BTreeMap;

use proconsul_shared::state::{ServiceAddress, ServiceInstance, Weights};

use super::check_def::{decode_check, CheckRegistration, EmbeddedIn, Rejection, ScriptPolicy};
use super::fields::{DecodeError, Fields};
use super::proxy_def::{decode_connect_parts, validate_connect};
use super::sidecar_def::{decode_sidecar, SidecarRequest};

/// Most `Meta` pairs on a service (Consul's `metaMaxKeyPairs`).
pub const META_PAIRS_MAX: usize = 64;
/// Longest `Meta` key (Consul's `metaKeyMaxLength`).
pub const META_KEY_CHARS_MAX: usize = 128;
/// Longest `Meta` value (Consul's `metaValueMaxLength`).
pub const META_VALUE_CHARS_MAX: usize = 512;
/// Most tags on a service.
pub const TAGS_MAX: usize = 256;
/// Longest id, name, tag or address, in bytes.
pub const SERVICE_TEXT_BYTES_MAX: usize = 1024;
/// Most embedded checks of one service.
pub const SERVICE_CHECKS_MAX: usize = 32;
/// Most tagged addresses of one service.
pub const TAGGED_ADDRESSES_MAX: usize = 16;

/// A decoded service with its embedded checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRegistration {
    /// Node and indexes unset.
    pub service: ServiceInstance,
    pub checks: Vec<CheckRegistration>,
    /// `Connect.SidecarService`: registered beside it by the agent.
    pub sidecar: Option<Box<SidecarRequest>>,
}

/// Validates service metadata like Consul's `structs.ValidateServiceMetadata`.
pub fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > META_PAIRS_MAX {
        return Err(format!(
            "metadata cannot contain more than {META_PAIRS_MAX} key/value pairs"
        ));
    }
    for (key, value) in meta {
        if key.is_empty() {
            return Err("Key cannot be blank".into());
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(format!("Key contains invalid characters: {key:?}"));
        }
        if key.chars().count() > META_KEY_CHARS_MAX {
            return Err(format!("Key is too long (limit: {META_KEY_CHARS_MAX} characters)"));
        }
        if key.starts_with("consul-") {
            return Err(format!("Key prefix 'consul-' is reserved for internal use: {key:?}"));
        }
        if value.chars().count() > META_VALUE_CHARS_MAX {
            return Err(format!("Value is too long (limit: {META_VALUE_CHARS_MAX} characters)"));
        }
    }
    Ok(())
}

fn port(f: &Fields<'_>) -> Result<u16, DecodeError> {
    Ok(f.int(&["Port"], 0, i64::from(u16::MAX), "int")?.unwrap_or(0) as u16)
}

fn tagged_addresses(f: &Fields<'_>) -> Result<BTreeMap<String, ServiceAddress>, Rejection> {
    let mut out = BTreeMap::new();
    let Some(map) = f.raw_map(&["TaggedAddresses"])? else {
        return Ok(out);
    };
    if map.len() > TAGGED_ADDRESSES_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: more than {TAGGED_ADDRESSES_MAX} tagged addresses"
        )));
    }
    for (name, value) in map {
        let a = Fields::of(value, "ServiceAddress")?;
        out.insert(
            name.clone(),
            ServiceAddress {
                address: a.string(&["Address"])?,
                port: port(&a)?,
            },
        );
    }
    Ok(out)
}

fn too_long(text: &str) -> bool {
    text.len() > SERVICE_TEXT_BYTES_MAX
}

/// Decodes a service definition with its `Check`/`Checks`.
pub fn decode_service(f: &Fields<'_>, scripts: ScriptPolicy) -> Result<ServiceRegistration, Rejection> {
    let name = f.string(&["Name", "Service"])?;
    let mut id = f.string(&["ID"])?;
    let tags = f.strings(&["Tags"])?;
    let address = f.string(&["Address"])?;
    let port = port(f)?;
    let meta = f.string_map(&["Meta"])?;
    let tagged_addresses = tagged_addresses(f)?;
    let kind = f.string(&["Kind"])?;
    let socket_path = f.string(&["SocketPath"])?;
    let enable_tag_override = f.bool(&["EnableTagOverride"])?;
    let connect_parts = decode_connect_parts(f)?;
    let weights = match f.object(&["Weights"], "Weights")? {
        None => Weights::default(),
        Some(w) => {
            let passing = w.int(&["Passing"], i64::MIN, i64::MAX, "int")?.unwrap_or(0);
            let warning = w.int(&["Warning"], i64::MIN, i64::MAX, "int")?.unwrap_or(0);
            if passing < 1 || passing > i64::from(u32::MAX) {
                return Err(Rejection::bad_request(
                    "Invalid Weights: Passing must be greater than 0",
                ));
            }
            if !(0..=i64::from(u32::MAX)).contains(&warning) {
                return Err(Rejection::bad_request(
                    "Invalid Weights: Warning must be greater or equal than 0",
                ));
            }
            Weights {
                passing: passing as u32,
                warning: warning as u32,
            }
        }
    };
    if name.is_empty() {
        return Err(Rejection::bad_request("Missing service name"));
    }
    if id.is_empty() {
        id = name.clone();
    }
    if matches!(address.as_str(), "0.0.0.0" | "::" | "[::]") {
        return Err(Rejection::bad_request("Invalid service address"));
    }
    if [&name, &id, &address, &kind, &socket_path].iter().any(|t| too_long(t)) || tags.iter().any(|t| too_long(t)) {
        return Err(Rejection::bad_request(format!(
            "Invalid service: a field exceeds {SERVICE_TEXT_BYTES_MAX} bytes"
        )));
    }
    if tags.len() > TAGS_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid service: more than {TAGS_MAX} tags"
        )));
    }
    if let Err(why) = validate_meta(&meta) {
        return Err(Rejection::bad_request(format!("Invalid Service Meta: {why}")));
    }
    validate_connect(&kind, port, &socket_path, &connect_parts)?;
    let mut check_defs = Vec::new();
    if let Some(single) = f.object(&["Check"], "CheckType")? {
        check_defs.push(single);
    }
    check_defs.extend(f.objects(&["Checks"], "CheckType")?);
    if check_defs.len() > SERVICE_CHECKS_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid check: more than {SERVICE_CHECKS_MAX} checks on one service"
        )));
    }
    let several = check_defs.len() > 1;
    let mut checks = Vec::with_capacity(check_defs.len());
    for (i, def) in check_defs.iter().enumerate() {
        let embedded = EmbeddedIn {
            service_id: &id,
            service_name: &name,
            position: several.then_some(i + 1),
        };
        checks.push(decode_check(def, Some(&embedded), scripts)?);
    }
    let service = ServiceInstance {
        id,
        service: name,
        kind,
        tags,
        address,
        tagged_addresses,
        meta,
        port,
        socket_path,
        weights,
        enable_tag_override,
        proxy: connect_parts.proxy,
        connect: connect_parts.connect,
        ..ServiceInstance::default()
    };
    let sidecar = decode_sidecar(f, &service, scripts)?.map(Box::new);
    Ok(ServiceRegistration {
        service,
        checks,
        sidecar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::CheckStatus;
    use serde_json::json;

    const API: ScriptPolicy = ScriptPolicy {
        enable_script_checks: false,
        enable_local_script_checks: false,
        from_config_file: false,
    };

    fn decode(v: serde_json::Value) -> Result<ServiceRegistration, Rejection> {
        decode_service(&Fields::of(&v, "ServiceDefinition").unwrap(), API)
    }

    #[test]
    fn pascal_case_body_with_defaults() {
        let r = decode(json!({"Name": "web", "Port": 8080, "Tags": ["a"], "Meta": {"v": "1"}})).unwrap();
        assert_eq!(r.service.id, "web", "ID defaults to Name");
        assert_eq!(r.service.port, 8080);
        assert_eq!(r.service.weights, Weights { passing: 1, warning: 1 });
        assert_eq!(r.service.meta["v"], "1");
        assert!(r.checks.is_empty());
    }

    #[test]
    fn snake_case_body_with_checks() {
        let r = decode(json!({
            "name": "api", "id": "api-1", "enable_tag_override": true,
            "tagged_addresses": {"lan": {"address": "10.0.0.1", "port": 80}},
            "checks": [{"ttl": "10s"}, {"tcp": "127.0.0.1:1", "interval": "5s", "status": "passing"}]
        }))
        .unwrap();
        assert!(r.service.enable_tag_override);
        assert_eq!(r.service.tagged_addresses["lan"].address, "10.0.0.1");
        assert_eq!(r.service.tagged_addresses["lan"].port, 80);
        let ids: Vec<_> = r.checks.iter().map(|c| c.check.check_id.as_str()).collect();
        assert_eq!(ids, ["service:api-1:1", "service:api-1:2"]);
        assert_eq!(r.checks[0].check.status, CheckStatus::Critical);
        assert_eq!(r.checks[1].check.status, CheckStatus::Passing);
        assert_eq!(r.checks[1].check.name, "Service 'api' check");
    }

    #[test]
    fn validation_errors() {
        let cases = [
            (json!({"Port": 1}), "Missing service name"),
            (json!({"Name": "w", "Address": "0.0.0.0"}), "Invalid service address"),
            (json!({"Name": "w", "Address": "::"}), "Invalid service address"),
            (
                json!({"Name": "w", "Weights": {"Passing": 0, "Warning": 1}}),
                "Invalid Weights: Passing must be greater than 0",
            ),
            (
                json!({"Name": "w", "Meta": {"consul-x": "1"}}),
                "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use: \"consul-x\"",
            ),
            (
                json!({"Name": "w", "Check": {"Interval": "1s", "HTTP": ""}}),
                "Invalid check: TTL must be > 0 for TTL checks",
            ),
        ];
        for (body, want) in cases {
            let e = decode(body.clone()).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (400, want), "{body}");
        }
        for port in [json!(70000), json!(-1), json!("80")] {
            let e = decode(json!({"Name": "w", "Port": port})).unwrap_err();
            assert!(
                e.message.starts_with("Request decode failed: json: cannot unmarshal"),
                "{}",
                e.message
            );
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..=META_PAIRS_MAX).map(|i| (format!("k{i}"), json!("v"))).collect();
        let e = decode(json!({"Name": "w", "Meta": many})).unwrap_err();
        assert!(e
            .message
            .starts_with("Invalid Service Meta: metadata cannot contain more than 64"));
        let e = decode(json!({"Name": "w", "Meta": {"k": "v".repeat(META_VALUE_CHARS_MAX + 1)}})).unwrap_err();
        assert!(e.message.contains("Value is too long"));
        let e = decode(json!({"Name": "w", "Tags": vec!["t"; TAGS_MAX + 1]})).unwrap_err();
        assert_eq!(e.status, 400);
        let checks: Vec<_> = (0..=SERVICE_CHECKS_MAX).map(|_| json!({"TTL": "1s"})).collect();
        assert_eq!(decode(json!({"Name": "w", "Checks": checks})).unwrap_err().status, 400);
    }

    #[test]
    fn catalog_style_service_name_key() {
        let r = decode(json!({"Service": "redis", "ID": "r1"})).unwrap();
        assert_eq!(r.service.service, "redis");
        assert_eq!(r.service.id, "r1");
    }
}
