//! Reverse lookups: `d.c.b.a.in-addr.arpa.` / `…ip6.arpa.` names to IPs
//! (pure), and a per-core reverse index from addresses to nodes (first)
//! and service instances, rebuilt lazily only when the node or service
//! table changed since it was built.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proconsul_shared::State;

use crate::dns::wire::QName;

/// Addresses kept in the reverse index; later ones are left out.
pub const PTR_ENTRIES_MAX: usize = 2_000_000;

/// What an address points back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtrTarget {
    /// A node with that address (`<node>.node.<dc>.<domain>.`).
    Node(String),
    /// A service instance with that service address
    /// (`<service>.service.<dc>.<domain>.`).
    Service(String),
}

/// The reverse index of one core.
#[derive(Debug, Default)]
pub struct PtrIndex {
    version: Option<(u64, u64)>,
    by_ip: HashMap<IpAddr, PtrTarget>,
}

impl PtrIndex {
    /// What `ip` points to in `state` (rebuilding the index if the node or
    /// service table moved on).
    pub fn lookup(&mut self, state: &State, ip: IpAddr) -> Option<&PtrTarget> {
        let version = (state.nodes.table_index(), state.catalog.services_table_index());
        if self.version != Some(version) {
            self.rebuild(state);
            self.version = Some(version);
        }
        self.by_ip.get(&ip)
    }

    fn rebuild(&mut self, state: &State) {
        self.by_ip.clear();
        for node in state.nodes.iter() {
            if self.by_ip.len() >= PTR_ENTRIES_MAX {
                return;
            }
            if let Ok(ip) = node.address.parse::<IpAddr>() {
                self.by_ip
                    .entry(ip)
                    .or_insert_with(|| PtrTarget::Node(node.node.clone()));
            }
        }
        for inst in state.catalog.services() {
            if self.by_ip.len() >= PTR_ENTRIES_MAX {
                return;
            }
            if let Ok(ip) = inst.address.parse::<IpAddr>() {
                self.by_ip
                    .entry(ip)
                    .or_insert_with(|| PtrTarget::Service(inst.service.clone()));
            }
        }
    }
}

/// The IP a reverse name asks about, or `None` when `qname` is not a
/// complete `in-addr.arpa` / `ip6.arpa` name.
pub fn reverse_ip(qname: &QName) -> Option<IpAddr> {
    let n = qname.label_count();
    if n < 2 || qname.label(n - 1) != b"arpa" {
        return None;
    }
    match qname.label(n - 2) {
        b"in-addr" if n == 6 => {
            let mut octets = [0u8; 4];
            for (i, octet) in octets.iter_mut().enumerate() {
                let label = std::str::from_utf8(qname.label(3 - i)).ok()?;
                if label.len() > 1 && label.starts_with('0') {
                    return None;
                }
                *octet = label.parse().ok()?;
            }
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        b"ip6" if n == 34 => {
            let mut bytes = [0u8; 16];
            for i in 0..32 {
                let label = qname.label(31 - i);
                if label.len() != 1 {
                    return None;
                }
                let nibble = (label[0] as char).to_digit(16)? as u8;
                bytes[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::test_support::register_service;
    use crate::dns::wire::parse_query;
    use crate::replica::fixtures::register_node;

    fn qname(name: &str) -> QName {
        let mut p = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 12, 0, 1]);
        parse_query(&p).expect("a valid query").qname
    }

    #[test]
    fn parses_reverse_names() {
        assert_eq!(
            reverse_ip(&qname("11.0.0.10.in-addr.arpa.")),
            Some("10.0.0.11".parse().unwrap())
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.IP6.ARPA.";
        assert_eq!(reverse_ip(&qname(v6)), Some("2001:db8::1".parse().unwrap()));
        for bad in [
            "0.10.in-addr.arpa.",
            "300.0.0.10.in-addr.arpa.",
            "01.0.0.10.in-addr.arpa.",
            "x.0.0.10.in-addr.arpa.",
            "example.com.",
            "1.2.ip6.arpa.",
        ] {
            assert_eq!(reverse_ip(&qname(bad)), None, "{bad}");
        }
    }

    #[test]
    fn nodes_win_over_services_and_the_index_follows_changes() {
        let mut state = State::default();
        register_node(&mut state, 1, "Node-A", "10.0.0.11", &[]);
        register_service(&mut state, 2, "Node-A", "db-1", "db", &[], "10.0.0.11", 5432);
        register_service(&mut state, 3, "Node-A", "web-1", "web", &[], "10.0.0.99", 80);
        let mut index = PtrIndex::default();
        let a: IpAddr = "10.0.0.11".parse().unwrap();
        let svc: IpAddr = "10.0.0.99".parse().unwrap();
        assert_eq!(index.lookup(&state, a), Some(&PtrTarget::Node("Node-A".into())));
        assert_eq!(index.lookup(&state, svc), Some(&PtrTarget::Service("web".into())));
        assert_eq!(index.lookup(&state, "10.9.9.9".parse().unwrap()), None);
        register_node(&mut state, 4, "late", "10.9.9.9", &[]);
        assert_eq!(
            index.lookup(&state, "10.9.9.9".parse().unwrap()),
            Some(&PtrTarget::Node("late".into()))
        );
    }
}
