//! The answer cache answers byte for byte as the full path does, only for
//! the forms it may, never after the state moved, and stays in its table.

use super::*;
use crate::dns::answer::{respond, Outcome, Scratch, Transport};
use crate::dns::test_support::{register_service, set_check};
use crate::dns::zone::Zone;
use crate::replica::fixtures::{register_node, test_agent};
use hickory_proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name as HName, RecordType};
use proconsul_shared::agent_info::DnsConfig;
use proconsul_shared::State;

pub(super) const NOW: u32 = 1_700_000_000;

/// `one` on n1; `many` on n1..n8 (eight distinct addresses); `two` on n1
/// and n2.
fn state() -> State {
    let mut s = State::default();
    for i in 1..=8 {
        register_node(&mut s, i, &format!("n{i}"), &format!("10.0.0.{i}"), &[]);
    }
    register_service(&mut s, 20, "n1", "one-1", "one", &[], "", 80);
    for i in 1..=8 {
        register_service(&mut s, 20 + i, &format!("n{i}"), "many-1", "many", &[], "", 80);
    }
    register_service(&mut s, 30, "n1", "two-1", "two", &[], "", 80);
    register_service(&mut s, 31, "n2", "two-1", "two", &[], "", 80);
    s
}

pub(super) fn zone_with(edit: impl FnOnce(&mut DnsConfig)) -> Zone {
    let mut agent = test_agent();
    edit(&mut agent.dns);
    Zone::from_agent(&agent)
}

pub(super) struct Form {
    pub(super) rd: bool,
    pub(super) edns: Option<u16>,
    pub(super) subnet: bool,
}

/// RD set, no EDNS: what stub resolvers send.
pub(super) const PLAIN: Form = Form {
    rd: true,
    edns: None,
    subnet: false,
};

pub(super) fn query(id: u16, name: &str, qtype: RecordType, form: &Form) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = form.rd;
    m.add_query(HQuery::query(HName::from_ascii(name).unwrap(), qtype));
    if let Some(size) = form.edns {
        let mut e = HEdns::new();
        e.set_max_payload(size);
        if form.subnet {
            let subnet = ClientSubnet::new("192.0.2.0".parse().unwrap(), 24, 0);
            e.options_mut().insert(EdnsOption::Subnet(subnet));
        }
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// The full path's response to `packet` with a scratch seeded `seed`,
/// and what it said the cache may keep.
pub(super) fn full(
    packet: &[u8],
    state: &State,
    zone: &Zone,
    seed: u64,
) -> (Outcome, Vec<u8>, Option<CacheableAnswer>) {
    let mut scratch = Scratch::with_seed(seed);
    let mut out = Vec::new();
    let outcome = respond(packet, Transport::Udp, state, zone, NOW, &mut scratch, &mut out);
    (outcome, out, scratch.take_cacheable_answer())
}

/// A cache holding `packet`'s answer (built by the full path), if it took it.
pub(super) fn cache_of(packet: &[u8], state: &State, zone: &Zone) -> (AnswerCache, bool) {
    let (outcome, out, cacheable) = full(packet, state, zone, 99);
    assert_eq!(outcome, Outcome::Send);
    let mut cache = AnswerCache::default();
    let taken = match cacheable {
        Some(cacheable) => cache.insert(packet, &out, state.index(), &cacheable),
        None => false,
    };
    (cache, taken)
}

#[test]
fn cached_answers_are_the_full_paths_bytes_for_the_same_draws() {
    let s = state();
    let zones = [
        ("defaults", zone_with(|_| {})),
        ("udp_answer_limit 1", zone_with(|d| d.udp_answer_limit = 1)),
        ("a_record_limit 2", zone_with(|d| d.a_record_limit = 2)),
        (
            "enable_truncate",
            zone_with(|d| {
                d.enable_truncate = true;
            }),
        ),
        (
            "service_ttl",
            zone_with(|d| d.service_ttl_s = [("*".to_string(), 30)].into()),
        ),
        ("recursors", {
            let mut agent = test_agent();
            agent.dns.recursors = vec!["127.0.0.1:5399".into()];
            Zone::from_agent(&agent)
        }),
    ];
    let forms = [
        Form {
            rd: true,
            edns: None,
            subnet: false,
        },
        Form {
            rd: false,
            edns: None,
            subnet: false,
        },
        Form {
            rd: true,
            edns: Some(1232),
            subnet: false,
        },
        Form {
            rd: true,
            edns: Some(300),
            subnet: false,
        },
    ];
    let names = [
        "one.service.consul.",
        "many.service.consul.",
        "MaNy.Service.Consul.",
        "two.service.dc1.consul.",
    ];
    let mut compared = 0;
    for (label, zone) in &zones {
        for form in &forms {
            for name in names {
                let packet = query(4711, name, RecordType::A, form);
                let (mut cache, taken) = cache_of(&packet, &s, zone);
                assert!(taken, "{label}, {name}: a plain answer is cached");
                for seed in 1..40 {
                    let (_, expected, _) = full(&packet, &s, zone, seed);
                    let mut rng = Scratch::with_seed(seed).rng_mut().clone();
                    let mut out = Vec::new();
                    assert!(cache.answer(&packet, s.index(), &mut rng, &mut out));
                    assert_eq!(out, expected, "{label}, {name}, edns {:?}, seed {seed}", form.edns);
                    compared += 1;
                }
                // Another ID: the same answer under the new ID.
                let other = query(9, name, RecordType::A, form);
                let mut out = Vec::new();
                let mut rng = Rng::new(5);
                assert!(cache.answer(&other, s.index(), &mut rng, &mut out));
                assert_eq!(&out[..2], &9u16.to_be_bytes());
                assert!(Message::from_vec(&out).is_ok());
            }
        }
    }
    assert_eq!(compared, zones.len() * forms.len() * names.len() * 39);
}

#[test]
fn only_the_plain_form_is_cached() {
    let s = state();
    let zone = zone_with(|_| {});
    let plain = PLAIN;
    // Not a PlainV4 answer (nor SRV): nothing cacheable from the full path.
    for (name, qtype) in [
        ("many.service.consul.", RecordType::AAAA),
        ("many.service.consul.", RecordType::TXT),
        ("n1.node.consul.", RecordType::A),
        ("nothing.service.consul.", RecordType::A),
    ] {
        let (_, taken) = cache_of(&query(1, name, qtype, &plain), &s, &zone);
        assert!(!taken, "{name} {qtype:?}");
    }
    // A plain answer, but a query form the cache does not rebuild.
    let with_subnet = query(
        1,
        "one.service.consul.",
        RecordType::A,
        &Form {
            rd: true,
            edns: Some(1232),
            subnet: true,
        },
    );
    let (_, out, answer) = full(&with_subnet, &s, &zone, 1);
    let answer = answer.expect("the full path answered from the table entry");
    assert!(!AnswerCache::default().insert(&with_subnet, &out, s.index(), &answer));
    // Too long to key.
    let long = format!("one.service.{}consul.", "dc1.".repeat(KEY_BYTES_MAX / 4));
    let long_packet = query(1, &long, RecordType::A, &plain);
    let (_, out, _) = full(&long_packet, &s, &zone, 1);
    assert!(!AnswerCache::default().insert(&long_packet, &out, s.index(), &answer));
    // A response that is not the header, question and A records.
    let packet = query(1, "one.service.consul.", RecordType::A, &plain);
    let (_, mut out, _) = full(&packet, &s, &zone, 1);
    out.push(0);
    assert!(!AnswerCache::default().insert(&packet, &out, s.index(), &answer));
}

#[test]
fn an_answer_is_used_only_at_the_state_index_it_was_built_at() {
    let mut s = state();
    let zone = zone_with(|_| {});
    let form = PLAIN;
    let packet = query(1, "two.service.consul.", RecordType::A, &form);
    let (mut cache, taken) = cache_of(&packet, &s, &zone);
    assert!(taken);
    let mut rng = Rng::new(3);
    let mut out = Vec::new();
    assert!(cache.answer(&packet, s.index(), &mut rng, &mut out));
    set_check(&mut s, 40, "n2", "two-1", "two-check", "critical");
    assert!(
        !cache.answer(&packet, s.index(), &mut rng, &mut out),
        "stale after a write"
    );
    // The full path then answers n1 alone, and that is what is cached next.
    let (_, fresh, plain) = full(&packet, &s, &zone, 3);
    assert!(cache.insert(&packet, &fresh, s.index(), &plain.unwrap()));
    for seed in 0..10 {
        let mut rng = Rng::new(seed);
        assert!(cache.answer(&packet, s.index(), &mut rng, &mut out));
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data.to_string(), "10.0.0.1");
    }
    cache.clear();
    assert!(
        !cache.answer(&packet, s.index(), &mut rng, &mut out),
        "nothing after clear"
    );
    assert_eq!(cache.stats().hits, 11);
}

#[test]
fn the_table_is_fixed_and_keeps_nearly_every_key_at_a_third_full() {
    let s = state();
    let zone = zone_with(|_| {});
    let form = PLAIN;
    let packet = query(1, "one.service.consul.", RecordType::A, &form);
    let (_, response, plain) = full(&packet, &s, &zone, 1);
    let plain = plain.unwrap();
    // Distinct keys with the same shape: the ID is not part of the key,
    // so vary bytes of the name's label (same length, same response form).
    let keyed = |k: u32| {
        let mut p = packet.clone();
        let mut r = response.clone();
        let tag = format!("{k:03x}").into_bytes();
        // "one" is the first label: bytes 13..16 of both.
        p[13..16].copy_from_slice(&tag[tag.len() - 3..]);
        r[13..16].copy_from_slice(&tag[tag.len() - 3..]);
        (p, r)
    };
    let mut cache = AnswerCache::default();
    let keys = 4_000u32.min(16u32.pow(3));
    for k in 0..keys {
        let (p, r) = keyed(k);
        assert!(cache.insert(&p, &r, s.index(), &plain));
    }
    assert_eq!(cache.slots.len(), ANSWER_SLOTS, "the table never grows");
    let mut rng = Rng::new(1);
    let mut out = Vec::new();
    let found = (0..keys)
        .filter(|&k| cache.answer(&keyed(k).0, s.index(), &mut rng, &mut out))
        .count();
    let evictions = cache.stats().evictions as usize;
    assert_eq!(found + evictions, keys as usize, "every key is found unless evicted");
    assert!(found * 1000 >= keys as usize * 999, "{found} of {keys} found");
    // Re-inserting a present key takes its own slot (no growth, no eviction).
    let (p, r) = keyed(0);
    assert!(cache.insert(&p, &r, s.index(), &plain));
    assert_eq!(cache.stats().evictions as usize, evictions);
}

#[test]
fn queries_that_are_not_simple_are_never_answered_from_a_slot() {
    let s = state();
    let zone = zone_with(|_| {});
    let form = PLAIN;
    let packet = query(1, "one.service.consul.", RecordType::A, &form);
    let (mut cache, _) = cache_of(&packet, &s, &zone);
    let mut rng = Rng::new(1);
    let mut out = Vec::new();
    // Shorter than a header, a changed flag, a trailing byte: other keys.
    for p in [&packet[..5], &[&packet[..], &[0]].concat()[..], &{
        let mut p = packet.clone();
        p[2] |= 0x80;
        p
    }] {
        assert!(!cache.answer(p, s.index(), &mut rng, &mut out));
    }
    assert_eq!(cache.stats().hits, 0);
}
