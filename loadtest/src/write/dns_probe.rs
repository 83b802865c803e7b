//! Polls a DNS server over UDP until a name has an answer (the write under
//! test made it resolvable). The query and the check of a reply are pure;
//! [`DnsProbe::wait_answered`] does the IO, bounded in time.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::dns::query_file::encode_query;
use crate::dns::reply::{echoes_question, parse_reply_header};
use crate::limits::DNS_REPLY_BYTES_MAX;

/// How long one query waits for its reply before the next is sent.
const REPLY_WAIT: Duration = Duration::from_millis(50);
/// Pause between a negative answer and the next query.
const POLL_PAUSE: Duration = Duration::from_micros(200);

/// The query for `name` with id `id`.
pub fn query_bytes(name: &str, id: u16) -> anyhow::Result<Vec<u8>> {
    let mut wire = encode_query(name, "A").map_err(anyhow::Error::msg)?.wire;
    wire[0..2].copy_from_slice(&id.to_be_bytes());
    Ok(wire)
}

/// Whether `reply` answers `query` (same id and question) with NOERROR and
/// at least one answer record.
pub fn is_positive_answer(reply: &[u8], query: &[u8]) -> bool {
    let Some(head) = parse_reply_header(reply) else {
        return false;
    };
    let ancount = u16::from_be_bytes([reply[6], reply[7]]);
    head.is_response
        && head.id == u16::from_be_bytes([query[0], query[1]])
        && head.rcode == 0
        && ancount > 0
        && echoes_question(reply, &query[12..])
}

/// A UDP socket aimed at one DNS server.
pub struct DnsProbe {
    socket: UdpSocket,
    next_id: u16,
}

impl DnsProbe {
    /// A probe of the server at `server` (127.0.0.0/8, checked by the caller).
    pub fn new(server: SocketAddr) -> anyhow::Result<DnsProbe> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        socket
            .connect(server)
            .with_context(|| format!("connecting to {server}"))?;
        socket.set_read_timeout(Some(REPLY_WAIT))?;
        Ok(DnsProbe { socket, next_id: 1 })
    }

    /// Queries `name` until it has an answer; the instant the positive reply
    /// was read. Fails after `deadline`.
    pub fn wait_answered(&mut self, name: &str, deadline: Instant) -> anyhow::Result<Instant> {
        self.wait_until(name, true, deadline)
    }

    /// Queries `name` until a reply to it has no answer (NXDOMAIN or an
    /// empty answer); the instant that reply was read. Fails after `deadline`.
    pub fn wait_unanswered(&mut self, name: &str, deadline: Instant) -> anyhow::Result<Instant> {
        self.wait_until(name, false, deadline)
    }

    /// Polls `name` until the positiveness of its reply is `answered`.
    fn wait_until(&mut self, name: &str, answered: bool, deadline: Instant) -> anyhow::Result<Instant> {
        let mut reply = vec![0u8; DNS_REPLY_BYTES_MAX];
        loop {
            if Instant::now() >= deadline {
                bail!(
                    "{name} still {} at the deadline",
                    if answered { "unanswered" } else { "answered" }
                );
            }
            self.next_id = self.next_id.wrapping_add(1);
            let query = query_bytes(name, self.next_id)?;
            self.socket.send(&query)?;
            // Read until this query's reply or the reply wait ends; stale
            // replies (other ids) are skipped.
            let sent = Instant::now();
            while sent.elapsed() < REPLY_WAIT {
                match self.socket.recv(&mut reply) {
                    Ok(n) => {
                        let got = &reply[..n];
                        let ours = parse_reply_header(got).is_some_and(|h| h.id == self.next_id);
                        let positive = is_positive_answer(got, &query);
                        if (answered && positive) || (!answered && ours && !positive) {
                            return Ok(Instant::now());
                        }
                        if ours {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        break
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            std::thread::sleep(POLL_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};

    fn reply_to(query: &[u8], answers: usize, rcode: ResponseCode) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        let name = Name::from_ascii("vis1.service.consul.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..answers {
            m.add_answer(Record::from_rdata(name.clone(), 0, RData::A(A::new(10, 0, 0, i as u8))));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn positive_answers_only() {
        let q = query_bytes("vis1.service.consul", 77).unwrap();
        assert_eq!(u16::from_be_bytes([q[0], q[1]]), 77);
        assert!(is_positive_answer(&reply_to(&q, 1, ResponseCode::NoError), &q));
        assert!(
            !is_positive_answer(&reply_to(&q, 0, ResponseCode::NoError), &q),
            "empty"
        );
        assert!(
            !is_positive_answer(&reply_to(&q, 0, ResponseCode::NXDomain), &q),
            "nxdomain"
        );
        let other = query_bytes("vis1.service.consul", 78).unwrap();
        assert!(
            !is_positive_answer(&reply_to(&other, 1, ResponseCode::NoError), &q),
            "other id"
        );
        assert!(!is_positive_answer(&q[..5], &q), "short");
        assert!(!is_positive_answer(&q, &q), "a query is not a reply");
    }

    #[test]
    fn a_bad_name_is_an_error() {
        assert!(query_bytes("a..b", 1).is_err());
    }

    #[test]
    fn waiting_ends_at_the_deadline_when_nobody_answers() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut probe = DnsProbe::new(silent.local_addr().unwrap()).unwrap();
        let started = Instant::now();
        let err = probe
            .wait_answered("vis1.service.consul", started + Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("unanswered"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn waiting_returns_on_the_first_positive_reply() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            // First query: empty answer; second: one record.
            for answers in [0usize, 1] {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server
                    .send_to(&reply_to(&buf[..n], answers, ResponseCode::NoError), from)
                    .unwrap();
            }
        });
        let mut probe = DnsProbe::new(addr).unwrap();
        probe
            .wait_answered("vis1.service.consul", Instant::now() + Duration::from_secs(5))
            .unwrap();
    }
}
