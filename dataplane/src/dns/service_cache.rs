//! Per-core derived view of services for DNS: for each service asked
//! about, its non-critical instances with everything an answer needs
//! (health, lower-cased tags, parsed addresses, pre-encoded node-meta
//! TXT, the `.addr` hex label) computed once per version of that service
//! (the catalog's per-name index moves on every instance, check or node
//! change), never per query. Steady-state answers therefore allocate
//! nothing and cost the same whatever the catalog size.

use std::collections::HashMap;
use std::net::IpAddr;

use rustc_hash::FxBuildHasher;

use proconsul_shared::state::{CheckStatus, ServiceInstance};
use proconsul_shared::State;

use crate::dns::answer::rfc1464_text;
use crate::dns::wire::{encode_labels, NAME_BYTES_MAX};

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
    /// The SRV target's own labels in wire form, no root (the node name's
    /// labels, or the `.addr` hex label of an own IP), ready to copy in
    /// front of `node.<dc>.<domain>` / `addr.<dc>.<domain>`; `None` for a
    /// hostname target or a name that cannot be encoded.
    pub target_head: Option<Box<[u8]>>,
}

impl CachedInstance {
    /// Whether the instance carries `tag` (lower-case), as Consul compares.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// Most addresses an entry keeps in place for [`CachedService::plain_v4`].
pub const PLAIN_V4_ADDRESSES_MAX: usize = 8;

/// The A answer of the most common service, kept inside the cache entry:
/// every instance passing, each with its own IPv4 address (the node's or
/// the service's), at most [`PLAIN_V4_ADDRESSES_MAX`] of them. An A
/// lookup without a tag then reads only the table entry it probed,
/// never the instances (one cache miss less per query).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlainV4 {
    addresses: [[u8; 4]; PLAIN_V4_ADDRESSES_MAX],
    len: u8,
}

impl PlainV4 {
    /// The addresses, in instance order; `None` when the service is not
    /// of that simple kind (answer through the instances).
    pub fn addresses(&self) -> Option<&[[u8; 4]]> {
        (self.len > 0).then(|| &self.addresses[..self.len as usize])
    }

    /// The form of `instances` when they qualify.
    fn of(instances: &[CachedInstance]) -> PlainV4 {
        let mut plain = PlainV4::default();
        if instances.is_empty() || instances.len() > PLAIN_V4_ADDRESSES_MAX {
            return plain;
        }
        for (i, inst) in instances.iter().enumerate() {
            let v4 = match (&inst.address, inst.status) {
                (
                    InstanceAddress::NodeIp(IpAddr::V4(v4)) | InstanceAddress::OwnIp(IpAddr::V4(v4)),
                    CheckStatus::Passing,
                ) => v4.octets(),
                _ => return PlainV4::default(),
            };
            if plain.addresses[..i].contains(&v4) {
                // Repeated addresses are answered once: the general path.
                return PlainV4::default();
            }
            plain.addresses[i] = v4;
        }
        plain.len = instances.len() as u8;
        plain
    }
}

/// One service's instances at one version.
#[derive(Debug, Clone, Default)]
pub struct CachedService {
    /// The A answer in place, for the simplest services.
    pub plain_v4: PlainV4,
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
///
/// One FxHash table from name to service: a query costs a hash of the
/// (short) name and a probe whose entry holds both; SipHash's
/// flooding resistance is not needed because names that are not services
/// are never inserted (a flood of random names cannot grow the table).
#[derive(Debug, Default)]
pub struct ServiceCache {
    services: HashMap<ServiceKey, CachedService, FxBuildHasher>,
    builds: u64,
}

impl ServiceCache {
    /// The service `name` (lower-case) at the version in `state`, or
    /// `None` when it has no instance at all.
    ///
    /// An entry already checked against this state version (same raft
    /// index) is used without touching the catalog: steady-state answers
    /// cost one probe of the table (whose entry holds the name and the
    /// service, so one cache miss) whatever the catalog size; the second
    /// probe that returns it hits the same, now cached, entry. Otherwise
    /// the service's catalog index says whether the entry is still good.
    pub fn get(&mut self, state: &State, name: &str) -> Option<&CachedService> {
        let state_index = state.index();
        let key = name.as_bytes();
        let seen = self
            .services
            .get(key)
            .map(|e| (e.checked_at == state_index, e.instances_gone));
        if let Some((true, gone)) = seen {
            return if gone { None } else { self.services.get(key) };
        }
        let Some(instances) = state.catalog.instances(name) else {
            // Remember the absence only for names already cached (a flood
            // of random names must not fill the cache).
            if let Some(entry) = self.services.get_mut(key) {
                entry.checked_at = state_index;
                entry.instances_gone = true;
            }
            return None;
        };
        let index = state.catalog.service_index(name);
        match self.services.get_mut(key) {
            Some(entry) if entry.index == index && !entry.instances_gone => {
                entry.checked_at = state_index;
            }
            _ => {
                if seen.is_none() && self.services.len() >= CACHED_SERVICES_MAX {
                    self.services.clear();
                }
                let mut built = build(state, index, instances.values().map(|a| a.as_ref()));
                built.checked_at = state_index;
                self.builds += 1;
                self.services.insert(ServiceKey::new(name), built);
            }
        }
        self.services.get(key)
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

/// Longest service name kept inside the table entry itself.
const INLINE_NAME_BYTES_MAX: usize = 30;

/// A cached service's name: short names (nearly all) live inside the
/// hash table's entry, so a lookup compares them without following a
/// pointer to another cache line.
#[derive(Debug, Clone)]
enum ServiceKey {
    /// Up to [`INLINE_NAME_BYTES_MAX`] bytes, in place.
    Inline {
        len: u8,
        bytes: [u8; INLINE_NAME_BYTES_MAX],
    },
    /// A longer name.
    Heap(Box<[u8]>),
}

impl ServiceKey {
    fn new(name: &str) -> ServiceKey {
        let name = name.as_bytes();
        if name.len() <= INLINE_NAME_BYTES_MAX {
            let mut bytes = [0u8; INLINE_NAME_BYTES_MAX];
            bytes[..name.len()].copy_from_slice(name);
            ServiceKey::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            ServiceKey::Heap(name.into())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            ServiceKey::Inline { len, bytes } => &bytes[..*len as usize],
            ServiceKey::Heap(bytes) => bytes,
        }
    }
}

impl std::borrow::Borrow<[u8]> for ServiceKey {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl PartialEq for ServiceKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for ServiceKey {}

impl std::hash::Hash for ServiceKey {
    /// As the bytes hash, so that lookups by `&[u8]` find the key.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

/// Builds the cached form of `instances` (critical ones left out) at
/// catalog `index`: also used for instance sets that are not one service
/// (prepared queries, `.connect`, `.ingress`).
pub fn build<'a>(state: &State, index: u64, instances: impl Iterator<Item = &'a ServiceInstance>) -> CachedService {
    build_judged(state, index, instances, |inst| state.catalog.instance_status(inst))
}

/// As [`build`], with each instance's health decided by `status_of`
/// instead of every check of the catalog (a prepared query's
/// `IgnoreCheckIDs` leaves some checks out).
pub fn build_judged<'a>(
    state: &State,
    index: u64,
    instances: impl Iterator<Item = &'a ServiceInstance>,
    status_of: impl Fn(&ServiceInstance) -> CheckStatus,
) -> CachedService {
    let mut out = CachedService {
        index,
        ..CachedService::default()
    };
    let mut text = Vec::new();
    for inst in instances.take(INSTANCES_PER_SERVICE_MAX) {
        let status = status_of(inst);
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
        let target_head = match &address {
            InstanceAddress::OwnIp(_) => wire_labels(addr_hex.as_bytes()),
            InstanceAddress::OwnHost(_) => None,
            _ => wire_labels(inst.node.as_bytes()),
        };
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
            target_head,
        });
    }
    out.plain_v4 = PlainV4::of(&out.instances);
    out
}

/// `name`'s labels in wire form (no root), when it has any and each fits.
fn wire_labels(name: &[u8]) -> Option<Box<[u8]>> {
    let mut buf = [0u8; NAME_BYTES_MAX];
    match encode_labels(&[name], &mut buf) {
        Some(len) if len > 0 => Some(buf[..len].into()),
        _ => None,
    }
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
        assert_eq!(web.instances[0].target_head.as_deref(), Some(&b"\x02n1"[..]));
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

    #[test]
    fn plain_v4_only_for_few_distinct_passing_ipv4_instances() {
        let mut state = State::default();
        for i in 1..=9 {
            register_node(&mut state, i, &format!("n{i}"), &format!("10.0.0.{i}"), &[]);
        }
        register_node(&mut state, 10, "six", "2001:db8::1", &[]);
        register_service(&mut state, 20, "n1", "a-1", "a", &[], "", 80);
        register_service(&mut state, 21, "n2", "a-1", "a", &[], "192.0.2.7", 80);
        register_service(&mut state, 22, "n1", "dup-1", "dup", &[], "", 80);
        register_service(&mut state, 23, "n2", "dup-1", "dup", &[], "10.0.0.1", 80);
        register_service(&mut state, 24, "six", "v6-1", "v6", &[], "", 80);
        register_service(&mut state, 25, "n1", "host-1", "host", &[], "db.example.com", 80);
        register_service(&mut state, 26, "n1", "warn-1", "warn", &[], "", 80);
        set_check(&mut state, 27, "n1", "warn-1", "c", "warning");
        for i in 1..=9 {
            register_service(&mut state, 30 + i, &format!("n{i}"), "many-1", "many", &[], "", 80);
        }
        let mut cache = ServiceCache::default();
        let a = cache.get(&state, "a").expect("a").plain_v4;
        assert_eq!(
            a.addresses(),
            Some(&[[10, 0, 0, 1], [192, 0, 2, 7]][..]),
            "node and own IPs"
        );
        for name in ["dup", "v6", "host", "warn", "many"] {
            let entry = cache.get(&state, name).expect("registered");
            assert!(!entry.instances.is_empty(), "{name}");
            assert_eq!(entry.plain_v4.addresses(), None, "{name}");
        }
        set_check(&mut state, 50, "n1", "a-1", "c", "warning");
        assert_eq!(
            cache.get(&state, "a").expect("a").plain_v4.addresses(),
            None,
            "rebuilt: not all passing"
        );
    }

    #[test]
    fn srv_target_heads_are_wire_labels_or_absent() {
        assert_eq!(wire_labels(b"a.b").as_deref(), Some(&b"\x01a\x01b"[..]));
        assert_eq!(wire_labels(b"c000020a").as_deref(), Some(&b"\x08c000020a"[..]));
        assert_eq!(wire_labels(&[b'x'; 64]), None, "a label over 63 bytes");
        assert_eq!(wire_labels(b""), None);
        assert_eq!(wire_labels(b".."), None, "no label at all");
    }

    #[test]
    fn short_and_long_names_are_found_by_their_bytes() {
        let mut state = State::default();
        register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
        let long = "a-service-name-longer-than-thirty-bytes";
        assert!(long.len() > INLINE_NAME_BYTES_MAX);
        let edge = "x".repeat(INLINE_NAME_BYTES_MAX);
        register_service(&mut state, 2, "n1", "l-1", long, &[], "", 1);
        register_service(&mut state, 3, "n1", "e-1", &edge, &[], "", 2);
        register_service(&mut state, 4, "n1", "s-1", "s", &[], "", 3);
        let mut cache = ServiceCache::default();
        for _ in 0..2 {
            assert_eq!(cache.get(&state, long).expect("long").instances[0].port, 1);
            assert_eq!(cache.get(&state, &edge).expect("edge").instances[0].port, 2);
            assert_eq!(cache.get(&state, "s").expect("short").instances[0].port, 3);
        }
        assert_eq!(cache.builds(), 3, "each built once, then found");
        assert!(matches!(ServiceKey::new(long), ServiceKey::Heap(_)));
        assert!(matches!(ServiceKey::new(&edge), ServiceKey::Inline { .. }));
        assert_eq!(ServiceKey::new(long), ServiceKey::new(long));
        assert_ne!(ServiceKey::new("s"), ServiceKey::new("s2"));
    }

    #[test]
    fn a_full_cache_starts_over_and_keeps_answering() {
        let mut state = State::default();
        register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
        register_service(&mut state, 2, "n1", "a-1", "a", &[], "", 80);
        register_service(&mut state, 3, "n1", "b-1", "b", &[], "", 81);
        let mut cache = ServiceCache::default();
        // Fill the cache with placeholders up to its limit.
        for i in 0..CACHED_SERVICES_MAX - 1 {
            cache
                .services
                .insert(ServiceKey::new(&format!("filler-{i}")), CachedService::default());
        }
        assert_eq!(cache.get(&state, "a").expect("a exists").instances[0].port, 80);
        assert_eq!(cache.len(), CACHED_SERVICES_MAX, "at the limit");
        let b = cache.get(&state, "b").expect("b exists");
        assert_eq!(b.instances[0].port, 81);
        assert_eq!(cache.len(), 1, "the full cache started over with just b");
        assert_eq!(cache.get(&state, "a").expect("a again").instances[0].port, 80);
        assert_eq!(cache.len(), 2);
    }
}
