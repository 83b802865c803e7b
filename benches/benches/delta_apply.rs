//! The replica's write path in isolation.
//!
//! * `apply_delta/kv_put_update/<keys>` and `apply_delta/kv_put_insert/<keys>`:
//!   `State::apply_delta` of a one-key `KvPut` on states of 1k, 10k, 100k
//!   and 1M keys. The state is cloned (O(1), structurally shared) before
//!   each apply, as the data plane does when it publishes a version, so the
//!   timing includes the copy-on-write path of the persistent map. The cost
//!   should be flat: O(log n) with a small constant.
//! * `apply_delta/kv_put_update_owned/<keys>`: the same update on a state
//!   the applier owns alone (no clone in between, so no copy-on-write):
//!   the floor when several deltas are applied before one publish.
//! * `delta_codec/{encode,decode}`: rkyv archive and validated decode of
//!   that delta (300-byte value).
//! * `ring/append_then_next`: one `RingWriter::append` (including the futex
//!   wake) and one `RingReader::next` (copy out) of the encoded delta.

use std::hint::black_box;
use std::os::fd::AsFd;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use proconsul_benches::{key, kv_put_delta, state_with_keys};
use proconsul_shared::limits::DELTA_RING_BYTES_MIN;
use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::ring::{ReadOutcome, RingReader, RingWriter};
use proconsul_shared::{Delta, DeltaOp, State};

/// State sizes, in keys.
const STATE_KEYS: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn apply_delta(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_delta");
    group.throughput(Throughput::Elements(1));
    for keys in STATE_KEYS {
        let state = state_with_keys(keys);
        let update = kv_put_delta(&state, &key(keys / 2));
        let insert = kv_put_delta(&state, "bench/new-key");
        for (name, delta) in [("kv_put_update", &update), ("kv_put_insert", &insert)] {
            group.bench_with_input(BenchmarkId::new(name, keys), &keys, |b, _| {
                b.iter_batched_ref(
                    || state.clone(),
                    |s: &mut State| assert!(s.apply_delta(black_box(delta))),
                    BatchSize::SmallInput,
                )
            });
        }
        let mut owned = state.clone();
        let mut delta = update.clone();
        group.bench_with_input(BenchmarkId::new("kv_put_update_owned", keys), &keys, |b, _| {
            b.iter(|| {
                delta.index += 1;
                if let DeltaOp::KvPut(entry) = &mut delta.ops[0] {
                    entry.modify_index = delta.index;
                }
                assert!(owned.apply_delta(black_box(&delta)));
            })
        });
    }
    group.finish();
}

fn delta_codec(c: &mut Criterion) {
    let state = state_with_keys(1);
    let delta = kv_put_delta(&state, &key(0));
    let encoded = delta.encode();
    let mut group = c.benchmark_group("delta_codec");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(&delta).encode()));
    group.bench_function("decode", |b| {
        b.iter(|| Delta::decode(black_box(&encoded)).expect("a valid record"))
    });
    group.finish();
}

fn ring(c: &mut Criterion) {
    let state = state_with_keys(1);
    let payload = kv_put_delta(&state, &key(0)).encode();
    let mut writer = RingWriter::create(DELTA_RING_BYTES_MIN, 1).expect("ring memfd");
    let fd = writer.region().fd().as_fd().try_clone_to_owned().expect("dup ring fd");
    let mut reader = RingReader::open(SharedRegion::from_fd(fd).expect("map ring"), 0).expect("open ring");
    let mut index = 0u64;
    let mut group = c.benchmark_group("ring");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("append_then_next", |b| {
        b.iter(|| {
            index += 1;
            writer.append(index, black_box(&payload)).expect("append");
            match reader.read_next() {
                ReadOutcome::Record { index: read } => assert_eq!(read, index),
                other => panic!("expected record {index}, got {other:?}"),
            }
            black_box(reader.payload().len())
        })
    });
    group.finish();
}

criterion_group!(benches, apply_delta, delta_codec, ring);
criterion_main!(benches);
