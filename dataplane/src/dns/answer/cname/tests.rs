//! CNAME chasing: internal hops, loops, the hop limit, service targets,
//! the hand-over to the recursors and the merge of their answer. Queries
//! and upstream replies are built with hickory-proto, responses parsed
//! back with it.

use super::upstream::{chase_query, merge, pending, udp_size_max};
use super::*;
use crate::dns::answer::{respond, Outcome, Scratch, Transport};
use crate::dns::test_support::register_service;
use crate::dns::zone::Zone;
use crate::replica::fixtures::{register_node, test_agent};
use hickory_proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::{A as HA, CNAME as HCNAME};
use hickory_proto::rr::{Name as HName, RData, Record, RecordType};
use proconsul_shared::State;

const NOW: u32 = 1_700_000_000;

fn zone(recursors: bool) -> Zone {
    let mut agent = test_agent();
    if recursors {
        agent.dns.recursors = vec!["127.0.0.1:5353".into()];
    }
    Zone::from_agent(&agent)
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(4711, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(HName::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = HEdns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn raw(state: &State, zone: &Zone, name: &str, qtype: RecordType) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let outcome = respond(
        &query(name, qtype, None),
        Transport::Udp,
        state,
        zone,
        NOW,
        &mut Scratch::with_seed(1),
        &mut out,
    );
    (outcome, out)
}

/// Asked over TCP: no 3-answer cap, so every hop shows.
fn ask(state: &State, name: &str, qtype: RecordType) -> Message {
    let mut out = Vec::new();
    let outcome = respond(
        &query(name, qtype, None),
        Transport::Tcp,
        state,
        &zone(false),
        NOW,
        &mut Scratch::with_seed(1),
        &mut out,
    );
    assert_eq!(outcome, Outcome::Send);
    Message::from_vec(&out).expect("the response parses")
}

/// `(owner, "CNAME target" or "A ip")` of each record.
fn shown(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .filter_map(|r| {
            let data = match &r.data {
                RData::CNAME(c) => format!("CNAME {}", c.0.to_ascii()),
                RData::A(a) => format!("A {}", a.0),
                RData::AAAA(a) => format!("AAAA {}", a.0),
                _ => return None,
            };
            Some((r.name.to_ascii().to_ascii_lowercase(), data))
        })
        .collect()
}

fn pair(owner: &str, data: &str) -> (String, String) {
    (owner.to_string(), data.to_string())
}

#[test]
fn a_node_alias_resolves_to_the_node_it_names() {
    let mut state = State::default();
    register_node(&mut state, 1, "web", "10.0.0.7", &[]);
    register_node(&mut state, 2, "alias", "web.node.consul", &[]);
    let m = ask(&state, "alias.node.consul.", RecordType::A);
    assert_eq!(
        shown(&m.answers),
        [
            pair("alias.node.consul.", "CNAME web.node.consul."),
            pair("web.node.consul.", "A 10.0.0.7"),
        ]
    );
    let m = ask(&state, "alias.node.consul.", RecordType::AAAA);
    assert_eq!(shown(&m.answers).len(), 1, "no AAAA for a v4 node: the CNAME alone");
}

#[test]
fn a_service_target_gives_its_healthy_addresses() {
    let mut state = State::default();
    register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
    register_node(&mut state, 2, "n2", "10.0.0.2", &[]);
    register_service(&mut state, 3, "n1", "web-1", "web", &["v1"], "", 80);
    register_service(&mut state, 4, "n2", "web-2", "web", &["v2"], "", 80);
    register_node(&mut state, 5, "front", "v2.web.service.consul.", &[]);
    let m = ask(&state, "front.node.consul.", RecordType::A);
    assert_eq!(
        shown(&m.answers),
        [
            pair("front.node.consul.", "CNAME v2.web.service.consul."),
            pair("v2.web.service.consul.", "A 10.0.0.2"),
        ],
        "tag filters apply"
    );
}

#[test]
fn loops_stop() {
    let mut state = State::default();
    register_node(&mut state, 1, "a", "b.node.consul", &[]);
    register_node(&mut state, 2, "b", "a.node.consul", &[]);
    let m = ask(&state, "a.node.consul.", RecordType::A);
    let answers = shown(&m.answers);
    assert!(answers.len() <= 1 + CNAME_HOPS_MAX, "{answers:?}");
    assert!(answers.iter().all(|(_, d)| d.starts_with("CNAME")), "{answers:?}");
}

#[test]
fn three_internal_hops_at_most() {
    let mut state = State::default();
    // n0 → n1 → n2 → n3 → n4 (an IP): the question's CNAME plus three hops.
    for (i, address) in [
        "n1.node.consul",
        "n2.node.consul",
        "n3.node.consul",
        "n4.node.consul",
        "10.0.0.9",
    ]
    .iter()
    .enumerate()
    {
        register_node(&mut state, i as u64 + 1, &format!("n{i}"), address, &[]);
    }
    let m = ask(&state, "n1.node.consul.", RecordType::A);
    assert_eq!(shown(&m.answers).last().unwrap().1, "A 10.0.0.9", "three hops resolve");
    let m = ask(&state, "n0.node.consul.", RecordType::A);
    let answers = shown(&m.answers);
    assert_eq!(answers.len(), 1 + CNAME_HOPS_MAX, "{answers:?}");
    assert!(
        answers.iter().all(|(_, d)| d.starts_with("CNAME")),
        "the fourth hop is not taken"
    );
}

#[test]
fn outside_targets_go_to_the_recursors_only_when_configured() {
    let mut state = State::default();
    register_node(&mut state, 1, "ext", "db.example.com", &[]);
    let (outcome, out) = raw(&state, &zone(false), "ext.node.consul.", RecordType::A);
    assert_eq!(outcome, Outcome::Send, "no recursors: the CNAME alone");
    assert_eq!(shown(&Message::from_vec(&out).unwrap().answers).len(), 1);
    let (outcome, out) = raw(&state, &zone(true), "ext.node.consul.", RecordType::A);
    assert_eq!(outcome, Outcome::Chase);
    let chase = pending(&out).expect("a pending target");
    let q = Message::from_vec(&chase_query(&chase, 99)).unwrap();
    assert_eq!(q.metadata.id, 99);
    assert_eq!(q.queries[0].name().to_ascii(), "db.example.com.");
    assert_eq!(q.queries[0].query_type(), RecordType::A);
}

/// What a recursor answers for `name`: a CNAME hop then an A record,
/// compressed by hickory.
fn upstream_reply(id: u16, name: &str) -> Vec<u8> {
    let owner = HName::from_ascii(name).unwrap();
    let canonical = HName::from_ascii("real.example.com.").unwrap();
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.add_query(HQuery::query(owner.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(owner, 60, RData::CNAME(HCNAME(canonical.clone()))));
    m.add_answer(Record::from_rdata(canonical, 60, RData::A(HA::new(192, 0, 2, 1))));
    m.to_vec().unwrap()
}

#[test]
fn the_upstream_answer_is_merged_after_the_cname() {
    let mut state = State::default();
    register_node(&mut state, 1, "ext", "db.example.com", &[("k", "v")]);
    let (_, ours) = raw(&state, &zone(true), "ext.node.consul.", RecordType::A);
    let merged = merge(&ours, &upstream_reply(7, "db.example.com."), 512).expect("merged");
    let m = Message::from_vec(&merged).unwrap();
    assert_eq!(m.metadata.id, 4711, "still our answer");
    assert_eq!(
        shown(&m.answers),
        [
            pair("ext.node.consul.", "CNAME db.example.com."),
            pair("db.example.com.", "CNAME real.example.com."),
            pair("real.example.com.", "A 192.0.2.1"),
        ]
    );
    assert_eq!(m.additionals.len(), Message::from_vec(&ours).unwrap().additionals.len());
    assert!(pending(&merged).is_none(), "nothing left to chase");
    assert!(
        merge(&ours, &upstream_reply(7, "other.example.com."), 512).is_none(),
        "another name"
    );
    assert!(
        merge(&ours, &upstream_reply(7, "db.example.com."), 60).is_none(),
        "too large"
    );
    assert!(merge(&ours, &[0u8; 5], 512).is_none(), "malformed");
}

#[test]
fn srv_hostname_targets_get_additional_records() {
    let mut state = State::default();
    register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
    register_node(&mut state, 2, "db-host", "10.0.0.5", &[]);
    register_service(&mut state, 3, "n1", "db-1", "db", &[], "db-host.node.consul", 5432);
    let m = ask(&state, "db.service.consul.", RecordType::SRV);
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("SRV expected: {m}");
    };
    assert_eq!(srv.target.to_ascii(), "db-host.node.consul.");
    assert_eq!(shown(&m.additionals), [pair("db-host.node.consul.", "A 10.0.0.5")]);

    let mut state = State::default();
    register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
    register_service(&mut state, 2, "n1", "db-1", "db", &[], "db.example.com", 5432);
    let (outcome, ours) = raw(&state, &zone(true), "db.service.consul.", RecordType::SRV);
    assert_eq!(outcome, Outcome::Chase);
    let merged = merge(&ours, &upstream_reply(8, "db.example.com."), 4096).expect("merged");
    let m = Message::from_vec(&merged).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(shown(&m.additionals).last().unwrap().1, "A 192.0.2.1");
}

#[test]
fn udp_size_comes_from_our_opt_record() {
    let mut state = State::default();
    register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
    let mut out = Vec::new();
    respond(
        &query("n1.node.consul.", RecordType::A, Some(1232)),
        Transport::Udp,
        &state,
        &zone(false),
        NOW,
        &mut Scratch::with_seed(1),
        &mut out,
    );
    assert_eq!(udp_size_max(&out), 1232);
    let (_, classic) = raw(&state, &zone(false), "n1.node.consul.", RecordType::A);
    assert_eq!(udp_size_max(&classic), 512);
}

#[test]
fn qnames_of_hostnames() {
    assert_eq!(qname_of("web.node.consul.").unwrap().text(), b"web.node.consul");
    assert!(qname_of("").is_none());
    assert!(qname_of("a..b").is_none());
    assert!(qname_of(&"x".repeat(64)).is_none(), "label too long");
}
