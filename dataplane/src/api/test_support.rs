//! Fixtures for handler tests: an agent, a view built by applying real
//! commands to a `State`, and request builders.

use std::collections::BTreeMap;
use std::sync::Arc;

use proconsul_shared::agent_info::{AgentInfo, Ports};
use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::{Command, State};

use super::request::ApiRequest;
use crate::core::{LeaderStatus, View};
use crate::http::query::Query;

/// A dev-like server agent in `dc1`.
pub fn agent() -> AgentInfo {
    AgentInfo {
        node_name: "node1".into(),
        node_id: "5b3bde2c-0e0a-4f3c-9c58-2f2a4d6e7f80".into(),
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
        revision: "abc123".into(),
        build_date: "2025-01-01T00:00:00Z".into(),
        log_level: "INFO".into(),
        pretty_json: false,
        enable_script_checks: false,
        data_dir: "/tmp/proconsul".into(),
        node_meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        default_query_time_ms: 300_000,
        max_query_time_ms: 600_000,
        dns: Default::default(),
    }
}

/// A known leader, just heard from.
pub fn leader() -> LeaderStatus {
    LeaderStatus {
        known_leader: true,
        last_contact_ms: 0,
    }
}

/// A state built by applying `commands` at raft indexes 1, 2, ...
pub fn state_with(commands: &[Command]) -> State {
    let mut state = State::default();
    for (i, command) in commands.iter().enumerate() {
        state.apply_command(i as u64 + 1, command);
    }
    state
}

/// A view over `state_with(commands)` with a leader and one peer.
pub fn view_with(commands: &[Command]) -> View {
    view_of(state_with(commands), agent())
}

/// A view over `state` for `agent`.
pub fn view_of(state: State, agent: AgentInfo) -> View {
    View {
        state: Arc::new(state),
        agent: Arc::new(agent),
        cluster: Arc::new(ClusterStatus {
            leader: Some("127.0.0.1:8300".into()),
            peers: vec!["127.0.0.1:8300".into()],
        }),
    }
}

/// `PUT /v1/kv/<key>` of `value`.
pub fn set(key: &str, value: &[u8]) -> Command {
    Command::KvSet {
        key: key.into(),
        value: value.to_vec(),
        flags: 0,
    }
}

/// A request; `query` is the raw query string.
pub fn request<'a>(method: &'a str, path: &'a str, query: &'a str, body: &'a [u8]) -> ApiRequest<'a> {
    ApiRequest::new(method, path, Query::parse(query).expect("test query parses"), body)
}

/// Whether applying `command` to `state` wakes a read parked on `watch`
/// (the per-core registry and change set, as a delta reaches a core).
pub fn wakes(watch: &crate::blocking::WatchSet, state: &State, command: &Command) -> bool {
    let mut registry = crate::blocking::WatchRegistry::new(4);
    let parked = registry.register(watch, ()).expect("room for one");
    let mut next = state.clone();
    let (_, delta) = next.apply_command(state.index() + 1, command);
    let mut changes = crate::blocking::ChangeSet::default();
    changes.record_delta(&delta);
    let mut hits = Vec::new();
    registry.affected(&changes, &mut hits);
    hits.contains(&parked)
}
