//! Joining a cluster: `retry_join` (and the flags `-retry-join`, `-join`,
//! its alias since Consul 1.15) and `retry_interval`, as given
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
}

impl PartialCluster {
    /// Applies `later` on top of `self`.
    pub fn merge(&mut self, later: PartialCluster) {
        self.retry_join.extend(later.retry_join);
        if later.retry_interval.is_some() {
            self.retry_interval = later.retry_interval;
        }
    }
}

/// The resolved join settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Gossip addresses (`ip`, `ip:port`, `host[:port]`; port 8301).
    pub retry_join: Vec<String>,
    pub retry_interval_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            retry_join: Vec::new(),
            retry_interval_ms: RETRY_INTERVAL_MS_DEFAULT,
        }
    }
}

/// `retry_join` / `start_join`: a list of strings (a single string is a
/// one-item list).
pub fn set_retry_join(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("expected a list of strings, got an item {other}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("expected a list of strings, got {other}")),
    };
    c.cluster.retry_join.extend(list);
    Ok(())
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
    let invalid = |m: String| ConfigError::Invalid(m);
    if given.retry_join.len() > RETRY_JOIN_MAX {
        return Err(invalid(format!(
            "retry_join: at most {RETRY_JOIN_MAX} addresses are supported"
        )));
    }
    let mut retry_join = Vec::new();
    for addr in &given.retry_join {
        let addr = addr.trim();
        if addr.is_empty() {
            return Err(invalid("retry_join: an address is empty".into()));
        }
        if addr.contains("provider=") {
            return Err(invalid(format!(
                "retry_join: cloud auto-join ({addr:?}) is not supported; give addresses"
            )));
        }
        if !retry_join.iter().any(|a: &String| a == addr) {
            retry_join.push(addr.to_string());
        }
    }
    let retry_interval_ms = match &given.retry_interval {
        Some(t) => {
            let ms = parse_duration_ms(t).map_err(|e| invalid(format!("retry_interval: {e}")))?;
            if ms < RETRY_INTERVAL_MS_MIN {
                return Err(invalid(format!(
                    "retry_interval: {t:?} is shorter than {RETRY_INTERVAL_MS_MIN}ms"
                )));
            }
            ms
        }
        None => RETRY_INTERVAL_MS_DEFAULT,
    };
    Ok(ClusterConfig {
        retry_join,
        retry_interval_ms,
    })
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
}
