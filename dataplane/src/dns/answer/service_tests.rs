//! Service, PTR, alt-domain, truncation and recursion-flag tests, with
//! hickory-proto on both sides.

use super::*;
use crate::dns::test_support::{register_service, register_weighted, set_check};
use crate::replica::fixtures::{register_node, test_agent};
use hickory_proto::op::{Edns as HEdns, Message, MessageType, Query as HQuery, ResponseCode};
use hickory_proto::rr::{Name as HName, RData, Record, RecordType};
use proconsul_shared::state::Weights;
use std::collections::BTreeMap;

const NOW: u32 = 1_700_000_000;

/// web on n1..n6 (rails on n1 and n2), n6's node check critical; api on n1
/// warning; db critical; own-address and hostname services.
fn state() -> State {
    let mut s = State::default();
    for i in 1..=6 {
        register_node(
            &mut s,
            i,
            &format!("n{i}"),
            &format!("10.0.0.{i}"),
            &[("consul-network-segment", "")],
        );
    }
    register_node(&mut s, 7, "six", "2001:db8::7", &[]);
    let mut index = 10;
    for i in 1..=6 {
        let tags: &[&str] = if i <= 2 { &["Rails", "v1"] } else { &["v1"] };
        register_service(&mut s, index, &format!("n{i}"), "web-1", "web", tags, "", 80);
        index += 1;
    }
    set_check(&mut s, index, "n6", "", "serfHealth", "critical");
    register_weighted(
        &mut s,
        30,
        "n1",
        "api-1",
        "api",
        &[],
        "",
        8080,
        Weights {
            passing: 10,
            warning: 3,
        },
    );
    set_check(&mut s, 31, "n1", "api-1", "api-check", "warning");
    register_service(&mut s, 32, "n2", "db-1", "db", &[], "", 5432);
    set_check(&mut s, 33, "n2", "db-1", "db-check", "critical");
    register_service(&mut s, 34, "n1", "rabbit-1", "rabbitmq", &[], "192.0.2.10", 5672);
    register_service(&mut s, 35, "n1", "ext-1", "ext", &[], "db.example.com", 443);
    register_service(&mut s, 36, "six", "v6-1", "v6", &[], "", 9000);
    s
}

fn zone_with(edit: impl FnOnce(&mut proconsul_shared::agent_info::DnsConfig)) -> Zone {
    let mut agent = test_agent();
    edit(&mut agent.dns);
    Zone::from_agent(&agent)
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(4711, MessageType::Query, hickory_proto::op::OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(HName::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = HEdns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

struct Asker {
    state: State,
    zone: Zone,
    scratch: Scratch,
}

impl Asker {
    fn new(zone: Zone) -> Asker {
        Asker {
            state: state(),
            zone,
            scratch: Scratch::with_seed(7),
        }
    }

    fn raw(&mut self, name: &str, qtype: RecordType, edns: Option<u16>, transport: Transport) -> (Outcome, Vec<u8>) {
        let mut out = Vec::new();
        let outcome = respond(
            &query(name, qtype, edns),
            transport,
            &self.state,
            &self.zone,
            NOW,
            &mut self.scratch,
            &mut out,
        );
        (outcome, out)
    }

    fn ask_with(&mut self, name: &str, qtype: RecordType, edns: Option<u16>, transport: Transport) -> Message {
        let (outcome, out) = self.raw(name, qtype, edns, transport);
        assert_eq!(outcome, Outcome::Send);
        Message::from_vec(&out).expect("the response parses")
    }

    fn ask(&mut self, name: &str, qtype: RecordType) -> Message {
        self.ask_with(name, qtype, None, Transport::Udp)
    }
}

fn default_asker() -> Asker {
    Asker::new(zone_with(|_| {}))
}

fn ips(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn srvs(records: &[Record]) -> Vec<(u16, u16, u16, String)> {
    let mut v: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn assert_soa_authority(m: &Message) {
    assert_eq!(m.authorities.len(), 1, "{m:?}");
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
}

#[test]
fn service_a_lists_healthy_instances_capped_at_three_without_edns() {
    let mut a = default_asker();
    let m = a.ask("web.service.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert!(!m.metadata.truncation, "silent cut by default");
    assert_eq!(m.answers.len(), 3);
    let m = a.ask_with("web.service.consul.", RecordType::A, Some(1232), Transport::Udp);
    assert_eq!(
        ips(&m.answers),
        vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"],
        "n6 is excluded by its critical node check"
    );
    assert!(m.answers.iter().all(|r| r.name.to_ascii() == "web.service.consul."));
    let m = a.ask_with("web.service.consul.", RecordType::A, None, Transport::Tcp);
    assert_eq!(m.answers.len(), 5, "tcp is not capped");
}

#[test]
fn truncation_sets_tc_only_when_enabled() {
    let mut a = Asker::new(zone_with(|d| d.enable_truncate = true));
    let m = a.ask("web.service.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 3);
    assert!(m.metadata.truncation);
    let m = a.ask_with("web.service.consul.", RecordType::A, Some(1232), Transport::Udp);
    assert!(!m.metadata.truncation, "everything fit");
    let m = a.ask_with("web.service.consul.", RecordType::A, None, Transport::Tcp);
    assert!(!m.metadata.truncation);
    let mut a = Asker::new(zone_with(|d| d.udp_answer_limit = 1));
    assert_eq!(a.ask("web.service.consul.", RecordType::A).answers.len(), 1);
}

#[test]
fn a_record_limit_applies_to_both_transports() {
    let mut a = Asker::new(zone_with(|d| d.a_record_limit = 2));
    assert_eq!(
        a.ask_with("web.service.consul.", RecordType::A, None, Transport::Tcp)
            .answers
            .len(),
        2
    );
    let m = a.ask_with("web.service.consul.", RecordType::SRV, None, Transport::Tcp);
    assert_eq!(m.answers.len(), 5, "not for SRV");
}

#[test]
fn tags_and_rfc2782_forms() {
    let mut a = default_asker();
    let m = a.ask_with("rails.web.service.consul.", RecordType::A, Some(1232), Transport::Udp);
    assert_eq!(
        ips(&m.answers),
        vec!["10.0.0.1", "10.0.0.2"],
        "tags compare case-insensitively"
    );
    let m = a.ask_with(
        "_web._rails.service.consul.",
        RecordType::SRV,
        Some(1232),
        Transport::Udp,
    );
    assert_eq!(m.answers.len(), 2);
    let m = a.ask_with(
        "_web._tcp.service.dc1.consul.",
        RecordType::SRV,
        Some(1232),
        Transport::Udp,
    );
    assert_eq!(m.answers.len(), 5, "_tcp means no tag filter");
    let m = a.ask_with("_web._tcp.consul.", RecordType::SRV, Some(1232), Transport::Udp);
    assert_eq!(m.answers.len(), 5, ".service is optional in RFC 2782 form");
    let m = a.ask("nope.web.service.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_soa_authority(&m);
}

#[test]
fn srv_targets_and_additional_records() {
    let mut a = default_asker();
    let m = a.ask_with("web.service.consul.", RecordType::SRV, Some(4096), Transport::Udp);
    let expected: Vec<_> = (1..=5).map(|i| (1, 1, 80, format!("n{i}.node.dc1.consul."))).collect();
    assert_eq!(srvs(&m.answers), expected);
    assert_eq!(
        ips(&m.additionals),
        vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    );
    let txt = m
        .additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::TXT)
        .count();
    assert_eq!(txt, 5, "node meta TXT per target");
    let m = a.ask("_rabbitmq._tcp.service.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m.answers),
        vec![(1, 1, 5672, "c000020a.addr.dc1.consul.".to_string())]
    );
    assert_eq!(m.additionals[0].name.to_ascii(), "c000020a.addr.dc1.consul.");
    assert_eq!(ips(&m.additionals), vec!["192.0.2.10"]);
    let m = a.ask("ext.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m.answers), vec![(1, 1, 443, "db.example.com.".to_string())]);
    let m = a.ask("ext.service.consul.", RecordType::A);
    assert!(matches!(m.answers[0].data, RData::CNAME(_)), "hostname address → CNAME");
}

#[test]
fn srv_without_edns_keeps_additional_records_in_512_bytes() {
    let mut a = default_asker();
    let (_, bytes) = a.raw("web.service.consul.", RecordType::SRV, None, Transport::Udp);
    assert!(bytes.len() <= 512);
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.answers.len(), 3);
    assert_eq!(ips(&m.additionals).len(), 3, "every target keeps its address");
}

#[test]
fn warning_instances_use_the_warning_weight_unless_only_passing() {
    let mut a = default_asker();
    let m = a.ask("api.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m.answers), vec![(1, 3, 8080, "n1.node.dc1.consul.".to_string())]);
    let mut a = Asker::new(zone_with(|d| d.only_passing = true));
    let m = a.ask("api.service.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn critical_service_checks_exclude_and_unknown_services_are_nxdomain() {
    let mut a = default_asker();
    for name in [
        "db.service.consul.",
        "missing.service.consul.",
        "web.service.dc2.consul.",
    ] {
        let m = a.ask(name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert_soa_authority(&m);
    }
}

#[test]
fn wrong_family_is_nodata() {
    let mut a = default_asker();
    let m = a.ask("web.service.consul.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_soa_authority(&m);
    let m = a.ask("v6.service.consul.", RecordType::AAAA);
    assert_eq!(ips(&m.answers), vec!["2001:db8::7"]);
    let m = a.ask("web.service.consul.", RecordType::TXT);
    assert_eq!(m.answers.len(), 3, "TXT on a service answers addresses (Consul quirk)");
}

#[test]
fn service_ttls_come_from_the_config() {
    let mut a = Asker::new(zone_with(|d| {
        d.service_ttl_s = BTreeMap::from([("*".to_string(), 5), ("web".to_string(), 10)]);
        d.node_ttl_s = 30;
    }));
    let m = a.ask("web.service.consul.", RecordType::SRV);
    assert!(m.answers.iter().all(|r| r.ttl == 10));
    assert!(
        m.additionals.iter().all(|r| r.ttl == 30),
        "target records are node records"
    );
    let m = a.ask("api.service.consul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 5);
    let m = a.ask("n1.node.consul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 30);
}

#[test]
fn random_order_per_query() {
    let mut a = default_asker();
    let mut first_counts: BTreeMap<String, u32> = BTreeMap::new();
    let rounds = 2_000;
    for _ in 0..rounds {
        let (_, bytes) = a.raw("web.service.consul.", RecordType::A, Some(1232), Transport::Udp);
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.answers.len(), 5);
        *first_counts.entry(ips(&m.answers[..1]).remove(0)).or_default() += 1;
    }
    assert_eq!(
        first_counts.len(),
        5,
        "every instance comes first sometimes: {first_counts:?}"
    );
    for (ip, n) in &first_counts {
        assert!((300..500).contains(n), "{ip} first {n} times of {rounds}");
    }
    assert_eq!(a.scratch.services().builds(), 1, "the service was derived once");
}

#[test]
fn alt_domain_is_answered_with_its_own_names() {
    let mut a = Asker::new(zone_with(|d| d.alt_domain = "alt.example.".into()));
    let m = a.ask("web.service.alt.example.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.iter().all(|r| match &r.data {
        RData::SRV(s) => s.target.to_ascii().ends_with(".node.dc1.alt.example."),
        _ => false,
    }));
    let m = a.ask("missing.service.alt.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    match &m.authorities[0].data {
        RData::SOA(_) => assert_eq!(m.authorities[0].name.to_ascii(), "alt.example."),
        other => panic!("want SOA, got {other:?}"),
    }
    assert_eq!(
        a.ask("n1.node.consul.", RecordType::A).answers.len(),
        1,
        "primary still works"
    );
}

#[test]
fn ptr_for_nodes_and_services() {
    let mut a = Asker::new(zone_with(|d| d.alt_domain = "alt.example.".into()));
    let m = a.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    match &m.answers[0].data {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "n1.node.dc1.consul."),
        other => panic!("want PTR, got {other:?}"),
    }
    let m = a.ask("10.2.0.192.in-addr.arpa.", RecordType::PTR);
    match &m.answers[0].data {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "rabbitmq.service.dc1.consul."),
        other => panic!("want PTR, got {other:?}"),
    }
    let v6 = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    assert_eq!(a.ask(v6, RecordType::PTR).answers.len(), 1);
    let m = a.ask("9.9.9.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused, "unknown, no recursors");
}

#[test]
fn recursors_take_foreign_names_and_set_ra() {
    let mut a = Asker::new(zone_with(|d| d.recursors = vec!["127.0.0.1:5353".into()]));
    let (outcome, _) = a.raw("example.com.", RecordType::A, None, Transport::Udp);
    assert_eq!(outcome, Outcome::Recurse);
    let (outcome, _) = a.raw("9.9.9.10.in-addr.arpa.", RecordType::PTR, None, Transport::Udp);
    assert_eq!(outcome, Outcome::Recurse, "unknown reverse names recurse too");
    let m = a.ask("web.service.consul.", RecordType::A);
    assert!(m.metadata.recursion_available);
    let mut out = Vec::new();
    assert!(write_servfail(
        &query("example.com.", RecordType::A, Some(1232)),
        &mut out
    ));
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available);
    assert_eq!(m.queries.len(), 1);
    assert!(!write_servfail(b"junk", &mut out));
}

#[test]
fn mutated_service_queries_never_panic() {
    use rand::{Rng as _, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xd15);
    let mut a = Asker::new(zone_with(|d| d.enable_truncate = true));
    let valid = [
        query("_web._rails.service.consul.", RecordType::SRV, None),
        query("web.service.consul.", RecordType::A, Some(600)),
        query("1.0.0.10.in-addr.arpa.", RecordType::PTR, None),
    ];
    let mut out = Vec::new();
    for round in 0..20_000 {
        let mut p = valid[round % valid.len()].clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..p.len());
            p[at] = rng.gen();
        }
        let keep = rng.gen_range(0..=p.len());
        p.truncate(keep);
        let outcome = respond(&p, Transport::Udp, &a.state, &a.zone, NOW, &mut a.scratch, &mut out);
        if outcome == Outcome::Send {
            assert!(out.len() <= UDP_PAYLOAD_BYTES_MAX);
            assert!(Message::from_vec(&out).is_ok(), "round {round}: {p:02x?}");
        }
    }
}

/// `pl` on n1..n3, all passing, all tagged `t`: a service the A fast path
/// answers from the cache entry (`PlainV4`), while `t.pl` goes through
/// the instances.
fn plain_state() -> State {
    let mut s = state();
    for i in 1..=3 {
        register_service(&mut s, 40 + i, &format!("n{i}"), "pl-1", "pl", &["t"], "", 81);
    }
    s
}

fn a_rdata_in_order(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            other => panic!("not an A record: {other:?}"),
        })
        .collect()
}

#[test]
fn the_plain_a_path_answers_as_the_general_path_does() {
    for (limit, edns) in [(None, None), (Some(2), None), (None, Some(1232)), (Some(0), Some(1232))] {
        let zone = zone_with(|d| {
            if let Some(limit) = limit {
                d.a_record_limit = limit;
            }
        });
        let mut plain = Asker::new(zone.clone());
        plain.state = plain_state();
        let mut general = Asker::new(zone);
        general.state = plain_state();
        let mut orders = std::collections::BTreeSet::new();
        for _ in 0..60 {
            let p = plain.ask_with("pl.service.consul.", RecordType::A, edns, Transport::Udp);
            let g = general.ask_with("t.pl.service.consul.", RecordType::A, edns, Transport::Udp);
            assert_eq!(p.metadata.response_code, ResponseCode::NoError);
            assert_eq!(a_rdata_in_order(&p), a_rdata_in_order(&g), "same seed, same draws");
            assert_eq!(
                p.answers.iter().map(|r| r.ttl).collect::<Vec<_>>(),
                g.answers.iter().map(|r| r.ttl).collect::<Vec<_>>()
            );
            assert!(p.answers.iter().all(|r| r.name.to_ascii() == "pl.service.consul."));
            orders.insert(a_rdata_in_order(&p));
        }
        // a_record_limit 0 means no limit; pl has three instances.
        let expected_len = match limit {
            Some(l) if l > 0 => l.min(3) as usize,
            _ => 3,
        };
        assert!(orders.iter().all(|o| o.len() == expected_len), "{limit:?}: {orders:?}");
        if expected_len > 1 {
            assert!(orders.len() > 1, "the order changes between queries: {orders:?}");
        }
    }
}

#[test]
fn the_plain_a_path_is_left_when_an_instance_is_not_passing() {
    let mut a = default_asker();
    a.state = plain_state();
    let before = a.ask("pl.service.consul.", RecordType::A);
    assert_eq!(ips(&before.answers), vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    set_check(&mut a.state, 50, "n3", "pl-1", "pl-check", "warning");
    let m = a.ask("pl.service.consul.", RecordType::A);
    assert_eq!(
        ips(&m.answers),
        vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "warning still answers"
    );
    let mut only = Asker::new(zone_with(|d| d.only_passing = true));
    only.state = a.state.clone();
    let m = only.ask("pl.service.consul.", RecordType::A);
    assert_eq!(
        ips(&m.answers),
        vec!["10.0.0.1", "10.0.0.2"],
        "only_passing drops the warning one"
    );
    set_check(&mut a.state, 51, "n2", "pl-1", "pl-check2", "critical");
    let m = a.ask("pl.service.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), vec!["10.0.0.1", "10.0.0.3"]);
    let m = a.ask("PL.Service.Consul.", RecordType::AAAA);
    assert!(m.answers.is_empty(), "no IPv6 address: NOERROR without data");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}
