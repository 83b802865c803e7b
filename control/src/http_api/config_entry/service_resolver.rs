//! `service-resolver`: Consul's `ServiceResolverConfigEntry` fields (the
//! timeouts kept as Go duration text, as its `MarshalJSON` renders them)
//! and its `Validate`: subset names and filters, the default subset,
//! `Redirect`, `Failover`, the timeouts. Validate stops at the first
//! error, so each rule returns alone, in Consul's words. Pure.

use proconsul_dataplane::filter::Filter;
use serde_json::{Map, Value};

use super::super::check_def::Rejection;
use super::rules::{check_meta, rpc_error};
use super::schema::{check_entry, duration_text, field, object_of, stored_duration_ns, text_of, Field, Shape};

/// Most subsets on one resolver.
pub const SUBSETS_MAX: usize = 256;
/// Most failover entries on one resolver.
pub const FAILOVERS_MAX: usize = 256;
/// Most targets or datacenters in one failover entry.
pub const FAILOVER_TARGETS_MAX: usize = 64;
/// Longest subset name (Consul's DNS-label rule).
pub const SUBSET_NAME_BYTES_MAX: usize = 63;

const SUBSET: &[Field] = &[field("Filter", Shape::Text), field("OnlyPassing", Shape::Flag)];

const REDIRECT: &[Field] = &[
    field("Service", Shape::Text),
    field("ServiceSubset", Shape::Text),
    field("Partition", Shape::Text),
    field("Datacenter", Shape::Text),
    field("Peer", Shape::Text),
    field("SamenessGroup", Shape::Text),
];

const FAILOVER_TARGET: &[Field] = &[
    field("Service", Shape::Text),
    field("ServiceSubset", Shape::Text),
    field("Partition", Shape::Text),
    field("Datacenter", Shape::Text),
    field("Peer", Shape::Text),
];

const FAILOVER: &[Field] = &[
    field("Service", Shape::Text),
    field("ServiceSubset", Shape::Text),
    field("Datacenters", Shape::TextList),
    field("Targets", Shape::ObjectList(FAILOVER_TARGET)),
    field("Policy", Shape::Opaque),
    field("SamenessGroup", Shape::Text),
];

/// The fields of a `service-resolver` entry besides `Kind` and `Name`.
pub const FIELDS: &[Field] = &[
    field("DefaultSubset", Shape::Text),
    field("Subsets", Shape::ObjectMap(SUBSET)),
    field("Redirect", Shape::Object(REDIRECT)),
    field("Failover", Shape::ObjectMap(FAILOVER)),
    field("ConnectTimeout", Shape::DurationText),
    field("RequestTimeout", Shape::DurationText),
    field("PrioritizeByLocality", Shape::Opaque),
    field("LoadBalancer", Shape::Opaque),
    field("Meta", Shape::TextMap),
];

/// Checks and validates a `service-resolver` entry in place.
pub fn check(object: &mut Map<String, Value>) -> Result<(), Rejection> {
    check_entry(object, FIELDS)?;
    validate(object)
}

/// Consul's `validateServiceSubset`: a DNS label in lower case.
fn valid_subset_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= SUBSET_NAME_BYTES_MAX
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

fn validate(object: &Map<String, Value>) -> Result<(), Rejection> {
    let name = text_of(object, "Name");
    check_meta(object)?;
    let empty = Map::new();
    let subsets = object_of(object, "Subsets").unwrap_or(&empty);
    if subsets.len() > SUBSETS_MAX {
        return Err(rpc_error(format!(
            "too many subsets ({} > {SUBSETS_MAX})",
            subsets.len()
        )));
    }
    for (subset, definition) in subsets {
        if subset.is_empty() {
            return Err(rpc_error("Subset defined with empty name"));
        }
        if !valid_subset_name(subset) {
            return Err(rpc_error(format!(
                "Subset {subset:?} is invalid: must be 63 characters or less, begin or end with lower case alphanumeric characters, and contain lower case alphanumeric characters or '-' in between"
            )));
        }
        let filter = definition.as_object().map_or("", |d| text_of(d, "Filter"));
        if !filter.is_empty() {
            if let Err(e) = Filter::parse(filter) {
                return Err(rpc_error(format!(
                    "Filter for subset {subset:?} is not a valid expression: {e}"
                )));
            }
        }
    }
    let is_subset = |s: &str| subsets.contains_key(s);
    let default_subset = text_of(object, "DefaultSubset");
    if !default_subset.is_empty() && !is_subset(default_subset) {
        return Err(rpc_error(format!(
            "DefaultSubset {default_subset:?} is not a valid subset"
        )));
    }
    let failovers = object_of(object, "Failover").unwrap_or(&empty);
    if let Some(redirect) = object_of(object, "Redirect") {
        check_redirect(redirect, name, !failovers.is_empty(), &is_subset)?;
    }
    if failovers.len() > FAILOVERS_MAX {
        return Err(rpc_error(format!(
            "too many failover entries ({} > {FAILOVERS_MAX})",
            failovers.len()
        )));
    }
    for (subset, failover) in failovers {
        let failover = failover.as_object().unwrap_or(&empty);
        check_failover(subset, failover, name, &is_subset)?;
    }
    for key in ["ConnectTimeout", "RequestTimeout"] {
        let ns = stored_duration_ns(object.get(key));
        if ns < 0 {
            return Err(rpc_error(format!("Bad {key} '{}', must be >= 0", duration_text(ns))));
        }
    }
    Ok(())
}

fn check_redirect(
    redirect: &Map<String, Value>,
    name: &str,
    has_failover: bool,
    is_subset: &dyn Fn(&str) -> bool,
) -> Result<(), Rejection> {
    if has_failover {
        return Err(rpc_error("Redirect and Failover cannot both be set"));
    }
    let service = text_of(redirect, "Service");
    let service_subset = text_of(redirect, "ServiceSubset");
    let partition = text_of(redirect, "Partition");
    let datacenter = text_of(redirect, "Datacenter");
    let peer = text_of(redirect, "Peer");
    if [service, service_subset, partition, datacenter, peer]
        .iter()
        .all(|s| s.is_empty())
    {
        return Err(rpc_error("Redirect is empty"));
    }
    let why = if !peer.is_empty() && !service_subset.is_empty() {
        Some("Redirect.Peer cannot be set with Redirect.ServiceSubset".to_string())
    } else if !peer.is_empty() && !partition.is_empty() {
        Some("Redirect.Partition cannot be set with Redirect.Peer".into())
    } else if !peer.is_empty() && !datacenter.is_empty() {
        Some("Redirect.Peer cannot be set with Redirect.Datacenter".into())
    } else if service.is_empty() {
        [
            (
                service_subset,
                "Redirect.ServiceSubset defined without Redirect.Service",
            ),
            (partition, "Redirect.Partition defined without Redirect.Service"),
            (peer, "Redirect.Peer defined without Redirect.Service"),
        ]
        .iter()
        .find(|(value, _)| !value.is_empty())
        .map(|(_, why)| why.to_string())
    } else if !service_subset.is_empty() && service == name && !is_subset(service_subset) {
        Some(format!(
            "Redirect.ServiceSubset {service_subset:?} is not a valid subset of {name:?}"
        ))
    } else {
        None
    };
    why.map_or(Ok(()), |why| Err(rpc_error(why)))
}

fn check_failover(
    subset: &str,
    failover: &Map<String, Value>,
    name: &str,
    is_subset: &dyn Fn(&str) -> bool,
) -> Result<(), Rejection> {
    let prefix = format!("Bad Failover[{subset:?}]: ");
    if subset != "*" && !is_subset(subset) {
        return Err(rpc_error(format!("{prefix}not a valid subset subset")));
    }
    let service = text_of(failover, "Service");
    let service_subset = text_of(failover, "ServiceSubset");
    let list = |key: &str| {
        failover
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    let datacenters = list("Datacenters");
    let targets = list("Targets");
    if service.is_empty() && service_subset.is_empty() && datacenters.is_empty() && targets.is_empty() {
        return Err(rpc_error(format!(
            "{prefix}one of Service, ServiceSubset, Namespace, Targets, or Datacenters is required"
        )));
    }
    if datacenters.len() > FAILOVER_TARGETS_MAX || targets.len() > FAILOVER_TARGETS_MAX {
        return Err(rpc_error(format!(
            "{prefix}more than {FAILOVER_TARGETS_MAX} targets or datacenters"
        )));
    }
    if !service_subset.is_empty() && (service.is_empty() || service == name) && !is_subset(service_subset) {
        return Err(rpc_error(format!(
            "{prefix}ServiceSubset {service_subset:?} is not a valid subset of {service:?}"
        )));
    }
    if !datacenters.is_empty() && !targets.is_empty() {
        return Err(rpc_error(format!("{prefix}Targets cannot be set with Datacenters")));
    }
    if !service_subset.is_empty() && !targets.is_empty() {
        return Err(rpc_error(format!("{prefix}Targets cannot be set with ServiceSubset")));
    }
    if !service.is_empty() && !targets.is_empty() {
        return Err(rpc_error(format!("{prefix}Targets cannot be set with Service")));
    }
    let empty = Map::new();
    for (i, target) in targets.iter().enumerate() {
        let target = target.as_object().unwrap_or(&empty);
        let prefix = format!("Bad Failover[{subset:?}].Targets[{i}]: ");
        let [peer, target_subset, partition, datacenter, target_service] =
            ["Peer", "ServiceSubset", "Partition", "Datacenter", "Service"].map(|k| text_of(target, k));
        let why = if !peer.is_empty() && !target_subset.is_empty() {
            Some("Peer cannot be set with ServiceSubset".to_string())
        } else if !peer.is_empty() && !partition.is_empty() {
            Some("Partition cannot be set with Peer".into())
        } else if !peer.is_empty() && !datacenter.is_empty() {
            Some("Peer cannot be set with Datacenter".into())
        } else if !partition.is_empty() && !datacenter.is_empty() {
            Some("Partition cannot be set with Datacenter".into())
        } else if !target_subset.is_empty()
            && (target_service.is_empty() || target_service == name)
            && !is_subset(target_subset)
        {
            Some(format!(
                "ServiceSubset {target_subset:?} is not a valid subset of {name:?}"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(rpc_error(format!("{prefix}{why}")));
        }
    }
    if datacenters.iter().any(|dc| dc.as_str() == Some("")) {
        return Err(rpc_error(format!(
            "Bad Failover[{subset:?}].Datacenters: found empty datacenter"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Result<Value, Rejection> {
        let Value::Object(mut map) = v else { panic!("an object") };
        map.insert("Kind".into(), json!("service-resolver"));
        map.entry("Name").or_insert(json!("web"));
        check(&mut map)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn a_full_resolver_is_kept_with_go_durations() {
        let out = run(json!({
            "DefaultSubset": "v1",
            "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true}},
            "Failover": {"*": {"Datacenters": ["dc2"]}, "v2": {"ServiceSubset": "v1"}},
            "ConnectTimeout": "15s", "RequestTimeout": 90_000_000_000u64
        }))
        .unwrap();
        assert_eq!(out["ConnectTimeout"], "15s");
        assert_eq!(out["RequestTimeout"], "1m30s");
        assert_eq!(out["Subsets"]["v2"]["OnlyPassing"], true);
        assert!(run(json!({"Redirect": {"Service": "api", "Datacenter": "dc2"}})).is_ok());
    }

    #[test]
    fn bad_resolvers_get_consuls_texts() {
        let cases = [
            (
                json!({"Subsets": {"V1": {}}}),
                "Subset \"V1\" is invalid: must be 63 characters or less",
            ),
            (json!({"Subsets": {"": {}}}), "Subset defined with empty name"),
            (
                json!({"Subsets": {"v1": {"Filter": "Service.Meta.version =="}}}),
                "Filter for subset \"v1\" is not a valid expression: ",
            ),
            (
                json!({"DefaultSubset": "v9"}),
                "DefaultSubset \"v9\" is not a valid subset",
            ),
            (json!({"Redirect": {}}), "Redirect is empty"),
            (
                json!({"Redirect": {"Service": "a"}, "Failover": {"*": {"Service": "b"}}}),
                "Redirect and Failover cannot both be set",
            ),
            (
                json!({"Redirect": {"ServiceSubset": "v1"}}),
                "Redirect.ServiceSubset defined without Redirect.Service",
            ),
            (
                json!({"Redirect": {"Peer": "p", "Datacenter": "dc2"}}),
                "Redirect.Peer cannot be set with Redirect.Datacenter",
            ),
            (
                json!({"Redirect": {"Service": "web", "ServiceSubset": "v9"}}),
                "Redirect.ServiceSubset \"v9\" is not a valid subset of \"web\"",
            ),
            (
                json!({"Failover": {"v9": {"Service": "b"}}}),
                "Bad Failover[\"v9\"]: not a valid subset subset",
            ),
            (
                json!({"Failover": {"*": {}}}),
                "Bad Failover[\"*\"]: one of Service, ServiceSubset, Namespace, Targets, or Datacenters is required",
            ),
            (
                json!({"Failover": {"*": {"Datacenters": ["dc2"], "Targets": [{"Service": "b"}]}}}),
                "Bad Failover[\"*\"]: Targets cannot be set with Datacenters",
            ),
            (
                json!({"Failover": {"*": {"Targets": [{"Peer": "p", "Datacenter": "dc2"}]}}}),
                "Bad Failover[\"*\"].Targets[0]: Peer cannot be set with Datacenter",
            ),
            (
                json!({"Failover": {"*": {"Datacenters": [""]}}}),
                "Bad Failover[\"*\"].Datacenters: found empty datacenter",
            ),
            (
                json!({"ConnectTimeout": "-1s"}),
                "Bad ConnectTimeout '-1s', must be >= 0",
            ),
            (
                json!({"RequestTimeout": -5_000_000}),
                "Bad RequestTimeout '-5ms', must be >= 0",
            ),
        ];
        for (body, want) in cases {
            let e = run(body.clone()).unwrap_err();
            assert_eq!(e.status, 500, "{body}: {}", e.message);
            assert!(e.message.starts_with(want), "{body}: {}", e.message);
        }
        let e = run(json!({"ConnectTimeout": "soon"})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e
            .message
            .contains("error decoding 'ConnectTimeout': time: invalid duration \"soon\""));
        let e = run(json!({"Subsets": {"v1": {"Filters": ""}}})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("invalid config key \"Subsets[v1].Filters\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn subset_names_are_dns_labels() {
        assert!(valid_subset_name("v1") && valid_subset_name("a-b") && valid_subset_name(&"a".repeat(63)));
        assert!(!valid_subset_name("-a") && !valid_subset_name("a-") && !valid_subset_name(&"a".repeat(64)));
    }
}
