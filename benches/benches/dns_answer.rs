//! The DNS answer hot path in isolation: query bytes → complete response
//! bytes through `proconsul_dataplane::dns::answer::respond` (the function
//! the UDP and TCP servers call), on catalogs of 1k, 100k and 1M service
//! instances (3 instances per service, so 333k services at the top): the
//! cost should not grow with the catalog.
//!
//! * `dns_answer/service_a/<instances>`: `svc-N.service.consul A`, UDP
//!   without EDNS (3 shuffled answers), rotating over 1,024 services.
//! * `dns_answer/service_srv/<instances>`: the same names, SRV, with the
//!   targets' A and node-meta TXT in ADDITIONAL.
//! * `dns_answer/canned/<instances>`: the floor: parse the query and copy a
//!   pre-built response with the id patched (what a canned responder does).
//!
//! Before measuring, each case checks with a counting global allocator
//! that a warmed-up responder allocates nothing per answer.
//!
//! Instruction counts (reproducible on a busy machine): with
//! `DNS_ANSWER_PROFILE_ANSWERS=<n>` set, the bench skips criterion and
//! answers `n` A then `n` SRV queries over a 10,000-service catalog in
//! [`profile_a`] and [`profile_srv`]; run it under
//! `valgrind --tool=callgrind` and divide each function's inclusive
//! instruction count by `n`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proconsul_benches::agent_info;
use proconsul_dataplane::dns::answer::{respond, Outcome, Scratch, Transport};
use proconsul_dataplane::dns::wire::parse_query;
use proconsul_dataplane::dns::zone::Zone;
use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
use proconsul_shared::state::ServiceInstance;
use proconsul_shared::{Command, State};

/// Counts allocations so the bench can prove the hot path makes none.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Catalog sizes, in service instances.
const CATALOG_INSTANCES: [u64; 3] = [1_000, 100_000, 1_000_000];
/// Instances per service.
const INSTANCES_PER_SERVICE: u64 = 3;
/// Instances per node.
const INSTANCES_PER_NODE: u64 = 10;
/// Distinct services the queries rotate over.
const QUERIED_SERVICES: u64 = 1_024;
/// Answers checked for allocations after warm-up.
const ALLOCATION_CHECK_ANSWERS: usize = 10_000;
/// The catalog build must stay this fast (seconds) even at 1M instances.
const BUILD_S_MAX: u64 = 30;

fn catalog(instances: u64) -> State {
    let started = Instant::now();
    let mut state = State::default();
    for i in 0..instances {
        let node = i / INSTANCES_PER_NODE;
        let registration = CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: format!("node-{node}"),
                address: format!("10.{}.{}.{}", (node >> 16) & 0xff, (node >> 8) & 0xff, node & 0xff),
                datacenter: "dc1".into(),
                tagged_addresses: Default::default(),
                meta: [("consul-network-segment".to_string(), String::new())].into(),
            },
            skip_node_update: i % INSTANCES_PER_NODE != 0,
            service: Some(ServiceInstance {
                node: format!("node-{node}"),
                id: format!("svc-{i}"),
                service: format!("svc-{}", i / INSTANCES_PER_SERVICE),
                port: 8000 + (i % 1000) as u16,
                ..ServiceInstance::default()
            }),
            checks: Vec::new(),
        };
        state.apply_command(i + 1, &Command::CatalogRegister(registration));
    }
    let took = started.elapsed().as_secs();
    assert!(took < BUILD_S_MAX, "building {instances} instances took {took}s");
    state
}

fn query(name: &str, qtype: u16, id: u16) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p
}

fn queries(instances: u64, qtype: u16) -> Vec<Vec<u8>> {
    let services = instances / INSTANCES_PER_SERVICE;
    let step = (services / QUERIED_SERVICES).max(1);
    (0..QUERIED_SERVICES.min(services))
        .map(|i| query(&format!("svc-{}.service.consul.", i * step), qtype, i as u16))
        .collect()
}

/// Answers every query once (warm-up), then checks that answering them
/// again allocates nothing.
fn assert_no_allocation(state: &State, zone: &Zone, scratch: &mut Scratch, packets: &[Vec<u8>], out: &mut Vec<u8>) {
    for p in packets {
        assert_eq!(respond(p, Transport::Udp, state, zone, 1, scratch, out), Outcome::Send);
        assert_eq!(out[3] & 0x0f, 0, "NOERROR");
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..ALLOCATION_CHECK_ANSWERS {
        let p = &packets[i % packets.len()];
        black_box(respond(p, Transport::Udp, state, zone, 1, scratch, out));
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "{ALLOCATION_CHECK_ANSWERS} warmed-up answers allocated");
}

/// Services in the profiling catalog (the 10k).
const PROFILE_SERVICES: u64 = 10_000;
/// Most answers one profiling run may ask for.
const PROFILE_ANSWERS_MAX: usize = 10_000_000;

/// Answers `answers` queries from `packets` in turn (the callgrind unit).
#[inline(never)]
fn answer_many(
    packets: &[Vec<u8>],
    answers: usize,
    state: &State,
    zone: &Zone,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> usize {
    let mut bytes = 0;
    for i in 0..answers {
        let p = &packets[i % packets.len()];
        black_box(respond(black_box(p), Transport::Udp, state, zone, 1, scratch, out));
        bytes += out.len();
    }
    bytes
}

/// A queries for callgrind. (The two profile functions must not have
/// identical bodies: the linker would fold them into one symbol and
/// callgrind would report both runs under one name. The capacity hint
/// passed through `black_box` differs.)
#[inline(never)]
fn profile_a(packets: &[Vec<u8>], answers: usize, state: &State, zone: &Zone, scratch: &mut Scratch) -> usize {
    let mut out = Vec::with_capacity(black_box(512));
    answer_many(packets, answers, state, zone, scratch, &mut out)
}

/// SRV queries for callgrind.
#[inline(never)]
fn profile_srv(packets: &[Vec<u8>], answers: usize, state: &State, zone: &Zone, scratch: &mut Scratch) -> usize {
    let mut out = Vec::with_capacity(black_box(65_535));
    answer_many(packets, answers, state, zone, scratch, &mut out)
}

/// The `DNS_ANSWER_PROFILE_ANSWERS` mode (see the module docs).
fn profile(answers: usize) {
    assert!(
        (1..=PROFILE_ANSWERS_MAX).contains(&answers),
        "DNS_ANSWER_PROFILE_ANSWERS must be 1..={PROFILE_ANSWERS_MAX}"
    );
    let zone = Zone::from_agent(&agent_info());
    let instances = PROFILE_SERVICES * INSTANCES_PER_SERVICE;
    let state = catalog(instances);
    let mut scratch = Scratch::with_seed(7);
    let a = queries(instances, 1);
    let srv = queries(instances, 33);
    // Warm the service cache so only steady-state answers are counted.
    let mut out = Vec::with_capacity(65_535);
    assert_no_allocation(&state, &zone, &mut scratch, &a, &mut out);
    assert_no_allocation(&state, &zone, &mut scratch, &srv, &mut out);
    let a_bytes = profile_a(&a, answers, &state, &zone, &mut scratch);
    let srv_bytes = profile_srv(&srv, answers, &state, &zone, &mut scratch);
    println!("profiled {answers} A answers ({a_bytes} bytes) and {answers} SRV answers ({srv_bytes} bytes)");
}

fn dns_answer(c: &mut Criterion) {
    if let Ok(answers) = std::env::var("DNS_ANSWER_PROFILE_ANSWERS") {
        profile(answers.parse().expect("DNS_ANSWER_PROFILE_ANSWERS is a number"));
        return;
    }
    let mut group = c.benchmark_group("dns_answer");
    group.throughput(Throughput::Elements(1));
    let zone = Zone::from_agent(&agent_info());
    for instances in CATALOG_INSTANCES {
        let state = catalog(instances);
        let mut scratch = Scratch::with_seed(instances);
        let mut out = Vec::with_capacity(65_535);
        for (label, qtype) in [("service_a", 1u16), ("service_srv", 33u16)] {
            let packets = queries(instances, qtype);
            assert_no_allocation(&state, &zone, &mut scratch, &packets, &mut out);
            let mut next = 0usize;
            group.bench_with_input(BenchmarkId::new(label, instances), &instances, |b, _| {
                b.iter(|| {
                    next = (next + 1) % packets.len();
                    respond(
                        black_box(&packets[next]),
                        Transport::Udp,
                        &state,
                        &zone,
                        1,
                        &mut scratch,
                        &mut out,
                    );
                    black_box(out.len())
                })
            });
        }
        // The canned floor: parse, copy a ready answer, patch the id.
        let packets = queries(instances, 1);
        respond(&packets[0], Transport::Udp, &state, &zone, 1, &mut scratch, &mut out);
        let canned = out.clone();
        let mut next = 0usize;
        group.bench_with_input(BenchmarkId::new("canned", instances), &instances, |b, _| {
            b.iter(|| {
                next = (next + 1) % packets.len();
                let q = parse_query(black_box(&packets[next])).expect("a query");
                out.clear();
                out.extend_from_slice(&canned);
                out[..2].copy_from_slice(&q.header.id.to_be_bytes());
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, dns_answer);
criterion_main!(benches);
