//! `GET /v1/agent/self` (HTTP.md §2.1) and `PUT /v1/agent/leave`.
//!
//! `/agent/self` is read by Nomad, Prometheus, Fabio and `consul info`:
//! `Config` carries the Consul version we are compatible with (Nomad parses
//! it as semver) and our own in `ProconsulVersion`; `Stats` comes from the
//! control plane (empty when it is unreachable).

use std::collections::BTreeMap;

use proconsul_shared::agent_info::{AgentInfo, CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};
use proconsul_shared::ipc::messages::ControlOp;

use super::json::JsonWriter;
use super::response::Response;
use super::{ApiRequest, Forward, Outcome, ReplyKind};
use crate::core::View;

/// The `Stats` section: section → key → value.
pub type Stats = BTreeMap<String, BTreeMap<String, String>>;

/// Serf member status "alive".
const MEMBER_STATUS_ALIVE: u64 = 1;
/// Vivaldi's starting error estimate and minimum height (Consul's
/// `coordinate.DefaultConfig`), reported until coordinates are computed.
const COORD_ERROR_START: f64 = 1.5;
const COORD_HEIGHT_MIN: f64 = 10.0e-6;
const COORD_DIMENSIONS: usize = 8;

/// `GET /v1/agent/self`: fetch `Stats` from the control plane, then render.
pub fn agent_self(req: &ApiRequest<'_>, view: &View) -> Outcome {
    Outcome::Forward(Forward {
        op: ControlOp::Stats,
        reply: ReplyKind::AgentSelf {
            pretty: req.pretty(view.agent.pretty_json),
        },
    })
}

/// `PUT /v1/agent/leave`: 200 with an empty body once the control plane
/// accepted it (it then shuts the agent down).
pub fn leave() -> Outcome {
    Outcome::Forward(Forward {
        op: ControlOp::Leave,
        reply: ReplyKind::Empty,
    })
}

/// Renders `/v1/agent/self`.
pub fn render_self(agent: &AgentInfo, stats: &Stats, pretty: bool) -> Response {
    let mut body = Vec::with_capacity(4096);
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_object();
    w.key("Config");
    write_config(&mut w, agent);
    w.key("DebugConfig");
    write_debug_config(&mut w, agent);
    w.key("Coord");
    write_zero_coordinate(&mut w);
    w.key("Member");
    write_member(&mut w, agent);
    w.key("Stats");
    w.begin_object();
    for (section, values) in stats {
        w.key(section);
        write_string_map(&mut w, values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    w.end_object();
    w.key("Meta");
    write_string_map(&mut w, agent.node_meta.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    w.end_object();
    w.finish();
    Response::json(200, body)
}

fn write_config(w: &mut JsonWriter<'_>, agent: &AgentInfo) {
    w.begin_object();
    for (key, value) in [
        ("Datacenter", &agent.datacenter),
        ("PrimaryDatacenter", &agent.primary_datacenter),
        ("NodeName", &agent.node_name),
        ("NodeID", &agent.node_id),
        ("Revision", &agent.revision),
    ] {
        w.key(key);
        w.string(value);
    }
    w.key("Server");
    w.bool(agent.server);
    w.key("Version");
    w.string(CONSUL_COMPAT_VERSION);
    w.key("BuildDate");
    w.string(&agent.build_date);
    w.key("ProconsulVersion");
    w.string(PROCONSUL_VERSION);
    w.end_object();
}

/// One value of the sanitized runtime configuration.
enum DebugValue<'a> {
    Str(&'a str),
    Owned(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
    Map(&'a BTreeMap<String, String>),
}

/// A subset of Consul's `DebugConfig` (sorted keys, like a Go map): the
/// fields clients are known to read (`DNSPort`, `GRPCPort`, ...).
fn write_debug_config(w: &mut JsonWriter<'_>, agent: &AgentInfo) {
    use DebugValue::*;
    let ports = &agent.ports;
    let addrs = |scheme: &str, port: i32| -> Vec<String> {
        if port <= 0 {
            return Vec::new();
        }
        agent
            .client_addrs
            .iter()
            .map(|ip| format!("{scheme}://{}", join_host_port(ip, port)))
            .collect()
    };
    let mut dns_addrs = addrs("tcp", ports.dns);
    dns_addrs.extend(addrs("udp", ports.dns));
    let config: BTreeMap<&str, DebugValue<'_>> = BTreeMap::from([
        ("AdvertiseAddrLAN", Str(&agent.advertise_addr)),
        ("BindAddr", Str(&agent.bind_addr)),
        ("Bootstrap", Bool(agent.bootstrap)),
        ("BootstrapExpect", Int(i64::from(agent.bootstrap_expect))),
        ("BuildDate", Str(&agent.build_date)),
        ("ClientAddrs", List(agent.client_addrs.clone())),
        ("ConnectEnabled", Bool(false)),
        ("DNSAddrs", List(dns_addrs)),
        ("DNSDomain", Str(&agent.domain)),
        ("DNSPort", Int(i64::from(ports.dns))),
        ("DataDir", Str(&agent.data_dir)),
        ("Datacenter", Str(&agent.datacenter)),
        ("DevMode", Bool(agent.dev_mode)),
        ("EnableRemoteScriptChecks", Bool(agent.enable_script_checks)),
        ("GRPCPort", Int(i64::from(ports.grpc))),
        ("GRPCTLSPort", Int(i64::from(ports.grpc_tls))),
        ("HTTPAddrs", List(addrs("tcp", ports.http))),
        ("HTTPPort", Int(i64::from(ports.http))),
        ("HTTPSPort", Int(i64::from(ports.https))),
        ("LogLevel", Str(&agent.log_level)),
        ("NodeID", Str(&agent.node_id)),
        ("NodeMeta", Map(&agent.node_meta)),
        ("NodeName", Str(&agent.node_name)),
        ("PrimaryDatacenter", Str(&agent.primary_datacenter)),
        ("Revision", Str(&agent.revision)),
        ("SerfPortLAN", Int(i64::from(ports.serf_lan))),
        ("SerfPortWAN", Int(i64::from(ports.serf_wan))),
        ("ServerMode", Bool(agent.server)),
        ("ServerPort", Int(i64::from(ports.server))),
        ("Version", Owned(CONSUL_COMPAT_VERSION.to_string())),
    ]);
    w.begin_object();
    for (key, value) in &config {
        w.key(key);
        match value {
            Str(s) => w.string(s),
            Owned(s) => w.string(s),
            Int(i) => w.i64(*i),
            Bool(b) => w.bool(*b),
            List(items) => w.string_array(items.iter().map(String::as_str)),
            Map(map) => write_string_map(w, map.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        }
    }
    w.end_object();
}

fn write_zero_coordinate(w: &mut JsonWriter<'_>) {
    w.begin_object();
    w.key("Vec");
    w.begin_array();
    for _ in 0..COORD_DIMENSIONS {
        w.f64(0.0);
    }
    w.end_array();
    w.key("Error");
    w.f64(COORD_ERROR_START);
    w.key("Adjustment");
    w.f64(0.0);
    w.key("Height");
    w.f64(COORD_HEIGHT_MIN);
    w.end_object();
}

/// This agent as a serf LAN member.
fn write_member(w: &mut JsonWriter<'_>, agent: &AgentInfo) {
    let addr = if agent.advertise_addr.is_empty() {
        &agent.bind_addr
    } else {
        &agent.advertise_addr
    };
    w.begin_object();
    w.key("Name");
    w.string(&agent.node_name);
    w.key("Addr");
    w.string(addr);
    w.key("Port");
    w.i64(i64::from(agent.ports.serf_lan));
    w.key("Tags");
    let tags = member_tags(agent);
    write_string_map(w, tags.iter().map(|(k, v)| (*k, v.as_str())));
    for (key, value) in [
        ("Status", MEMBER_STATUS_ALIVE),
        ("ProtocolMin", 1),
        ("ProtocolMax", 5),
        ("ProtocolCur", 2),
        ("DelegateMin", 2),
        ("DelegateMax", 5),
        ("DelegateCur", 4),
    ] {
        w.key(key);
        w.u64(value);
    }
    w.end_object();
}

/// The serf tags Consul agents gossip (clients read `role`, `dc`, `id`,
/// `port`, `build`, `vsn`, `segment`).
pub fn member_tags(agent: &AgentInfo) -> BTreeMap<&'static str, String> {
    let mut tags = BTreeMap::from([
        ("build", format!("{CONSUL_COMPAT_VERSION}:{}", agent.revision)),
        ("dc", agent.datacenter.clone()),
        ("id", agent.node_id.clone()),
        ("role", if agent.server { "consul" } else { "node" }.to_string()),
        ("segment", String::new()),
        ("vsn", "2".to_string()),
        ("vsn_max", "3".to_string()),
        ("vsn_min", "2".to_string()),
    ]);
    if agent.server {
        tags.insert("port", agent.ports.server.to_string());
        tags.insert("raft_vsn", "3".to_string());
        tags.insert("wan_join_port", agent.ports.serf_wan.to_string());
        tags.insert("acls", "0".to_string());
        if agent.bootstrap {
            tags.insert("bootstrap", "1".to_string());
        }
        if agent.bootstrap_expect > 0 {
            tags.insert("expect", agent.bootstrap_expect.to_string());
        }
    }
    if agent.ports.grpc > 0 {
        tags.insert("grpc_port", agent.ports.grpc.to_string());
    }
    tags
}

fn write_string_map<'s>(w: &mut JsonWriter<'_>, entries: impl Iterator<Item = (&'s str, &'s str)>) {
    w.begin_object();
    for (key, value) in entries {
        w.key(key);
        w.string(value);
    }
    w.end_object();
}

/// `ip:port`, bracketing IPv6 addresses.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(agent: &AgentInfo, stats: &Stats, pretty: bool) -> serde_json::Value {
        let response = render_self(agent, stats, pretty);
        assert_eq!(response.status, 200);
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn config_section() {
        let agent = crate::api::test_support::agent();
        let v = rendered(&agent, &Stats::new(), false);
        let config = &v["Config"];
        assert_eq!(config["Datacenter"], "dc1");
        assert_eq!(config["PrimaryDatacenter"], "dc1");
        assert_eq!(config["NodeName"], "node1");
        assert_eq!(config["NodeID"], agent.node_id);
        assert_eq!(config["Server"], true);
        assert_eq!(config["Version"], CONSUL_COMPAT_VERSION);
        assert_eq!(config["ProconsulVersion"], PROCONSUL_VERSION);
        assert_eq!(config["Revision"], "abc123");
        // Field order as Consul emits it.
        let body = String::from_utf8(render_self(&agent, &Stats::new(), false).body).unwrap();
        let order: Vec<usize> = [
            "\"Config\"",
            "\"DebugConfig\"",
            "\"Coord\"",
            "\"Member\"",
            "\"Stats\"",
            "\"Meta\"",
        ]
        .iter()
        .map(|k| body.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|p| p[0] < p[1]), "{order:?}");
    }

    #[test]
    fn debug_config_ports_and_addresses() {
        let agent = crate::api::test_support::agent();
        let v = rendered(&agent, &Stats::new(), false);
        let debug = &v["DebugConfig"];
        assert_eq!(debug["DNSPort"], 8600);
        assert_eq!(debug["HTTPPort"], 8500);
        assert_eq!(debug["GRPCPort"], -1);
        assert_eq!(debug["HTTPSPort"], -1);
        assert_eq!(debug["ServerPort"], 8300);
        assert_eq!(debug["HTTPAddrs"], serde_json::json!(["tcp://127.0.0.1:8500"]));
        assert_eq!(
            debug["DNSAddrs"],
            serde_json::json!(["tcp://127.0.0.1:8600", "udp://127.0.0.1:8600"])
        );
        assert_eq!(debug["Version"], CONSUL_COMPAT_VERSION);
    }

    #[test]
    fn coordinate_member_stats_meta() {
        let agent = crate::api::test_support::agent();
        let mut stats = Stats::new();
        stats.insert(
            "raft".into(),
            BTreeMap::from([("state".to_string(), "Leader".to_string())]),
        );
        let body = String::from_utf8(render_self(&agent, &stats, false).body).unwrap();
        assert!(body.contains(r#""Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}"#));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let member = &v["Member"];
        assert_eq!(member["Name"], "node1");
        assert_eq!(member["Addr"], "127.0.0.1");
        assert_eq!(member["Port"], 8301);
        assert_eq!(member["Status"], 1);
        assert_eq!(member["Tags"]["role"], "consul");
        assert_eq!(member["Tags"]["dc"], "dc1");
        assert_eq!(member["Tags"]["port"], "8300");
        assert_eq!(member["Tags"]["id"], agent.node_id);
        assert_eq!(member["Tags"]["build"], format!("{CONSUL_COMPAT_VERSION}:abc123"));
        assert_eq!(v["Stats"]["raft"]["state"], "Leader");
        assert_eq!(v["Meta"]["rack"], "r1");
    }

    #[test]
    fn client_agents_are_role_node() {
        let mut agent = crate::api::test_support::agent();
        agent.server = false;
        let tags = member_tags(&agent);
        assert_eq!(tags["role"], "node");
        assert!(!tags.contains_key("port"));
        assert!(!tags.contains_key("raft_vsn"));
    }

    #[test]
    fn empty_stats_and_pretty() {
        let agent = crate::api::test_support::agent();
        let response = render_self(&agent, &Stats::new(), true);
        let body = String::from_utf8(response.body).unwrap();
        assert!(body.contains("\n    \"Stats\": {},\n"));
        assert!(body.ends_with("}\n"));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        assert_eq!(join_host_port("::1", 8500), "[::1]:8500");
        assert_eq!(join_host_port("127.0.0.1", 8500), "127.0.0.1:8500");
    }
}
