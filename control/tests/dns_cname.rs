//! CNAME chasing against the real binary (DNS.md §2): a node whose address
//! is another node's name under `.consul` is answered with the CNAME and
//! that node's address; a node whose address is a name outside the domain
//! gets the CNAME plus what a recursor (a fake one started here on 127.x)
//! answers for that name, or the CNAME alone without recursors; a service
//! whose SRV target is a hostname gets the target's addresses in
//! ADDITIONAL.

mod common;

use std::net::Ipv4Addr;

use common::dns::{self, of_type, query, DNS_TIMEOUT};
use common::fake_recursor::FakeRecursor;
use common::{Agent, AgentSpec};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;

/// The address the fake recursor gives every name.
const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 44);

fn register(agent: &Agent, body: serde_json::Value) {
    let r = agent.put("/v1/catalog/register", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "register {body}: {}\n{}", r.text(), agent.logs_tail());
}

fn ask(agent: &Agent, tcp: bool, name: &str, rtype: RecordType) -> Message {
    let msg = query(name, rtype, None);
    let answer = if tcp {
        dns::tcp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT)
    } else {
        dns::udp_exchange(agent.dns_addr(), &msg, DNS_TIMEOUT)
    };
    answer.unwrap_or_else(|e| panic!("{name} {rtype}: {e}\n{}", agent.logs_tail()))
}

/// `owner → CNAME target` or `owner → ip` of each record.
fn shown(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(format!("{} CNAME {}", r.name.to_ascii(), c.0.to_ascii())),
            RData::A(a) => Some(format!("{} A {}", r.name.to_ascii(), a.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn internal_targets_resolve_inside_the_domain() {
    let agent = AgentSpec::dev().spawn();
    register(&agent, json!({"Node": "web", "Address": "127.0.0.7"}));
    register(&agent, json!({"Node": "alias", "Address": "web.node.consul"}));
    register(
        &agent,
        json!({"Node": "app", "Address": "127.0.0.8",
               "Service": {"Service": "db", "Address": "web.node.consul", "Port": 5432}}),
    );
    for tcp in [false, true] {
        let m = ask(&agent, tcp, "alias.node.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
        assert_eq!(
            shown(&m.answers),
            [
                "alias.node.consul. CNAME web.node.consul.",
                "web.node.consul. A 127.0.0.7"
            ],
            "tcp={tcp}"
        );
        let m = ask(&agent, tcp, "db.service.consul.", RecordType::A);
        assert_eq!(
            shown(&m.answers),
            [
                "db.service.consul. CNAME web.node.consul.",
                "web.node.consul. A 127.0.0.7"
            ],
            "a service with a hostname address, tcp={tcp}"
        );
        let m = ask(&agent, tcp, "db.service.consul.", RecordType::SRV);
        let srv = of_type(&m.answers, RecordType::SRV);
        assert_eq!(srv.len(), 1, "{m}");
        assert_eq!(shown(&m.additionals), ["web.node.consul. A 127.0.0.7"], "tcp={tcp}");
    }
}

#[test]
fn outside_targets_are_asked_of_the_recursors() {
    let recursor = FakeRecursor::answering(UPSTREAM_IP, 30);
    let agent = AgentSpec::dev().arg(format!("-recursor={}", recursor.addr)).spawn();
    register(&agent, json!({"Node": "ext", "Address": "db.example.com"}));
    for tcp in [false, true] {
        let m = ask(&agent, tcp, "ext.node.consul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
        assert_eq!(
            shown(&m.answers),
            ["ext.node.consul. CNAME db.example.com.", "db.example.com. A 192.0.2.44"],
            "tcp={tcp}"
        );
    }
    let asked = recursor.stop();
    assert!(asked.iter().all(|n| n == "db.example.com."), "{asked:?}");
    assert!(asked.len() >= 2, "asked once per lookup: {asked:?}");
}

#[test]
fn without_recursors_the_cname_stands_alone() {
    let agent = AgentSpec::dev().spawn();
    register(&agent, json!({"Node": "ext", "Address": "db.example.com"}));
    let m = ask(&agent, false, "ext.node.consul.", RecordType::A);
    assert_eq!(shown(&m.answers), ["ext.node.consul. CNAME db.example.com."]);
}
