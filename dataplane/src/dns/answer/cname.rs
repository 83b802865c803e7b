//! CNAME chasing for hostname addresses (DNS.md §2): a node or service
//! whose address is a hostname is answered with a CNAME to it plus what
//! resolving that name yields. A target under our domain (or the alt
//! domain) is resolved here, from the state, at most [`CNAME_HOPS_MAX`]
//! hops and never twice the same name; a target outside is handed back
//! to the caller ([`Chase::External`]); with recursors configured the
//! answer is then [`super::Outcome::Chase`] and the edges ask them
//! ([`upstream`]). Pure: the state and zone in, records out.

use std::net::IpAddr;

use proconsul_shared::state::CheckStatus;

use crate::dns::name::{classify, NameClass, QueryForm};
use crate::dns::wire::{self, rtype, Name, QName, ResponseWriter};

use super::Ctx;

pub mod upstream;

/// Internal resolutions one chase follows (Consul's recursion limit).
pub const CNAME_HOPS_MAX: usize = 3;
/// Addresses written for one service target.
pub const CHASE_ADDRESSES_MAX: usize = 8;

/// Where a chase ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chase {
    /// Resolved internally (addresses written), or nothing more to write
    /// (unknown name, loop, hop limit).
    Done,
    /// The last CNAME points outside our domains: its target, for the
    /// recursors.
    External(String),
}

/// The question name for `host` (dotted, trailing dot optional), parsed
/// by the same code as a query's name; `None` when it is not a valid
/// DNS name.
pub fn qname_of(host: &str) -> Option<QName> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > wire::NAME_BYTES_MAX - 2 {
        return None;
    }
    let mut packet = Vec::with_capacity(wire::HEADER_BYTES + host.len() + 6);
    packet.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in host.split('.') {
        if label.is_empty() || label.len() > wire::LABEL_BYTES_MAX {
            return None;
        }
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    wire::parse_query(&packet).ok().map(|q| q.qname)
}

/// Whether an address record of `ip` answers `qtype` (SRV and ANY take both).
fn wanted(qtype: u16, ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => qtype != rtype::AAAA,
        IpAddr::V6(_) => qtype != rtype::A,
    }
}

/// One hop's result.
enum Hop {
    /// Addresses written: done.
    Resolved,
    /// Another hostname to follow (a CNAME to it was written).
    Next(String),
    /// Nothing to write.
    Stop,
}

impl Ctx<'_> {
    /// Resolves `target` (the target of a CNAME already written) into the
    /// current section, records owned by the names they answer for.
    pub(super) fn chase_cname(&self, w: &mut ResponseWriter<'_>, qtype: u16, target: &str) -> Chase {
        let mut seen: Vec<String> = Vec::with_capacity(CNAME_HOPS_MAX);
        let mut current = target.strip_suffix('.').unwrap_or(target).to_ascii_lowercase();
        for _ in 0..CNAME_HOPS_MAX {
            let Some(qname) = qname_of(&current) else {
                return Chase::Done;
            };
            let class = match (classify(&qname, &self.zone.domain, false), &self.zone.alt_domain) {
                (NameClass::Outside, Some(alt)) => classify(&qname, alt, false),
                (class, _) => class,
            };
            let form = match class {
                NameClass::Outside => {
                    if !self.zone.recursors.is_empty() {
                        self.chased_outside.set(true);
                    }
                    return Chase::External(current);
                }
                NameClass::Inside(form) => form,
            };
            let hop = match form {
                QueryForm::Node { name, locality } if self.zone.is_local(&locality) => {
                    self.chase_node(w, qtype, &current, name)
                }
                QueryForm::Service { service, tag, locality } if self.zone.is_local(&locality) => {
                    self.chase_service(w, qtype, &current, service, tag)
                }
                _ => Hop::Stop,
            };
            seen.push(current);
            match hop {
                Hop::Resolved | Hop::Stop => return Chase::Done,
                Hop::Next(next) => {
                    let next = next.strip_suffix('.').unwrap_or(&next).to_ascii_lowercase();
                    if seen.contains(&next) {
                        return Chase::Done;
                    }
                    current = next;
                }
            }
        }
        Chase::Done
    }

    fn chase_node(&self, w: &mut ResponseWriter<'_>, qtype: u16, owner: &str, name: &str) -> Hop {
        let Some(node) = self.state.nodes.get(name) else {
            return Hop::Stop;
        };
        let ttl = self.zone.node_ttl_s;
        let owner_pieces: [&[u8]; 1] = [owner.as_bytes()];
        match node.address.parse::<IpAddr>() {
            Ok(ip) => {
                if wanted(qtype, &ip) {
                    write_ip(w, Name::Pieces(&owner_pieces), ttl, ip);
                }
                Hop::Resolved
            }
            Err(_) if !node.address.is_empty() => {
                w.cname(
                    Name::Pieces(&owner_pieces),
                    ttl,
                    Name::Pieces(&[node.address.as_bytes()]),
                );
                Hop::Next(node.address.clone())
            }
            Err(_) => Hop::Stop,
        }
    }

    fn chase_service(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        owner: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Hop {
        let Some(instances) = self.state.catalog.instances(service) else {
            return Hop::Stop;
        };
        let ttl = self.zone.service_ttl_s(&service.to_ascii_lowercase());
        let owner_pieces: [&[u8]; 1] = [owner.as_bytes()];
        let mut written: Vec<IpAddr> = Vec::new();
        let mut host: Option<String> = None;
        for inst in instances.values() {
            let status = self.state.catalog.instance_status(inst);
            let healthy = match status {
                CheckStatus::Critical => false,
                CheckStatus::Passing => true,
                _ => !self.zone.only_passing,
            };
            if !healthy || tag.is_some_and(|t| !inst.tags.iter().any(|x| x.eq_ignore_ascii_case(t))) {
                continue;
            }
            let address = if inst.address.is_empty() {
                self.state.nodes.get(&inst.node).map_or("", |n| n.address.as_str())
            } else {
                inst.address.as_str()
            };
            match address.parse::<IpAddr>() {
                Ok(ip) if wanted(qtype, &ip) && !written.contains(&ip) => {
                    if written.len() >= CHASE_ADDRESSES_MAX || !write_ip(w, Name::Pieces(&owner_pieces), ttl, ip) {
                        break;
                    }
                    written.push(ip);
                }
                Ok(_) => {}
                Err(_) if !address.is_empty() && host.is_none() => host = Some(address.to_string()),
                Err(_) => {}
            }
        }
        match host {
            _ if !written.is_empty() => Hop::Resolved,
            Some(host) => {
                w.cname(Name::Pieces(&owner_pieces), ttl, Name::Pieces(&[host.as_bytes()]));
                Hop::Next(host)
            }
            None => Hop::Stop,
        }
    }
}

fn write_ip(w: &mut ResponseWriter<'_>, owner: Name<'_>, ttl: u32, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => w.a(owner, ttl, v4),
        IpAddr::V6(v6) => w.aaaa(owner, ttl, v6),
    }
}

#[cfg(test)]
mod tests;
