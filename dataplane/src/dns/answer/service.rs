//! Service lookups (`[tag.]svc.service`, RFC 2782 `_svc._tag`): healthy
//! instances from the per-core [`ServiceCache`](crate::dns::service_cache),
//! shuffled lazily (only the records written are drawn), as A/AAAA/CNAME
//! or SRV records with their targets in ADDITIONAL (DNS.md §2, §4, §5).

use std::net::{IpAddr, Ipv4Addr};

use crate::dns::answer_cache::{CacheableAnswer, PlainAnswer, SrvDraws, SRV_CANDIDATES_MAX};
use crate::dns::rng::{draw, Rng};
use crate::dns::service_cache::{CachedInstance, CachedService, InstanceAddress, PLAIN_V4_ADDRESSES_MAX};
use crate::dns::wire::{encode_labels, rtype, Name, ResponseWriter, Section, Srv, NAME_BYTES_MAX};

use super::{Ctx, Scratch};

/// What a service question produced.
pub(super) enum ServiceAnswer {
    /// Nothing healthy (or unknown): NXDOMAIN.
    NoInstances,
    /// Records written (possibly none of the asked type); `cut` when some
    /// answers were left out for room.
    Written { cut: bool },
}

impl Ctx<'_> {
    /// Answers a service question into `w`.
    pub(super) fn service_records(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        service: &str,
        tag: Option<&str>,
        scratch: &mut Scratch,
    ) -> ServiceAnswer {
        let Scratch {
            services,
            order,
            rng,
            seen_ips,
            written,
            srv_targets,
            cacheable,
            ..
        } = scratch;
        let Some(cached) = services.get(self.state, service) else {
            return ServiceAnswer::NoInstances;
        };
        if qtype == rtype::A && tag.is_none() {
            // Every instance passing (checked again here: the entry's
            // statuses are those `plain_v4` was built from), each with its
            // own IPv4 address: answered from the table entry alone.
            if let Some(addresses) = cached.plain_v4.addresses() {
                if cached.passing.len() == addresses.len() && cached.instances.len() == addresses.len() {
                    let ttl = self.zone.service_ttl_s(service);
                    let cut = self.plain_a_records(w, addresses, ttl, rng);
                    *cacheable = Some(CacheableAnswer::PlainA(PlainAnswer::new(addresses, ttl)));
                    return ServiceAnswer::Written { cut };
                }
            }
        }
        // Every instance when all may answer: the positions are `0..len`,
        // generated rather than read (one memory load less per query).
        let every = !self.zone.only_passing || cached.passing.len() == cached.instances.len();
        debug_assert_eq!(cached.all.len(), cached.instances.len(), "`all` lists every instance");
        order.clear();
        match (tag, every) {
            (None, true) => order.extend(0..cached.instances.len() as u32),
            (None, false) => order.extend_from_slice(&cached.passing),
            (Some(tag), true) => {
                order.extend((0..cached.instances.len() as u32).filter(|&p| cached.instances[p as usize].has_tag(tag)))
            }
            (Some(tag), false) => order.extend(
                cached
                    .passing
                    .iter()
                    .copied()
                    .filter(|&p| cached.instances[p as usize].has_tag(tag)),
            ),
        }
        if order.is_empty() {
            return ServiceAnswer::NoInstances;
        }
        let ttl = self.zone.service_ttl_s(service);
        let cut = if qtype == rtype::SRV {
            // The candidates before the shuffle, when the answer cache may
            // rebuild this answer from its records.
            let mut candidates = [0u32; SRV_CANDIDATES_MAX];
            let rebuildable = order.len() <= SRV_CANDIDATES_MAX
                && order
                    .iter()
                    .all(|&p| self.srv_position_independent(&cached.instances[p as usize]));
            if rebuildable {
                candidates[..order.len()].copy_from_slice(order);
            }
            let candidates = &candidates[..if rebuildable { order.len() } else { 0 }];
            let cut = self.srv_records(w, cached, ttl, order, (written, srv_targets), rng);
            if rebuildable && !cut {
                *cacheable = SrvDraws::new(candidates, written).map(CacheableAnswer::Srv);
            }
            cut
        } else {
            self.address_records(w, cached, qtype, ttl, order, seen_ips, rng)
        };
        ServiceAnswer::Written { cut }
    }

    /// Answers a question with a selection of instances chosen elsewhere
    /// (prepared queries, `.connect`, `.ingress`): `selection` holds
    /// positions in `cached.instances`, already filtered for health and
    /// tags, in any order (they are shuffled here). The records are built
    /// exactly as for a `.service` lookup, with `ttl_s` on each.
    pub(super) fn instance_records(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        cached: &CachedService,
        selection: &[u32],
        ttl_s: u32,
        scratch: &mut Scratch,
    ) -> ServiceAnswer {
        if selection.is_empty() {
            return ServiceAnswer::NoInstances;
        }
        let Scratch {
            order,
            rng,
            seen_ips,
            written,
            srv_targets,
            ..
        } = scratch;
        order.clear();
        order.extend_from_slice(selection);
        let cut = if qtype == rtype::SRV {
            self.srv_records(w, cached, ttl_s, order, (written, srv_targets), rng)
        } else {
            self.address_records(w, cached, qtype, ttl_s, order, seen_ips, rng)
        };
        ServiceAnswer::Written { cut }
    }

    /// The A records of a [`PlainV4`](crate::dns::service_cache::PlainV4)
    /// service: exactly what [`Self::address_records`] writes for it
    /// (the same draws of the same shuffle, so the same order for the
    /// same seed), without reading the instances: the addresses are
    /// distinct IPv4 ones and every instance may answer.
    fn plain_a_records(&self, w: &mut ResponseWriter<'_>, addresses: &[[u8; 4]], ttl: u32, rng: &mut Rng) -> bool {
        let mut order = [0u32; PLAIN_V4_ADDRESSES_MAX];
        assert!(addresses.len() <= order.len(), "a plain service has few addresses");
        let order = &mut order[..addresses.len()];
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i as u32;
        }
        for i in 0..order.len() {
            // Drawn before the limit is checked, as the general path does.
            let address = addresses[draw(order, i, rng) as usize];
            if i >= self.zone.a_records_max {
                break;
            }
            if !w.a(Name::Question, ttl, Ipv4Addr::from(address)) {
                return true;
            }
        }
        w.is_full()
    }

    /// A/AAAA records (one per distinct IP, `a_record_limit` at most);
    /// a CNAME to a hostname address only when no instance has an IP.
    #[allow(clippy::too_many_arguments)]
    fn address_records(
        &self,
        w: &mut ResponseWriter<'_>,
        cached: &CachedService,
        qtype: u16,
        ttl: u32,
        order: &mut [u32],
        seen_ips: &mut Vec<IpAddr>,
        rng: &mut Rng,
    ) -> bool {
        seen_ips.clear();
        let mut host: Option<&str> = None;
        for i in 0..order.len() {
            let inst = &cached.instances[draw(order, i, rng) as usize];
            let ip = match &inst.address {
                InstanceAddress::NodeIp(ip) | InstanceAddress::OwnIp(ip) => *ip,
                InstanceAddress::NodeHost(h) | InstanceAddress::OwnHost(h) => {
                    host.get_or_insert(h.as_str());
                    continue;
                }
                InstanceAddress::Missing => continue,
            };
            let wanted = match ip {
                IpAddr::V4(_) => qtype != rtype::AAAA,
                IpAddr::V6(_) => qtype != rtype::A,
            };
            if !wanted || seen_ips.contains(&ip) {
                continue;
            }
            if seen_ips.len() >= self.zone.a_records_max {
                break;
            }
            let fit = match ip {
                IpAddr::V4(v4) => w.a(Name::Question, ttl, v4),
                IpAddr::V6(v6) => w.aaaa(Name::Question, ttl, v6),
            };
            if !fit {
                return true;
            }
            seen_ips.push(ip);
        }
        if seen_ips.is_empty() {
            if let Some(host) = host {
                if qtype != rtype::SRV {
                    w.cname(Name::Question, ttl, Name::Pieces(&[host.as_bytes()]));
                    self.chase_cname(w, qtype, host);
                }
            }
        }
        w.is_full()
    }

    /// SRV records (one per distinct node/address/port) and their targets'
    /// addresses and node meta in ADDITIONAL; when the additional records
    /// do not fit, answers are dropped until they do (Consul's re-sync).
    /// `written` gets the positions answered and `targets` the offsets of
    /// their SRV targets (0 when unknown), which own the additional records.
    fn srv_records(
        &self,
        w: &mut ResponseWriter<'_>,
        cached: &CachedService,
        ttl: u32,
        order: &mut [u32],
        (written, targets): (&mut Vec<u32>, &mut Vec<u16>),
        rng: &mut Rng,
    ) -> bool {
        written.clear();
        targets.clear();
        let tails = SrvTails::new(self.zone.datacenter.as_bytes(), self.domain());
        let start = w.mark();
        let answers_max = w.answers_max();
        let mut cut = false;
        for i in 0..order.len() {
            let pos = draw(order, i, rng);
            let inst = &cached.instances[pos as usize];
            if written
                .iter()
                .any(|&p| same_target(&cached.instances[p as usize], inst))
            {
                continue;
            }
            if written.len() >= answers_max {
                cut = true;
                break;
            }
            let Some(target_at) = self.srv(w, inst, ttl, &tails) else {
                cut = true;
                break;
            };
            written.push(pos);
            targets.push(target_at);
        }
        debug_assert_eq!(written.len(), targets.len(), "one target offset per answer");
        let mut keep = written.len();
        loop {
            w.section(Section::Additional);
            for (&pos, &target_at) in written[..keep].iter().zip(&targets[..keep]) {
                self.srv_additional(w, &cached.instances[pos as usize], target_at);
            }
            if !w.is_full() || keep <= 1 {
                return cut || keep < written.len();
            }
            // Fewer answers so that every target keeps its address.
            keep -= (keep / 8).max(1);
            w.rewind(start);
            for (&pos, target_at) in written[..keep].iter().zip(targets.iter_mut()) {
                // Fewer bytes than before: each fits again, at the same place.
                *target_at = self.srv(w, &cached.instances[pos as usize], ttl, &tails).unwrap_or(0);
            }
        }
    }

    /// Whether `inst`'s SRV answer is the same bytes wherever it lands in
    /// a response: its target written whole from the cached wire labels
    /// (never compressed), and each of its additional records owned by a
    /// pointer to that target (a service address's node-meta TXT is owned
    /// by the node name, compressed against whatever came before: not).
    fn srv_position_independent(&self, inst: &CachedInstance) -> bool {
        if inst.target_head.is_none() {
            return false;
        }
        match &inst.address {
            InstanceAddress::NodeIp(_) | InstanceAddress::NodeHost(_) | InstanceAddress::Missing => true,
            InstanceAddress::OwnIp(_) => !self.zone.node_meta_txt || inst.node_meta_txt.is_empty(),
            InstanceAddress::OwnHost(_) => false,
        }
    }

    /// One SRV record; `Some(offset of its target)` (0 when not known)
    /// when it was written. Node and `.addr` targets are copied from the
    /// wire bytes prepared in the cache and in `tails`.
    fn srv(&self, w: &mut ResponseWriter<'_>, inst: &CachedInstance, ttl: u32, tails: &SrvTails) -> Option<u16> {
        let tail = match &inst.address {
            InstanceAddress::OwnIp(_) => tails.addr(),
            InstanceAddress::OwnHost(_) => None,
            _ => tails.node(),
        };
        if let (Some(head), Some(tail)) = (inst.target_head.as_deref(), tail) {
            return w.srv_wire(ttl, 1, inst.weight, inst.port, head, tail);
        }
        let dc = self.zone.datacenter.as_bytes();
        let domain = self.domain();
        let node_target: [&[u8]; 4] = [inst.node.as_bytes(), b"node", dc, domain];
        let addr_target: [&[u8]; 4] = [inst.addr_hex.as_bytes(), b"addr", dc, domain];
        let host_target: [&[u8]; 1];
        let target: &[&[u8]] = match &inst.address {
            InstanceAddress::OwnIp(_) => &addr_target,
            InstanceAddress::OwnHost(h) => {
                host_target = [h.as_bytes()];
                &host_target
            }
            _ => &node_target,
        };
        w.srv(
            Name::Question,
            ttl,
            &Srv {
                priority: 1,
                weight: inst.weight,
                port: inst.port,
                target: Name::Pieces(target),
            },
        )
        .then_some(0)
    }

    /// The target's address (node or `.addr` owner) and node meta TXT;
    /// owned by a pointer to the SRV target at `target_at` when known.
    fn srv_additional(&self, w: &mut ResponseWriter<'_>, inst: &CachedInstance, target_at: u16) {
        let dc = self.zone.datacenter.as_bytes();
        let domain = self.domain();
        let node_name: [&[u8]; 4] = [inst.node.as_bytes(), b"node", dc, domain];
        let addr_name: [&[u8]; 4] = [inst.addr_hex.as_bytes(), b"addr", dc, domain];
        let ttl = self.zone.node_ttl_s;
        let known = |pieces| {
            if target_at == 0 {
                Name::Pieces(pieces)
            } else {
                Name::Offset(target_at)
            }
        };
        let (owner, meta_owner, ip): (Name<'_>, Name<'_>, IpAddr) = match &inst.address {
            InstanceAddress::NodeIp(ip) => (known(&node_name), known(&node_name), *ip),
            InstanceAddress::OwnIp(ip) => (known(&addr_name), Name::Pieces(&node_name), *ip),
            InstanceAddress::OwnHost(host) => {
                // What the hostname resolves to (DNS.md §2, CNAME chasing).
                self.chase_cname(w, rtype::SRV, host);
                return;
            }
            _ => return,
        };
        let fit = match ip {
            IpAddr::V4(v4) => w.a(owner, ttl, v4),
            IpAddr::V6(v6) => w.aaaa(owner, ttl, v6),
        };
        if !fit || !self.zone.node_meta_txt {
            return;
        }
        for text in &inst.node_meta_txt {
            if !w.txt(meta_owner, ttl, text) && w.is_full() {
                return;
            }
        }
    }
}

/// The fixed ends of SRV target names for one answer, in wire form with
/// the root byte: `node.<dc>.<domain>` and `addr.<dc>.<domain>` (`None`
/// when the datacenter or domain cannot be encoded: the slow path then
/// skips those records as it always did).
struct SrvTails {
    node: [u8; NAME_BYTES_MAX],
    node_len: Option<usize>,
    addr: [u8; NAME_BYTES_MAX],
    addr_len: Option<usize>,
}

impl SrvTails {
    fn new(dc: &[u8], domain: &[u8]) -> SrvTails {
        let mut tails = SrvTails {
            node: [0; NAME_BYTES_MAX],
            node_len: None,
            addr: [0; NAME_BYTES_MAX],
            addr_len: None,
        };
        // One byte short of the buffer: room for the root.
        tails.node_len =
            encode_labels(&[b"node", dc, domain], &mut tails.node[..NAME_BYTES_MAX - 1]).map(|len| len + 1);
        tails.addr_len =
            encode_labels(&[b"addr", dc, domain], &mut tails.addr[..NAME_BYTES_MAX - 1]).map(|len| len + 1);
        tails
    }

    fn node(&self) -> Option<&[u8]> {
        self.node_len.map(|len| &self.node[..len])
    }

    fn addr(&self) -> Option<&[u8]> {
        self.addr_len.map(|len| &self.addr[..len])
    }
}

/// Whether two instances give the same SRV record target and port.
fn same_target(a: &CachedInstance, b: &CachedInstance) -> bool {
    a.port == b.port && a.address == b.address && a.node.eq_ignore_ascii_case(&b.node)
}
