//! Joining a cluster: `retry_join` (and the flags `-retry-join`, `-join`,
//! its alias since Consul 1.15) and `retry_interval`; the WAN pool's
//! `retry_join_wan` (`-retry-join-wan`, `-join-wan`) and
//! `retry_interval_wan`; the hidden `-dev-fault-injection` flag. As given
//! ([`PartialCluster`]) and resolved ([`ClusterConfig`]). Pure.

use serde_json::Value;

use super::duration::parse_duration_ms;
use super::error::ConfigError;
use super::partial::PartialConfig;

/// Most join addresses accepted.
pub const RETRY_JOIN_MAX: usize = 64;
/// Consul's default pause between join attempts.
pub const RETRY_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Shortest pause accepted.
pub const RETRY_INTERVAL_MS_MIN: u64 = 10;

/// Join settings from one source; `None` = not set here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialCluster {
    /// Appended across sources (as Consul merges lists).
    pub retry_join: Vec<String>,
    /// Go duration.
    pub retry_interval: Option<String>,
    /// WAN pool join addresses, appended across sources.
    pub retry_join_wan: Vec<String>,
    /// Go duration.
    pub retry_interval_wan: Option<String>,
    /// Only the `-dev-fault-injection` flag sets this (config files cannot).
    pub dev_fault_injection: Option<bool>,
}

impl PartialCluster {
    /// Applies `later` on top of `self`.
    pub fn merge(&mut self, later: PartialCluster) {
        self.retry_join.extend(later.retry_join);
        if later.retry_interval.is_some() {
            self.retry_interval = later.retry_interval;
        }
        self.retry_join_wan.extend(later.retry_join_wan);
        if later.retry_interval_wan.is_some() {
            self.retry_interval_wan = later.retry_interval_wan;
        }
        if later.dev_fault_injection.is_some() {
            self.dev_fault_injection = later.dev_fault_injection;
        }
    }
}

/// The resolved join settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Gossip addresses (`ip`, `ip:port`, `host[:port]`; port 8301).
    pub retry_join: Vec<String>,
    pub retry_interval_ms: u64,
    /// Servers of other datacenters to join in the WAN pool (port 8302).
    pub retry_join_wan: Vec<String>,
    pub retry_interval_wan_ms: u64,
    /// SIGUSR1 isolates the agent, SIGUSR2 heals it (partition tests).
    pub dev_fault_injection: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            retry_join: Vec::new(),
            retry_interval_ms: RETRY_INTERVAL_MS_DEFAULT,
            retry_join_wan: Vec::new(),
            retry_interval_wan_ms: RETRY_INTERVAL_MS_DEFAULT,
            dev_fault_injection: false,
        }
    }
}

/// Text of the error a config file setting `dev_fault_injection` gets.
pub const FAULT_INJECTION_FILE_REFUSED: &str =
    "is refused in config files: fault injection is only enabled by a command-line flag";

/// `retry_join` / `start_join`: a list of strings (a single string is a
/// one-item list).
pub fn set_retry_join(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    let list = string_list(v)?;
    c.cluster.retry_join.extend(list);
    Ok(())
}

/// `retry_join_wan` / `start_join_wan`, like [`set_retry_join`].
pub fn set_retry_join_wan(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    let list = string_list(v)?;
    c.cluster.retry_join_wan.extend(list);
    Ok(())
}

/// `retry_interval_wan`.
pub fn set_retry_interval_wan(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => {
            c.cluster.retry_interval_wan = Some(s.clone());
            Ok(())
        }
        other => Err(format!("expected a duration string, got {other}")),
    }
}

/// `dev_fault_injection` in a file: always an error.
pub fn refuse_fault_injection(_: &mut PartialConfig, _: &Value) -> Result<(), String> {
    Err(FAULT_INJECTION_FILE_REFUSED.to_string())
}

fn string_list(v: &Value) -> Result<Vec<String>, String> {
    Ok(match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("expected a list of strings, got an item {other}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("expected a list of strings, got {other}")),
    })
}

/// `retry_interval`.
pub fn set_retry_interval(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => {
            c.cluster.retry_interval = Some(s.clone());
            Ok(())
        }
        other => Err(format!("expected a duration string, got {other}")),
    }
}

/// Checks and resolves the merged settings.
pub fn resolve(given: &PartialCluster) -> Result<ClusterConfig, ConfigError> {
    Ok(ClusterConfig {
        retry_join: join_list("retry_join", &given.retry_join)?,
        retry_interval_ms: interval("retry_interval", given.retry_interval.as_deref())?,
        retry_join_wan: join_list("retry_join_wan", &given.retry_join_wan)?,
        retry_interval_wan_ms: interval("retry_interval_wan", given.retry_interval_wan.as_deref())?,
        dev_fault_injection: given.dev_fault_injection.unwrap_or(false),
    })
}

/// Trimmed, de-duplicated join addresses; at most [`RETRY_JOIN_MAX`].
fn join_list(name: &str, given: &[String]) -> Result<Vec<String>, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(m);
    if given.len() > RETRY_JOIN_MAX {
        return Err(invalid(format!(
            "{name}: at most {RETRY_JOIN_MAX} addresses are supported"
        )));
    }
    let mut list = Vec::new();
    for addr in given {
        let addr = addr.trim();
        if addr.is_empty() {
            return Err(invalid(format!("{name}: an address is empty")));
        }
        if addr.contains("provider=") {
            return Err(invalid(format!(
                "{name}: cloud auto-join ({addr:?}) is not supported; give addresses"
            )));
        }
        if !list.iter().any(|a: &String| a == addr) {
            list.push(addr.to_string());
        }
    }
    Ok(list)
}

/// A join retry pause (Go duration), at least [`RETRY_INTERVAL_MS_MIN`].
fn interval(name: &str, given: Option<&str>) -> Result<u64, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(m);
    let Some(text) = given else {
        return Ok(RETRY_INTERVAL_MS_DEFAULT);
    };
    let ms = parse_duration_ms(text).map_err(|e| invalid(format!("{name}: {e}")))?;
    if ms < RETRY_INTERVAL_MS_MIN {
        return Err(invalid(format!(
            "{name}: {text:?} is shorter than {RETRY_INTERVAL_MS_MIN}ms"
        )));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_lists_append_across_sources_and_deduplicate() {
        let mut a = PartialConfig::default();
        set_retry_join(&mut a, &json!(["127.0.0.2", "127.0.0.3:8301"])).unwrap();
        let mut b = PartialConfig::default();
        set_retry_join(&mut b, &json!("127.0.0.2")).unwrap();
        set_retry_interval(&mut b, &json!("200ms")).unwrap();
        a.cluster.merge(b.cluster);
        let c = resolve(&a.cluster).unwrap();
        assert_eq!(c.retry_join, vec!["127.0.0.2", "127.0.0.3:8301"]);
        assert_eq!(c.retry_interval_ms, 200);
        assert_eq!(resolve(&PartialCluster::default()).unwrap(), ClusterConfig::default());
    }

    #[test]
    fn bad_values_are_errors() {
        let mut c = PartialConfig::default();
        assert!(set_retry_join(&mut c, &json!(7)).is_err());
        assert!(set_retry_join(&mut c, &json!([1])).is_err());
        assert!(set_retry_interval(&mut c, &json!(5)).is_err());
        let cloud = PartialCluster {
            retry_join: vec!["provider=aws tag_key=x".into()],
            ..Default::default()
        };
        assert!(resolve(&cloud).unwrap_err().to_string().contains("auto-join"));
        let many = PartialCluster {
            retry_join: (0..=RETRY_JOIN_MAX).map(|i| format!("10.0.0.{i}")).collect(),
            ..Default::default()
        };
        assert!(resolve(&many).is_err());
        let fast = PartialCluster {
            retry_interval: Some("1ms".into()),
            ..Default::default()
        };
        assert!(resolve(&fast).is_err());
        let garbage = PartialCluster {
            retry_interval: Some("soon".into()),
            ..Default::default()
        };
        assert!(resolve(&garbage).unwrap_err().to_string().contains("retry_interval"));
    }

    #[test]
    fn wan_joins_resolve_like_lan_joins() {
        let mut a = PartialConfig::default();
        set_retry_join_wan(&mut a, &json!(["127.0.0.5", "127.0.0.5", "127.0.0.6:8302"])).unwrap();
        set_retry_interval_wan(&mut a, &json!("250ms")).unwrap();
        let c = resolve(&a.cluster).unwrap();
        assert_eq!(c.retry_join_wan, vec!["127.0.0.5", "127.0.0.6:8302"]);
        assert_eq!(c.retry_interval_wan_ms, 250);
        assert!(c.retry_join.is_empty());
        assert!(set_retry_join_wan(&mut a, &json!(1)).is_err());
        let many = PartialCluster {
            retry_join_wan: (0..=RETRY_JOIN_MAX).map(|i| format!("10.0.1.{i}")).collect(),
            ..Default::default()
        };
        assert!(resolve(&many).unwrap_err().to_string().contains("retry_join_wan"));
        let fast = PartialCluster {
            retry_interval_wan: Some("1ms".into()),
            ..Default::default()
        };
        assert!(resolve(&fast).unwrap_err().to_string().contains("retry_interval_wan"));
    }

    #[test]
    fn fault_injection_is_off_unless_the_flag_sets_it_and_refused_in_files() {
        assert!(!resolve(&PartialCluster::default()).unwrap().dev_fault_injection);
        let flagged = PartialCluster {
            dev_fault_injection: Some(true),
            ..Default::default()
        };
        assert!(resolve(&flagged).unwrap().dev_fault_injection);
        let mut c = PartialConfig::default();
        assert_eq!(
            refuse_fault_injection(&mut c, &json!(true)).unwrap_err(),
            FAULT_INJECTION_FILE_REFUSED
        );
    }
}
