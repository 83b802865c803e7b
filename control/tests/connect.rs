//! Connect against the real binary (spec HTTP.md catalog/health connect
//! endpoints, DNS.md §1 `.connect` and `.virtual`): a service, a
//! `connect-proxy` for it and a Connect-native instance registered through
//! the catalog; `/v1/catalog/connect/<s>` and `/v1/health/connect/<s>`
//! (blocking included); `<s>.connect` A and SRV over UDP and TCP, a
//! critical proxy dropping out; `<s>.virtual` A and NXDOMAIN; the agent's
//! registration errors in Consul's words.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::dns::{self, of_type, query, DNS_TIMEOUT};
use common::{Agent, AgentSpec};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

fn ask(agent: &Agent, transport: Transport, name: &str, rtype: RecordType) -> Message {
    let msg = query(name, rtype, None);
    let answer = match transport {
        Transport::Udp => dns::udp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT),
        Transport::Tcp => dns::tcp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT),
    };
    answer.unwrap_or_else(|e| panic!("{transport:?} {name} {rtype}: {e}\n{}", agent.logs_tail()))
}

fn register(agent: &Agent, body: Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "register {body}: {}\n{}", r.text(), agent.logs_tail());
}

fn proxy_check(agent: &Agent, status: &str) {
    register(
        agent,
        json!({
            "Node": "n1", "Address": "10.1.0.1", "SkipNodeUpdate": true,
            "Check": {"Node": "n1", "CheckID": "proxy-alive", "Name": "proxy alive",
                      "Status": status, "ServiceID": "web-sidecar-proxy"},
        }),
    );
}

/// web on n1 (plain), its sidecar proxy on n1, a native web on n2.
fn mesh() -> Agent {
    let agent = AgentSpec::dev().spawn();
    register(
        &agent,
        json!({"Node": "n1", "Address": "10.1.0.1",
               "Service": {"ID": "web-1", "Service": "web", "Port": 80}}),
    );
    register(
        &agent,
        json!({"Node": "n1", "Address": "10.1.0.1",
               "Service": {"ID": "web-sidecar-proxy", "Service": "web-sidecar-proxy", "Kind": "connect-proxy",
                           "Port": 21000,
                           "Proxy": {"DestinationServiceName": "web", "DestinationServiceID": "web-1",
                                     "LocalServicePort": 80,
                                     "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}]}}}),
    );
    proxy_check(&agent, "passing");
    register(
        &agent,
        json!({"Node": "n2", "Address": "10.1.0.2",
               "Service": {"ID": "web-native", "Service": "web", "Port": 8443, "Connect": {"Native": true}}}),
    );
    agent
}

fn a_addresses(m: &Message) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = of_type(&m.answers, RecordType::A)
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn srv_ports(m: &Message) -> Vec<u16> {
    let mut out: Vec<u16> = of_type(&m.answers, RecordType::SRV)
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(s.port),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn ids(rows: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = rows
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r.pointer(key).and_then(Value::as_str).unwrap_or("").to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn catalog_and_health_connect_endpoints() {
    let agent = mesh();
    let r = agent.get("/v1/catalog/connect/web");
    r.expect_status(200);
    let rows = r.json();
    assert_eq!(ids(&rows, "/ServiceID"), ["web-native", "web-sidecar-proxy"]);
    let proxy = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ServiceID"] == "web-sidecar-proxy")
        .unwrap();
    assert_eq!(proxy["ServiceKind"], "connect-proxy");
    assert_eq!(
        proxy["ServiceProxy"],
        json!({"DestinationServiceName": "web", "DestinationServiceID": "web-1", "LocalServicePort": 80,
               "Mode": "", "Upstreams": [{"DestinationType": "service", "DestinationName": "db",
               "Datacenter": "", "LocalBindPort": 9191, "MeshGateway": {}}],
               "MeshGateway": {}, "Expose": {}})
    );
    assert_eq!(
        proxy["ServiceTaggedAddresses"]["consul-virtual"],
        json!({"Address": "240.0.0.1", "Port": 21000})
    );
    let native = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ServiceID"] == "web-native")
        .unwrap();
    assert_eq!(native["ServiceConnect"], json!({"Native": true}));
    // The plain service keeps Consul's empty Connect blocks.
    let plain = agent.get("/v1/catalog/service/web").json();
    let web1 = plain
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ServiceID"] == "web-1")
        .unwrap();
    assert_eq!(
        web1["ServiceProxy"],
        json!({"Mode": "", "MeshGateway": {}, "Expose": {}})
    );
    assert_eq!(web1["ServiceConnect"], json!({}));
    assert_eq!(agent.get("/v1/catalog/connect/nothing").json(), json!([]));

    let r = agent.get("/v1/health/connect/web");
    r.expect_status(200);
    let entries = r.json();
    assert_eq!(ids(&entries, "/Service/ID"), ["web-native", "web-sidecar-proxy"]);
    let index = r.index();
    assert_eq!(
        ids(&agent.get("/v1/health/connect/web?passing").json(), "/Service/ID"),
        ["web-native", "web-sidecar-proxy"]
    );

    // A blocked health/connect read wakes when the proxy turns critical.
    let addr = agent.http_addr();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let target = format!("/v1/health/connect/web?passing&index={index}&wait=10s");
        common::http::request(addr, "GET", &target, &[], b"", Duration::from_secs(20)).expect("the blocked read")
    });
    std::thread::sleep(Duration::from_millis(300));
    proxy_check(&agent, "critical");
    let woken = waiter.join().expect("the waiter");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "woken by the change, not the wait"
    );
    woken.expect_status(200);
    assert!(woken.index() > index);
    assert_eq!(ids(&woken.json(), "/Service/ID"), ["web-native"]);
}

#[test]
fn connect_and_virtual_dns() {
    let agent = mesh();
    for transport in TRANSPORTS {
        let m = ask(&agent, transport, "web.connect.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{transport:?}");
        assert_eq!(
            a_addresses(&m),
            [Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2)],
            "{transport:?}"
        );
        let m = ask(&agent, transport, "web.connect.consul.", RecordType::SRV);
        assert_eq!(
            srv_ports(&m),
            [8443, 21000],
            "{transport:?}: the proxy's port, not the service's"
        );
        let m = ask(&agent, transport, "web.virtual.consul.", RecordType::A);
        assert_eq!(a_addresses(&m), [Ipv4Addr::new(240, 0, 0, 1)], "{transport:?}");
        let m = ask(&agent, transport, "nothing.virtual.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{transport:?}");
        let m = ask(&agent, transport, "nothing.connect.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{transport:?}");
    }
    proxy_check(&agent, "critical");
    for transport in TRANSPORTS {
        let m = ask(&agent, transport, "web.connect.consul.", RecordType::A);
        assert_eq!(
            a_addresses(&m),
            [Ipv4Addr::new(10, 1, 0, 2)],
            "{transport:?}: the critical proxy drops out"
        );
    }
    // Deregistering every Connect instance frees the virtual IP.
    for (node, id) in [("n1", "web-sidecar-proxy"), ("n2", "web-native")] {
        let body = json!({"Node": node, "ServiceID": id});
        agent
            .put("/v1/catalog/deregister", body.to_string().as_bytes())
            .expect_status(200);
    }
    let m = ask(&agent, Transport::Udp, "web.virtual.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn agent_registration_errors_and_shapes() {
    let agent = AgentSpec::dev().spawn();
    let cases = [
        (
            json!({"Name": "p", "Kind": "connect-proxy", "Port": 21000}),
            "Validation failed: 1 error occurred:\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n",
        ),
        (
            json!({"Name": "p", "Kind": "connect-proxy", "Proxy": {"DestinationServiceName": "web"}}),
            "Validation failed: 1 error occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\n",
        ),
        (
            json!({"Name": "n", "Connect": {"Native": true}}),
            "Validation failed: 1 error occurred:\n\t* Port or SocketPath must be set for a Connect native service.\n\n",
        ),
    ];
    for (body, want) in cases {
        let r = agent.put("/v1/agent/service/register", body.to_string().as_bytes());
        assert_eq!((r.status, r.text().as_str()), (400, want), "{body}");
    }
    let body = json!({"name": "web-proxy", "kind": "connect-proxy", "port": 21000,
                      "proxy": {"destination_service_name": "web", "local_service_port": 8080,
                                "config": {"protocol": "http"}}});
    agent
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .expect_status(200);
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["web-proxy"]["Kind"], "connect-proxy");
    assert_eq!(
        services["web-proxy"]["Proxy"],
        json!({"DestinationServiceName": "web", "LocalServicePort": 8080, "Config": {"protocol": "http"},
               "MeshGateway": {}, "Expose": {}})
    );
    // The agent's registration reaches the catalog with its virtual IP.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = agent.get("/v1/catalog/connect/web").json();
        if let Some(row) = rows.as_array().and_then(|a| a.first()) {
            assert_eq!(row["ServiceTaggedAddresses"]["consul-virtual"]["Address"], "240.0.0.1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never reached the catalog\n{}",
            agent.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_sidecar_service_registration() {
    let agent = AgentSpec::dev().spawn();
    let body = json!({"Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["v1"],
                      "Connect": {"SidecarService": {}}});
    agent
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .expect_status(200);
    let body = json!({"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}});
    agent
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .expect_status(200);
    let services = agent.get("/v1/agent/services").json();
    let sidecar = &services["web-1-sidecar-proxy"];
    assert_eq!(sidecar["Service"], "web-sidecar-proxy");
    assert_eq!(sidecar["Kind"], "connect-proxy");
    assert_eq!(sidecar["Port"], 21000);
    assert_eq!(sidecar["Tags"], json!(["v1"]), "the parent's tags");
    assert_eq!(
        sidecar["Proxy"],
        json!({"DestinationServiceName": "web", "DestinationServiceID": "web-1",
               "LocalServiceAddress": "127.0.0.1", "LocalServicePort": 8080,
               "MeshGateway": {}, "Expose": {}})
    );
    assert_eq!(services["api-sidecar-proxy"]["Port"], 21001, "the next free port");
    let checks = agent.get("/v1/agent/checks").json();
    let listening = &checks["service:web-1-sidecar-proxy:1"];
    assert_eq!(listening["Name"], "Connect Sidecar Listening");
    assert_eq!(listening["ServiceID"], "web-1-sidecar-proxy");

    agent.put("/v1/agent/service/deregister/web-1", b"").expect_status(200);
    let services = agent.get("/v1/agent/services").json();
    assert!(
        services.get("web-1-sidecar-proxy").is_none(),
        "the sidecar goes with its service"
    );
    assert!(services.get("api-sidecar-proxy").is_some());
}
