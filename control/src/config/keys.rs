//! Every config-file key we understand, in one table, each with the setter
//! that reads its JSON value into a [`PartialConfig`]. A key not in this
//! table is reported as unknown (a warning) and ignored. Pure.

use serde_json::Value;

use super::cluster;
use super::definitions;
use super::dns;
use super::partial::PartialConfig;

/// Reads one JSON value into the partial config, or says why it cannot.
pub type Setter = fn(&mut PartialConfig, &Value) -> Result<(), String>;

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {}", kind(other))),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("expected a boolean, got {}", kind(other))),
    }
}

fn integer(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("expected an integer, got {n}")),
        other => Err(format!("expected an integer, got {}", kind(other))),
    }
}

fn string_map(v: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object, got {}", kind(v)));
    };
    map.iter()
        .map(|(k, v)| string(v).map(|s| (k.clone(), s)).map_err(|e| format!("{k}: {e}")))
        .collect()
}

/// Stores a parsed value into an optional field and reports success.
macro_rules! set {
    ($field:expr, $value:expr) => {{
        $field = Some($value);
        Ok(())
    }};
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known keys, as dotted paths (`ports.http` is `{"ports":{"http":..}}`).
pub const KNOWN_KEYS: &[(&str, Setter)] = &[
    ("advertise_addr", |c, v| set!(c.advertise_addr, string(v)?)),
    ("alt_domain", dns::set_alt_domain),
    ("anti_entropy_interval", |c, v| {
        set!(c.anti_entropy_interval, string(v)?)
    }),
    ("bind_addr", |c, v| set!(c.bind_addr, string(v)?)),
    ("bootstrap", |c, v| set!(c.bootstrap, boolean(v)?)),
    ("bootstrap_expect", |c, v| set!(c.bootstrap_expect, integer(v)?)),
    ("check", definitions::set_checks),
    ("check_reap_interval", |c, v| set!(c.check_reap_interval, string(v)?)),
    ("check_update_interval", |c, v| {
        set!(c.check_update_interval, string(v)?)
    }),
    ("checks", definitions::set_checks),
    ("client_addr", |c, v| set!(c.client_addr, string(v)?)),
    ("data_dir", |c, v| set!(c.data_dir, string(v)?)),
    ("datacenter", |c, v| set!(c.datacenter, string(v)?)),
    ("dataplane_threads", |c, v| set!(c.dataplane_threads, integer(v)?)),
    ("default_query_time", |c, v| set!(c.default_query_time, string(v)?)),
    ("dev_fault_injection", cluster::refuse_fault_injection),
    ("dns_config.a_record_limit", dns::set_a_record_limit),
    ("dns_config.enable_additional_node_meta_txt", dns::set_node_meta_txt),
    ("dns_config.enable_truncate", dns::set_enable_truncate),
    ("dns_config.node_ttl", dns::set_node_ttl),
    ("dns_config.only_passing", dns::set_only_passing),
    ("dns_config.recursor_timeout", dns::set_recursor_timeout),
    ("dns_config.service_ttl", dns::set_service_ttl),
    ("dns_config.udp_answer_limit", dns::set_udp_answer_limit),
    ("domain", |c, v| set!(c.domain, string(v)?)),
    ("enable_local_script_checks", |c, v| {
        set!(c.enable_local_script_checks, boolean(v)?)
    }),
    ("enable_script_checks", |c, v| set!(c.enable_script_checks, boolean(v)?)),
    ("limits.http_max_conns_per_client", |c, v| {
        set!(c.http_max_conns_per_client, integer(v)?)
    }),
    ("limits.wake_hold_ms_max", |c, v| set!(c.wake_hold_ms_max, integer(v)?)),
    ("log_level", |c, v| set!(c.log_level, string(v)?)),
    ("max_query_time", |c, v| set!(c.max_query_time, string(v)?)),
    ("node_id", |c, v| set!(c.node_id, string(v)?)),
    ("node_meta", |c, v| {
        c.node_meta.extend(string_map(v)?);
        Ok(())
    }),
    ("node_name", |c, v| set!(c.node_name, string(v)?)),
    ("pid_file", |c, v| set!(c.pid_file, string(v)?)),
    ("ports.dns", |c, v| set!(c.ports.dns, integer(v)?)),
    ("ports.grpc", |c, v| set!(c.ports.grpc, integer(v)?)),
    ("ports.grpc_tls", |c, v| set!(c.ports.grpc_tls, integer(v)?)),
    ("ports.http", |c, v| set!(c.ports.http, integer(v)?)),
    ("ports.https", |c, v| set!(c.ports.https, integer(v)?)),
    ("ports.serf_lan", |c, v| set!(c.ports.serf_lan, integer(v)?)),
    ("ports.serf_wan", |c, v| set!(c.ports.serf_wan, integer(v)?)),
    ("ports.server", |c, v| set!(c.ports.server, integer(v)?)),
    ("recursors", dns::set_recursors),
    ("retry_interval", cluster::set_retry_interval),
    ("retry_interval_wan", cluster::set_retry_interval_wan),
    ("retry_join", cluster::set_retry_join),
    ("retry_join_wan", cluster::set_retry_join_wan),
    ("server", |c, v| set!(c.server, boolean(v)?)),
    ("service", definitions::set_services),
    ("services", definitions::set_services),
    ("start_join", cluster::set_retry_join),
    ("start_join_wan", cluster::set_retry_join_wan),
];

/// The setter for an exact dotted path.
pub fn setter(path: &str) -> Option<Setter> {
    KNOWN_KEYS.iter().find(|(k, _)| *k == path).map(|(_, s)| *s)
}

/// Whether some known key lives under `path` (so `path` is a block).
pub fn is_block(path: &str) -> bool {
    KNOWN_KEYS
        .iter()
        .any(|(k, _)| k.len() > path.len() && k.starts_with(path) && k.as_bytes()[path.len()] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<&str> = KNOWN_KEYS.iter().map(|(k, _)| *k).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "keep KNOWN_KEYS sorted, one entry per key");
    }

    #[test]
    fn blocks_and_leaves() {
        assert!(is_block("ports"));
        assert!(is_block("limits"));
        assert!(!is_block("port"), "a prefix of a block name is not a block");
        assert!(!is_block("datacenter"));
        assert!(setter("ports.http").is_some());
        assert!(setter("ports").is_none());
    }

    #[test]
    fn setters_check_types() {
        let mut c = PartialConfig::default();
        setter("ports.http").unwrap()(&mut c, &serde_json::json!(8501)).unwrap();
        assert_eq!(c.ports.http, Some(8501));
        let e = setter("ports.http").unwrap()(&mut c, &serde_json::json!("8501")).unwrap_err();
        assert_eq!(e, "expected an integer, got a string");
        let e = setter("server").unwrap()(&mut c, &serde_json::json!(1)).unwrap_err();
        assert_eq!(e, "expected a boolean, got a number");
        let e = setter("node_meta").unwrap()(&mut c, &serde_json::json!({"a": 1})).unwrap_err();
        assert_eq!(e, "a: expected a string, got a number");
    }
}
