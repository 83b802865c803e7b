//! `/v1/operator/*`: the raft configuration, peer removal, leadership
//! transfer and autopilot health. A server runs the request on its raft
//! ([`RaftOperator`], relayed to the leader when needed); a client agent
//! sends it to a server. Raft knows servers by raft id and address; this
//! agent's gossip view adds their node names, node ids and serf status.
//!
//! Paths without an endpoint answer 404, wrong methods 405 (as Consul's mux).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use proconsul_shared::ipc::messages::{ControlError, HttpAnswer};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::answer::{empty_ok, json as json_answer, method_not_allowed, not_found, query_param, text};
use super::operator_health::{
    failure_tolerance, rfc3339, server_healthy, HealthHistory, HealthInputs, HealthThresholds,
};
use crate::checks::go_text::go_duration;
use crate::gossip::{Gossip, Member, MemberStatus};
use crate::raft::operator::wire::ServerProbe;
use crate::raft::operator::{
    failed, OperatorOp, OperatorReply, OperatorRequest, PeerSelector, RaftConfigurationView, RaftOperator,
};
use crate::raft::transport::call::call;
use crate::raft::transport::wire::{PeerReply, PeerRequest};
use crate::raft::transport::PeerFaults;
use crate::raft::types::NodeId;

/// Servers a client agent tries for one request before giving up.
pub const OPERATOR_SERVERS_TRIED_MAX: usize = 3;
/// Longest wait for a server's answer to a client agent's request.
pub const OPERATOR_CLIENT_WAIT_MS_MAX: u64 = 20_000;
/// Consul's text when neither `?id` nor `?address` is given.
pub const PEER_SELECTOR_MISSING: &str =
    "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove";
/// Consul's text when both are given.
pub const PEER_SELECTOR_BOTH: &str = "Must specify only one of ?id or ?address";

/// What the operator endpoints reach.
pub struct OperatorAccess<'a> {
    /// This server's raft (`None` on a client agent).
    pub raft: Option<RaftOperator>,
    /// Raft addresses of the alive servers (a client agent's way in).
    pub servers: &'a watch::Receiver<Vec<String>>,
    pub faults: &'a PeerFaults,
    pub gossip: Option<&'a Gossip>,
    pub pretty: bool,
}

impl OperatorAccess<'_> {
    /// Runs one request here (a server) or on a server (a client agent).
    async fn execute(&self, op: OperatorOp) -> Result<OperatorReply, ControlError> {
        match &self.raft {
            Some(raft) => raft.execute(OperatorRequest::new(op)).await,
            None => self.execute_on_a_server(op).await,
        }
    }

    /// A client agent: the servers in turn (at most
    /// [`OPERATOR_SERVERS_TRIED_MAX`]) until one answers; a server's answer
    /// is final, only an unreachable server moves on to the next.
    async fn execute_on_a_server(&self, op: OperatorOp) -> Result<OperatorReply, ControlError> {
        let list = self.servers.borrow().clone();
        if list.is_empty() {
            return Err(failed("No known Consul servers"));
        }
        let wait = Duration::from_millis(OPERATOR_CLIENT_WAIT_MS_MAX);
        let req = PeerRequest::Operator(OperatorRequest::new(op));
        let mut last_error = String::new();
        for addr in list.iter().take(OPERATOR_SERVERS_TRIED_MAX) {
            match call(addr, &req, wait, self.faults).await {
                Ok(PeerReply::Operator(answer)) => return answer,
                Ok(PeerReply::Refused(why)) => last_error = format!("{addr} refused: {why}"),
                Ok(other) => last_error = format!("{addr}: unexpected reply {other:?}"),
                Err(e) => last_error = e,
            }
        }
        Err(failed(format!(
            "rpc error making call: no server answered: {last_error}"
        )))
    }

    fn members(&self) -> Vec<Member> {
        self.gossip.map(Gossip::members).unwrap_or_default()
    }
}

const GET: &str = "OPTIONS,GET";
const POST: &str = "OPTIONS,POST";
const DELETE: &str = "OPTIONS,DELETE";

/// The endpoints under `/v1/operator/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorRoute {
    RaftConfiguration,
    RaftPeer,
    TransferLeader,
    AutopilotHealth,
}

/// The endpoint for the path after `/v1/operator/`, with its methods.
pub fn route(rest: &str) -> Option<(OperatorRoute, &'static str)> {
    match rest {
        "raft/configuration" => Some((OperatorRoute::RaftConfiguration, GET)),
        "raft/peer" => Some((OperatorRoute::RaftPeer, DELETE)),
        "raft/transfer-leader" => Some((OperatorRoute::TransferLeader, POST)),
        "autopilot/health" => Some((OperatorRoute::AutopilotHealth, GET)),
        _ => None,
    }
}

/// Answers one `/v1/operator/*` request.
pub async fn handle(access: &OperatorAccess<'_>, method: &str, path: &str, query: &str) -> HttpAnswer {
    let Some((route, allow)) = path.strip_prefix("/v1/operator/").and_then(route) else {
        return not_found();
    };
    if method == "OPTIONS" || !allow.split(',').any(|m| m == method) {
        return method_not_allowed(method, allow);
    }
    let pretty = access.pretty || query_param(query, "pretty").is_some();
    match route {
        OperatorRoute::RaftConfiguration => {
            let stale = query_param(query, "stale").is_some();
            match access.execute(OperatorOp::Configuration { stale }).await {
                Ok(OperatorReply::Configuration(view)) => {
                    json_answer(200, &configuration_json(&view, &access.members()), pretty)
                }
                other => error_answer(other),
            }
        }
        OperatorRoute::RaftPeer => {
            let selector = match peer_selector(query, &access.members()) {
                Ok(s) => s,
                Err(answer) => return answer,
            };
            match access.execute(OperatorOp::RemovePeer(selector)).await {
                Ok(OperatorReply::Done) => empty_ok(),
                other => error_answer(other),
            }
        }
        OperatorRoute::TransferLeader => {
            let target = match query_param(query, "id").filter(|id| !id.is_empty()) {
                None => None,
                Some(id) => match node_id_of(&id, &access.members()) {
                    Some(n) => Some(n),
                    None => return text(500, format!("Failed to transfer Leader: cannot find peer {id:?}")),
                },
            };
            match access.execute(OperatorOp::TransferLeader { target }).await {
                Ok(OperatorReply::Leader(_)) => json_answer(200, &json!({ "Success": true }), pretty),
                other => error_answer(other),
            }
        }
        OperatorRoute::AutopilotHealth => match access.execute(OperatorOp::Health).await {
            Ok(OperatorReply::Health(probes)) => {
                let (healthy, body) = health_json(
                    &probes,
                    &access.members(),
                    &HealthThresholds::default(),
                    health_history(),
                    SystemTime::now(),
                );
                json_answer(if healthy { 200 } else { 429 }, &body, pretty)
            }
            other => error_answer(other),
        },
    }
}

fn error_answer(reply: Result<OperatorReply, ControlError>) -> HttpAnswer {
    match reply {
        Err(e) => text(e.status, e.message),
        Ok(other) => text(500, format!("unexpected operator reply {other:?}")),
    }
}

fn health_history() -> &'static HealthHistory {
    static HISTORY: OnceLock<HealthHistory> = OnceLock::new();
    HISTORY.get_or_init(HealthHistory::default)
}

/// The removal's target from `?id=` or `?address=`, or Consul's 400.
pub fn peer_selector(query: &str, members: &[Member]) -> Result<PeerSelector, HttpAnswer> {
    match (query_param(query, "id"), query_param(query, "address")) {
        (None, None) => Err(text(400, PEER_SELECTOR_MISSING)),
        (Some(_), Some(_)) => Err(text(400, PEER_SELECTOR_BOTH)),
        (None, Some(address)) => Ok(PeerSelector::Address(address)),
        (Some(id), None) => Ok(match node_id_of(&id, members) {
            Some(n) => PeerSelector::Id { id: n, text: id },
            None => PeerSelector::UnknownId(id),
        }),
    }
}

/// The raft id a server's `ID` names: a node UUID (as `/v1/agent/self`
/// and gossip show it), or the 16 hex digits shown for a server gossip
/// does not know. Pure.
pub fn node_id_of(id: &str, members: &[Member]) -> Option<NodeId> {
    let known = members
        .iter()
        .any(|m| m.tags.get("id").is_some_and(|t| t.eq_ignore_ascii_case(id)));
    if known || uuid::Uuid::parse_str(id).is_ok() {
        return Some(crate::agent::raft_node_id(id));
    }
    if id.len() == 16 {
        return u64::from_str_radix(id, 16).ok().filter(|n| *n != 0);
    }
    None
}

/// What gossip tells of the server at raft address `addr`.
struct ServerIdentity {
    id: String,
    name: String,
    serf_status: MemberStatus,
    known: bool,
    version: String,
}

fn identity(node_id: NodeId, addr: &str, members: &[Member]) -> ServerIdentity {
    let member = members.iter().find(|m| {
        m.tags.get("role").map(String::as_str) == Some("consul")
            && m.tags
                .get("port")
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|port| std::net::SocketAddr::new(m.addr, port).to_string() == addr)
    });
    match member {
        Some(m) => ServerIdentity {
            id: m.tags.get("id").cloned().unwrap_or_else(|| format!("{node_id:016x}")),
            name: m.name.clone(),
            serf_status: m.status,
            known: true,
            version: m
                .tags
                .get("build")
                .map(|b| b.split(':').next().unwrap_or_default().to_string())
                .unwrap_or_default(),
        },
        None => ServerIdentity {
            id: format!("{node_id:016x}"),
            name: String::new(),
            serf_status: MemberStatus::Failed,
            known: false,
            version: String::new(),
        },
    }
}

/// `GET /v1/operator/raft/configuration` in Consul's shape. Pure.
pub fn configuration_json(view: &RaftConfigurationView, members: &[Member]) -> Value {
    let servers: Vec<Value> = view
        .servers
        .iter()
        .map(|s| {
            let who = identity(s.node_id, &s.addr, members);
            json!({
                "ID": who.id,
                "Node": who.name,
                "Address": s.addr,
                "Leader": s.leader,
                "ProtocolVersion": "3",
                "Voter": s.voter,
                "LastIndex": s.last_index.unwrap_or(0),
            })
        })
        .collect();
    json!({ "Servers": servers, "Index": view.index })
}

/// `GET /v1/operator/autopilot/health` in Consul's shape, and whether the
/// whole cluster is healthy. Records each server's health in `history`.
pub fn health_json(
    probes: &[ServerProbe],
    members: &[Member],
    thresholds: &HealthThresholds,
    history: &HealthHistory,
    now: SystemTime,
) -> (bool, Value) {
    let leader_last_index = probes
        .iter()
        .find(|p| p.server.leader)
        .and_then(|p| p.stats.map(|s| s.last_index))
        .unwrap_or(0);
    let mut voters = 0;
    let mut healthy_voters = 0;
    let mut all_healthy = true;
    let mut servers = Vec::with_capacity(probes.len());
    for p in probes {
        let who = identity(p.server.node_id, &p.server.addr, members);
        let stats = p.stats;
        let healthy = server_healthy(
            &HealthInputs {
                serf_alive: who.known && who.serf_status == MemberStatus::Alive,
                last_contact_ms: p.last_contact_ms,
                knows_leader: stats.is_some_and(|s| s.knows_leader),
                last_index: stats.map_or(0, |s| s.last_index),
                leader_last_index,
            },
            thresholds,
        );
        all_healthy &= healthy;
        if p.server.voter {
            voters += 1;
            healthy_voters += usize::from(healthy);
        }
        let since = history.stable_since(p.server.node_id, healthy, now);
        servers.push(json!({
            "ID": who.id,
            "Name": who.name,
            "Address": p.server.addr,
            "SerfStatus": if who.known { who.serf_status.as_str() } else { "none" },
            "Version": who.version,
            "Leader": p.server.leader,
            "LastContact": p.last_contact_ms.map_or("-1ns".to_string(), |ms| go_duration(Duration::from_millis(ms))),
            "LastTerm": stats.map_or(0, |s| s.last_term),
            "LastIndex": stats.map_or(0, |s| s.last_index),
            "Healthy": healthy,
            "Voter": p.server.voter,
            "StableSince": rfc3339(since),
        }));
    }
    let ids: Vec<NodeId> = probes.iter().map(|p| p.server.node_id).collect();
    history.retain(&ids);
    let healthy = all_healthy && !probes.is_empty();
    let body = json!({
        "Healthy": healthy,
        "FailureTolerance": failure_tolerance(voters, healthy_voters),
        "Servers": servers,
    });
    (healthy, body)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::raft::operator::wire::{RaftServerView, ServerStats};

    const UUID_1: &str = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";

    fn server_member(name: &str, ip: u8, id: &str, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, ip)),
            port: 8301,
            tags: BTreeMap::from([
                ("role".to_string(), "consul".to_string()),
                ("port".to_string(), "8300".to_string()),
                ("id".to_string(), id.to_string()),
                ("build".to_string(), "1.21.0:proconsul".to_string()),
            ]),
            status,
        }
    }

    fn view(id: NodeId, ip: u8, leader: bool) -> RaftServerView {
        RaftServerView {
            node_id: id,
            addr: format!("127.0.0.{ip}:8300"),
            voter: true,
            leader,
            last_index: Some(40),
        }
    }

    fn probe(id: NodeId, ip: u8, leader: bool, answered: bool) -> ServerProbe {
        ServerProbe {
            server: view(id, ip, leader),
            stats: answered.then_some(ServerStats {
                last_index: 40,
                last_term: 2,
                knows_leader: true,
            }),
            last_contact_ms: answered.then_some(if leader { 0 } else { 2 }),
        }
    }

    #[test]
    fn routes_and_methods() {
        assert_eq!(
            route("raft/configuration"),
            Some((OperatorRoute::RaftConfiguration, GET))
        );
        assert_eq!(route("raft/peer"), Some((OperatorRoute::RaftPeer, DELETE)));
        assert_eq!(
            route("raft/transfer-leader"),
            Some((OperatorRoute::TransferLeader, POST))
        );
        assert_eq!(route("autopilot/health"), Some((OperatorRoute::AutopilotHealth, GET)));
        assert_eq!(route("raft/configuration/x"), None);
        assert_eq!(route("keyring"), None);
    }

    #[test]
    fn peer_selector_needs_exactly_one_of_id_and_address() {
        let members = [server_member("s1", 1, UUID_1, MemberStatus::Alive)];
        let missing = peer_selector("", &members).unwrap_err();
        assert_eq!(
            (missing.status, missing.body.as_slice()),
            (400, PEER_SELECTOR_MISSING.as_bytes())
        );
        let both = peer_selector("id=a&address=b", &members).unwrap_err();
        assert_eq!(
            (both.status, both.body.as_slice()),
            (400, PEER_SELECTOR_BOTH.as_bytes())
        );
        assert_eq!(
            peer_selector("address=127.0.0.1%3A8300", &members).unwrap(),
            PeerSelector::Address("127.0.0.1:8300".into())
        );
        assert_eq!(
            peer_selector(&format!("id={UUID_1}"), &members).unwrap(),
            PeerSelector::Id {
                id: 0xadf4238a882b9ddc,
                text: UUID_1.into()
            }
        );
        assert_eq!(
            peer_selector("id=nope", &members).unwrap(),
            PeerSelector::UnknownId("nope".into())
        );
        assert_eq!(
            node_id_of("00000000000000ff", &[]),
            Some(255),
            "the hex id shown without gossip"
        );
        assert_eq!(node_id_of("0000000000000000", &[]), None);
    }

    #[test]
    fn configuration_names_servers_from_gossip() {
        let members = [server_member("s1", 1, UUID_1, MemberStatus::Alive)];
        let body = configuration_json(
            &RaftConfigurationView {
                servers: vec![view(0xadf4238a882b9ddc, 1, true), view(0x42, 2, false)],
                index: 7,
            },
            &members,
        );
        assert_eq!(body["Index"], 7);
        let s1 = &body["Servers"][0];
        assert_eq!(
            (&s1["ID"], &s1["Node"], &s1["Address"], &s1["Leader"], &s1["Voter"]),
            (
                &json!(UUID_1),
                &json!("s1"),
                &json!("127.0.0.1:8300"),
                &json!(true),
                &json!(true)
            )
        );
        assert_eq!((&s1["ProtocolVersion"], &s1["LastIndex"]), (&json!("3"), &json!(40)));
        assert_eq!(
            body["Servers"][1]["ID"], "0000000000000042",
            "unknown to gossip: the raft id"
        );
        assert_eq!(body["Servers"][1]["Node"], "");
    }

    #[test]
    fn health_is_429_material_when_a_server_is_down() {
        let members = [
            server_member("s1", 1, UUID_1, MemberStatus::Alive),
            server_member("s2", 2, "22222222-0000-0000-0000-000000000000", MemberStatus::Alive),
            server_member("s3", 3, "33333333-0000-0000-0000-000000000000", MemberStatus::Failed),
        ];
        let history = HealthHistory::default();
        let now = UNIX_EPOCH + Duration::from_secs(60);
        let t = HealthThresholds::default();
        let all_up = [
            probe(1, 1, true, true),
            probe(2, 2, false, true),
            probe(3, 3, false, true),
        ];
        let alive_members = [
            members[0].clone(),
            members[1].clone(),
            server_member("s3", 3, "33333333-0000-0000-0000-000000000000", MemberStatus::Alive),
        ];
        let (healthy, body) = health_json(&all_up, &alive_members, &t, &history, now);
        assert!(healthy);
        assert_eq!((&body["Healthy"], &body["FailureTolerance"]), (&json!(true), &json!(1)));
        let s1 = &body["Servers"][0];
        assert_eq!(
            (&s1["Name"], &s1["SerfStatus"], &s1["Version"]),
            (&json!("s1"), &json!("alive"), &json!("1.21.0"))
        );
        assert_eq!(
            (&s1["LastContact"], &s1["LastTerm"], &s1["LastIndex"]),
            (&json!("0s"), &json!(2), &json!(40))
        );
        assert_eq!(body["Servers"][1]["LastContact"], "2ms");
        assert_eq!(s1["StableSince"], "1970-01-01T00:01:00Z");

        let one_down = [
            probe(1, 1, true, true),
            probe(2, 2, false, true),
            probe(3, 3, false, false),
        ];
        let later = now + Duration::from_secs(5);
        let (healthy, body) = health_json(&one_down, &members, &t, &history, later);
        assert!(!healthy);
        assert_eq!(
            (&body["Healthy"], &body["FailureTolerance"]),
            (&json!(false), &json!(0))
        );
        let s3 = &body["Servers"][2];
        assert_eq!(
            (&s3["Healthy"], &s3["SerfStatus"], &s3["LastContact"]),
            (&json!(false), &json!("failed"), &json!("-1ns"))
        );
        assert_eq!(
            s3["StableSince"], "1970-01-01T00:01:05Z",
            "health changed: stable since now"
        );
        assert_eq!(body["Servers"][0]["StableSince"], "1970-01-01T00:01:00Z", "unchanged");
    }
}
