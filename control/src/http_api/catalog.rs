//! `PUT /v1/catalog/register` and `PUT /v1/catalog/deregister` bodies into
//! [`Command`]s. These write the catalog directly: no agent-local state, no
//! check runner. Pure.

use proconsul_shared::command::{CatalogRegistration, Command, NodeRegistration};
use proconsul_shared::state::{CheckDefinition, CheckStatus, HealthCheck};

use super::check_def::{Rejection, CHECK_TEXT_BYTES_MAX};
use super::fields::{parse_body, Fields};
use super::proxy_def::as_rpc_error;
use super::service_def::decode_service;
use crate::http_api::check_def::ScriptPolicy;
use crate::rpc::validate::{catalog_node_arguments, MISSING_NODE};

/// Most checks in one catalog registration.
pub const CATALOG_CHECKS_MAX: usize = 64;
/// Longest check output accepted in a catalog registration, in bytes.
pub const CATALOG_OUTPUT_BYTES_MAX: usize = 64 * 1024;

/// `Catalog.Register`'s refusal of a check that names another node than
/// the registration (compared as Go's `strings.EqualFold` does).
fn check_node_mismatch(check_node: &str, check_id: &str, node: &str) -> Option<Rejection> {
    if check_node.is_empty() || check_node.to_lowercase() == node.to_lowercase() {
        return None;
    }
    Some(rpc_argument_error(&format!(
        "Node '{check_node}' for check '{check_id}' doesn't match register request node '{node}'"
    )))
}

/// Decodes one check of a registration for `node`.
fn catalog_check(f: &Fields<'_>, node: &str) -> Result<HealthCheck, Rejection> {
    let name = f.string(&["Name"])?;
    let mut check_id = f.string(&["CheckID", "ID"])?;
    if check_id.is_empty() {
        check_id = name.clone();
    }
    if let Some(mismatch) = check_node_mismatch(&f.string(&["Node"])?, &check_id, node) {
        return Err(mismatch);
    }
    let status_text = f.string(&["Status"])?;
    let status = if status_text.is_empty() {
        CheckStatus::Critical
    } else {
        CheckStatus::parse(&status_text).ok_or_else(|| Rejection::bad_request("Bad check status"))?
    };
    let output = f.string(&["Output"])?;
    if output.len() > CATALOG_OUTPUT_BYTES_MAX {
        return Err(Rejection::bad_request(format!(
            "Check output exceeds {CATALOG_OUTPUT_BYTES_MAX} bytes"
        )));
    }
    let definition = match f.object(&["Definition"], "HealthCheckDefinition")? {
        None => CheckDefinition::default(),
        Some(d) => CheckDefinition {
            http: d.string(&["HTTP"])?,
            header: d.string_list_map(&["Header"])?,
            method: d.string(&["Method"])?,
            body: d.string(&["Body"])?,
            tls_server_name: d.string(&["TLSServerName"])?,
            tls_skip_verify: d.bool(&["TLSSkipVerify"])?,
            tcp: d.string(&["TCP"])?,
            interval_ns: d.duration_ns(&["Interval", "IntervalDuration"])?,
            timeout_ns: d.duration_ns(&["Timeout", "TimeoutDuration"])?,
            deregister_critical_service_after_ns: d.duration_ns(&[
                "DeregisterCriticalServiceAfter",
                "DeregisterCriticalServiceAfterDuration",
            ])?,
        },
    };
    let check = HealthCheck {
        check_id,
        name,
        status,
        notes: f.string(&["Notes"])?,
        output,
        service_id: f.string(&["ServiceID"])?,
        check_type: f.string(&["Type"])?,
        definition,
        ..HealthCheck::default()
    };
    for text in [&check.check_id, &check.name, &check.notes, &check.service_id] {
        if text.len() > CHECK_TEXT_BYTES_MAX {
            return Err(Rejection::bad_request(format!(
                "Check field exceeds {CHECK_TEXT_BYTES_MAX} bytes"
            )));
        }
    }
    Ok(check)
}

/// The datacenter a catalog write names: the agent's own when the body has
/// none (as Consul's handler fills it in). Another datacenter is refused
/// like a read with `?dc=` (no WAN forwarding): `500 No path to datacenter`.
fn write_datacenter(f: &Fields<'_>, local_datacenter: &str) -> Result<String, Rejection> {
    let named = f.string(&["Datacenter"])?;
    if named.is_empty() || named == local_datacenter {
        return Ok(local_datacenter.to_string());
    }
    Err(Rejection {
        status: 500,
        message: "No path to datacenter".into(),
    })
}

/// `decode_service`'s text for an unspecified (`0.0.0.0`, `::`) address.
const INVALID_SERVICE_ADDRESS: &str = "Invalid service address";

/// A service rejection as `/v1/catalog/register` answers it. Consul's
/// handler only decodes (a decode error is `400 Request decode failed`)
/// and hands the rest to the `Catalog.Register` RPC, whose errors come
/// back as `500` with the error's own text: `NodeService.Validate`'s list
/// without the agent endpoint's `Validation failed: ` and `Invalid service
/// address`.
fn as_catalog_rejection(rejection: Rejection) -> Rejection {
    if rejection.status == 400 && rejection.message == INVALID_SERVICE_ADDRESS {
        return Rejection {
            status: 500,
            message: rejection.message,
        };
    }
    as_rpc_error(rejection)
}

/// A check the `Catalog.Register` / `Catalog.Deregister` RPC makes on its
/// arguments. Consul's HTTP handlers only decode and hand the request to
/// the RPC; its plain errors carry no bad-request marker, so the HTTP layer
/// answers them `500` with the error's text.
fn rpc_argument_error(message: &str) -> Rejection {
    Rejection {
        status: 500,
        message: message.into(),
    }
}

/// Decodes a catalog registration body sent to an agent of
/// `local_datacenter`.
pub fn register_command(body: &[u8], local_datacenter: &str) -> Result<Command, Rejection> {
    let value = parse_body(body)?;
    let f = Fields::of(&value, "RegisterRequest")?;
    let node = NodeRegistration {
        id: f.string(&["ID"])?,
        node: f.string(&["Node"])?,
        address: f.string(&["Address"])?,
        datacenter: write_datacenter(&f, local_datacenter)?,
        tagged_addresses: f.string_map(&["TaggedAddresses"])?,
        meta: f.string_map(&["NodeMeta"])?,
    };
    let skip_node_update = f.bool(&["SkipNodeUpdate"])?;
    // No rule on node metadata: `Catalog.Register` stores it as sent
    // (the size bounds are `rpc::validate`'s).
    catalog_node_arguments(&node, skip_node_update).map_err(|e| Rejection {
        status: e.status,
        message: e.message,
    })?;
    let service = match f.object(&["Service"], "NodeService")? {
        None => None,
        Some(s) => {
            // An ID without a name is the RPC's refusal; neither (which
            // Consul stores as a nameless service) stays the decoder's
            // `400 Missing service name`.
            if s.string(&["Service"])?.is_empty() && !s.string(&["ID"])?.is_empty() {
                return Err(rpc_argument_error(
                    "Must provide service name (Service.Service) when service ID is provided",
                ));
            }
            // A catalog service has no embedded checks: any `Check` key
            // there is ignored, like Consul's decoder ignores it.
            let scripts = ScriptPolicy {
                enable_script_checks: false,
                enable_local_script_checks: false,
                from_config_file: false,
            };
            let mut without_checks = s.clone_object();
            without_checks.retain(|k, _| !k.eq_ignore_ascii_case("check") && !k.eq_ignore_ascii_case("checks"));
            let v = serde_json::Value::Object(without_checks);
            let decoded = decode_service(&Fields::of(&v, "NodeService")?, scripts).map_err(as_catalog_rejection)?;
            Some(decoded.service)
        }
    };
    let mut checks = Vec::new();
    if let Some(c) = f.object(&["Check"], "HealthCheck")? {
        checks.push(catalog_check(&c, &node.node)?);
    }
    for c in f.objects(&["Checks"], "HealthCheck")? {
        checks.push(catalog_check(&c, &node.node)?);
    }
    if checks.len() > CATALOG_CHECKS_MAX {
        return Err(Rejection::bad_request(format!(
            "Too many checks in one registration (limit {CATALOG_CHECKS_MAX})"
        )));
    }
    Ok(Command::CatalogRegister(CatalogRegistration {
        node,
        skip_node_update,
        service,
        checks,
    }))
}

/// Decodes a catalog deregistration body sent to an agent of
/// `local_datacenter`.
pub fn deregister_command(body: &[u8], local_datacenter: &str) -> Result<Command, Rejection> {
    let value = parse_body(body)?;
    let f = Fields::of(&value, "DeregisterRequest")?;
    write_datacenter(&f, local_datacenter)?;
    let node = f.string(&["Node"])?;
    if node.is_empty() {
        return Err(rpc_argument_error(MISSING_NODE));
    }
    let service_id = Some(f.string(&["ServiceID"])?).filter(|s| !s.is_empty());
    let check_id = Some(f.string(&["CheckID"])?).filter(|s| !s.is_empty());
    Ok(Command::CatalogDeregister {
        node,
        service_id,
        check_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::validate::MISSING_ADDRESS;
    use serde_json::json;

    fn reg(v: serde_json::Value) -> Result<CatalogRegistration, Rejection> {
        match register_command(v.to_string().as_bytes(), "dc1")? {
            Command::CatalogRegister(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn consul_register_body() {
        let r = reg(json!({
            "Node": "ext", "Address": "10.1.1.1", "NodeMeta": {"Rack": "r1"},
            "Service": {"Service": "redis", "Port": 6379, "Tags": ["primary"]},
            "Check": {"Name": "redis alive", "Status": "passing", "ServiceID": "redis",
                      "Definition": {"TCP": "10.1.1.1:6379", "Interval": "5s"}},
            "SkipNodeUpdate": true
        }))
        .unwrap();
        assert_eq!(r.node.meta["Rack"], "r1", "user map keys verbatim");
        let s = r.service.unwrap();
        assert_eq!((s.id.as_str(), s.service.as_str(), s.port), ("redis", "redis", 6379));
        assert_eq!(r.checks[0].check_id, "redis alive", "CheckID defaults to Name");
        assert_eq!(r.checks[0].status, CheckStatus::Passing);
        assert_eq!(r.checks[0].definition.interval_ns, 5_000_000_000);
        assert!(r.skip_node_update);
        assert_eq!(r.node.datacenter, "dc1", "no Datacenter: the agent's own");
    }

    #[test]
    fn datacenter_defaults_to_the_agents_and_another_is_refused() {
        let r = reg(json!({"Node": "n", "Address": "a", "Datacenter": "dc1"})).unwrap();
        assert_eq!(r.node.datacenter, "dc1");
        let body = json!({"Node": "n", "Address": "a", "Datacenter": "dc2"}).to_string();
        let e = register_command(body.as_bytes(), "dc1").unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (500, "No path to datacenter"));
        let e = deregister_command(br#"{"Node":"n","Datacenter":"dc2"}"#, "dc1").unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (500, "No path to datacenter"));
        assert!(deregister_command(br#"{"Node":"n","Datacenter":"dc1"}"#, "dc1").is_ok());
    }

    #[test]
    fn lower_case_keys_and_defaults() {
        let r = reg(json!({"node": "ext", "address": "h", "checks": [{"name": "c"}]})).unwrap();
        assert!(r.service.is_none());
        assert_eq!(r.checks[0].status, CheckStatus::Critical);
    }

    #[test]
    fn register_errors() {
        // The RPC's own argument checks: 500 with their text, as Consul's
        // HTTP layer answers an RPC error, in the RPC's order.
        let uuid = "11111111-2222-3333-4444-555555555555";
        let cases = [
            (json!({"Address": "a"}), "Must provide node"),
            (json!({"Node": "", "Address": ""}), "Must provide node"),
            (
                json!({"Node": "n", "ID": "x"}),
                "Bad node ID: uuid string is wrong length",
            ),
            (
                json!({"Node": "n", "Address": "a", "ID": "11111111+2222-3333-4444-555555555555"}),
                "Bad node ID: uuid is improperly formatted",
            ),
            (
                json!({"Node": "n", "Address": "a", "ID": "11111111-2222-3333-4444-55555555555z"}),
                "Bad node ID: encoding/hex: invalid byte: U+007A 'z'",
            ),
            (json!({"Node": "n", "ID": uuid}), MISSING_ADDRESS),
            (json!({"Node": "n", "SkipNodeUpdate": false}), MISSING_ADDRESS),
            (
                json!({"Node": "n", "Address": "a", "Service": {"ID": "x"}}),
                "Must provide service name (Service.Service) when service ID is provided",
            ),
            (
                json!({"Node": "n", "Address": "a", "Checks": [{"Name": "ok", "Node": "N"}, {"Name": "c", "Node": "m"}]}),
                "Node 'm' for check 'c' doesn't match register request node 'n'",
            ),
            (
                json!({"Node": "n", "Address": "a", "Check": {"CheckID": "c1", "Name": "c", "Node": "other"}}),
                "Node 'other' for check 'c1' doesn't match register request node 'n'",
            ),
        ];
        for (body, want) in cases {
            let e = reg(body.clone()).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (500, want), "{body}");
        }
        // Refused here where Consul stores what it is sent: a check status
        // outside the four (kept as the agent endpoint answers it) and a
        // service with neither name nor ID (the decoder's answer).
        let cases = [
            (
                json!({"Node": "n", "Address": "a", "Check": {"Name": "c", "Status": "meh"}}),
                "Bad check status",
            ),
            (
                json!({"Node": "n", "Address": "a", "Service": {}}),
                "Missing service name",
            ),
        ];
        for (body, want) in cases {
            let e = reg(body.clone()).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (400, want), "{body}");
        }
        let e = register_command(b"{", "dc1").unwrap_err();
        assert!(e.message.starts_with("Request decode failed: "));
        let e = reg(json!({"Node": "n", "Address": "a", "Service": {"Service": "s", "Port": 99999}})).unwrap_err();
        assert!(e.message.starts_with("Request decode failed: "));
        let checks: Vec<_> = (0..=CATALOG_CHECKS_MAX)
            .map(|i| json!({"Name": format!("c{i}")}))
            .collect();
        let e = reg(json!({"Node": "n", "Address": "a", "Checks": checks})).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Too many checks in one registration (limit 64)")
        );
    }

    #[test]
    fn what_the_rpc_accepts() {
        // No address with SkipNodeUpdate: the state machine keeps an
        // existing node as it is (and creates a missing one as sent).
        let r = reg(json!({"Node": "n", "SkipNodeUpdate": true, "Service": {"Service": "s"}})).unwrap();
        assert!(r.skip_node_update);
        assert_eq!(r.node.address, "");
        // A node ID that is a UUID, any case.
        let r = reg(json!({"Node": "n", "Address": "a", "ID": "ABCDEF00-2222-3333-4444-555555555555"})).unwrap();
        assert_eq!(r.node.id, "ABCDEF00-2222-3333-4444-555555555555");
        // Node metadata is stored as sent: no reserved prefix, no key rule.
        let r = reg(json!({"Node": "n", "Address": "a", "NodeMeta": {"consul-rack": "r1", "a b": ""}})).unwrap();
        assert_eq!(r.node.meta["consul-rack"], "r1");
        assert_eq!(r.node.meta["a b"], "");
        // A check naming the registration's node, in another case.
        let r = reg(json!({"Node": "web-1", "Address": "a", "Check": {"Name": "c", "Node": "WEB-1"}})).unwrap();
        assert_eq!(r.checks[0].check_id, "c");
        // A service named without an ID takes its name as the ID.
        let r = reg(json!({"Node": "n", "Address": "a", "Service": {"Service": "db"}})).unwrap();
        assert_eq!(r.service.unwrap().id, "db");
    }

    #[test]
    fn service_validation_errors_are_the_rpcs_500() {
        let cases = [
            (
                json!({"Kind": "connect-proxy", "Service": "p", "Port": 1}),
                "1 error occurred:\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n",
            ),
            (
                json!({"Kind": "connect-proxy", "Service": "p", "Proxy": {"DestinationServiceName": "web"}}),
                "1 error occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\n",
            ),
            (
                json!({"Kind": "connect-proxy", "Service": "p", "Port": 1, "Proxy": {
                    "DestinationServiceName": "web",
                    "Upstreams": [{"DestinationName": "db"}, {"DestinationName": "db", "LocalBindPort": 0}]}}),
                "2 errors occurred:\n\t* upstream local bind port or local socket path must be defined and nonzero\n\t* upstream local bind port or local socket path must be defined and nonzero\n\n",
            ),
            (
                json!({"Service": "w", "Port": 1, "Connect": {"SidecarService": {"ID": "x"}}}),
                "1 error occurred:\n\t* A SidecarService cannot specify an ID as this is managed by the agent\n\n",
            ),
            (
                json!({"Kind": "mesh-gateway", "Service": "g", "Port": 1, "Connect": {"SidecarService": {}}}),
                "1 error occurred:\n\t* A mesh-gateway cannot have a sidecar service defined\n\n",
            ),
            (
                json!({"Service": "w", "Port": 1, "Connect": {"Native": true, "SidecarService": {"Connect": {"SidecarService": {}}}}}),
                "1 error occurred:\n\t* A SidecarService cannot have a nested SidecarService\n\n",
            ),
            (json!({"Service": "w", "Address": "0.0.0.0"}), "Invalid service address"),
        ];
        for (service, want) in cases {
            let e = reg(json!({"Node": "n", "Address": "a", "Service": service})).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (500, want), "{service}");
        }
        // A body that does not decode stays the handler's 400.
        let e = reg(json!({"Node": "n", "Address": "a", "Service": {"Service": "s", "Proxy": 5}})).unwrap_err();
        assert_eq!(e.status, 400, "{}", e.message);
        assert!(e.message.starts_with("Request decode failed: "), "{}", e.message);
    }

    #[test]
    fn deregister_bodies() {
        assert_eq!(
            deregister_command(br#"{"Node":"n","ServiceID":"s"}"#, "dc1").unwrap(),
            Command::CatalogDeregister {
                node: "n".into(),
                service_id: Some("s".into()),
                check_id: None
            }
        );
        assert_eq!(
            deregister_command(br#"{"node":"n"}"#, "dc1").unwrap(),
            Command::CatalogDeregister {
                node: "n".into(),
                service_id: None,
                check_id: None
            }
        );
        for body in [&b"{}"[..], br#"{"Node":""}"#] {
            let e = deregister_command(body, "dc1").unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (500, "Must provide node"));
        }
    }
}
