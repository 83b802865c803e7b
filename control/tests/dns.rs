//! DNS over UDP and TCP (spec DNS.md §1–§5, SUMMARY.md item 12): node
//! records, SOA/NS, NXDOMAIN, REFUSED, header flags, EDNS, bad packets.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::dns::{self, of_type, query, txt_strings, TcpDns, DNS_TIMEOUT};
use common::{Agent, AgentSpec};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

const NODE: &str = "dnsnode";

fn agent() -> Agent {
    AgentSpec::dev().arg("-node").arg(NODE).spawn()
}

/// Both transports, so every assertion runs over UDP and TCP.
#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

fn ask(agent: &Agent, transport: Transport, msg: &Message) -> Message {
    let answer = match transport {
        Transport::Udp => dns::udp_exchange(agent.dns_addr(), msg, DNS_TIMEOUT),
        Transport::Tcp => dns::tcp_exchange(agent.dns_addr(), msg, DNS_TIMEOUT),
    };
    let answer = answer.unwrap_or_else(|e| panic!("{transport:?} {:?}: {e}\n{}", msg.queries, agent.logs_tail()));
    assert_eq!(answer.metadata.id, msg.metadata.id, "answer id echoes the query id");
    assert_eq!(answer.queries, msg.queries, "answer echoes the question");
    answer
}

fn lookup(agent: &Agent, transport: Transport, name: &str, rtype: RecordType) -> Message {
    ask(agent, transport, &query(name, rtype, None))
}

fn name(n: &str) -> Name {
    Name::from_ascii(n).expect("valid name")
}

fn a_addresses(records: &[Record]) -> Vec<Ipv4Addr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// Asserts the single SOA Consul puts in AUTHORITY of negative answers.
#[track_caller]
fn assert_soa_authority(answer: &Message) {
    let soas = of_type(&answer.authorities, RecordType::SOA);
    assert_eq!(soas.len(), 1, "one SOA in AUTHORITY: {answer}");
    assert_soa(soas[0]);
}

#[track_caller]
fn assert_soa(record: &Record) {
    assert!(
        record.name.eq_ignore_root_case(&name("consul.")),
        "SOA owner {}",
        record.name
    );
    let RData::SOA(soa) = &record.data else {
        panic!("not an SOA: {record}");
    };
    assert!(
        soa.mname.eq_ignore_root_case(&name("ns.consul.")),
        "MNAME {}",
        soa.mname
    );
    assert!(
        soa.rname.eq_ignore_root_case(&name("hostmaster.consul.")),
        "RNAME {}",
        soa.rname
    );
    assert_eq!((soa.refresh, soa.retry, soa.expire, soa.minimum), (3600, 600, 86400, 0));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (i64::from(soa.serial) - now).abs() < 3600,
        "SOA serial {} is not the current unix time {now}",
        soa.serial
    );
    assert_eq!(record.ttl, 0, "SOA TTL is soa.min_ttl (0)");
}

#[test]
fn node_a_record_is_the_agents_address_over_udp_and_tcp() {
    let agent = agent();
    for transport in TRANSPORTS {
        for qname in [format!("{NODE}.node.consul."), format!("{NODE}.node.dc1.consul.")] {
            let answer = lookup(&agent, transport, &qname, RecordType::A);
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::NoError,
                "{transport:?} {qname}"
            );
            assert!(answer.metadata.authoritative, "aa is always set");
            assert!(!answer.metadata.recursion_available, "ra is not set without recursors");
            assert!(answer.metadata.recursion_desired, "rd is echoed");
            assert!(!answer.metadata.truncation);
            let a = of_type(&answer.answers, RecordType::A);
            assert_eq!(a.len(), 1, "{transport:?} {qname}: {answer}");
            assert_eq!(a[0].data, RData::A(agent.ip().into()));
            assert!(
                a[0].name.eq_ignore_root_case(&name(&qname)),
                "owner is the question name"
            );
            assert_eq!(a[0].ttl, 0, "node_ttl defaults to 0");
        }
    }
}

#[test]
fn names_are_case_insensitive() {
    let agent = agent();
    for transport in TRANSPORTS {
        let answer = lookup(&agent, transport, "DnsNode.NODE.Consul.", RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_addresses(&answer.answers), [agent.ip()]);
    }
}

#[test]
fn node_txt_carries_the_network_segment_meta() {
    let agent = agent();
    for transport in TRANSPORTS {
        let answer = lookup(&agent, transport, &format!("{NODE}.node.consul."), RecordType::TXT);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        let txt = txt_strings(&answer.answers);
        assert!(
            txt.contains(&"consul-network-segment=".to_string()),
            "{transport:?}: {answer}"
        );

        // A questions get the meta TXT in ADDITIONAL (enable_additional_node_meta_txt).
        let answer = lookup(&agent, transport, &format!("{NODE}.node.consul."), RecordType::A);
        let txt = txt_strings(&answer.additionals);
        assert!(
            txt.contains(&"consul-network-segment=".to_string()),
            "{transport:?}: {answer}"
        );
    }
}

#[test]
fn any_question_on_a_node_answers_a_and_txt() {
    let agent = agent();
    let answer = lookup(&agent, Transport::Udp, &format!("{NODE}.node.consul."), RecordType::ANY);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_addresses(&answer.answers), [agent.ip()]);
    assert!(txt_strings(&answer.answers).contains(&"consul-network-segment=".to_string()));
}

#[test]
fn a_node_without_the_asked_type_is_nodata_with_soa() {
    let agent = agent();
    for transport in TRANSPORTS {
        for rtype in [RecordType::AAAA, RecordType::MX] {
            let answer = lookup(&agent, transport, &format!("{NODE}.node.consul."), rtype);
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::NoError,
                "{transport:?} {rtype}"
            );
            assert!(answer.answers.is_empty(), "{answer}");
            assert!(answer.metadata.authoritative);
        }
        let answer = lookup(&agent, transport, &format!("{NODE}.node.consul."), RecordType::AAAA);
        assert_soa_authority(&answer);
    }
}

#[test]
fn soa_for_the_domain() {
    let agent = agent();
    for transport in TRANSPORTS {
        let answer = lookup(&agent, transport, "consul.", RecordType::SOA);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "{transport:?}");
        assert!(answer.metadata.authoritative);
        let soas = of_type(&answer.answers, RecordType::SOA);
        assert_eq!(soas.len(), 1, "{answer}");
        assert_soa(soas[0]);
    }
}

#[test]
fn ns_for_the_domain_names_the_server_with_glue() {
    let agent = agent();
    let server = format!("{NODE}.node.dc1.consul.");
    for transport in TRANSPORTS {
        let answer = lookup(&agent, transport, "consul.", RecordType::NS);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "{transport:?}");
        let ns = of_type(&answer.answers, RecordType::NS);
        assert_eq!(ns.len(), 1, "one server, one NS: {answer}");
        let RData::NS(target) = &ns[0].data else { unreachable!() };
        assert!(target.0.eq_ignore_root_case(&name(&server)), "NS target {}", target.0);
        assert!(ns[0].name.eq_ignore_root_case(&name("consul.")));
        let glue: Vec<&Record> = of_type(&answer.additionals, RecordType::A)
            .into_iter()
            .filter(|r| r.name.eq_ignore_root_case(&name(&server)))
            .collect();
        assert_eq!(glue.len(), 1, "glue A for the server: {answer}");
        assert_eq!(glue[0].data, RData::A(agent.ip().into()));
    }
}

#[test]
fn unknown_names_in_the_domain_are_nxdomain_with_soa() {
    let agent = agent();
    for transport in TRANSPORTS {
        for qname in [
            "nope.node.consul.",
            "foo.consul.",
            "nope.node.dc1.consul.",
            "x.y.z.node.consul.",
        ] {
            let answer = lookup(&agent, transport, qname, RecordType::A);
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::NXDomain,
                "{transport:?} {qname}"
            );
            assert!(answer.answers.is_empty());
            assert!(answer.metadata.authoritative, "aa is set on NXDOMAIN");
            assert_soa_authority(&answer);
        }
    }
}

#[test]
fn names_outside_the_domain_are_refused() {
    let agent = agent();
    for transport in TRANSPORTS {
        for qname in ["example.com.", "consul.example.com.", "."] {
            let answer = lookup(&agent, transport, qname, RecordType::A);
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::Refused,
                "{transport:?} {qname}"
            );
            assert!(answer.answers.is_empty());
            assert!(!answer.metadata.recursion_available);
        }
    }
}

#[test]
fn edns_opt_is_echoed_with_the_requesters_size() {
    let agent = agent();
    for transport in TRANSPORTS {
        let answer = ask(
            &agent,
            transport,
            &query(&format!("{NODE}.node.consul."), RecordType::A, Some(1232)),
        );
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        let edns = answer
            .edns
            .as_ref()
            .unwrap_or_else(|| panic!("{transport:?}: no OPT in {answer}"));
        assert_eq!(edns.max_payload(), 1232, "{transport:?}");
        assert_eq!(a_addresses(&answer.answers), [agent.ip()]);

        let plain = lookup(&agent, transport, &format!("{NODE}.node.consul."), RecordType::A);
        assert!(plain.edns.is_none(), "{transport:?}: OPT only when the query had one");
    }
}

#[test]
fn garbage_packets_do_not_stop_the_server() {
    let agent = agent();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        // A header claiming 50 questions, followed by nothing.
        b"\x12\x34\x01\x00\x00\x32\x00\x00\x00\x00\x00\x00",
        // A question whose label length runs past the end.
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
    ];
    for bytes in garbage {
        // An answer (FORMERR) or silence are both fine; the server must live on.
        let _ = dns::udp_raw(agent.dns_addr(), bytes, Duration::from_millis(300));
        let mut tcp = TcpDns::connect(agent.dns_addr(), DNS_TIMEOUT).expect("TCP connect");
        let _ = tcp.send_raw(bytes);
        drop(tcp);
    }
    // A TCP frame that promises more than it sends, then hangs up.
    let mut tcp = TcpDns::connect(agent.dns_addr(), DNS_TIMEOUT).expect("TCP connect");
    let _ = tcp.send_raw(&[0u8; 3]);
    drop(tcp);
    for transport in TRANSPORTS {
        let answer = lookup(&agent, transport, &format!("{NODE}.node.consul."), RecordType::A);
        assert_eq!(
            a_addresses(&answer.answers),
            [agent.ip()],
            "{transport:?} after garbage"
        );
    }
    agent.get("/v1/status/leader").expect_status(200);
}

#[test]
fn several_queries_share_one_tcp_connection() {
    let agent = agent();
    let mut tcp = TcpDns::connect(agent.dns_addr(), DNS_TIMEOUT).expect("TCP connect");
    let questions = [
        (format!("{NODE}.node.consul."), RecordType::A, ResponseCode::NoError),
        ("nope.node.consul.".to_string(), RecordType::A, ResponseCode::NXDomain),
        ("consul.".to_string(), RecordType::SOA, ResponseCode::NoError),
        ("example.com.".to_string(), RecordType::A, ResponseCode::Refused),
    ];
    // One at a time...
    for (qname, rtype, rcode) in &questions {
        let msg = query(qname, *rtype, None);
        let answer = tcp.exchange(&msg).unwrap_or_else(|e| panic!("{qname}: {e}"));
        assert_eq!(answer.metadata.id, msg.metadata.id);
        assert_eq!(answer.metadata.response_code, *rcode, "{qname}");
    }
    // ...then all written before any is read.
    let msgs: Vec<Message> = questions.iter().map(|(q, t, _)| query(q, *t, None)).collect();
    for msg in &msgs {
        tcp.send(msg).expect("send");
    }
    let mut answers: Vec<Message> = (0..msgs.len()).map(|_| tcp.recv().expect("recv")).collect();
    answers.sort_by_key(|a| a.metadata.id);
    let mut expected: Vec<(u16, ResponseCode)> = msgs
        .iter()
        .zip(&questions)
        .map(|(m, (_, _, rcode))| (m.metadata.id, *rcode))
        .collect();
    expected.sort_by_key(|(id, _)| *id);
    let got: Vec<(u16, ResponseCode)> = answers
        .iter()
        .map(|a| (a.metadata.id, a.metadata.response_code))
        .collect();
    assert_eq!(got, expected);
}
