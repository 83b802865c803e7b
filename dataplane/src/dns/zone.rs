//! The served zone as the answer builder needs it, derived once per agent
//! description (not per query).

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
}

impl Zone {
    /// The zone of `agent` with Consul's default DNS settings.
    pub fn from_agent(agent: &AgentInfo) -> Zone {
        Zone {
            domain: Domain::new(&agent.domain),
            datacenter: agent.datacenter.to_ascii_lowercase(),
            node_name: agent.node_name.to_ascii_lowercase(),
            server: agent.server,
            advertise_addr: agent.advertise_addr.clone(),
            node_ttl_s: 0,
            soa: SoaTimers::default(),
            node_meta_txt: true,
        }
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
}
