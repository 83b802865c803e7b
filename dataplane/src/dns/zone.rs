//! The served zone as the answer builder needs it, derived once per agent
//! description (not per query).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use proconsul_shared::agent_info::AgentInfo;

use crate::dns::name::{Domain, Locality};

/// SOA timers (Consul's `dns_config.soa` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaTimers {
    /// Refresh, seconds.
    pub refresh_s: u32,
    /// Retry, seconds.
    pub retry_s: u32,
    /// Expire, seconds.
    pub expire_s: u32,
    /// SOA TTL and negative-caching TTL, seconds.
    pub min_ttl_s: u32,
}

impl Default for SoaTimers {
    fn default() -> Self {
        SoaTimers {
            refresh_s: 3600,
            retry_s: 600,
            expire_s: 86400,
            min_ttl_s: 0,
        }
    }
}

/// What the DNS answer builder knows about the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The served domain.
    pub domain: Domain,
    /// Lower-cased local datacenter.
    pub datacenter: String,
    /// This agent's node name, lower-cased.
    pub node_name: String,
    /// Whether this agent is a server (it then names itself in NS answers).
    pub server: bool,
    /// Fallback glue address when the agent's node is not in the catalog.
    pub advertise_addr: String,
    /// TTL of node records (`dns_config.node_ttl`, default 0).
    pub node_ttl_s: u32,
    /// SOA timers.
    pub soa: SoaTimers,
    /// `dns_config.enable_additional_node_meta_txt` (default true).
    pub node_meta_txt: bool,
    /// `alt_domain`, answered like `domain`.
    pub alt_domain: Option<Domain>,
    /// `dns_config.only_passing`: drop warning instances too.
    pub only_passing: bool,
    /// `dns_config.service_ttl`, lower-cased keys (`*`, `name`, `prefix*`).
    pub service_ttl_s: BTreeMap<String, u32>,
    /// `dns_config.enable_truncate`: set TC on cut UDP answers.
    pub enable_truncate: bool,
    /// Answers in a UDP response without EDNS: `min(8, udp_answer_limit)`.
    pub udp_answers_max: usize,
    /// Most A/AAAA records per answer (`usize::MAX` = no limit).
    pub a_records_max: usize,
    /// Upstream resolvers, in order (unparsable entries are skipped).
    pub recursors: Vec<SocketAddr>,
    /// Time to wait for one recursor, milliseconds.
    pub recursor_timeout_ms: u64,
}

/// Consul's ceiling on answers in a UDP response without EDNS.
pub const UDP_ANSWER_LIMIT_CEILING: usize = 8;

impl Zone {
    /// The zone of `agent` with Consul's default DNS settings.
    pub fn from_agent(agent: &AgentInfo) -> Zone {
        let dns = &agent.dns;
        Zone {
            domain: Domain::new(&agent.domain),
            datacenter: agent.datacenter.to_ascii_lowercase(),
            node_name: agent.node_name.to_ascii_lowercase(),
            server: agent.server,
            advertise_addr: agent.advertise_addr.clone(),
            node_ttl_s: dns.node_ttl_s,
            soa: SoaTimers::default(),
            node_meta_txt: dns.enable_additional_node_meta_txt,
            alt_domain: (!dns.alt_domain.trim_matches('.').is_empty()).then(|| Domain::new(&dns.alt_domain)),
            only_passing: dns.only_passing,
            service_ttl_s: dns
                .service_ttl_s
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
            enable_truncate: dns.enable_truncate,
            udp_answers_max: (dns.udp_answer_limit as usize).clamp(1, UDP_ANSWER_LIMIT_CEILING),
            a_records_max: match dns.a_record_limit {
                0 => usize::MAX,
                n => n as usize,
            },
            recursors: dns.recursors.iter().filter_map(|r| parse_recursor(r)).collect(),
            recursor_timeout_ms: dns.recursor_timeout_ms,
        }
    }

    /// TTL of a service's records: the exact name, then the longest
    /// `prefix*` key, then `*`, else 0 (`service` is lower-case).
    pub fn service_ttl_s(&self, service: &str) -> u32 {
        if self.service_ttl_s.is_empty() {
            return 0;
        }
        if let Some(ttl) = self.service_ttl_s.get(service) {
            return *ttl;
        }
        let mut best: Option<(usize, u32)> = None;
        for (key, ttl) in &self.service_ttl_s {
            let Some(prefix) = key.strip_suffix('*') else {
                continue;
            };
            if service.starts_with(prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), *ttl));
            }
        }
        best.map_or(0, |(_, ttl)| ttl)
    }

    /// Whether `locality` points at this datacenter (and nothing we do not
    /// serve: peers, namespaces, non-default partitions, sameness groups).
    pub fn is_local(&self, locality: &Locality<'_>) -> bool {
        locality.datacenter.is_none_or(|dc| dc == self.datacenter)
            && locality.peer.is_none()
            && locality.namespace.is_none_or(|ns| ns == "default")
            && locality.partition.is_none_or(|ap| ap == "default")
            && locality.sameness_group.is_none()
    }
}

/// `ip`, `ip:port` or `[v6]:port`; port 53 by default.
pub fn parse_recursor(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip: std::net::IpAddr = text.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::fixtures::test_agent;

    #[test]
    fn locality_must_be_this_datacenter() {
        let mut agent = test_agent();
        agent.datacenter = "DC1".into();
        let zone = Zone::from_agent(&agent);
        assert!(zone.is_local(&Locality::default()));
        assert!(zone.is_local(&Locality {
            datacenter: Some("dc1"),
            partition: Some("default"),
            ..Locality::default()
        }));
        assert!(!zone.is_local(&Locality {
            datacenter: Some("dc2"),
            ..Locality::default()
        }));
        assert!(!zone.is_local(&Locality {
            peer: Some("p"),
            ..Locality::default()
        }));
    }

    #[test]
    fn service_ttl_prefers_exact_then_longest_prefix_then_star() {
        let mut agent = test_agent();
        agent.dns.service_ttl_s = [("*", 5), ("Web", 10), ("db*", 20), ("db-p*", 30)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let zone = Zone::from_agent(&agent);
        assert_eq!(zone.service_ttl_s("web"), 10);
        assert_eq!(zone.service_ttl_s("db-main"), 20);
        assert_eq!(zone.service_ttl_s("db-primary"), 30);
        assert_eq!(zone.service_ttl_s("other"), 5);
        agent.dns.service_ttl_s.clear();
        assert_eq!(Zone::from_agent(&agent).service_ttl_s("web"), 0);
    }

    #[test]
    fn limits_and_recursors_come_from_the_dns_config() {
        let mut agent = test_agent();
        agent.dns.udp_answer_limit = 50;
        agent.dns.a_record_limit = 0;
        agent.dns.recursors = vec!["127.0.0.9".into(), "127.0.0.10:5353".into(), "nonsense".into()];
        agent.dns.alt_domain = "Example.".into();
        let zone = Zone::from_agent(&agent);
        assert_eq!(zone.udp_answers_max, UDP_ANSWER_LIMIT_CEILING);
        assert_eq!(zone.a_records_max, usize::MAX);
        assert_eq!(
            zone.recursors,
            vec![
                "127.0.0.9:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.10:5353".parse().unwrap()
            ]
        );
        assert_eq!(zone.alt_domain.as_ref().map(|d| d.dotted()), Some("example"));
        agent.dns.udp_answer_limit = 2;
        agent.dns.a_record_limit = 1;
        let zone = Zone::from_agent(&agent);
        assert_eq!((zone.udp_answers_max, zone.a_records_max), (2, 1));
    }
}
