//! Per-core derived view of services for DNS: for each service asked
//! about, its non-critical instances with everything an answer needs
//! (health, lower-cased tags, parsed addresses, pre-encoded node-meta
//! TXT, the `.addr` hex label) computed once per version of that service
//! (the catalog's per-name index moves on every instance, check or node
//! change), never per query. Steady-state answers therefore allocate
//! nothing and cost the same whatever the catalog size.

use std::collections::HashMap;
use std::net::IpAddr;

use proconsul_shared::state::{CheckStatus, ServiceInstance};
use proconsul_shared::State;

use crate::dns::answer::rfc1464_text;

/// Services kept per cache; the cache starts over when it is full.
pub const CACHED_SERVICES_MAX: usize = 65_536;
/// Instances of one service considered for DNS; more are ignored (DNS
/// cannot list more than ~1000 anyway; Consul points to HTTP).
pub const INSTANCES_PER_SERVICE_MAX: usize = 100_000;

/// Where an instance's address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAddress {
    /// No service address: the node's IP.
    NodeIp(IpAddr),
    /// No service address: the node's address is a hostname.
    NodeHost(String),
    /// The service registered its own IP.
    OwnIp(IpAddr),
    /// The service registered a hostname.
    OwnHost(String),
    /// Neither the service nor its node has an address.
    Missing,
}

impl InstanceAddress {
    /// The IP, when the address is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            InstanceAddress::NodeIp(ip) | InstanceAddress::OwnIp(ip) => Some(*ip),
            _ => None,
        }
    }

    /// The hostname, when the address is one.
    pub fn host(&self) -> Option<&str> {
        match self {
            InstanceAddress::NodeHost(h) | InstanceAddress::OwnHost(h) => Some(h),
            _ => None,
        }
    }
}

/// One non-critical instance, ready to answer with.
#[derive(Debug, Clone)]
pub struct CachedInstance {
    /// Node name as registered.
    pub node: String,
    /// Lower-cased tags.
    pub tags: Vec<String>,
    /// Passing or warning.
    pub status: CheckStatus,
    /// Service port.
    pub port: u16,
    /// SRV weight for this instance's health.
    pub weight: u16,
    /// The address answers use.
    pub address: InstanceAddress,
    /// The node's IP (SRV additional records for node targets).
    pub node_ip: Option<IpAddr>,
    /// Node meta as TXT texts (RFC 1464).
    pub node_meta_txt: Vec<Vec<u8>>,
    /// Hex label of an own IP (`c000020a`), for `<hex>.addr` targets.
    pub addr_hex: String,
}

impl CachedInstance {
    /// Whether the instance carries `tag` (lower-case), as Consul compares.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// One service's instances at one version.
#[derive(Debug, Clone, Default)]
pub struct CachedService {
    /// The catalog's index for the service when this was built.
    pub index: u64,
    /// Non-critical instances, catalog order.
    pub instances: Vec<CachedInstance>,
    /// Positions of the passing instances (for `only_passing`).
    pub passing: Vec<u32>,
    /// Positions of every instance (`0..len`), to shuffle from.
    pub all: Vec<u32>,
    /// The state index this entry was last found current at.
    checked_at: u64,
    /// At `checked_at` the service had no instance.
    instances_gone: bool,
}

/// The cache of one core (or one server loop).
#[derive(Debug, Default)]
pub struct ServiceCache {
    services: HashMap<String, CachedService>,
    builds: u64,
}

impl ServiceCache {
    /// The service `name` (lower-case) at the version in `state`, or
    /// `None` when it has no instance at all.
    ///
    /// An entry already checked against this state version (same raft
    /// index) is used without touching the catalog: steady-state answers
    /// cost one hash lookup whatever the catalog size. Otherwise the
    /// service's catalog index says whether the entry is still good.
    pub fn get(&mut self, state: &State, name: &str) -> Option<&CachedService> {
        let state_index = state.index();
        let seen = self
            .services
            .get(name)
            .map(|e| (e.checked_at == state_index, e.instances_gone));
        if let Some((true, gone)) = seen {
            return if gone { None } else { self.services.get(name) };
        }
        let Some(instances) = state.catalog.instances(name) else {
            // Remember the absence only for names already cached (a flood
            // of random names must not fill the cache).
            if let Some(entry) = self.services.get_mut(name) {
                entry.checked_at = state_index;
                entry.instances_gone = true;
            }
            return None;
        };
        let index = state.catalog.service_index(name);
        match self.services.get_mut(name) {
            Some(entry) if entry.index == index && !entry.instances_gone => {
                entry.checked_at = state_index;
            }
            _ => {
                if self.services.len() >= CACHED_SERVICES_MAX && !self.services.contains_key(name) {
                    self.services.clear();
                }
                let mut built = build(state, index, instances.values().map(|a| a.as_ref()));
                built.checked_at = state_index;
                self.builds += 1;
                self.services.insert(name.to_string(), built);
            }
        }
        self.services.get(name)
    }

    /// How many service versions were built (tests: proves reuse).
    pub fn builds(&self) -> u64 {
        self.builds
    }

    /// Services cached now.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

/// Builds the cached form of `instances` (critical ones left out) at
/// catalog `index`: also used for instance sets that are not one service
/// (prepared queries, `.connect`, `.ingress`).
pub fn build<'a>(state: &State, index: u64, instances: impl Iterator<Item = &'a ServiceInstance>) -> CachedService {
    let mut out = CachedService {
        index,
        ..CachedService::default()
    };
    let mut text = Vec::new();
    for inst in instances.take(INSTANCES_PER_SERVICE_MAX) {
        let status = state.catalog.instance_status(inst);
        if status == CheckStatus::Critical {
            continue;
        }
        let node = state.nodes.get(&inst.node);
        let node_address = node.map_or("", |n| n.address.as_str());
        let node_ip = node_address.parse::<IpAddr>().ok();
        let address = if inst.address.is_empty() || inst.address == node_address {
            match node_ip {
                Some(ip) => InstanceAddress::NodeIp(ip),
                None if !node_address.is_empty() => InstanceAddress::NodeHost(node_address.to_string()),
                None => InstanceAddress::Missing,
            }
        } else {
            match inst.address.parse::<IpAddr>() {
                Ok(ip) => InstanceAddress::OwnIp(ip),
                Err(_) => InstanceAddress::OwnHost(inst.address.clone()),
            }
        };
        let addr_hex = match &address {
            InstanceAddress::OwnIp(ip) => hex_label(*ip),
            _ => String::new(),
        };
        let node_meta_txt = node.map_or_else(Vec::new, |n| {
            n.meta
                .iter()
                .map(|(k, v)| {
                    rfc1464_text(k, v, &mut text);
                    text.clone()
                })
                .collect()
        });
        let weight = if status == CheckStatus::Warning {
            inst.weights.warning
        } else {
            inst.weights.passing
        };
        let position = out.instances.len() as u32;
        if status == CheckStatus::Passing {
            out.passing.push(position);
        }
        out.all.push(position);
        out.instances.push(CachedInstance {
            node: inst.node.clone(),
            tags: inst.tags.iter().map(|t| t.to_ascii_lowercase()).collect(),
            status,
            port: inst.port,
            weight: weight.min(u16::MAX as u32) as u16,
            address,
            node_ip,
            node_meta_txt,
            addr_hex,
        });
    }
    out
}

/// The `.addr` label of an IP: 8 hex digits for v4, 32 for v6.
pub fn hex_label(ip: IpAddr) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(32);
    let bytes: &[u8] = match &ip {
        IpAddr::V4(v4) => &v4.octets(),
        IpAddr::V6(v6) => &v6.octets(),
    };
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::test_support::{register_service, set_check};
    use crate::replica::fixtures::register_node;

    #[test]
    fn hex_labels() {
        assert_eq!(hex_label("192.0.2.10".parse().unwrap()), "c000020a");
        assert_eq!(
            hex_label("2001:db8::1".parse().unwrap()),
            "20010db8000000000000000000000001"
        );
    }

    #[test]
    fn built_once_per_version_and_rebuilt_on_change() {
        let mut state = State::default();
        register_node(&mut state, 1, "n1", "10.0.0.1", &[("k", "v")]);
        register_service(&mut state, 2, "n1", "web-1", "Web", &["Primary"], "", 80);
        let mut cache = ServiceCache::default();
        let web = cache.get(&state, "web").expect("web exists");
        assert_eq!(web.instances.len(), 1);
        assert_eq!(web.instances[0].tags, vec!["primary".to_string()]);
        assert_eq!(web.instances[0].node_meta_txt, vec![b"k=v".to_vec()]);
        assert_eq!(
            web.instances[0].address,
            InstanceAddress::NodeIp("10.0.0.1".parse().unwrap())
        );
        cache.get(&state, "web");
        assert_eq!(cache.builds(), 1, "same version: reused");
        register_node(&mut state, 3, "other", "10.0.0.9", &[]);
        cache.get(&state, "web");
        assert_eq!(cache.builds(), 1, "another change: revalidated, not rebuilt");
        set_check(&mut state, 4, "n1", "web-1", "chk", "critical");
        assert!(cache.get(&state, "web").expect("still registered").instances.is_empty());
        assert_eq!(cache.builds(), 2);
        assert!(cache.get(&state, "nope").is_none());
        assert_eq!(cache.len(), 1, "absent names are not cached");
        state.apply_command(
            5,
            &proconsul_shared::Command::CatalogDeregister {
                node: "n1".into(),
                service_id: Some("web-1".into()),
                check_id: None,
            },
        );
        assert!(cache.get(&state, "web").is_none(), "deregistered");
        assert!(cache.get(&state, "web").is_none(), "still gone at the same version");
    }
}
