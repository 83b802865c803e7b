//! Answer-builder tests: queries built with hickory-proto, responses parsed
//! back with it, so both directions are checked against an independent
//! implementation.

use super::*;
use crate::replica::fixtures::{register_node, test_agent};
use hickory_proto::op::{Edns as HEdns, Message, MessageType, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name as HName, RData, Record, RecordType};
use rand::{Rng, SeedableRng};

const NOW: u32 = 1_700_000_000;

fn state() -> State {
    let mut s = State::default();
    register_node(
        &mut s,
        2,
        "node1",
        "10.0.0.1",
        &[("consul-network-segment", ""), ("rfc1035-note", "value only")],
    );
    register_node(&mut s, 3, "six", "2001:db8::1", &[]);
    register_node(&mut s, 4, "named", "db.example.com", &[]);
    let big: Vec<(String, String)> = (0..20).map(|i| (format!("key{i:02}"), "v".repeat(60))).collect();
    let big_refs: Vec<(&str, &str)> = big.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    register_node(&mut s, 5, "fat", "10.0.0.5", &big_refs);
    register_node(&mut s, 6, "web.internal", "10.0.0.6", &[]);
    s
}

fn zone() -> Zone {
    Zone::from_agent(&test_agent())
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

fn run(packet: &[u8], transport: Transport, state: &State, zone: &Zone) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    (respond(packet, transport, state, zone, NOW, &mut Scratch::default(), &mut out) == Outcome::Send).then_some(out)
}

fn ask_with(name: &str, qtype: RecordType, edns: Option<u16>, transport: Transport) -> (Message, usize) {
    let out = run(&query(name, qtype, edns), transport, &state(), &zone()).expect("a response");
    (Message::from_vec(&out).expect("the response parses"), out.len())
}

fn ask(name: &str, qtype: RecordType) -> Message {
    ask_with(name, qtype, None, Transport::Udp).0
}

fn txts(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

fn assert_soa(records: &[Record]) {
    assert_eq!(records.len(), 1, "one SOA: {records:?}");
    let r = &records[0];
    assert_eq!(r.name.to_ascii().to_ascii_lowercase(), "consul.");
    let RData::SOA(soa) = &r.data else {
        panic!("not an SOA: {r:?}");
    };
    assert_eq!(soa.mname.to_ascii(), "ns.consul.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.consul.");
    assert_eq!(soa.serial, NOW);
    assert_eq!((soa.refresh, soa.retry, soa.expire, soa.minimum), (3600, 600, 86400, 0));
    assert_eq!(r.ttl, 0);
}

#[test]
fn node_a_lookup_with_meta_txt_in_additional() {
    let m = ask("node1.node.consul.", RecordType::A);
    assert_eq!(m.metadata.id, 4711);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired, "rd echoed");
    assert!(!m.metadata.recursion_available);
    assert!(!m.metadata.truncation);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_ascii(), "node1.node.consul.");
    assert_eq!(
        m.answers[0].data,
        RData::A("10.0.0.1".parse::<Ipv4Addr>().unwrap().into())
    );
    assert_eq!(m.answers[0].ttl, 0);
    assert_eq!(txts(&m.additionals), vec!["consul-network-segment=", "value only"]);
    assert!(m.authorities.is_empty());
}

#[test]
fn lookup_is_case_insensitive_and_echoes_the_question_case() {
    let m = ask("NODE1.Node.DC1.Consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.queries[0].name.to_ascii(), "NODE1.Node.DC1.Consul.");
    assert_eq!(m.answers[0].name.to_ascii(), "NODE1.Node.DC1.Consul.");
}

#[test]
fn dotted_node_names_and_dc_suffix_forms() {
    let m = ask("web.internal.node.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
    let m = ask("node1.node.dc1.dc.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn any_puts_txt_in_the_answer_capped_at_three_without_edns() {
    let m = ask("node1.node.consul.", RecordType::ANY);
    assert_eq!(m.answers.len(), 3);
    assert!(matches!(m.answers[0].data, RData::A(_)));
    assert_eq!(txts(&m.answers), vec!["consul-network-segment=", "value only"]);
    assert!(m.additionals.is_empty());

    let (m, _) = ask_with("fat.node.consul.", RecordType::ANY, None, Transport::Udp);
    assert_eq!(m.answers.len(), UDP_ANSWERS_MAX_CLASSIC);
}

#[test]
fn txt_question_answers_only_txt() {
    let m = ask("node1.node.consul.", RecordType::TXT);
    assert_eq!(m.answers.len(), 2);
    assert_eq!(txts(&m.answers), vec!["consul-network-segment=", "value only"]);
}

#[test]
fn wrong_family_is_nodata_with_soa() {
    let m = ask("node1.node.consul.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(m.additionals.is_empty());
    assert_soa(&m.authorities);

    let m = ask("node1.node.consul.", RecordType::MX);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_soa(&m.authorities);
}

#[test]
fn ipv6_node_answers_aaaa() {
    let m = ask("six.node.consul.", RecordType::AAAA);
    assert_eq!(
        m.answers[0].data,
        RData::AAAA("2001:db8::1".parse::<Ipv6Addr>().unwrap().into())
    );
    let m = ask("six.node.consul.", RecordType::A);
    assert!(m.answers.is_empty());
    assert_soa(&m.authorities);
}

#[test]
fn hostname_node_answers_cname() {
    let m = ask("named.node.consul.", RecordType::A);
    let RData::CNAME(target) = &m.answers[0].data else {
        panic!("expected a CNAME: {:?}", m.answers);
    };
    assert_eq!(target.0.to_ascii(), "db.example.com.");
}

#[test]
fn unknown_names_in_the_domain_are_nxdomain_with_soa() {
    for name in [
        "nope.node.consul.",
        "node1.node.dc2.consul.",
        "node1.node.a.b.c.consul.",
        "foo.consul.",
        "consul.",
        "web.service.consul.",
        "_web._tcp.service.consul.",
        "db.connect.consul.",
        "geo.query.consul.",
        "zzzzzzzz.addr.consul.",
    ] {
        let qtype = if name.starts_with('_') {
            RecordType::SRV
        } else {
            RecordType::A
        };
        let m = ask(name, qtype);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty(), "{name}");
        assert_soa(&m.authorities);
    }
}

#[test]
fn soa_question_answers_soa_with_ns_and_glue() {
    let m = ask("consul.", RecordType::SOA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa(&m.answers);
    assert_eq!(m.authorities.len(), 1);
    let RData::NS(ns) = &m.authorities[0].data else {
        panic!("expected NS");
    };
    assert_eq!(ns.0.to_ascii(), "node1.node.dc1.consul.");
    assert_eq!(m.additionals.len(), 1);
    assert_eq!(m.additionals[0].name.to_ascii(), "node1.node.dc1.consul.");
    assert_eq!(
        m.additionals[0].data,
        RData::A("10.0.0.1".parse::<Ipv4Addr>().unwrap().into())
    );
}

#[test]
fn ns_question_names_the_server_with_glue() {
    let m = ask("consul.", RecordType::NS);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_ascii(), "consul.");
    let RData::NS(ns) = &m.answers[0].data else {
        panic!("expected NS");
    };
    assert_eq!(ns.0.to_ascii(), "node1.node.dc1.consul.");
    assert_eq!(m.additionals.len(), 1);
    assert!(m.authorities.is_empty());
}

#[test]
fn client_agents_have_no_name_servers_of_their_own() {
    let mut agent = test_agent();
    agent.server = false;
    let zone = Zone::from_agent(&agent);
    let out = run(&query("consul.", RecordType::NS, None), Transport::Udp, &state(), &zone).unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[test]
fn glue_falls_back_to_the_advertise_address() {
    let out = run(
        &query("consul.", RecordType::NS, None),
        Transport::Udp,
        &State::default(),
        &zone(),
    )
    .unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(
        m.additionals[0].data,
        RData::A("127.0.0.1".parse::<Ipv4Addr>().unwrap().into())
    );
}

#[test]
fn names_outside_the_domain_are_refused_without_aa() {
    let m = ask("example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert!(m.metadata.recursion_desired);
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    let m = ask("9.9.9.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn zone_transfers_are_not_implemented() {
    let m = ask("consul.", RecordType::AXFR);
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn addr_names_decode_to_addresses() {
    let m = ask("c000020a.addr.dc1.consul.", RecordType::A);
    assert_eq!(
        m.answers[0].data,
        RData::A("192.0.2.10".parse::<Ipv4Addr>().unwrap().into())
    );
    let m = ask("20010db8000000000000000000000001.addr.consul.", RecordType::AAAA);
    assert_eq!(
        m.answers[0].data,
        RData::AAAA("2001:db8::1".parse::<Ipv6Addr>().unwrap().into())
    );
}

#[test]
fn edns_is_echoed_with_the_requesters_size_and_subnet() {
    let (m, _) = ask_with("node1.node.consul.", RecordType::A, Some(1232), Transport::Udp);
    let edns = m.edns.as_ref().expect("OPT in the reply");
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(edns.version(), 0);

    let mut q = Message::new(7, MessageType::Query, hickory_proto::op::OpCode::Query);
    q.add_query(HQuery::query(
        HName::from_ascii("node1.node.consul.").unwrap(),
        RecordType::A,
    ));
    let mut e = HEdns::new();
    e.set_max_payload(4096);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        "10.1.2.0".parse().unwrap(),
        24,
        0,
    )));
    q.set_edns(e);
    let out = run(&q.to_vec().unwrap(), Transport::Udp, &state(), &zone()).unwrap();
    let m = Message::from_vec(&out).unwrap();
    let edns = m.edns.unwrap();
    assert_eq!(edns.max_payload(), 4096);
    let Some(EdnsOption::Subnet(cs)) = edns.option(EdnsCode::Subnet) else {
        panic!("client subnet echoed");
    };
    assert_eq!(cs.scope_prefix(), 0);
    assert_eq!(cs.source_prefix(), 24);
}

#[test]
fn udp_without_edns_fits_512_bytes() {
    let (m, len) = ask_with("fat.node.consul.", RecordType::A, None, Transport::Udp);
    assert!(len <= 512, "{len} bytes");
    assert_eq!(m.answers.len(), 1, "the address answer keeps priority");
    let dropped_meta = m.additionals.len();
    assert!(dropped_meta < 20, "additional records were trimmed to fit");

    let (m, len) = ask_with("fat.node.consul.", RecordType::A, Some(4096), Transport::Udp);
    assert!(len <= 4096);
    assert_eq!(m.additionals.len(), 20, "all meta fits in 4096 bytes");

    let (m, _) = ask_with("fat.node.consul.", RecordType::A, Some(100), Transport::Udp);
    assert!(m.additionals.len() >= dropped_meta, "EDNS sizes below 512 count as 512");

    let (m, _) = ask_with("fat.node.consul.", RecordType::ANY, None, Transport::Tcp);
    assert_eq!(m.answers.len(), 21, "TCP is not capped to 3 answers");
}

#[test]
fn edns_sizes_are_honoured() {
    for size in [512u16, 700, 1232] {
        let (_, len) = ask_with("fat.node.consul.", RecordType::TXT, Some(size), Transport::Udp);
        assert!(len <= size as usize, "{len} > {size}");
    }
}

#[test]
fn custom_domain() {
    let mut agent = test_agent();
    agent.domain = "Example.".into();
    let zone = Zone::from_agent(&agent);
    let out = run(
        &query("node1.node.example.", RecordType::A, None),
        Transport::Udp,
        &state(),
        &zone,
    )
    .unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.answers.len(), 1);
    let out = run(
        &query("foo.example.", RecordType::A, None),
        Transport::Udp,
        &state(),
        &zone,
    )
    .unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.authorities[0].name.to_ascii(), "example.");
    let out = run(
        &query("node1.node.consul.", RecordType::A, None),
        Transport::Udp,
        &state(),
        &zone,
    )
    .unwrap();
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
}

#[test]
fn no_question_is_refused_and_responses_are_dropped() {
    let mut no_question = query("node1.node.consul.", RecordType::A, None);
    no_question[4] = 0;
    no_question[5] = 0;
    no_question.truncate(12);
    let out = run(&no_question, Transport::Udp, &state(), &zone()).unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(m.metadata.id, 4711);

    let mut response = query("node1.node.consul.", RecordType::A, None);
    response[2] |= 0x80;
    assert!(run(&response, Transport::Udp, &state(), &zone()).is_none());
}

#[test]
fn malformed_question_is_formerr() {
    let mut p = query("node1.node.consul.", RecordType::A, None);
    p.truncate(20);
    let out = run(&p, Transport::Udp, &state(), &zone()).unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.id, 4711);
}

#[test]
fn rfc1464_encoding() {
    let mut out = Vec::new();
    rfc1464_text("consul-network-segment", "", &mut out);
    assert_eq!(out, b"consul-network-segment=");
    rfc1464_text("a=b", "c`d", &mut out);
    assert_eq!(out, b"a`=b=c``d");
    rfc1464_text("  k ", "v", &mut out);
    assert_eq!(out, b"` ` k` =v");
    rfc1464_text("k`", "=", &mut out);
    assert_eq!(out, b"k``==");
    rfc1464_text("RFC1035-thing", "bare", &mut out);
    assert_eq!(out, b"bare");
}

#[test]
fn garbage_never_panics_and_every_reply_parses() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let state = state();
    let zone = zone();
    let valid = query("node1.node.consul.", RecordType::A, Some(1232));
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for round in 0..20_000 {
        let packet: Vec<u8> = if round % 2 == 0 {
            let len = rng.gen_range(0..80);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            // Mutate a valid query: flip a few bytes, maybe truncate.
            let mut p = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..p.len());
                p[at] = rng.gen();
            }
            let keep = rng.gen_range(0..=p.len());
            p.truncate(keep);
            p
        };
        if respond(&packet, Transport::Udp, &state, &zone, NOW, &mut scratch, &mut out) == Outcome::Send {
            assert!(out.len() >= 12);
            assert!(out.len() <= UDP_PAYLOAD_BYTES_MAX);
            assert_eq!(&out[..2], &packet[..2], "id echoed");
            assert!(
                Message::from_vec(&out).is_ok(),
                "round {round}: reply must parse: {packet:02x?}"
            );
        }
    }
}
