//! The DNS settings: `dns_config { … }`, top-level `recursors` and
//! `alt_domain` (and their flags `-recursor`, `-alt-domain`), as given
//! ([`PartialDns`], merged like every source) and resolved with Consul's
//! defaults and checks into the [`DnsConfig`] the data plane reads. Pure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use proconsul_shared::agent_info::DnsConfig;
use serde_json::Value;

use super::duration::parse_duration_ms;
use super::error::ConfigError;
use super::partial::PartialConfig;

/// Most recursors kept (a longer list is a configuration error).
pub const RECURSORS_MAX: usize = 16;
/// Longest TTL accepted, seconds (RFC 2181: 2^31 - 1).
pub const TTL_S_MAX: u64 = i32::MAX as u64;
/// Longest `recursor_timeout`, milliseconds.
pub const RECURSOR_TIMEOUT_MS_MAX: u64 = 60_000;
/// Largest `udp_answer_limit` / `a_record_limit` accepted.
pub const RECORD_LIMIT_MAX: i64 = 65_535;
/// Most `service_ttl` entries.
pub const SERVICE_TTLS_MAX: usize = 4_096;

/// DNS settings from one source; `None` = not set here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialDns {
    pub alt_domain: Option<String>,
    pub recursors: Option<Vec<String>>,
    pub only_passing: Option<bool>,
    /// Go duration.
    pub node_ttl: Option<String>,
    /// Service name (or `*`, or `prefix*`) → Go duration; merged key by key.
    pub service_ttl: BTreeMap<String, String>,
    pub enable_truncate: Option<bool>,
    pub udp_answer_limit: Option<i64>,
    pub a_record_limit: Option<i64>,
    /// Go duration.
    pub recursor_timeout: Option<String>,
    pub enable_additional_node_meta_txt: Option<bool>,
}

fn over<T>(earlier: &mut Option<T>, later: Option<T>) {
    if later.is_some() {
        *earlier = later;
    }
}

impl PartialDns {
    /// Applies `later` on top of `self`.
    pub fn merge(&mut self, later: PartialDns) {
        over(&mut self.alt_domain, later.alt_domain);
        over(&mut self.recursors, later.recursors);
        over(&mut self.only_passing, later.only_passing);
        over(&mut self.node_ttl, later.node_ttl);
        self.service_ttl.extend(later.service_ttl);
        over(&mut self.enable_truncate, later.enable_truncate);
        over(&mut self.udp_answer_limit, later.udp_answer_limit);
        over(&mut self.a_record_limit, later.a_record_limit);
        over(&mut self.recursor_timeout, later.recursor_timeout);
        over(
            &mut self.enable_additional_node_meta_txt,
            later.enable_additional_node_meta_txt,
        );
    }
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

/// A Go duration string; a bare number is read as nanoseconds, like Go's
/// `time.Duration` in JSON.
fn duration(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .map(|ns| format!("{ns}ns"))
            .ok_or_else(|| format!("expected a duration, got {n}")),
        other => Err(format!("expected a duration string, got {}", kind(other))),
    }
}

/// `alt_domain`.
pub fn set_alt_domain(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.alt_domain = Some(string(v)?);
    Ok(())
}

/// `recursors`: a list of addresses (a single string is a one-item list).
pub fn set_recursors(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(string).collect::<Result<_, _>>()?,
        other => return Err(format!("expected an array of strings, got {}", kind(other))),
    };
    c.dns.recursors = Some(list);
    Ok(())
}

/// `dns_config.a_record_limit`.
pub fn set_a_record_limit(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.a_record_limit = Some(integer(v)?);
    Ok(())
}

/// `dns_config.enable_additional_node_meta_txt`.
pub fn set_node_meta_txt(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.enable_additional_node_meta_txt = Some(boolean(v)?);
    Ok(())
}

/// `dns_config.enable_truncate`.
pub fn set_enable_truncate(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.enable_truncate = Some(boolean(v)?);
    Ok(())
}

/// `dns_config.node_ttl`.
pub fn set_node_ttl(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.node_ttl = Some(duration(v)?);
    Ok(())
}

/// `dns_config.only_passing`.
pub fn set_only_passing(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.only_passing = Some(boolean(v)?);
    Ok(())
}

/// `dns_config.recursor_timeout`.
pub fn set_recursor_timeout(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.recursor_timeout = Some(duration(v)?);
    Ok(())
}

/// `dns_config.service_ttl`: `{"*": "5s", "web": "10s"}`.
pub fn set_service_ttl(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object, got {}", kind(v)));
    };
    for (name, ttl) in map {
        let ttl = duration(ttl).map_err(|e| format!("{name}: {e}"))?;
        c.dns.service_ttl.insert(name.clone(), ttl);
    }
    Ok(())
}

/// `dns_config.udp_answer_limit`.
pub fn set_udp_answer_limit(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    c.dns.udp_answer_limit = Some(integer(v)?);
    Ok(())
}

fn invalid(text: String) -> ConfigError {
    ConfigError::Invalid(text)
}

fn ttl_s(key: &str, text: &str) -> Result<u32, ConfigError> {
    let ms = parse_duration_ms(text).map_err(|e| invalid(format!("{key}: {e}")))?;
    let s = ms / 1000;
    if s > TTL_S_MAX {
        return Err(invalid(format!("{key}: {text:?} is longer than {TTL_S_MAX}s")));
    }
    Ok(s as u32)
}

/// `ip`, `ip:port` or `[v6]:port` → `ip:port` (port 53 by default).
pub fn recursor_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    let trimmed = text.trim();
    if let Ok(addr) = trimmed.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = trimmed.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| invalid(format!("recursors: invalid address {text:?} (want ip or ip:port)")))
}

/// Checks a domain-like name (`alt_domain`): dot-separated labels of at
/// most 63 bytes; lower-cased with a trailing dot.
fn alt_domain(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim_matches('.');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.len() <= 253
        && trimmed.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(invalid(format!("alt_domain \"{text}\" is not a valid DNS name")));
    }
    Ok(format!("{}.", trimmed.to_ascii_lowercase()))
}

fn limit(key: &str, value: Option<i64>, default: u32, min: i64) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if (min..=RECORD_LIMIT_MAX).contains(&n) => Ok(n as u32),
        Some(n) => Err(invalid(format!(
            "dns_config.{key}: invalid value {n} ({min} to {RECORD_LIMIT_MAX})"
        ))),
    }
}

/// Applies Consul's defaults and checks; `domain` is the resolved primary
/// domain (an `alt_domain` equal to it is refused, as Consul does).
pub fn resolve_dns(given: &PartialDns, domain: &str) -> Result<DnsConfig, ConfigError> {
    let defaults = DnsConfig::default();
    let alt_domain = alt_domain(given.alt_domain.as_deref().unwrap_or(""))?;
    if !alt_domain.is_empty() && alt_domain.eq_ignore_ascii_case(domain) {
        return Err(invalid(format!(
            "alt_domain cannot be the same as domain ({alt_domain})"
        )));
    }
    let recursors_given = given.recursors.as_deref().unwrap_or(&[]);
    if recursors_given.len() > RECURSORS_MAX {
        return Err(invalid(format!("recursors: at most {RECURSORS_MAX} are supported")));
    }
    let recursors = recursors_given
        .iter()
        .map(|r| recursor_addr(r).map(|a| a.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if given.service_ttl.len() > SERVICE_TTLS_MAX {
        return Err(invalid(format!(
            "dns_config.service_ttl: at most {SERVICE_TTLS_MAX} entries"
        )));
    }
    let mut service_ttl_s = BTreeMap::new();
    for (name, ttl) in &given.service_ttl {
        let key = format!("dns_config.service_ttl.{name}");
        service_ttl_s.insert(name.to_ascii_lowercase(), ttl_s(&key, ttl)?);
    }
    let node_ttl_s = match &given.node_ttl {
        Some(t) => ttl_s("dns_config.node_ttl", t)?,
        None => defaults.node_ttl_s,
    };
    let recursor_timeout_ms = match &given.recursor_timeout {
        Some(t) => {
            let ms = parse_duration_ms(t).map_err(|e| invalid(format!("dns_config.recursor_timeout: {e}")))?;
            if ms == 0 || ms > RECURSOR_TIMEOUT_MS_MAX {
                return Err(invalid(format!(
                    "dns_config.recursor_timeout: {t:?} must be between 1ms and {}s",
                    RECURSOR_TIMEOUT_MS_MAX / 1000
                )));
            }
            ms
        }
        None => defaults.recursor_timeout_ms,
    };
    Ok(DnsConfig {
        alt_domain,
        only_passing: given.only_passing.unwrap_or(defaults.only_passing),
        node_ttl_s,
        service_ttl_s,
        enable_truncate: given.enable_truncate.unwrap_or(defaults.enable_truncate),
        udp_answer_limit: limit("udp_answer_limit", given.udp_answer_limit, defaults.udp_answer_limit, 1)?,
        a_record_limit: limit("a_record_limit", given.a_record_limit, defaults.a_record_limit, 0)?,
        recursors,
        recursor_timeout_ms,
        enable_additional_node_meta_txt: given
            .enable_additional_node_meta_txt
            .unwrap_or(defaults.enable_additional_node_meta_txt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve_json(value: Value) -> Result<DnsConfig, ConfigError> {
        let mut c = PartialConfig::default();
        let Value::Object(map) = value else {
            unreachable!("test input is an object")
        };
        for (key, v) in &map {
            match key.as_str() {
                "alt_domain" => set_alt_domain(&mut c, v),
                "recursors" => set_recursors(&mut c, v),
                "dns_config" => {
                    let Value::Object(inner) = v else {
                        unreachable!("dns_config is an object")
                    };
                    inner.iter().try_for_each(|(k, v)| match k.as_str() {
                        "only_passing" => set_only_passing(&mut c, v),
                        "node_ttl" => set_node_ttl(&mut c, v),
                        "service_ttl" => set_service_ttl(&mut c, v),
                        "enable_truncate" => set_enable_truncate(&mut c, v),
                        "udp_answer_limit" => set_udp_answer_limit(&mut c, v),
                        "a_record_limit" => set_a_record_limit(&mut c, v),
                        "recursor_timeout" => set_recursor_timeout(&mut c, v),
                        "enable_additional_node_meta_txt" => set_node_meta_txt(&mut c, v),
                        other => Err(format!("unexpected key {other}")),
                    })
                }
                other => Err(format!("unexpected key {other}")),
            }
            .map_err(ConfigError::Invalid)?;
        }
        resolve_dns(&c.dns, "consul.")
    }

    #[test]
    fn defaults_are_consuls() {
        assert_eq!(resolve_json(json!({})).unwrap(), DnsConfig::default());
    }

    #[test]
    fn every_key_is_read() {
        let d = resolve_json(json!({
            "alt_domain": "Alt.Example",
            "recursors": ["10.0.0.53", "127.0.0.2:5353", "[::1]:53"],
            "dns_config": {
                "only_passing": true,
                "node_ttl": "30s",
                "service_ttl": {"*": "5s", "Web": "10s"},
                "enable_truncate": true,
                "udp_answer_limit": 5,
                "a_record_limit": 2,
                "recursor_timeout": "500ms",
                "enable_additional_node_meta_txt": false
            }
        }))
        .unwrap();
        assert_eq!(d.alt_domain, "alt.example.");
        assert_eq!(d.recursors, vec!["10.0.0.53:53", "127.0.0.2:5353", "[::1]:53"]);
        assert!(d.only_passing && d.enable_truncate && !d.enable_additional_node_meta_txt);
        assert_eq!(d.node_ttl_s, 30);
        assert_eq!(
            d.service_ttl_s,
            BTreeMap::from([("*".to_string(), 5), ("web".to_string(), 10)])
        );
        assert_eq!(
            (d.udp_answer_limit, d.a_record_limit, d.recursor_timeout_ms),
            (5, 2, 500)
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let cases = [
            (
                json!({"dns_config": {"udp_answer_limit": 0}}),
                "udp_answer_limit: invalid value 0",
            ),
            (
                json!({"dns_config": {"a_record_limit": -1}}),
                "a_record_limit: invalid value -1",
            ),
            (
                json!({"dns_config": {"node_ttl": "soon"}}),
                "dns_config.node_ttl: time: invalid duration",
            ),
            (
                json!({"dns_config": {"service_ttl": {"web": "x"}}}),
                "dns_config.service_ttl.web",
            ),
            (json!({"dns_config": {"recursor_timeout": "0s"}}), "must be between"),
            (json!({"recursors": ["not an ip"]}), "recursors: invalid address"),
            (json!({"alt_domain": "a..b"}), "not a valid DNS name"),
            (json!({"alt_domain": "consul"}), "cannot be the same as domain"),
            (json!({"dns_config": {"only_passing": "yes"}}), "expected a boolean"),
            (json!({"recursors": 53}), "expected an array of strings"),
        ];
        for (input, want) in cases {
            let e = resolve_json(input.clone()).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
        let many: Vec<String> = (0..=RECURSORS_MAX).map(|i| format!("127.0.0.{}", i + 1)).collect();
        let e = resolve_json(json!({ "recursors": many })).unwrap_err().to_string();
        assert!(e.contains("at most"), "{e}");
    }

    #[test]
    fn later_sources_override_and_ttls_merge_by_key() {
        let mut a = PartialDns::default();
        a.service_ttl.insert("*".into(), "1s".into());
        a.recursors = Some(vec!["10.0.0.1".into()]);
        let mut b = PartialDns::default();
        b.service_ttl.insert("web".into(), "2s".into());
        b.only_passing = Some(true);
        a.merge(b);
        assert_eq!(a.service_ttl.len(), 2);
        assert_eq!(a.recursors.as_deref(), Some(&["10.0.0.1".to_string()][..]));
        assert_eq!(a.only_passing, Some(true));
    }
}
