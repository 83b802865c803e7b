//! The agent's part in a cluster: gossip membership, finding the servers,
//! and (on the raft leader) keeping the catalog in line with membership.
//!
//! * [`member_tags`]: the serf tags this agent announces (pure).
//! * [`server_rpc_addrs`]: the servers' raft addresses from the member list
//!   (pure); a task keeps a `watch` of them for the raft join loop, a
//!   client agent's state stream and its forwarded writes.
//! * [`reconcile`]: what the leader writes so that each member's node and
//!   `serfHealth` check match its gossip status (pure); [`run_reconciler`]
//!   runs it on membership events and every [`RECONCILE_INTERVAL_MS`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
use proconsul_shared::state::{CheckStatus, HealthCheck};
use proconsul_shared::{Command, State};
use tokio::sync::watch;

use super::local::sync::{serf_health, SERF_HEALTH_CHECK_ID};
use super::shutdown::Shutdown;
use crate::client_replica::ReplicaStatus;
use crate::config::Config;
use crate::gossip::{Gossip, GossipOptions, GossipTimings, Member, MemberStatus, Pool};
use crate::publish::Publisher;
use crate::raft::transport::PeerFaults;
use crate::raft::RaftHandle;

/// Pause between reconcile rounds when nothing happens.
pub const RECONCILE_INTERVAL_MS: u64 = 1_000;
/// Most catalog writes one reconcile round issues.
pub const RECONCILE_WRITES_MAX: usize = 128;
/// `serfHealth` output of a member that stopped answering.
pub const SERF_HEALTH_FAILED_OUTPUT: &str = "Agent not live or unreachable";

/// What the tags are built from.
#[derive(Debug, Clone)]
pub struct TagInputs<'a> {
    pub server: bool,
    pub datacenter: &'a str,
    pub node_id: &'a str,
    pub server_port: u16,
    pub bootstrap_expect: u32,
    pub bootstrap: bool,
    pub build: &'a str,
}

/// The serf tags Consul agents announce (clients read `role`, `dc`,
/// `build`, `vsn`, `port`, `id`; `consul members` prints them).
pub fn member_tags(t: &TagInputs<'_>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        ("role".to_string(), if t.server { "consul" } else { "node" }.to_string()),
        ("dc".to_string(), t.datacenter.to_string()),
        ("segment".to_string(), String::new()),
        ("id".to_string(), t.node_id.to_string()),
        ("build".to_string(), t.build.to_string()),
        ("vsn".to_string(), "2".to_string()),
        ("vsn_min".to_string(), "2".to_string()),
        ("vsn_max".to_string(), "3".to_string()),
    ]);
    if t.server {
        tags.insert("port".into(), t.server_port.to_string());
        tags.insert("raft_vsn".into(), "3".into());
        if t.bootstrap_expect > 0 {
            tags.insert("expect".into(), t.bootstrap_expect.to_string());
        }
        if t.bootstrap {
            tags.insert("bootstrap".into(), "1".into());
        }
    }
    tags
}

/// The raft addresses (`ip:port`) of the alive servers of `datacenter`,
/// sorted.
pub fn server_rpc_addrs(members: &[Member], datacenter: &str) -> Vec<String> {
    let mut addrs: Vec<String> = members
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(datacenter))
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(std::net::SocketAddr::new(m.addr, port).to_string())
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Keeps `servers` equal to the alive servers in the member list.
pub async fn track_servers(
    gossip: Gossip,
    datacenter: String,
    servers: watch::Sender<Vec<String>>,
    shutdown: Shutdown,
) {
    let mut events = gossip.subscribe();
    loop {
        let now = server_rpc_addrs(&gossip.members(), &datacenter);
        servers.send_if_modified(|old| {
            if *old == now {
                false
            } else {
                *old = now;
                true
            }
        });
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(RECONCILE_INTERVAL_MS)) => {}
        }
    }
}

/// The writes that make the catalog agree with the member list: an alive
/// member's node exists with `serfHealth` passing; a failed one's
/// `serfHealth` is critical; a member that left, or that gossip forgot,
/// is deregistered (a node with a `serfHealth` check and no member).
/// Members of other datacenters are ignored. Pure.
pub fn reconcile(members: &[Member], state: &State, datacenter: &str) -> Vec<Command> {
    let mut commands = Vec::new();
    for m in members {
        if m.tags.get("dc").map(String::as_str) != Some(datacenter) {
            continue;
        }
        match m.status {
            MemberStatus::Alive | MemberStatus::Leaving => {
                commands.extend(ensure_health(m, state, datacenter, serf_health(&m.name)));
            }
            MemberStatus::Failed => {
                let mut check = serf_health(&m.name);
                check.status = CheckStatus::Critical;
                check.output = SERF_HEALTH_FAILED_OUTPUT.into();
                commands.extend(ensure_health(m, state, datacenter, check));
            }
            MemberStatus::Left => {
                if state.nodes.get(&m.name).is_some() {
                    commands.push(deregister(&m.name));
                }
            }
        }
    }
    // Nodes gossip no longer knows at all (reaped or pruned).
    for check in state.catalog.checks() {
        if check.check_id == SERF_HEALTH_CHECK_ID && !members.iter().any(|m| m.name.eq_ignore_ascii_case(&check.node)) {
            commands.push(deregister(&check.node));
        }
    }
    commands.truncate(RECONCILE_WRITES_MAX);
    commands
}

fn ensure_health(m: &Member, state: &State, datacenter: &str, wanted: HealthCheck) -> Option<Command> {
    let address = m.addr.to_string();
    let node_ok = state.nodes.get(&m.name).is_some_and(|n| n.address == address);
    let check_ok = state
        .catalog
        .check(&m.name, SERF_HEALTH_CHECK_ID)
        .is_some_and(|c| c.status == wanted.status && c.output == wanted.output && c.name == wanted.name);
    if node_ok && check_ok {
        return None;
    }
    let existing = state.nodes.get(&m.name);
    let node = NodeRegistration {
        id: existing
            .map(|n| n.id.clone())
            .or_else(|| m.tags.get("id").cloned())
            .unwrap_or_default(),
        node: m.name.clone(),
        address,
        datacenter: datacenter.to_string(),
        tagged_addresses: existing.map(|n| n.tagged_addresses.clone()).unwrap_or_default(),
        meta: existing.map(|n| n.meta.clone()).unwrap_or_default(),
    };
    Some(Command::CatalogRegister(CatalogRegistration {
        node,
        // The member's own agent owns its node's meta and tagged addresses:
        // a missing node is created only if still missing when this applies
        // (its agent may register it first), and an existing one is
        // rewritten only when its address moved.
        skip_node_update: existing.is_none() || node_ok,
        service: None,
        checks: vec![wanted],
    }))
}

fn deregister(node: &str) -> Command {
    Command::CatalogDeregister {
        node: node.to_string(),
        service_id: None,
        check_id: None,
    }
}

/// On the leader, applies [`reconcile`] on every membership event and every
/// [`RECONCILE_INTERVAL_MS`]. Other servers only wait.
pub async fn run_reconciler(
    gossip: Gossip,
    raft: RaftHandle,
    publisher: Arc<Publisher>,
    datacenter: String,
    shutdown: Shutdown,
) {
    let mut events = gossip.subscribe();
    loop {
        if raft.is_leader() {
            for command in reconcile(&gossip.members(), &publisher.state(), &datacenter) {
                if let Err(e) = raft.write(command).await {
                    tracing::warn!(target: "agent.leader", "reconciling a member failed: {}", e.message);
                    break;
                }
            }
            super::server_membership::remove_departed_servers(&gossip.members(), &raft).await;
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(RECONCILE_INTERVAL_MS)) => {}
        }
    }
}

/// What the agent keeps of its cluster links: gossip, the servers it
/// knows, and (client agents) the state stream's status.
#[derive(Clone)]
pub struct ClusterLink {
    /// `None` when gossip is off (`ports.serf_lan = -1`, or a `-dev` agent
    /// whose gossip port was taken).
    pub gossip: Option<Gossip>,
    /// The WAN pool (servers only; `None` on clients or with
    /// `ports.serf_wan = -1`).
    pub wan_gossip: Option<Gossip>,
    /// Raft addresses of the alive servers, from gossip.
    pub servers: watch::Receiver<Vec<String>>,
    pub faults: PeerFaults,
    /// Client agents only.
    pub replica: Option<Arc<ReplicaStatus>>,
}

impl ClusterLink {
    /// A link with no gossip and no servers (tests, single `-dev` agents
    /// without a gossip port).
    pub fn detached() -> ClusterLink {
        let (_, servers) = watch::channel(Vec::new());
        ClusterLink {
            gossip: None,
            wan_gossip: None,
            servers,
            faults: PeerFaults::default(),
            replica: None,
        }
    }
}

/// This agent's serf tags, from its configuration (a server announces the
/// same ones in the WAN pool).
pub fn agent_tags(config: &Config, node_id: &str) -> BTreeMap<String, String> {
    let build = format!("{}:proconsul", proconsul_shared::agent_info::CONSUL_COMPAT_VERSION);
    member_tags(&TagInputs {
        server: config.server,
        datacenter: &config.datacenter,
        node_id,
        server_port: config.ports.server.max(0) as u16,
        bootstrap_expect: config.bootstrap_expect,
        bootstrap: config.bootstrap,
        build: &build,
    })
}

/// What differs between starting the LAN and the WAN pool.
#[derive(Debug, Clone)]
pub struct PoolPlan {
    pub pool: Pool,
    /// On `-bind` and `-advertise`.
    pub port: u16,
    pub node_name: String,
    pub tags: BTreeMap<String, String>,
    pub join: Vec<String>,
    pub join_retry_ms: u64,
}

/// Gossip timings: fast for `-dev`, else the pool's own.
pub fn pool_timings(dev: bool, pool: Pool) -> GossipTimings {
    match (dev, pool) {
        (true, _) => GossipTimings::fast(),
        (false, Pool::Lan) => GossipTimings::lan(),
        (false, Pool::Wan) => GossipTimings::wan(),
    }
}

/// Starts one gossip pool as `plan` says. A `-dev` agent whose port is
/// taken runs without that pool (a warning); any other agent fails to
/// start.
pub async fn start_pool(config: &Config, plan: PoolPlan, faults: &PeerFaults) -> anyhow::Result<Option<Gossip>> {
    let pool = plan.pool;
    let opts = GossipOptions {
        bind: SocketAddr::new(config.bind_addr, plan.port),
        advertise: SocketAddr::new(config.advertise_addr, plan.port),
        node_name: plan.node_name,
        tags: plan.tags,
        join: plan.join,
        join_retry_ms: plan.join_retry_ms,
        timings: pool_timings(config.dev, pool),
        pool,
        faults: faults.clone(),
    };
    match Gossip::start(opts).await {
        Ok(g) => Ok(Some(g)),
        Err(e) if config.dev => {
            match pool {
                Pool::Lan => tracing::warn!(target: "agent", "gossip not started ({e:#}); this -dev agent runs alone"),
                Pool::Wan => tracing::warn!(
                    target: "agent",
                    "WAN gossip not started ({e:#}); this -dev server has no WAN pool"
                ),
            }
            Ok(None)
        }
        Err(e) => {
            let port_name = match pool {
                Pool::Lan => "LAN",
                Pool::Wan => "WAN",
            };
            Err(e.context(format!("cannot start gossip on the serf {port_name} port")))
        }
    }
}

/// Starts gossip on the serf LAN port of `-bind`, announcing the tags of
/// this agent and joining `retry_join`. A `-dev` agent whose port is taken
/// runs without gossip (a warning), any other agent fails to start.
pub async fn start_gossip(config: &Config, node_id: &str, faults: &PeerFaults) -> anyhow::Result<Option<Gossip>> {
    if config.ports.serf_lan < 0 {
        return Ok(None);
    }
    let mut tags = agent_tags(config, node_id);
    if config.server && config.ports.serf_wan >= 0 {
        // Servers of our datacenter join us in the WAN pool at this port.
        tags.insert(super::wan::WAN_JOIN_PORT_TAG.into(), config.ports.serf_wan.to_string());
    }
    let plan = PoolPlan {
        pool: Pool::Lan,
        port: config.ports.serf_lan as u16,
        node_name: config.node_name.clone(),
        tags,
        join: config.cluster.retry_join.clone(),
        join_retry_ms: config.cluster.retry_interval_ms,
    };
    start_pool(config, plan, faults).await
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    /// A member of dc1 at 127.0.0.`ip` with the tags a `role` agent announces.
    pub(in crate::agent) fn member(name: &str, ip: u8, role: &str, status: MemberStatus) -> Member {
        let mut tags = member_tags(&TagInputs {
            server: role == "consul",
            datacenter: "dc1",
            node_id: "11111111-2222-3333-4444-555555555555",
            server_port: 8300,
            bootstrap_expect: 3,
            bootstrap: false,
            build: "1.21.0:proconsul",
        });
        tags.insert("role".into(), role.into());
        Member {
            name: name.into(),
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, ip)),
            port: 8301,
            tags,
            status,
        }
    }

    fn applied(commands: &[Command], mut state: State) -> State {
        for c in commands {
            let i = state.index() + 1;
            state.apply_command(i, c);
        }
        state
    }

    #[test]
    fn tags_say_role_datacenter_and_server_port() {
        let server = member_tags(&TagInputs {
            server: true,
            datacenter: "dc1",
            node_id: "id",
            server_port: 8300,
            bootstrap_expect: 3,
            bootstrap: false,
            build: "b",
        });
        assert_eq!(server["role"], "consul");
        assert_eq!(server["port"], "8300");
        assert_eq!(server["expect"], "3");
        let client = member_tags(&TagInputs {
            server: false,
            datacenter: "dc1",
            node_id: "id",
            server_port: 8300,
            bootstrap_expect: 0,
            bootstrap: false,
            build: "b",
        });
        assert_eq!(client["role"], "node");
        assert!(!client.contains_key("port"));
        let bytes: usize = server.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes < 512, "tags fit gossip's header budget: {bytes}");
    }

    #[test]
    fn only_alive_servers_of_our_datacenter_are_servers() {
        let mut other_dc = member("s4", 4, "consul", MemberStatus::Alive);
        other_dc.tags.insert("dc".into(), "dc2".into());
        let members = vec![
            member("s2", 2, "consul", MemberStatus::Alive),
            member("s1", 1, "consul", MemberStatus::Alive),
            member("s3", 3, "consul", MemberStatus::Failed),
            member("c1", 9, "node", MemberStatus::Alive),
            other_dc,
        ];
        assert_eq!(
            server_rpc_addrs(&members, "dc1"),
            vec!["127.0.0.1:8300", "127.0.0.2:8300"]
        );
    }

    #[test]
    fn alive_members_get_a_node_and_a_passing_serf_health_once() {
        let members = vec![
            member("s1", 1, "consul", MemberStatus::Alive),
            member("c1", 9, "node", MemberStatus::Alive),
        ];
        let first = reconcile(&members, &State::default(), "dc1");
        assert_eq!(first.len(), 2);
        let state = applied(&first, State::default());
        let c1 = state.catalog.check("c1", SERF_HEALTH_CHECK_ID).unwrap();
        assert_eq!(c1.status, CheckStatus::Passing);
        assert_eq!(state.nodes.get("c1").unwrap().address, "127.0.0.9");
        assert!(reconcile(&members, &state, "dc1").is_empty(), "nothing more to do");
    }

    #[test]
    fn a_failed_member_turns_critical_and_a_left_one_is_deregistered() {
        let alive = vec![
            member("c1", 9, "node", MemberStatus::Alive),
            member("c2", 8, "node", MemberStatus::Alive),
        ];
        let state = applied(&reconcile(&alive, &State::default(), "dc1"), State::default());
        let later = vec![
            member("c1", 9, "node", MemberStatus::Failed),
            member("c2", 8, "node", MemberStatus::Left),
        ];
        let state = applied(&reconcile(&later, &state, "dc1"), state);
        let c1 = state.catalog.check("c1", SERF_HEALTH_CHECK_ID).unwrap();
        assert_eq!(
            (c1.status, c1.output.as_str()),
            (CheckStatus::Critical, SERF_HEALTH_FAILED_OUTPUT)
        );
        assert!(state.nodes.get("c2").is_none(), "left → deregistered");
        assert!(reconcile(&later, &state, "dc1").is_empty());
    }

    #[test]
    fn a_late_reconcile_never_wipes_the_meta_its_agent_registered() {
        let members = vec![member("c1", 9, "node", MemberStatus::Alive)];
        // Computed while the node was still missing...
        let late = reconcile(&members, &State::default(), "dc1");
        // ...applied after the agent registered its node with meta.
        let mut state = State::default();
        state.apply_command(
            1,
            &Command::NodeRegister(NodeRegistration {
                id: String::new(),
                node: "c1".into(),
                address: "127.0.0.9".into(),
                datacenter: "dc1".into(),
                tagged_addresses: BTreeMap::new(),
                meta: BTreeMap::from([("consul-network-segment".to_string(), String::new())]),
            }),
        );
        let state = applied(&late, state);
        assert!(state
            .nodes
            .get("c1")
            .unwrap()
            .meta
            .contains_key("consul-network-segment"));
        assert!(state.catalog.check("c1", SERF_HEALTH_CHECK_ID).is_some());
    }

    #[test]
    fn one_round_writes_at_most_reconcile_writes_max_and_the_next_round_the_rest() {
        let members: Vec<Member> = (1..=200u8)
            .map(|i| member(&format!("c{i}"), i, "node", MemberStatus::Alive))
            .collect();
        let first = reconcile(&members, &State::default(), "dc1");
        assert_eq!(first.len(), RECONCILE_WRITES_MAX);
        let state = applied(&first, State::default());
        let second = reconcile(&members, &state, "dc1");
        assert_eq!(second.len(), members.len() - RECONCILE_WRITES_MAX);
        let state = applied(&second, state);
        assert!(reconcile(&members, &state, "dc1").is_empty(), "all members reconciled");
        assert_eq!(state.catalog.checks().count(), members.len());
    }

    #[test]
    fn a_forgotten_member_is_deregistered_but_nodes_without_serf_health_stay() {
        let alive = vec![member("c1", 9, "node", MemberStatus::Alive)];
        let mut state = applied(&reconcile(&alive, &State::default(), "dc1"), State::default());
        // An external node registered through the catalog API.
        let i = state.index() + 1;
        state.apply_command(
            i,
            &Command::NodeRegister(NodeRegistration {
                id: String::new(),
                node: "external".into(),
                address: "10.1.1.1".into(),
                datacenter: "dc1".into(),
                tagged_addresses: BTreeMap::new(),
                meta: BTreeMap::new(),
            }),
        );
        let commands = reconcile(&[], &state, "dc1");
        assert_eq!(commands, vec![deregister("c1")]);
    }
}
