//! Fixtures shared by the Proconsul criterion benches: states of a given
//! size built through the real state machine, the one-key deltas applied
//! to them, and a data-plane view to render from.
//!
//! Benches live in `benches/benches/`; run them with
//! `cargo bench -p proconsul-benches --bench <name>` (see docs/BENCHMARKS.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use proconsul_dataplane::core::{LeaderStatus, View};
use proconsul_shared::agent_info::{AgentInfo, Ports};
use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::state::KvEntry;
use proconsul_shared::{Command, Delta, DeltaOp, State};

/// Value size of the KV benches: a small config value, as in PERFORMANCE.md.
pub const VALUE_BYTES: usize = 300;

/// Key number `i` (zero-padded so keys sort in number order).
pub fn key(i: u64) -> String {
    format!("bench/key-{i:08}")
}

/// A printable value of `len` bytes, different per `seed`.
pub fn value(seed: u64, len: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64: cheap, deterministic, good enough for filler bytes.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize]
        })
        .collect()
}

/// A state holding `keys` keys of [`VALUE_BYTES`], written by `KvSet`
/// commands at raft indexes 1..=keys, exactly as the control plane would.
pub fn state_with_keys(keys: u64) -> State {
    let mut state = State::default();
    for i in 0..keys {
        let command = Command::KvSet {
            key: key(i),
            value: value(i, VALUE_BYTES),
            flags: 0,
        };
        state.apply_command(i + 1, &command);
    }
    state
}

/// The delta of one `PUT` of a [`VALUE_BYTES`] value to `key`, applied at
/// the next raft index of `state`: what the ring carries for one write.
pub fn kv_put_delta(state: &State, key: &str) -> Delta {
    let index = state.index() + 1;
    let create_index = state.kv.get(key).map_or(index, |e| e.create_index);
    Delta {
        index,
        ops: vec![DeltaOp::KvPut(KvEntry {
            key: key.to_string(),
            value: value(index, VALUE_BYTES),
            flags: 0,
            lock_index: 0,
            session: None,
            create_index,
            modify_index: index,
        })],
    }
}

/// A server agent as `agent -dev` would describe itself, JSON not
/// pretty-printed (production setting).
pub fn agent_info() -> AgentInfo {
    AgentInfo {
        node_name: "bench-node".into(),
        node_id: "9a4f6b9e-6f0c-4c55-8d53-0c3b8a1f2e77".into(),
        datacenter: "dc1".into(),
        primary_datacenter: "dc1".into(),
        server: true,
        bootstrap: true,
        bootstrap_expect: 0,
        dev_mode: false,
        bind_addr: "127.0.0.1".into(),
        advertise_addr: "127.0.0.1".into(),
        client_addrs: vec!["127.0.0.1".into()],
        ports: Ports::default(),
        domain: "consul.".into(),
        revision: "bench".into(),
        build_date: "2026-01-01T00:00:00Z".into(),
        log_level: "INFO".into(),
        pretty_json: false,
        enable_script_checks: false,
        data_dir: "/tmp/proconsul-bench".into(),
        node_meta: BTreeMap::new(),
        default_query_time_ms: 300_000,
        max_query_time_ms: 600_000,
        dns: Default::default(),
    }
}

/// The data-plane view over `state`, with a known leader.
pub fn view_of(state: State) -> View {
    View {
        state: Arc::new(state),
        agent: Arc::new(agent_info()),
        cluster: Arc::new(ClusterStatus {
            leader: Some("127.0.0.1:8300".into()),
            peers: vec!["127.0.0.1:8300".into()],
        }),
    }
}

/// A leader heard from just now.
pub fn leader() -> LeaderStatus {
    LeaderStatus {
        known_leader: true,
        last_contact_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_has_the_keys_at_their_indexes() {
        let s = state_with_keys(1_000);
        assert_eq!(s.kv.len(), 1_000);
        assert_eq!(s.index(), 1_000);
        let e = s.kv.get(&key(499)).unwrap();
        assert_eq!(e.modify_index, 500);
        assert_eq!(e.value.len(), VALUE_BYTES);
        assert_eq!(e.value, value(499, VALUE_BYTES));
    }

    #[test]
    fn put_delta_updates_or_inserts_at_the_next_index() {
        let mut s = state_with_keys(10);
        let update = kv_put_delta(&s, &key(3));
        assert_eq!(update.index, 11);
        let DeltaOp::KvPut(e) = &update.ops[0] else {
            panic!("a put")
        };
        assert_eq!((e.create_index, e.modify_index), (4, 11));
        assert!(s.apply_delta(&update));
        assert_eq!(s.kv.get(&key(3)).unwrap().modify_index, 11);
        let insert = kv_put_delta(&s, "new/key");
        assert!(s.apply_delta(&insert));
        assert_eq!(s.kv.len(), 11);
        assert!(!s.apply_delta(&insert), "an applied index is skipped");
    }

    #[test]
    fn values_are_printable_and_seeded() {
        let v = value(7, 300);
        assert_eq!(v.len(), 300);
        assert!(v.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(v, value(7, 300));
        assert_ne!(v, value(8, 300));
    }

    #[test]
    fn view_renders_a_kv_get() {
        let view = view_of(state_with_keys(3));
        let mut out = Vec::new();
        proconsul_dataplane::api::kv::render_get_response(&view, leader(), &key(1), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\"Key\":\"bench/key-00000001\""), "{text}");
    }
}
