//! One configuration source (a file, or the command line) before defaults:
//! every setting optional, values still as given. Sources merge in order,
//! later ones overriding earlier ones. Pure.

use std::collections::BTreeMap;

use super::cluster::PartialCluster;
use super::dns::PartialDns;

/// The `ports` block as given; -1 turns a listener off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialPorts {
    pub http: Option<i64>,
    pub https: Option<i64>,
    pub dns: Option<i64>,
    pub grpc: Option<i64>,
    pub grpc_tls: Option<i64>,
    pub server: Option<i64>,
    pub serf_lan: Option<i64>,
    pub serf_wan: Option<i64>,
}

/// Settings from one source. `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialConfig {
    /// Only the `-dev` flag sets this.
    pub dev: Option<bool>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<i64>,
    pub data_dir: Option<String>,
    pub node_name: Option<String>,
    pub node_id: Option<String>,
    pub datacenter: Option<String>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    /// Space-separated list of IPs for HTTP and DNS.
    pub client_addr: Option<String>,
    pub ports: PartialPorts,
    pub log_level: Option<String>,
    pub pid_file: Option<String>,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    /// `check_update_interval` (Go duration).
    pub check_update_interval: Option<String>,
    /// Proconsul extension `anti_entropy_interval` (Go duration): period of
    /// the full sync of local services and checks to the catalog.
    pub anti_entropy_interval: Option<String>,
    /// Proconsul extension `check_reap_interval` (Go duration): how often
    /// services critical past `DeregisterCriticalServiceAfter` are looked for.
    pub check_reap_interval: Option<String>,
    /// `service`/`services` blocks, as written (appended across sources).
    pub service_definitions: Vec<serde_json::Value>,
    /// `check`/`checks` blocks, as written (appended across sources).
    pub check_definitions: Vec<serde_json::Value>,
    pub domain: Option<String>,
    /// Merged key by key across sources.
    pub node_meta: BTreeMap<String, String>,
    /// Go duration strings.
    pub default_query_time: Option<String>,
    pub max_query_time: Option<String>,
    pub http_max_conns_per_client: Option<i64>,
    /// Proconsul extension: `limits.wake_hold_ms_max` (ms, 0 = off).
    pub wake_hold_ms_max: Option<i64>,
    /// Proconsul extension: data-plane serving threads (0 = one per core).
    pub dataplane_threads: Option<i64>,
    /// `dns_config`, `recursors`, `alt_domain`.
    pub dns: PartialDns,
    /// `retry_join`, `retry_interval`.
    pub cluster: PartialCluster,
}

fn over<T>(earlier: &mut Option<T>, later: Option<T>) {
    if later.is_some() {
        *earlier = later;
    }
}

impl PartialPorts {
    fn merge(&mut self, later: PartialPorts) {
        over(&mut self.http, later.http);
        over(&mut self.https, later.https);
        over(&mut self.dns, later.dns);
        over(&mut self.grpc, later.grpc);
        over(&mut self.grpc_tls, later.grpc_tls);
        over(&mut self.server, later.server);
        over(&mut self.serf_lan, later.serf_lan);
        over(&mut self.serf_wan, later.serf_wan);
    }
}

impl PartialConfig {
    /// Applies `later` on top of `self`: scalars it sets replace ours, map
    /// entries it sets replace ours key by key.
    pub fn merge(&mut self, later: PartialConfig) {
        over(&mut self.dev, later.dev);
        over(&mut self.server, later.server);
        over(&mut self.bootstrap, later.bootstrap);
        over(&mut self.bootstrap_expect, later.bootstrap_expect);
        over(&mut self.data_dir, later.data_dir);
        over(&mut self.node_name, later.node_name);
        over(&mut self.node_id, later.node_id);
        over(&mut self.datacenter, later.datacenter);
        over(&mut self.bind_addr, later.bind_addr);
        over(&mut self.advertise_addr, later.advertise_addr);
        over(&mut self.client_addr, later.client_addr);
        self.ports.merge(later.ports);
        over(&mut self.log_level, later.log_level);
        over(&mut self.pid_file, later.pid_file);
        over(&mut self.enable_script_checks, later.enable_script_checks);
        over(&mut self.enable_local_script_checks, later.enable_local_script_checks);
        over(&mut self.check_update_interval, later.check_update_interval);
        over(&mut self.anti_entropy_interval, later.anti_entropy_interval);
        over(&mut self.check_reap_interval, later.check_reap_interval);
        self.service_definitions.extend(later.service_definitions);
        self.check_definitions.extend(later.check_definitions);
        over(&mut self.domain, later.domain);
        self.node_meta.extend(later.node_meta);
        over(&mut self.default_query_time, later.default_query_time);
        over(&mut self.max_query_time, later.max_query_time);
        over(&mut self.http_max_conns_per_client, later.http_max_conns_per_client);
        over(&mut self.wake_hold_ms_max, later.wake_hold_ms_max);
        over(&mut self.dataplane_threads, later.dataplane_threads);
        self.dns.merge(later.dns);
        self.cluster.merge(later.cluster);
    }

    /// Merges sources in order (earliest first).
    pub fn merge_all(sources: impl IntoIterator<Item = PartialConfig>) -> PartialConfig {
        let mut merged = PartialConfig::default();
        for s in sources {
            merged.merge(s);
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_scalars_win_and_unset_ones_do_not_erase() {
        let a = PartialConfig {
            datacenter: Some("east".into()),
            node_name: Some("a".into()),
            ports: PartialPorts {
                http: Some(1),
                dns: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let b = PartialConfig {
            node_name: Some("b".into()),
            ports: PartialPorts {
                dns: Some(3),
                ..Default::default()
            },
            ..Default::default()
        };
        let m = PartialConfig::merge_all([a, b]);
        assert_eq!(m.datacenter.as_deref(), Some("east"));
        assert_eq!(m.node_name.as_deref(), Some("b"));
        assert_eq!(m.ports.http, Some(1));
        assert_eq!(m.ports.dns, Some(3));
    }

    #[test]
    fn node_meta_merges_key_by_key() {
        let mut a = PartialConfig::default();
        a.node_meta.insert("rack".into(), "r1".into());
        a.node_meta.insert("zone".into(), "z1".into());
        let mut b = PartialConfig::default();
        b.node_meta.insert("zone".into(), "z2".into());
        let m = PartialConfig::merge_all([a, b]);
        assert_eq!(m.node_meta.get("rack").map(String::as_str), Some("r1"));
        assert_eq!(m.node_meta.get("zone").map(String::as_str), Some("z2"));
    }

    #[test]
    fn explicit_false_overrides_true() {
        let a = PartialConfig {
            server: Some(true),
            ..Default::default()
        };
        let b = PartialConfig {
            server: Some(false),
            ..Default::default()
        };
        assert_eq!(PartialConfig::merge_all([a, b]).server, Some(false));
    }
}
