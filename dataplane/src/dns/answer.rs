//! Builds the response to one query from a state and a zone (pure: no
//! sockets, no clock; the caller passes the time for the SOA serial).
//!
//! Covered here: service lookups ([`service`]), PTR, node lookups (A/AAAA/CNAME, node-meta TXT), `.addr`
//! lookups, SOA and NS for the domain, NXDOMAIN/NODATA with the SOA in
//! authority, REFUSED outside the domain, NOTIMP for zone transfers, and
//! Consul's size rules (3 answers and 512 bytes for UDP without EDNS, the
//! requester's size with EDNS, 64 KiB over TCP), TC only with
//! `enable_truncate`, `ra` only with recursors. Prepared-query and
//! connect/ingress/virtual lookups answer NXDOMAIN (nothing to serve yet).
//! `.ingress` lookups are answered by `answer/ingress.rs`, and hostname addresses
//! are chased (internally, or through the recursors) by [`cname`].

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proconsul_shared::state::Node;
use proconsul_shared::State;

use crate::dns::answer_cache::CacheableAnswer;
use crate::dns::name::{classify, Domain, Locality, NameClass, QueryForm};
use crate::dns::ptr::{reverse_ip, PtrIndex, PtrTarget};
use crate::dns::rng::Rng;
use crate::dns::service_cache::ServiceCache;
use crate::dns::wire::{
    self, opt_record_bytes, rcode, rtype, Edns, Name, Query, ResponseWriter, Section, Soa, TCP_MESSAGE_BYTES_MAX,
    UDP_PAYLOAD_BYTES_CLASSIC, UDP_PAYLOAD_BYTES_MAX,
};
use crate::dns::zone::Zone;

/// Answers without EDNS over UDP are capped to this many records by
/// default (`min(8, udp_answer_limit)` with Consul's default limit of 3).
pub const UDP_ANSWERS_MAX_CLASSIC: usize = 3;

/// How the query arrived (it decides the size rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A datagram: 512 bytes and 3 answers without EDNS, else the requester's size.
    Udp,
    /// A stream: up to 64 KiB, no answer cap.
    Tcp,
}

/// What to do with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the response written to `out`.
    Send,
    /// Send nothing (unreadable header, or a response packet).
    Drop,
    /// The name is not ours and recursors are configured: forward the
    /// query ([`crate::dns::recursor`]).
    Recurse,
    /// Send the response written to `out`, after resolving the target of
    /// its last CNAME (a hostname outside our domains) with the recursors
    /// and merging their answer ([`cname::upstream`]); on failure, send
    /// it as it is.
    Chase,
}

/// Per-core reusable state for answer building: buffers, the shuffling
/// PRNG and the derived indexes (service cache, reverse index).
#[derive(Default)]
pub struct Scratch {
    text: Vec<u8>,
    services: ServiceCache,
    ptr: PtrIndex,
    rng: Rng,
    order: Vec<u32>,
    written: Vec<u32>,
    /// Offsets of the SRV targets written (parallel to `written`).
    srv_targets: Vec<u16>,
    seen_ips: Vec<IpAddr>,
    /// `.ingress` instance sets ([`ingress`]).
    ingress: ingress::IngressCache,
    /// `.query` answer sets ([`prepared_query`]).
    prepared_queries: prepared_query::PreparedQueryCache,
    /// `.connect` instance sets ([`connect`]).
    connect: connect::ConnectCache,
    /// The query being answered, parsed in place ([`respond`]); boxed so
    /// that taking it out of the scratch moves a pointer, not ~800 bytes.
    query: Option<Box<Query>>,
    /// Set when the last answer may be kept by the
    /// [`AnswerCache`](crate::dns::answer_cache::AnswerCache): it came
    /// whole from a `PlainV4` table entry, or it is an SRV answer with
    /// position-independent records.
    cacheable: Option<CacheableAnswer>,
}

impl Scratch {
    /// Scratch whose shuffles start from `seed` (one seed per core).
    pub fn with_seed(seed: u64) -> Scratch {
        Scratch {
            rng: Rng::new(seed),
            ..Scratch::default()
        }
    }

    /// The service cache (benches and tests look at its build count).
    pub fn services(&self) -> &ServiceCache {
        &self.services
    }

    /// The shuffling PRNG (the answer cache draws from it too).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// What the answer cache may keep of the last [`respond`], if anything.
    pub fn take_cacheable_answer(&mut self) -> Option<CacheableAnswer> {
        self.cacheable.take()
    }
}

/// Writes the response to `packet` into `out`, or says to drop it or
/// forward it to a recursor.
pub fn respond(
    packet: &[u8],
    transport: Transport,
    state: &State,
    zone: &Zone,
    now_unix_s: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Outcome {
    // The query lives in the scratch between packets (allocated once per
    // core); it is taken out while the answer borrows the scratch.
    scratch.cacheable = None;
    let mut q = scratch.query.take().unwrap_or_default();
    let outcome = match wire::parse_query_into(packet, &mut q) {
        Ok(()) => answer(&q, transport, state, zone, now_unix_s, scratch, out),
        Err(wire::Rejection::Drop) => Outcome::Drop,
        Err(wire::Rejection::Reply { header, rcode }) => {
            wire::write_rejection(out, &header, rcode);
            Outcome::Send
        }
    };
    scratch.query = Some(q);
    outcome
}

/// Size limit and answer cap for a query.
pub fn limits(q: &Query, transport: Transport, zone: &Zone) -> (usize, usize) {
    match (transport, &q.edns) {
        (Transport::Tcp, _) => (TCP_MESSAGE_BYTES_MAX, usize::MAX),
        (Transport::Udp, None) => (UDP_PAYLOAD_BYTES_CLASSIC, zone.udp_answers_max),
        (Transport::Udp, Some(e)) => (
            (e.udp_payload as usize).clamp(UDP_PAYLOAD_BYTES_CLASSIC, UDP_PAYLOAD_BYTES_MAX),
            usize::MAX,
        ),
    }
}

/// The reply's OPT record: the requester's UDP size, version 0, no DO.
fn reply_opt(q: &Query) -> Option<Edns> {
    q.edns.map(|e| Edns {
        udp_payload: e.udp_payload,
        version: 0,
        dnssec_ok: false,
        client_subnet: e.client_subnet,
    })
}

/// Builds the response to a parsed query into `out` (or asks to recurse).
pub fn answer(
    q: &Query,
    transport: Transport,
    state: &State,
    zone: &Zone,
    now_unix_s: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Outcome {
    let (size_limit, answers_max) = limits(q, transport, zone);
    let opt = reply_opt(q);
    let opt_bytes = opt.as_ref().map_or(0, opt_record_bytes);
    let srv = q.qtype == rtype::SRV;
    let (class, domain) = match (classify(&q.qname, &zone.domain, srv), &zone.alt_domain) {
        (NameClass::Outside, Some(alt)) => (classify(&q.qname, alt, srv), alt),
        (class, _) => (class, &zone.domain),
    };
    let recursion = !zone.recursors.is_empty();
    let form = match class {
        NameClass::Outside => {
            if let Some(ip) = reverse_ip(&q.qname) {
                let mut w = ResponseWriter::new(out, &q.header, true, size_limit, opt_bytes, answers_max);
                w.question(q);
                let ctx = Ctx {
                    state,
                    zone,
                    domain: &zone.domain,
                    now_unix_s,
                    chased_outside: Cell::new(false),
                };
                if ctx.ptr(&mut w, ip, scratch) {
                    if recursion {
                        w.set_recursion_available();
                    }
                    w.finish(rcode::NOERROR, opt.as_ref());
                    return Outcome::Send;
                }
            }
            if recursion {
                return Outcome::Recurse;
            }
            let mut w = ResponseWriter::new(out, &q.header, false, size_limit, opt_bytes, answers_max);
            w.question(q);
            w.finish(rcode::REFUSED, opt.as_ref());
            return Outcome::Send;
        }
        NameClass::Inside(form) => form,
    };
    let mut w = ResponseWriter::new(out, &q.header, true, size_limit, opt_bytes, answers_max);
    w.question(q);
    if recursion {
        w.set_recursion_available();
    }
    let ctx = Ctx {
        state,
        zone,
        domain,
        now_unix_s,
        chased_outside: Cell::new(false),
    };
    let mut cut = false;
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
            QueryForm::Service { service, tag, locality } if zone.is_local(&locality) => {
                match ctx.service_records(&mut w, qtype, service, tag, scratch) {
                    ServiceAnswer::NoInstances => ctx.nxdomain(&mut w),
                    ServiceAnswer::Written { cut: c } => {
                        cut = c;
                        if w.count(Section::Answer) == 0 {
                            ctx.nodata(&mut w)
                        } else {
                            rcode::NOERROR
                        }
                    }
                }
            }
            QueryForm::Ingress { service, locality } if zone.is_local(&locality) => {
                let (code, c) = ctx.ingress(&mut w, qtype, service, scratch);
                cut = c;
                code
            }
            QueryForm::Connect { service, locality } if zone.is_local(&locality) => {
                let (code, c) = ctx.connect(&mut w, qtype, service, scratch);
                cut = c;
                code
            }
            QueryForm::Virtual { service, locality } if zone.is_local(&locality) => ctx.virtual_ip(&mut w, service),
            QueryForm::PreparedQuery { name, locality } if zone.is_local(&locality) => {
                let (code, c) = ctx.prepared_query(&mut w, qtype, name, scratch);
                cut = c;
                code
            }
            // Prepared queries and connect/ingress/virtual lookups have
            // nothing to serve yet: Consul's answer is NXDOMAIN.
            QueryForm::Service { .. }
            | QueryForm::Connect { .. }
            | QueryForm::Ingress { .. }
            | QueryForm::Virtual { .. }
            | QueryForm::PreparedQuery { .. }
            | QueryForm::Apex
            | QueryForm::Invalid => ctx.nxdomain(&mut w),
        },
    };
    if transport == Transport::Udp && zone.enable_truncate && (cut || w.is_full()) {
        w.set_truncated();
    }
    w.finish(code, opt.as_ref());
    if ctx.chased_outside.get() {
        return Outcome::Chase;
    }
    Outcome::Send
}

/// Writes SERVFAIL for `packet` (all recursors failed), `ra` set.
/// Returns `false` when the packet is not a query to answer.
pub fn write_servfail(packet: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(q) = wire::parse_query(packet) else {
        return false;
    };
    let opt = reply_opt(&q);
    let mut w = ResponseWriter::new(out, &q.header, false, TCP_MESSAGE_BYTES_MAX, 0, 0);
    w.question(&q);
    w.set_recursion_available();
    w.finish(rcode::SERVFAIL, opt.as_ref());
    true
}

struct Ctx<'a> {
    state: &'a State,
    zone: &'a Zone,
    /// The domain the question used (`domain` or `alt_domain`).
    domain: &'a Domain,
    now_unix_s: u32,
    /// A CNAME chase ended at a name outside our domains and recursors are
    /// configured: the answer is [`Outcome::Chase`].
    chased_outside: Cell<bool>,
}

impl Ctx<'_> {
    fn domain(&self) -> &[u8] {
        self.domain.dotted().as_bytes()
    }

    /// A PTR record for `ip` when a node (or else a service instance) has
    /// that address; always in the primary domain.
    fn ptr(&self, w: &mut ResponseWriter<'_>, ip: IpAddr, scratch: &mut Scratch) -> bool {
        let Some(target) = scratch.ptr.lookup(self.state, ip) else {
            return false;
        };
        let domain = self.zone.domain.dotted().as_bytes();
        let dc = self.zone.datacenter.as_bytes();
        let (name, kind): (&str, &[u8]) = match target {
            PtrTarget::Node(n) => (n, b"node"),
            PtrTarget::Service(s) => (s, b"service"),
        };
        let target: [&[u8]; 4] = [name.as_bytes(), kind, dc, domain];
        w.ptr(Name::Question, self.zone.node_ttl_s, Name::Pieces(&target))
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
                // A hostname address: the CNAME, then what it resolves to.
                w.cname(Name::Question, ttl, Name::Pieces(&[node.address.as_bytes()]));
                self.chase_cname(w, qtype, &node.address);
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

pub mod cname;
mod connect;
mod ingress;
mod prepared_query;
mod selection;
mod service;
mod virtual_ip;
use service::ServiceAnswer;

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
