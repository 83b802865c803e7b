//! The `raft` section of `/v1/agent/self` `Stats`, with Consul's keys and
//! string values, built from openraft's metrics (pure).

use std::collections::BTreeMap;

use openraft::ServerState;

use super::types::{LogId, RaftMetrics};

/// Consul's name for a raft server state.
pub fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "Leader",
        ServerState::Candidate => "Candidate",
        ServerState::Follower | ServerState::Learner => "Follower",
        ServerState::Shutdown => "Shutdown",
    }
}

/// Builds the stats. `last_log` is the id of the last log entry (openraft
/// reports it in its data metrics); `last_contact_ms` is `None` when no
/// leader was ever heard from.
pub fn raft_stats(m: &RaftMetrics, last_log: Option<LogId>, last_contact_ms: Option<u64>) -> BTreeMap<String, String> {
    let index = |id: Option<LogId>| id.map(|i| i.index).unwrap_or(0);
    let term = |id: Option<LogId>| id.map(|i| i.leader_id.term).unwrap_or(0);
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let configuration: Vec<String> = membership
        .nodes()
        .map(|(id, node)| {
            let suffrage = if voters.contains(id) { "Voter" } else { "Nonvoter" };
            format!("{{Suffrage:{suffrage} ID:{id} Address:{}}}", node.addr)
        })
        .collect();
    let last_contact = match (m.state, last_contact_ms) {
        (ServerState::Leader, _) => "0".to_string(),
        (_, Some(ms)) => format!("{ms}ms"),
        (_, None) => "never".to_string(),
    };
    let applied = index(m.last_applied);
    let pairs = [
        ("applied_index", applied.to_string()),
        // openraft does not publish its commit index; applied trails it by
        // at most the entries in flight to the state machine.
        ("commit_index", applied.to_string()),
        ("fsm_pending", "0".to_string()),
        ("last_contact", last_contact),
        ("last_log_index", m.last_log_index.unwrap_or(0).to_string()),
        ("last_log_term", term(last_log).to_string()),
        ("last_snapshot_index", index(m.snapshot).to_string()),
        ("last_snapshot_term", term(m.snapshot).to_string()),
        ("latest_configuration", format!("[{}]", configuration.join(" "))),
        (
            "latest_configuration_index",
            index(*m.membership_config.log_id()).to_string(),
        ),
        ("num_peers", voters.iter().filter(|v| **v != m.id).count().to_string()),
        ("protocol_version", "3".to_string()),
        ("protocol_version_max", "3".to_string()),
        ("protocol_version_min", "0".to_string()),
        ("snapshot_version_max", "1".to_string()),
        ("snapshot_version_min", "0".to_string()),
        ("state", state_name(m.state).to_string()),
        ("term", m.current_term.to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use openraft::{BasicNode, Membership};

    use super::*;
    use crate::raft::log_mem::tests::log_id;
    use crate::raft::types::StoredMembership;

    fn leader_metrics() -> RaftMetrics {
        let nodes = BTreeMap::from([
            (1, BasicNode::new("127.0.0.1:8300")),
            (2, BasicNode::new("127.0.0.2:8300")),
            (3, BasicNode::new("127.0.0.3:8300")),
        ]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_term = 4;
        m.last_log_index = Some(42);
        m.last_applied = Some(log_id(4, 41));
        m.snapshot = Some(log_id(3, 30));
        m.membership_config = Arc::new(StoredMembership::new(Some(log_id(1, 0)), membership));
        m
    }

    #[test]
    fn leader_stats_use_consul_keys_and_values() {
        let stats = raft_stats(&leader_metrics(), Some(log_id(4, 42)), Some(5));
        let get = |k: &str| {
            stats
                .get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("missing {k}"))
        };
        assert_eq!(get("state"), "Leader");
        assert_eq!(get("term"), "4");
        assert_eq!(get("applied_index"), "41");
        assert_eq!(get("commit_index"), "41");
        assert_eq!(get("last_log_index"), "42");
        assert_eq!(get("last_log_term"), "4");
        assert_eq!(get("last_snapshot_index"), "30");
        assert_eq!(get("last_snapshot_term"), "3");
        assert_eq!(get("last_contact"), "0", "a leader reports 0");
        assert_eq!(get("num_peers"), "1", "one other voter; the learner is not a peer");
        assert_eq!(get("protocol_version_max"), "3");
        assert_eq!(get("latest_configuration_index"), "0");
        assert_eq!(
            get("latest_configuration"),
            "[{Suffrage:Voter ID:1 Address:127.0.0.1:8300} {Suffrage:Voter ID:2 Address:127.0.0.2:8300} \
             {Suffrage:Nonvoter ID:3 Address:127.0.0.3:8300}]"
        );
    }

    #[test]
    fn follower_last_contact_and_empty_node() {
        let mut m = leader_metrics();
        m.state = ServerState::Follower;
        assert_eq!(raft_stats(&m, None, Some(12))["last_contact"], "12ms");
        assert_eq!(raft_stats(&m, None, None)["last_contact"], "never");
        let fresh = raft_stats(&RaftMetrics::new_initial(7), None, None);
        assert_eq!(fresh["state"], "Follower");
        assert_eq!(fresh["applied_index"], "0");
        assert_eq!(fresh["latest_configuration"], "[]");
        assert_eq!(fresh["num_peers"], "0");
    }
}
