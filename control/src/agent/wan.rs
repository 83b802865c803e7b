//! The WAN gossip pool of a server: every server of every federated
//! datacenter, members named `<node>.<datacenter>`, on `ports.serf_wan`
//! (8302). Client agents run none.
//!
//! * [`start_wan_gossip`]: the second gossip instance, WAN timings, joining
//!   `retry_join_wan` (other datacenters' servers).
//! * [`wan_flood_targets`]: the servers of our datacenter (from the LAN
//!   pool) not yet in the WAN pool (pure); [`run_wan_flood`] joins them,
//!   as Consul floods LAN servers into the WAN pool.
//! * [`known_datacenters`]: `/v1/catalog/datacenters` from the WAN members
//!   (pure).

use std::net::SocketAddr;
use std::time::Duration;

use super::cluster::{agent_tags, start_pool, PoolPlan, RECONCILE_INTERVAL_MS};
use super::shutdown::Shutdown;
use crate::config::Config;
use crate::gossip::pool::wan_member_name;
use crate::gossip::{Gossip, Member, MemberStatus, Pool};
use crate::raft::transport::PeerFaults;

/// The LAN tag a server announces its WAN port in (Consul's name).
pub const WAN_JOIN_PORT_TAG: &str = "wan_join_port";
/// Most WAN joins one flood round tries.
pub const FLOOD_JOINS_PER_ROUND_MAX: usize = 16;
/// Most datacenters listed.
pub const DATACENTERS_MAX: usize = 1_024;

/// Starts the WAN pool on `-bind`:`ports.serf_wan` for a server (`None`
/// for a client agent or with `ports.serf_wan = -1`). A `-dev` server
/// whose port is taken runs without it (a warning).
pub async fn start_wan_gossip(config: &Config, node_id: &str, faults: &PeerFaults) -> anyhow::Result<Option<Gossip>> {
    if !config.server || config.ports.serf_wan < 0 {
        return Ok(None);
    }
    let plan = PoolPlan {
        pool: Pool::Wan,
        port: config.ports.serf_wan as u16,
        node_name: wan_member_name(&config.node_name, &config.datacenter),
        tags: agent_tags(config, node_id),
        join: config.cluster.retry_join_wan.clone(),
        join_retry_ms: config.cluster.retry_interval_wan_ms,
    };
    start_pool(config, plan, faults).await
}

/// WAN addresses (`ip:port`) of the alive servers of `datacenter` in the
/// LAN pool whose `<node>.<datacenter>` is not in the WAN pool yet, at
/// most [`FLOOD_JOINS_PER_ROUND_MAX`]. Pure.
pub fn wan_flood_targets(lan: &[Member], wan: &[Member], datacenter: &str) -> Vec<String> {
    lan.iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(datacenter))
        .filter(|m| {
            let name = wan_member_name(&m.name, datacenter);
            !wan.iter().any(|w| w.name == name)
        })
        .filter_map(|m| {
            let port: u16 = m.tags.get(WAN_JOIN_PORT_TAG)?.parse().ok()?;
            Some(SocketAddr::new(m.addr, port).to_string())
        })
        .take(FLOOD_JOINS_PER_ROUND_MAX)
        .collect()
}

/// Joins our datacenter's servers into the WAN pool as the LAN pool
/// learns them (on each LAN event and every [`RECONCILE_INTERVAL_MS`]).
pub async fn run_wan_flood(lan: Gossip, wan: Gossip, datacenter: String, shutdown: Shutdown) {
    let mut events = lan.subscribe();
    loop {
        for target in wan_flood_targets(&lan.members(), &wan.members(), &datacenter) {
            match wan.join(std::slice::from_ref(&target)).await {
                Ok(_) => tracing::info!(target: "agent.server", "Handled member join in WAN pool: {target}"),
                Err(e) => tracing::debug!(target: "agent.server", "WAN flood join {target} failed: {e}"),
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(RECONCILE_INTERVAL_MS)) => {}
        }
    }
}

/// The datacenters of the WAN members that have not left, `own` first,
/// then by name (Consul sorts by estimated round trip; there are no
/// coordinates here, and our own datacenter is the nearest). `own` is
/// listed even with no WAN pool. At most [`DATACENTERS_MAX`]. Pure.
pub fn known_datacenters(wan: &[Member], own: &str) -> Vec<String> {
    let mut others: Vec<String> = wan
        .iter()
        .filter(|m| m.status != MemberStatus::Left)
        .filter_map(|m| m.tags.get("dc").cloned())
        .filter(|dc| dc != own && !dc.is_empty())
        .collect();
    others.sort();
    others.dedup();
    let mut all = vec![own.to_string()];
    all.extend(others);
    all.truncate(DATACENTERS_MAX);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LAN member of `dc`; a server also announces its WAN port 8302.
    fn member(name: &str, ip: u8, dc: &str, role: &str, status: MemberStatus) -> Member {
        let mut m = crate::agent::cluster::tests::member(name, ip, role, status);
        m.tags.insert("dc".into(), dc.into());
        if role == "consul" {
            m.tags.insert(WAN_JOIN_PORT_TAG.into(), "8302".into());
        }
        m
    }

    #[test]
    fn flood_joins_our_alive_servers_missing_from_the_wan_pool() {
        let lan = vec![
            member("s1", 1, "dc1", "consul", MemberStatus::Alive),
            member("s2", 2, "dc1", "consul", MemberStatus::Alive),
            member("s3", 3, "dc1", "consul", MemberStatus::Failed),
            member("c1", 9, "dc1", "node", MemberStatus::Alive),
        ];
        let wan = vec![member("s1.dc1", 1, "dc1", "consul", MemberStatus::Alive)];
        assert_eq!(wan_flood_targets(&lan, &wan, "dc1"), vec!["127.0.0.2:8302"]);
        let both = vec![
            member("s1.dc1", 1, "dc1", "consul", MemberStatus::Alive),
            member("s2.dc1", 2, "dc1", "consul", MemberStatus::Failed),
        ];
        assert!(
            wan_flood_targets(&lan, &both, "dc1").is_empty(),
            "a known WAN member (even failed) is gossip's to recover"
        );
    }

    #[test]
    fn flood_needs_the_wan_port_tag_and_is_bounded() {
        let mut no_port = member("s2", 2, "dc1", "consul", MemberStatus::Alive);
        no_port.tags.remove(WAN_JOIN_PORT_TAG);
        assert!(wan_flood_targets(&[no_port], &[], "dc1").is_empty());
        let many: Vec<Member> = (0..40)
            .map(|i| member(&format!("s{i}"), i, "dc1", "consul", MemberStatus::Alive))
            .collect();
        assert_eq!(wan_flood_targets(&many, &[], "dc1").len(), FLOOD_JOINS_PER_ROUND_MAX);
        assert!(
            wan_flood_targets(&many, &[], "dc9").is_empty(),
            "other datacenters are not ours to flood"
        );
    }

    #[test]
    fn datacenters_list_ours_first_then_the_others_by_name() {
        let wan = vec![
            member("s1.dc3", 1, "dc3", "consul", MemberStatus::Alive),
            member("s1.dc1", 2, "dc1", "consul", MemberStatus::Alive),
            member("s2.dc3", 3, "dc3", "consul", MemberStatus::Failed),
            member("s1.dc2", 4, "dc2", "consul", MemberStatus::Alive),
            member("s1.dc9", 5, "dc9", "consul", MemberStatus::Left),
        ];
        assert_eq!(known_datacenters(&wan, "dc2"), vec!["dc2", "dc1", "dc3"]);
        assert_eq!(known_datacenters(&[], "dc1"), vec!["dc1"]);
    }
}
