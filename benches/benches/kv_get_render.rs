//! The data plane's KV GET hot path in isolation: view + key → the complete
//! HTTP/1.1 response bytes, through
//! `proconsul_dataplane::api::kv::render_get_response` (the same function
//! the server calls), for a 300-byte value, on states of 10k and 1M keys
//! (lookup cost should not grow with the state). Also the missing-key 404,
//! which must carry the index headers.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proconsul_benches::{key, leader, state_with_keys, view_of};
use proconsul_dataplane::api::kv::render_get_response;

/// State sizes, in keys.
const STATE_KEYS: [u64; 2] = [10_000, 1_000_000];

fn kv_get_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv_get_render");
    group.throughput(Throughput::Elements(1));
    for keys in STATE_KEYS {
        let view = view_of(state_with_keys(keys));
        let hit = key(keys / 2);
        let mut out = Vec::with_capacity(4096);
        render_get_response(&view, leader(), &hit, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "the bench renders a hit");
        group.bench_with_input(BenchmarkId::new("value_300b", keys), &keys, |b, _| {
            b.iter(|| {
                out.clear();
                render_get_response(&view, leader(), black_box(&hit), &mut out);
                black_box(out.len())
            })
        });
        out.clear();
        render_get_response(&view, leader(), "bench/missing", &mut out);
        assert!(out.starts_with(b"HTTP/1.1 404"), "the bench renders a miss");
        group.bench_with_input(BenchmarkId::new("missing_key", keys), &keys, |b, _| {
            b.iter(|| {
                out.clear();
                render_get_response(&view, leader(), black_box("bench/missing"), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kv_get_render);
criterion_main!(benches);
