//! The SRV form of the answer cache: byte for byte what the full path
//! writes for the same draws, only for answers whose records do not
//! depend on their place, and never from a body the ring wrote over.

use super::tests::{cache_of, full, query, zone_with, Form, NOW, PLAIN};
use super::*;
use crate::dns::answer::{respond, Outcome, Scratch, Transport};
use crate::dns::test_support::{register_service, set_check};
use crate::dns::zone::Zone;
use crate::replica::fixtures::register_node;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use proconsul_shared::State;

/// Nodes n1..n8 (n1..n3 with meta, n5 on IPv6) and services whose SRV
/// answers are position independent, plus three that are not
/// (`ownmeta`, `host`, `wide`).
fn state() -> State {
    let mut s = State::default();
    for i in 1..=8u64 {
        let address = if i == 5 {
            "2001:db8::5".to_string()
        } else {
            format!("10.0.0.{i}")
        };
        let meta: &[(&str, &str)] = match i {
            1 => &[("rack", "r1")],
            2 => &[("rack", "r2")],
            3 => &[("rack", "r3"), ("zone", "z1")],
            _ => &[],
        };
        register_node(&mut s, i, &format!("n{i}"), &address, meta);
    }
    // A node without an address (a `SkipNodeUpdate` registration made it).
    register_node(&mut s, 9, "bare", "", &[]);
    let mut index = 20;
    let mut add = |s: &mut State, node: &str, id: &str, service: &str, tags: &[&str], address: &str, port: u16| {
        index += 1;
        register_service(s, index, node, id, service, tags, address, port);
    };
    add(&mut s, "n1", "one-1", "one", &[], "", 80);
    for i in 1..=8 {
        add(&mut s, &format!("n{i}"), "many-1", "many", &[], "", 8000 + i);
    }
    // Two instances on one node: the same target name twice.
    add(&mut s, "n2", "ports-1", "ports", &[], "", 80);
    add(&mut s, "n2", "ports-2", "ports", &[], "", 81);
    // A service address on a node without meta: an `.addr` target.
    add(&mut s, "n6", "own-1", "own", &[], "192.0.2.10", 80);
    add(&mut s, "n7", "own-2", "own", &[], "", 80);
    add(&mut s, "n1", "tagged-1", "tagged", &["primary"], "", 80);
    add(&mut s, "n2", "tagged-2", "tagged", &["primary"], "", 80);
    add(&mut s, "n3", "tagged-3", "tagged", &["backup"], "", 80);
    add(&mut s, "n1", "warn-1", "warn", &[], "", 80);
    add(&mut s, "n2", "warn-2", "warn", &[], "", 80);
    // A service address on a node with meta: the TXT's owner is the node
    // name, compressed against what came before.
    add(&mut s, "n1", "ownmeta-1", "ownmeta", &[], "192.0.2.11", 80);
    add(&mut s, "n2", "ownmeta-2", "ownmeta", &[], "", 80);
    // A hostname address: a target written from pieces.
    add(&mut s, "n4", "host-1", "host", &[], "db.example.com", 80);
    // More candidates than a cached SRV answer holds.
    for i in 0..=SRV_CANDIDATES_MAX as u16 {
        let node = format!("n{}", 1 + i % 8);
        add(&mut s, &node, &format!("wide-{i}"), "wide", &[], "", 9000 + i);
    }
    // On a node without an address: an SRV record, no additional records.
    add(&mut s, "bare", "bare-1", "bare", &[], "", 80);
    add(&mut s, "n8", "bare-2", "bare", &[], "", 80);
    set_check(&mut s, 200, "n2", "warn-2", "warn-check", "warning");
    s
}

/// The full path's response and its generator after answering.
fn full_with_rng(packet: &[u8], state: &State, zone: &Zone, seed: u64) -> (Vec<u8>, Rng) {
    let mut scratch = Scratch::with_seed(seed);
    let mut out = Vec::new();
    let outcome = respond(packet, Transport::Udp, state, zone, NOW, &mut scratch, &mut out);
    assert_eq!(outcome, Outcome::Send);
    (out, scratch.rng_mut().clone())
}

const EDNS_1232: Form = Form {
    rd: true,
    edns: Some(1232),
    subnet: false,
};

#[test]
fn cached_srv_answers_are_the_full_paths_bytes_for_the_same_draws() {
    let s = state();
    let zones = [
        ("defaults", zone_with(|_| {})),
        ("udp_answer_limit 1", zone_with(|d| d.udp_answer_limit = 1)),
        ("enable_truncate", zone_with(|d| d.enable_truncate = true)),
        (
            "ttls",
            zone_with(|d| {
                d.service_ttl_s = [("*".to_string(), 30)].into();
                d.node_ttl_s = 7;
            }),
        ),
        ("only_passing", zone_with(|d| d.only_passing = true)),
        ("no meta TXT", zone_with(|d| d.enable_additional_node_meta_txt = false)),
    ];
    let forms = [
        PLAIN,
        Form {
            rd: false,
            edns: None,
            subnet: false,
        },
        EDNS_1232,
        Form {
            rd: true,
            edns: Some(700),
            subnet: false,
        },
    ];
    let names = [
        "_one._tcp.service.consul.",
        "_many._tcp.service.consul.",
        "_MaNy._TCP.service.dc1.consul.",
        "_ports._tcp.service.consul.",
        "_own._tcp.service.consul.",
        "_bare._tcp.service.consul.",
        "_tagged._primary.service.consul.",
        "primary.tagged.service.consul.",
        "warn.service.consul.",
        "many.service.consul.",
    ];
    let mut taken = Vec::new();
    for (label, zone) in &zones {
        for form in &forms {
            for name in names {
                let packet = query(4711, name, RecordType::SRV, form);
                let (mut cache, took) = cache_of(&packet, &s, zone);
                if !took {
                    continue;
                }
                taken.push((*label, name, form.edns));
                for seed in 1..40 {
                    let (expected, mut full_rng) = full_with_rng(&packet, &s, zone, seed);
                    let mut rng = Rng::new(seed);
                    let mut out = Vec::new();
                    assert!(cache.answer(&packet, s.index(), &mut rng, &mut out));
                    assert_eq!(out, expected, "{label}, {name}, edns {:?}, seed {seed}", form.edns);
                    assert_eq!(
                        rng.next_u64(),
                        full_rng.next_u64(),
                        "{label}, {name}: as many draws as the full path"
                    );
                }
                // Another ID: the same answer under the new ID, a valid message.
                let other = query(9, name, RecordType::SRV, form);
                let mut out = Vec::new();
                assert!(cache.answer(&other, s.index(), &mut Rng::new(5), &mut out));
                assert_eq!(&out[..2], &9u16.to_be_bytes());
                let message = Message::from_vec(&out).expect("a valid response");
                assert!(!message.answers.is_empty());
            }
        }
    }
    // Every name is cached in some form, and a single instance in every one.
    for name in names {
        assert!(taken.iter().any(|t| t.1 == name), "{name} is cached somewhere");
    }
    let one = taken.iter().filter(|t| t.1 == "_one._tcp.service.consul.").count();
    assert_eq!(
        one,
        zones.len() * forms.len(),
        "a single instance is cached in every zone and form"
    );
    // Eight instances fit whole with EDNS 1232 in the default zone.
    assert!(taken.contains(&("defaults", "_many._tcp.service.consul.", Some(1232))));
}

#[test]
fn srv_answers_whose_records_depend_on_their_place_are_not_cached() {
    let s = state();
    let zone = zone_with(|_| {});
    for (name, form) in [
        // The node-meta TXT of a service address is owned by a name
        // compressed against what came before it.
        ("_ownmeta._tcp.service.consul.", &EDNS_1232),
        // A hostname target is written from pieces.
        ("_host._tcp.service.consul.", &EDNS_1232),
        // More candidates than a template holds.
        ("_wide._tcp.service.consul.", &EDNS_1232),
        // Without EDNS the answer is cut to `udp_answer_limit` (3).
        ("_many._tcp.service.consul.", &PLAIN),
        // Unknown: NXDOMAIN.
        ("_nothing._tcp.service.consul.", &EDNS_1232),
    ] {
        let packet = query(1, name, RecordType::SRV, form);
        let (outcome, _, cacheable) = full(&packet, &s, &zone, 1);
        assert_eq!(outcome, Outcome::Send);
        assert_eq!(cacheable, None, "{name}");
    }
    // The node-meta TXT of a service address is position independent when
    // the zone writes no meta.
    let no_meta = zone_with(|d| d.enable_additional_node_meta_txt = false);
    let packet = query(1, "_ownmeta._tcp.service.consul.", RecordType::SRV, &EDNS_1232);
    assert!(cache_of(&packet, &s, &no_meta).1);
    // A response that is not the shape the full path said it would be
    // (`own`: two SRV records, then two A records of 16 bytes).
    let packet = query(1, "_own._tcp.service.consul.", RecordType::SRV, &EDNS_1232);
    let (_, out, cacheable) = full(&packet, &s, &zone, 1);
    let cacheable = cacheable.expect("own is cacheable");
    assert!(AnswerCache::default().insert(&packet, &out, s.index(), &cacheable));
    for broken in [[&out[..], &[0]].concat(), out[..out.len() - 1].to_vec(), {
        // The last additional record's owner pointing at the question.
        let mut b = out.clone();
        let last_additional = b.len() - super::OPT_BYTES - 16;
        assert_eq!(b[last_additional] & 0xC0, 0xC0, "a pointer owner");
        b[last_additional..last_additional + 2].copy_from_slice(&[0xC0, 0x0C]);
        b
    }] {
        assert!(!AnswerCache::default().insert(&packet, &broken, s.index(), &cacheable));
    }
    // The draws of one answer do not fit another.
    let other = query(1, "_one._tcp.service.consul.", RecordType::SRV, &EDNS_1232);
    let (_, one_out, _) = full(&other, &s, &zone, 1);
    assert!(!AnswerCache::default().insert(&other, &one_out, s.index(), &cacheable));
    // An A answer's description does not fit an SRV question, nor the reverse.
    let a = query(1, "one.service.consul.", RecordType::A, &PLAIN);
    let (_, a_out, plain) = full(&a, &s, &zone, 1);
    assert!(!AnswerCache::default().insert(&packet, &out, s.index(), &plain.unwrap()));
    assert!(!AnswerCache::default().insert(&a, &a_out, s.index(), &cacheable));
}

#[test]
fn an_srv_answer_is_not_used_after_a_write_or_once_the_ring_wrote_over_its_body() {
    let mut s = state();
    let zone = zone_with(|_| {});
    let packet = query(1, "_one._tcp.service.consul.", RecordType::SRV, &PLAIN);
    let (mut cache, taken) = cache_of(&packet, &s, &zone);
    assert!(taken);
    let mut out = Vec::new();
    assert!(cache.answer(&packet, s.index(), &mut Rng::new(1), &mut out));
    // Pushes covering the whole ring write over the body: a miss.
    let filler = vec![0u8; body_ring::BODY_BYTES_MAX];
    for _ in 0..body_ring::RING_BYTES / filler.len() + 1 {
        cache.bodies.push(&filler).unwrap();
    }
    assert!(!cache.answer(&packet, s.index(), &mut Rng::new(1), &mut out));
    // The full path's answer goes in again and answers.
    let (_, fresh, cacheable) = full(&packet, &s, &zone, 2);
    assert!(cache.insert(&packet, &fresh, s.index(), &cacheable.unwrap()));
    assert!(cache.answer(&packet, s.index(), &mut Rng::new(2), &mut out));
    assert_eq!(out, fresh);
    // A write: stale.
    set_check(&mut s, 300, "n1", "one-1", "one-check", "critical");
    assert!(!cache.answer(&packet, s.index(), &mut Rng::new(1), &mut out));
    assert_eq!(cache.stats().hits, 2);
}
