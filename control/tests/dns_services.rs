//! Service discovery over DNS against the real binary (spec DNS.md §2–§7,
//! SUMMARY.md items 12–13): services registered through
//! `/v1/catalog/register`, looked up over UDP and TCP; health filtering
//! (a check turning critical drops the instance); `dns_config` keys from a
//! config file; recursor forwarding to a fake upstream.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::dns::{self, of_type, query, DNS_TIMEOUT};
use common::fake_recursor::FakeRecursor;
use common::{Agent, AgentSpec};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;

/// How long a registration may take to show in DNS (the data plane answers
/// a write only after applying it, so this is slack, not a wait).
const VISIBLE_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

fn ask_with(agent: &Agent, transport: Transport, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let msg = query(name, rtype, edns);
    let answer = match transport {
        Transport::Udp => dns::udp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT),
        Transport::Tcp => dns::tcp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT),
    };
    answer.unwrap_or_else(|e| panic!("{transport:?} {name} {rtype}: {e}\n{}", agent.logs_tail()))
}

fn ask(agent: &Agent, transport: Transport, name: &str, rtype: RecordType) -> Message {
    ask_with(agent, transport, name, rtype, None)
}

fn register(agent: &Agent, body: serde_json::Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "register {body}: {}\n{}", r.text(), agent.logs_tail());
}

fn register_web(agent: &Agent, node: &str, address: &str, tags: &[&str]) {
    register(
        agent,
        json!({
            "Node": node,
            "Address": address,
            "NodeMeta": {"rack": "r1"},
            "Service": {"ID": "web-1", "Service": "web", "Tags": tags, "Port": 80},
        }),
    );
}

fn ipv4s(records: &[Record]) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn srv_targets(records: &[Record]) -> Vec<(u16, u16, String)> {
    let mut v: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Asks until `done` holds (bounded by [`VISIBLE_WITHIN`]); returns the last answer.
fn eventually(agent: &Agent, name: &str, rtype: RecordType, done: impl Fn(&Message) -> bool) -> Message {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    for _ in 0..200 {
        let m = ask(agent, Transport::Udp, name, rtype);
        if done(&m) || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    unreachable!("the deadline ends the loop first")
}

#[test]
fn services_tags_and_srv_over_udp_and_tcp() {
    let agent = AgentSpec::dev().spawn();
    for i in 1..=5u8 {
        let tags: &[&str] = if i <= 2 { &["Rails"] } else { &["v1"] };
        register_web(&agent, &format!("web-node-{i}"), &format!("10.1.0.{i}"), tags);
    }
    register(
        &agent,
        json!({
            "Node": "rabbit-node",
            "Address": "10.1.1.1",
            "Service": {"ID": "rabbit", "Service": "rabbitmq", "Address": "192.0.2.10", "Port": 5672},
        }),
    );
    let all: Vec<Ipv4Addr> = (1..=5).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
    for t in TRANSPORTS {
        let m = ask(&agent, t, "web.service.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert!(m.metadata.authoritative && !m.metadata.recursion_available);
        match t {
            Transport::Udp => assert_eq!(m.answers.len(), 3, "3 answers without EDNS over UDP"),
            Transport::Tcp => assert_eq!(ipv4s(&m.answers), all),
        }
        let m = ask_with(&agent, t, "WEB.service.dc1.consul.", RecordType::A, Some(1232));
        assert_eq!(
            ipv4s(&m.answers),
            all,
            "{t:?}: EDNS lifts the cap; names are case-insensitive"
        );
        let m = ask(&agent, t, "rails.web.service.consul.", RecordType::A);
        assert_eq!(ipv4s(&m.answers), all[..2].to_vec(), "{t:?}: tag filter");
        let m = ask_with(&agent, t, "_web._rails.service.consul.", RecordType::SRV, Some(4096));
        assert_eq!(
            srv_targets(&m.answers),
            vec![
                (1, 80, "web-node-1.node.dc1.consul.".to_string()),
                (1, 80, "web-node-2.node.dc1.consul.".to_string()),
            ],
            "{t:?}"
        );
        assert_eq!(ipv4s(&m.additionals), all[..2].to_vec(), "{t:?}: target addresses");
        assert!(
            dns::txt_strings(&m.additionals).contains(&"rack=r1".to_string()),
            "{t:?}: node meta in additional: {m}"
        );
        let m = ask(&agent, t, "_rabbitmq._tcp.service.consul.", RecordType::SRV);
        assert_eq!(
            srv_targets(&m.answers),
            vec![(1, 5672, "c000020a.addr.dc1.consul.".to_string())]
        );
        assert_eq!(ipv4s(&m.additionals), vec![Ipv4Addr::new(192, 0, 2, 10)]);
        let m = ask(&agent, t, "missing.service.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(of_type(&m.authorities, RecordType::SOA).len(), 1);
        let m = ask(&agent, t, "web.service.consul.", RecordType::AAAA);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "NODATA");
        assert!(m.answers.is_empty());
        let m = ask(&agent, t, "1.0.1.10.in-addr.arpa.", RecordType::PTR);
        match m.answers.first().map(|r| &r.data) {
            Some(RData::PTR(p)) => assert_eq!(p.0.to_ascii(), "web-node-1.node.dc1.consul."),
            other => panic!("{t:?}: want a PTR, got {other:?}"),
        }
    }
}

#[test]
fn critical_instances_drop_out_of_dns() {
    let agent = AgentSpec::dev().spawn();
    register_web(&agent, "a", "10.2.0.1", &[]);
    register_web(&agent, "b", "10.2.0.2", &[]);
    let both = vec![Ipv4Addr::new(10, 2, 0, 1), Ipv4Addr::new(10, 2, 0, 2)];
    assert_eq!(
        ipv4s(&ask(&agent, Transport::Udp, "web.service.consul.", RecordType::A).answers),
        both
    );
    register(
        &agent,
        json!({
            "Node": "a", "Address": "10.2.0.1", "SkipNodeUpdate": true,
            "Check": {"CheckID": "web-check", "Name": "web", "Status": "critical", "ServiceID": "web-1"},
        }),
    );
    let m = eventually(&agent, "web.service.consul.", RecordType::A, |m| m.answers.len() == 1);
    assert_eq!(ipv4s(&m.answers), vec![Ipv4Addr::new(10, 2, 0, 2)], "a is critical");
    register(
        &agent,
        json!({
            "Node": "b", "Address": "10.2.0.2", "SkipNodeUpdate": true,
            "Check": {"CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "critical"},
        }),
    );
    let m = eventually(&agent, "web.service.consul.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::NXDomain
    });
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "no healthy instance: {m}"
    );
    assert_eq!(of_type(&m.authorities, RecordType::SOA).len(), 1);
    register(
        &agent,
        json!({
            "Node": "a", "Address": "10.2.0.1", "SkipNodeUpdate": true,
            "Check": {"CheckID": "web-check", "Name": "web", "Status": "warning", "ServiceID": "web-1"},
        }),
    );
    let m = eventually(&agent, "web.service.consul.", RecordType::A, |m| m.answers.len() == 1);
    assert_eq!(
        ipv4s(&m.answers),
        vec![Ipv4Addr::new(10, 2, 0, 1)],
        "warning is served by default"
    );
}

#[test]
fn dns_config_from_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dns.json");
    std::fs::write(
        &file,
        json!({
            "alt_domain": "alt.example.",
            "dns_config": {
                "only_passing": true,
                "service_ttl": {"*": "5s", "web": "10s"},
                "node_ttl": "30s",
                "enable_truncate": true,
                "udp_answer_limit": 2,
            }
        })
        .to_string(),
    )
    .expect("write config");
    let agent = AgentSpec::dev().arg(format!("-config-file={}", file.display())).spawn();
    for i in 1..=4u8 {
        register_web(&agent, &format!("n{i}"), &format!("10.3.0.{i}"), &[]);
    }
    let m = ask(&agent, Transport::Udp, "web.service.alt.example.", RecordType::A);
    assert_eq!(m.answers.len(), 2, "udp_answer_limit");
    assert!(m.metadata.truncation, "enable_truncate sets TC");
    assert!(m
        .answers
        .iter()
        .all(|r| r.ttl == 10 && r.name.to_ascii() == "web.service.alt.example."));
    let m = ask(&agent, Transport::Tcp, "web.service.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 4);
    assert!(!m.metadata.truncation);
    let m = ask(&agent, Transport::Udp, "n1.node.consul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 30, "node_ttl");
    register(
        &agent,
        json!({
            "Node": "n1", "Address": "10.3.0.1", "SkipNodeUpdate": true,
            "Check": {"CheckID": "w", "Name": "w", "Status": "warning", "ServiceID": "web-1"},
        }),
    );
    let m = eventually(&agent, "web.service.consul.", RecordType::A, |m| {
        m.answers.len() == 2 && !ipv4s(&m.answers).contains(&Ipv4Addr::new(10, 3, 0, 1))
    });
    let tcp = ask(&agent, Transport::Tcp, "web.service.consul.", RecordType::A);
    assert_eq!(
        ipv4s(&tcp.answers).len(),
        3,
        "only_passing drops the warning instance: {m}"
    );
}

#[test]
fn foreign_names_go_to_the_first_answering_recursor() {
    let failing = FakeRecursor::failing(ResponseCode::ServFail);
    let good = FakeRecursor::answering(Ipv4Addr::new(192, 0, 2, 1), 42);
    let agent = AgentSpec::dev()
        .arg(format!("-recursor={}", failing.addr))
        .arg(format!("-recursor={}", good.addr))
        .spawn();
    for t in TRANSPORTS {
        let m = ask(&agent, t, "example.com.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}: {m}");
        assert_eq!(
            ipv4s(&m.answers),
            vec![Ipv4Addr::new(192, 0, 2, 1)],
            "{t:?}: the second recursor answered"
        );
        assert_eq!(m.answers[0].ttl, 42, "forwarded verbatim");
        let m = ask(&agent, t, "9.9.9.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{t:?}: unknown PTR recursed"
        );
        let m = ask(&agent, t, "missing.service.consul.", RecordType::A);
        assert!(m.metadata.recursion_available, "{t:?}: ra with recursors");
    }
    assert!(failing.stop().len() >= 2, "the failing recursor was tried first");
    assert!(good.stop().len() >= 2);
}

#[test]
fn unanswered_recursion_is_servfail() {
    let silent = UdpSocket::bind((fresh_loopback_ip(), 5353)).expect("bind a silent upstream");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dns.json");
    std::fs::write(
        &file,
        json!({
            "recursors": [silent.local_addr().unwrap().to_string()],
            "dns_config": {"recursor_timeout": "200ms"}
        })
        .to_string(),
    )
    .expect("write config");
    let agent = AgentSpec::dev().arg(format!("-config-file={}", file.display())).spawn();
    let started = Instant::now();
    let m = ask(&agent, Transport::Udp, "example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m}");
    assert!(m.metadata.recursion_available);
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout applies");
}
