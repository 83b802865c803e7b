//! Raft membership follows gossip for servers that depart on purpose: when
//! a server member has left (a graceful leave, or `force-leave` of a failed
//! one), the leader removes it from the raft configuration, and so from
//! `/v1/status/peers`. A failed server stays (Consul removes dead servers
//! only with autopilot's `CleanupDeadServers`, which is not implemented).
//!
//! [`departed_servers`] decides (pure); [`remove_departed_servers`] runs it
//! on the leader, from the reconciler's loop.
//!
//! A server that leaves gracefully does not wait for that: like Consul's
//! leave, it first has itself removed from the raft configuration (a
//! leader hands leadership over first), then leaves gossip, so the servers
//! that stay keep their quorum even when only one stays ([`leave_raft`];
//! [`self_removal`] decides, pure).

use std::time::Duration;

use crate::gossip::{Member, MemberStatus};
use crate::raft::operator::{OperatorOp, OperatorRequest, PeerSelector, RaftServerView};
use crate::raft::types::NodeId;
use crate::raft::RaftHandle;

/// Most servers removed in one round (the next round removes more).
pub const DEPARTED_REMOVALS_PER_ROUND_MAX: usize = 1;
/// Longest wait of a leaving server for its own removal from the raft
/// configuration (a leadership transfer included); it leaves gossip
/// anyway after that, and the leader removes it later.
pub const LEAVE_RAFT_REMOVAL_WAIT_MS_MAX: u64 = 10_000;

/// The removal a leaving server `own_id` asks for: itself, unless it is
/// not in the configuration or is its last voter (a lone server just
/// stops). Pure.
pub fn self_removal(servers: &[RaftServerView], own_id: NodeId) -> Option<PeerSelector> {
    let own = servers.iter().find(|s| s.node_id == own_id)?;
    let voters = servers.iter().filter(|s| s.voter).count();
    if own.voter && voters <= 1 {
        return None;
    }
    Some(PeerSelector::Id {
        id: own_id,
        text: format!("{own_id:016x}"),
    })
}

/// A leaving server's first step: asks the leader (itself included) to
/// remove it from the raft configuration, within
/// [`LEAVE_RAFT_REMOVAL_WAIT_MS_MAX`]. Failures are logged, never fatal:
/// the leave goes on.
pub async fn leave_raft(raft: &RaftHandle) {
    let operator = raft.operator();
    let own_id = operator.node_id();
    let Some(selector) = self_removal(&operator.configuration().servers, own_id) else {
        return;
    };
    let request = OperatorRequest::new(OperatorOp::RemovePeer(selector));
    let wait = Duration::from_millis(LEAVE_RAFT_REMOVAL_WAIT_MS_MAX);
    match tokio::time::timeout(wait, operator.execute(request)).await {
        Ok(Ok(_)) => tracing::info!(target: "agent.server", "left the raft configuration"),
        Ok(Err(e)) => tracing::warn!(target: "agent.server", "leaving the raft configuration failed: {}", e.message),
        Err(_) => tracing::warn!(target: "agent.server",
            "leaving the raft configuration did not finish within {LEAVE_RAFT_REMOVAL_WAIT_MS_MAX} ms"),
    }
}

/// The raft address (`ip:port`) a server member announces, if it is one.
fn raft_addr(m: &Member) -> Option<String> {
    if m.tags.get("role").map(String::as_str) != Some("consul") {
        return None;
    }
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    Some(std::net::SocketAddr::new(m.addr, port).to_string())
}

/// The servers of the raft configuration to remove: those whose gossip
/// member has left, while no other member alive at the same address took
/// their place. Never the leader (`leader_id`), never the last voter, at
/// most [`DEPARTED_REMOVALS_PER_ROUND_MAX`]. Pure.
pub fn departed_servers(members: &[Member], servers: &[RaftServerView], leader_id: NodeId) -> Vec<RaftServerView> {
    let mut voters_left = servers.iter().filter(|s| s.voter).count();
    let mut removals = Vec::new();
    for s in servers {
        if s.node_id == leader_id || removals.len() >= DEPARTED_REMOVALS_PER_ROUND_MAX {
            continue;
        }
        let at_addr: Vec<&Member> = members
            .iter()
            .filter(|m| raft_addr(m).as_deref() == Some(s.addr.as_str()))
            .collect();
        let left = at_addr.iter().any(|m| m.status == MemberStatus::Left);
        let replaced = at_addr
            .iter()
            .any(|m| matches!(m.status, MemberStatus::Alive | MemberStatus::Leaving));
        if !left || replaced {
            continue;
        }
        if s.voter {
            if voters_left <= 1 {
                continue;
            }
            voters_left -= 1;
        }
        removals.push(s.clone());
    }
    removals
}

/// On the leader: removes the servers [`departed_servers`] names. Others
/// do nothing.
pub async fn remove_departed_servers(members: &[Member], raft: &RaftHandle) {
    if !raft.is_leader() {
        return;
    }
    let operator = raft.operator();
    let configuration = operator.configuration();
    for server in departed_servers(members, &configuration.servers, operator.node_id()) {
        match operator.remove_peer(&PeerSelector::Address(server.addr.clone())).await {
            Ok(()) => tracing::info!(target: "agent.leader", addr = %server.addr,
                "removed a server that left the cluster from the raft configuration"),
            Err(e) => tracing::warn!(target: "agent.leader", addr = %server.addr,
                "removing a departed server from raft failed: {}", e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn member(name: &str, ip: u8, role: &str, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, ip)),
            port: 8301,
            tags: BTreeMap::from([
                ("role".to_string(), role.to_string()),
                ("port".to_string(), "8300".to_string()),
            ]),
            status,
        }
    }

    fn server(id: NodeId, ip: u8, voter: bool) -> RaftServerView {
        RaftServerView {
            node_id: id,
            addr: format!("127.0.0.{ip}:8300"),
            voter,
            leader: id == 1,
            last_index: None,
        }
    }

    #[test]
    fn a_server_that_left_is_removed_but_a_failed_one_stays() {
        let servers = [server(1, 1, true), server(2, 2, true), server(3, 3, true)];
        let members = [
            member("s1", 1, "consul", MemberStatus::Alive),
            member("s2", 2, "consul", MemberStatus::Failed),
            member("s3", 3, "consul", MemberStatus::Left),
        ];
        let gone = departed_servers(&members, &servers, 1);
        assert_eq!(gone.iter().map(|s| s.node_id).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn never_the_leader_nor_the_last_voter_nor_a_replaced_address() {
        let members = [member("s1", 1, "consul", MemberStatus::Left)];
        assert!(
            departed_servers(&members, &[server(1, 1, true)], 1).is_empty(),
            "the leader"
        );
        let alone = [server(2, 1, true), server(9, 9, false)];
        assert!(departed_servers(&members, &alone, 7).is_empty(), "the last voter");
        let replaced = [
            member("old", 2, "consul", MemberStatus::Left),
            member("new", 2, "consul", MemberStatus::Alive),
        ];
        let servers = [server(1, 1, true), server(2, 2, true)];
        assert!(
            departed_servers(&replaced, &servers, 1).is_empty(),
            "a new server answers there"
        );
        let client_left = [member("c", 2, "node", MemberStatus::Left)];
        assert!(
            departed_servers(&client_left, &servers, 1).is_empty(),
            "not a server member"
        );
        assert!(departed_servers(&[], &servers, 1).is_empty(), "unknown to gossip: kept");
    }

    #[test]
    fn a_leaving_server_asks_to_remove_itself_unless_it_is_the_last_voter() {
        let three = [server(1, 1, true), server(2, 2, true), server(3, 3, true)];
        assert_eq!(
            self_removal(&three, 2),
            Some(PeerSelector::Id {
                id: 2,
                text: "0000000000000002".into()
            })
        );
        assert!(
            self_removal(&three, 1).is_some(),
            "the leader too (it hands over first)"
        );
        assert_eq!(self_removal(&three, 9), None, "not in the configuration");
        let alone = [server(1, 1, true), server(5, 5, false)];
        assert_eq!(self_removal(&alone, 1), None, "the last voter just stops");
        assert!(self_removal(&alone, 5).is_some(), "a learner may always go");
    }

    #[test]
    fn one_removal_per_round_and_learners_go_too() {
        let servers = [server(1, 1, true), server(2, 2, false), server(3, 3, true)];
        let members = [
            member("s2", 2, "consul", MemberStatus::Left),
            member("s3", 3, "consul", MemberStatus::Left),
        ];
        let gone = departed_servers(&members, &servers, 1);
        assert_eq!(gone.len(), DEPARTED_REMOVALS_PER_ROUND_MAX);
        assert_eq!(gone[0].node_id, 2);
    }
}
