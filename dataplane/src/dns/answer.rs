//! Builds the response to one query from a state and a zone (pure: no
//! sockets, no clock; the caller passes the time for the SOA serial).
//!
//! Covered here: node lookups (A/AAAA/CNAME, node-meta TXT), `.addr`
//! lookups, SOA and NS for the domain, NXDOMAIN/NODATA with the SOA in
//! authority, REFUSED outside the domain, NOTIMP for zone transfers, and
//! Consul's size rules (3 answers and 512 bytes for UDP without EDNS, the
//! requester's size with EDNS, 64 KiB over TCP). Service, prepared-query,
//! connect/ingress/virtual and PTR lookups grow out of [`QueryForm`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proconsul_shared::state::Node;
use proconsul_shared::State;

use crate::dns::name::{classify, Locality, NameClass, QueryForm};
use crate::dns::wire::{
    self, opt_record_bytes, rcode, rtype, Edns, Name, Query, ResponseWriter, Section, Soa, TCP_MESSAGE_BYTES_MAX,
    UDP_PAYLOAD_BYTES_CLASSIC, UDP_PAYLOAD_BYTES_MAX,
};
use crate::dns::zone::Zone;

/// Answers without EDNS over UDP are capped to this many records
/// (`min(8, udp_answer_limit)` with Consul's default limit of 3).
pub const UDP_ANSWERS_MAX_CLASSIC: usize = 3;

/// How the query arrived (it decides the size rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A datagram: 512 bytes and 3 answers without EDNS, else the requester's size.
    Udp,
    /// A stream: up to 64 KiB, no answer cap.
    Tcp,
}

/// Per-core reusable buffers for answer building.
#[derive(Default)]
pub struct Scratch {
    text: Vec<u8>,
}

/// Writes the response to `packet` into `out`. Returns `false` when
/// nothing must be sent (unreadable header, or a response packet).
pub fn respond(
    packet: &[u8],
    transport: Transport,
    state: &State,
    zone: &Zone,
    now_unix_s: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> bool {
    match wire::parse_query(packet) {
        Ok(q) => {
            answer(&q, transport, state, zone, now_unix_s, scratch, out);
            true
        }
        Err(wire::Rejection::Drop) => false,
        Err(wire::Rejection::Reply { header, rcode }) => {
            wire::write_rejection(out, &header, rcode);
            true
        }
    }
}

/// Size limit and answer cap for a query.
pub fn limits(q: &Query, transport: Transport) -> (usize, usize) {
    match (transport, &q.edns) {
        (Transport::Tcp, _) => (TCP_MESSAGE_BYTES_MAX, usize::MAX),
        (Transport::Udp, None) => (UDP_PAYLOAD_BYTES_CLASSIC, UDP_ANSWERS_MAX_CLASSIC),
        (Transport::Udp, Some(e)) => (
            (e.udp_payload as usize).clamp(UDP_PAYLOAD_BYTES_CLASSIC, UDP_PAYLOAD_BYTES_MAX),
            usize::MAX,
        ),
    }
}

/// Builds the response to a parsed query into `out`.
pub fn answer(
    q: &Query,
    transport: Transport,
    state: &State,
    zone: &Zone,
    now_unix_s: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> usize {
    let (size_limit, answers_max) = limits(q, transport);
    // The reply's OPT echoes the requester's UDP size, version 0, no DO.
    let opt = q.edns.map(|e| Edns {
        udp_payload: e.udp_payload,
        version: 0,
        dnssec_ok: false,
        client_subnet: e.client_subnet,
    });
    let opt_bytes = opt.as_ref().map_or(0, opt_record_bytes);
    let class = classify(&q.qname, &zone.domain, q.qtype == rtype::SRV);
    let form = match class {
        NameClass::Outside => {
            let mut w = ResponseWriter::new(out, &q.header, false, size_limit, opt_bytes, answers_max);
            w.question(q);
            return w.finish(rcode::REFUSED, opt.as_ref());
        }
        NameClass::Inside(form) => form,
    };
    let mut w = ResponseWriter::new(out, &q.header, true, size_limit, opt_bytes, answers_max);
    w.question(q);
    let ctx = Ctx {
        state,
        zone,
        now_unix_s,
    };
    let code = match q.qtype {
        rtype::AXFR | rtype::IXFR => rcode::NOTIMP,
        rtype::SOA => {
            ctx.soa(&mut w, Section::Answer);
            w.section(Section::Authority);
            ctx.name_servers(&mut w, Section::Additional);
            rcode::NOERROR
        }
        rtype::NS => {
            ctx.name_servers(&mut w, Section::Additional);
            rcode::NOERROR
        }
        qtype => match form {
            QueryForm::Node { name, locality } => ctx.node(&mut w, qtype, name, &locality, scratch),
            QueryForm::Addr { hex, locality } => ctx.addr(&mut w, hex, &locality),
            // Services, prepared queries and connect/ingress/virtual
            // lookups: the catalog has no services yet, so nothing is
            // healthy and Consul's answer is NXDOMAIN.
            QueryForm::Service { .. }
            | QueryForm::Connect { .. }
            | QueryForm::Ingress { .. }
            | QueryForm::Virtual { .. }
            | QueryForm::PreparedQuery { .. }
            | QueryForm::Apex
            | QueryForm::Invalid => ctx.nxdomain(&mut w),
        },
    };
    w.finish(code, opt.as_ref())
}

struct Ctx<'a> {
    state: &'a State,
    zone: &'a Zone,
    now_unix_s: u32,
}

impl Ctx<'_> {
    fn domain(&self) -> &[u8] {
        self.zone.domain.dotted().as_bytes()
    }

    /// The SOA record of the domain into `section`.
    fn soa(&self, w: &mut ResponseWriter<'_>, section: Section) -> bool {
        w.section(section);
        let domain = self.domain();
        let timers = self.zone.soa;
        w.soa(
            Name::Pieces(&[domain]),
            timers.min_ttl_s,
            &Soa {
                mname: Name::Pieces(&[b"ns", domain]),
                rname: Name::Pieces(&[b"hostmaster", domain]),
                serial: self.now_unix_s,
                refresh: timers.refresh_s,
                retry: timers.retry_s,
                expire: timers.expire_s,
                minimum: timers.min_ttl_s,
            },
        )
    }

    /// NXDOMAIN with the SOA in authority.
    fn nxdomain(&self, w: &mut ResponseWriter<'_>) -> u8 {
        self.soa(w, Section::Authority);
        rcode::NXDOMAIN
    }

    /// NOERROR without data: the SOA in authority (RFC 2308).
    fn nodata(&self, w: &mut ResponseWriter<'_>) -> u8 {
        self.soa(w, Section::Authority);
        rcode::NOERROR
    }

    /// NS records for the domain in the current section (answer for an NS
    /// question, authority for SOA) and their glue in `glue_section`.
    /// The servers are this agent when it is one (the `consul` service's
    /// instances join in with the service catalog).
    fn name_servers(&self, w: &mut ResponseWriter<'_>, glue_section: Section) {
        let Some((node_name, addr)) = self.own_server() else {
            return;
        };
        let domain = self.domain();
        let dc = self.zone.datacenter.as_bytes();
        let target: [&[u8]; 4] = [node_name.as_bytes(), b"node", dc, domain];
        let ttl = self.zone.node_ttl_s;
        if !w.ns(Name::Pieces(&[domain]), ttl, Name::Pieces(&target)) {
            return;
        }
        w.section(glue_section);
        match addr {
            IpAddr::V4(v4) => w.a(Name::Pieces(&target), ttl, v4),
            IpAddr::V6(v6) => w.aaaa(Name::Pieces(&target), ttl, v6),
        };
    }

    fn own_server(&self) -> Option<(&str, IpAddr)> {
        if !self.zone.server || !is_dns_label(&self.zone.node_name) {
            return None;
        }
        let addr = match self.state.nodes.get(&self.zone.node_name) {
            Some(node) => node.address.parse().ok(),
            None => None,
        }
        .or_else(|| self.zone.advertise_addr.parse().ok())?;
        Some((self.zone.node_name.as_str(), addr))
    }

    /// `<node>.node[.<dc>]`.
    fn node(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        name: &str,
        locality: &Locality<'_>,
        scratch: &mut Scratch,
    ) -> u8 {
        if !self.zone.is_local(locality) {
            return self.nxdomain(w);
        }
        let Some(node) = self.state.nodes.get(name) else {
            return self.nxdomain(w);
        };
        let ttl = self.zone.node_ttl_s;
        let wants_any = qtype == rtype::ANY;
        match node.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if wants_any || qtype == rtype::A => {
                w.a(Name::Question, ttl, v4);
            }
            Ok(IpAddr::V6(v6)) if wants_any || qtype == rtype::AAAA => {
                w.aaaa(Name::Question, ttl, v6);
            }
            Err(_) if !node.address.is_empty() && (wants_any || qtype == rtype::A || qtype == rtype::AAAA) => {
                // A hostname address: the CNAME (resolving it needs recursors).
                w.cname(Name::Question, ttl, Name::Pieces(&[node.address.as_bytes()]));
            }
            _ => {}
        }
        let meta_in_answer = wants_any || qtype == rtype::TXT;
        let address_answered = w.count(Section::Answer) > 0;
        if meta_in_answer {
            self.node_meta(w, node, scratch);
        }
        if w.count(Section::Answer) == 0 {
            return self.nodata(w);
        }
        if !meta_in_answer && address_answered && self.zone.node_meta_txt {
            w.section(Section::Additional);
            self.node_meta(w, node, scratch);
        }
        rcode::NOERROR
    }

    /// One TXT record per node-meta entry, owner = the question name.
    fn node_meta(&self, w: &mut ResponseWriter<'_>, node: &Node, scratch: &mut Scratch) {
        let ttl = self.zone.node_ttl_s;
        for (key, value) in &node.meta {
            rfc1464_text(key, value, &mut scratch.text);
            if !w.txt(Name::Question, ttl, &scratch.text) && w.is_full() {
                return;
            }
        }
    }

    /// `<hex>.addr[.<dc>]`: 8 hex digits are an IPv4 address, 32 an IPv6
    /// one; the record is returned whatever the question type (as Consul).
    fn addr(&self, w: &mut ResponseWriter<'_>, hex: &str, locality: &Locality<'_>) -> u8 {
        if !self.zone.is_local(locality) {
            return self.nxdomain(w);
        }
        let ttl = self.zone.node_ttl_s;
        match hex.len() {
            8 => match decode_hex::<4>(hex) {
                Some(b) => w.a(Name::Question, ttl, Ipv4Addr::from(b)),
                None => return self.nxdomain(w),
            },
            32 => match decode_hex::<16>(hex) {
                Some(b) => w.aaaa(Name::Question, ttl, Ipv6Addr::from(b)),
                None => return self.nxdomain(w),
            },
            _ => return self.nxdomain(w),
        };
        rcode::NOERROR
    }
}

fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Whether `name` can be a single DNS label as Consul requires for names
/// it puts in NS answers (letters, digits, hyphens).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Node meta as TXT text (RFC 1464 as Consul encodes it): `key=value` with
/// `` ` `` doubled and `=` backquoted in the key, leading and trailing
/// key spaces backquoted, `` ` `` doubled in the value; keys starting with
/// `rfc1035-` (any case) give the bare value.
pub fn rfc1464_text(key: &str, value: &str, out: &mut Vec<u8>) {
    out.clear();
    let kb = key.as_bytes();
    if kb.len() >= 8 && kb[..8].eq_ignore_ascii_case(b"rfc1035-") {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    let leading = kb.iter().take_while(|b| **b == b' ').count();
    let trailing = if leading == kb.len() {
        0
    } else {
        kb.iter().rev().take_while(|b| **b == b' ').count()
    };
    for _ in 0..leading {
        out.extend_from_slice(b"` ");
    }
    for &b in &kb[leading..kb.len() - trailing] {
        match b {
            b'`' => out.extend_from_slice(b"``"),
            b'=' => out.extend_from_slice(b"`="),
            _ => out.push(b),
        }
    }
    for _ in 0..trailing {
        out.extend_from_slice(b"` ");
    }
    out.push(b'=');
    for &b in value.as_bytes() {
        if b == b'`' {
            out.extend_from_slice(b"``");
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests;
