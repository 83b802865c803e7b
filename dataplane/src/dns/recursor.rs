//! Forwarding names outside the domain to the configured recursors
//! (DNS.md §3): tried in order, each for at most `recursor_timeout`; a
//! NOERROR or NXDOMAIN reply is passed through verbatim, any other rcode
//! (SERVFAIL, REFUSED…) or silence moves on to the next one. Queries go
//! over UDP; a TCP client's query whose UDP answer came back truncated is
//! asked again over TCP ([`forward_tcp`]). A CNAME chase to a hostname
//! outside our domains asks them too ([`chase`]). The verdict
//! on a reply is pure ([`verdict`]); the sockets are at the edge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
use monoio::net::udp::UdpSocket;
use monoio::net::TcpStream;

use crate::dns::answer::cname::upstream;
use crate::dns::wire::{rcode, HEADER_BYTES, TCP_MESSAGE_BYTES_MAX, UDP_PAYLOAD_BYTES_MAX};

/// Recursions one server loop runs at once; more are answered SERVFAIL.
pub const RECURSIONS_IN_FLIGHT_MAX: usize = 256;
/// Datagrams read per recursor attempt before giving up on stray ones.
pub const STRAY_REPLIES_MAX: usize = 16;
/// Recursors tried per query (the rest of a longer list is ignored).
pub const RECURSORS_TRIED_MAX: usize = 8;

/// What to do with a datagram received from a recursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The answer: pass it to the client.
    Accept,
    /// The recursor failed this query: try the next one.
    TryNext,
    /// Not a reply to this query (wrong id, not a response, too short).
    Ignore,
}

/// Judges `reply` as the answer to `query`.
pub fn verdict(query: &[u8], reply: &[u8]) -> Verdict {
    if query.len() < HEADER_BYTES || reply.len() < HEADER_BYTES {
        return Verdict::Ignore;
    }
    if reply[..2] != query[..2] || reply[2] & 0x80 == 0 {
        return Verdict::Ignore;
    }
    match reply[3] & 0x0f {
        rcode::NOERROR | rcode::NXDOMAIN => Verdict::Accept,
        _ => Verdict::TryNext,
    }
}

/// Whether a reply has the TC bit (the client may retry over TCP).
pub fn is_truncated(reply: &[u8]) -> bool {
    reply.len() >= HEADER_BYTES && reply[2] & 0x02 != 0
}

fn unspecified_for(addr: &SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

/// Forwards `query` over UDP to each recursor in turn; the first accepted
/// reply, or `None` when all failed or timed out.
pub async fn forward_udp(query: &[u8], recursors: &[SocketAddr], timeout: Duration) -> Option<Vec<u8>> {
    for recursor in recursors.iter().take(RECURSORS_TRIED_MAX) {
        match udp_attempt(query, *recursor, timeout).await {
            Some(reply) => return Some(reply),
            None => tracing::debug!(%recursor, "dns recursor failed"),
        }
    }
    None
}

async fn udp_attempt(query: &[u8], recursor: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(unspecified_for(&recursor)).ok()?;
    let deadline = Instant::now() + timeout;
    let (sent, _) = socket.send_to(query.to_vec(), recursor).await;
    sent.ok()?;
    let mut buf = Vec::with_capacity(UDP_PAYLOAD_BYTES_MAX);
    for _ in 0..STRAY_REPLIES_MAX {
        let left = deadline.checked_duration_since(Instant::now())?;
        buf.clear();
        let (received, back) = monoio::time::timeout(left, socket.recv_from(buf)).await.ok()?;
        buf = back;
        let Ok((_, from)) = received else {
            return None;
        };
        if from != recursor {
            continue;
        }
        match verdict(query, &buf) {
            Verdict::Accept => return Some(buf),
            Verdict::TryNext => return None,
            Verdict::Ignore => continue,
        }
    }
    None
}

/// Completes a [`crate::dns::Outcome::Chase`] answer: asks the recursors
/// (over UDP) for the hostname its last CNAME or SRV target names and
/// merges their answer ([`upstream::merge`]), all within `timeout`; on
/// any failure `response` comes back unchanged (the CNAME alone).
pub async fn chase(response: Vec<u8>, recursors: &[SocketAddr], timeout: Duration, size_max: usize) -> Vec<u8> {
    let Some(pending) = upstream::pending(&response) else {
        return response;
    };
    // Any id works (the verdict checks the reply echoes it); this one
    // differs from the client's so a confused upstream cannot mix them.
    let id = u16::from_be_bytes([response[0], response[1]]).rotate_left(8) ^ CHASE_ID_MASK;
    let query = upstream::chase_query(&pending, id);
    match monoio::time::timeout(timeout, forward_udp(&query, recursors, timeout)).await {
        Ok(Some(reply)) => upstream::merge(&response, &reply, size_max).unwrap_or(response),
        _ => {
            tracing::debug!("dns cname chase got no upstream answer; sending the CNAME alone");
            response
        }
    }
}

/// Mixed into a chase query's id (see [`chase`]).
const CHASE_ID_MASK: u16 = 0x5bd1;

/// Forwards `query` over TCP (2-byte framing) to each recursor in turn.
pub async fn forward_tcp(query: &[u8], recursors: &[SocketAddr], timeout: Duration) -> Option<Vec<u8>> {
    if query.len() > TCP_MESSAGE_BYTES_MAX {
        return None;
    }
    for recursor in recursors.iter().take(RECURSORS_TRIED_MAX) {
        let attempt = monoio::time::timeout(timeout, tcp_attempt(query, *recursor)).await;
        match attempt {
            Ok(Some(reply)) => return Some(reply),
            _ => tracing::debug!(%recursor, "dns recursor failed over tcp"),
        }
    }
    None
}

async fn tcp_attempt(query: &[u8], recursor: SocketAddr) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(recursor).await.ok()?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    let (written, _) = stream.write_all(framed).await;
    written.ok()?;
    let (read, length) = stream.read_exact(SliceMut::new(vec![0u8; 2], 0, 2)).await;
    read.ok()?;
    let length = length.into_inner();
    let len = u16::from_be_bytes([length[0], length[1]]) as usize;
    let (read, reply) = stream.read_exact(SliceMut::new(Vec::with_capacity(len), 0, len)).await;
    read.ok()?;
    let reply = reply.into_inner();
    (verdict(query, &reply) == Verdict::Accept).then_some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u16, flags: u16) -> Vec<u8> {
        let mut h = id.to_be_bytes().to_vec();
        h.extend_from_slice(&flags.to_be_bytes());
        h.extend_from_slice(&[0; 8]);
        h
    }

    #[test]
    fn verdicts() {
        let query = header(7, 0x0100);
        assert_eq!(verdict(&query, &header(7, 0x8180)), Verdict::Accept);
        assert_eq!(verdict(&query, &header(7, 0x8183)), Verdict::Accept, "NXDOMAIN passes");
        assert_eq!(verdict(&query, &header(7, 0x8182)), Verdict::TryNext, "SERVFAIL");
        assert_eq!(verdict(&query, &header(7, 0x8185)), Verdict::TryNext, "REFUSED");
        assert_eq!(verdict(&query, &header(8, 0x8180)), Verdict::Ignore, "other id");
        assert_eq!(verdict(&query, &header(7, 0x0100)), Verdict::Ignore, "not a response");
        assert_eq!(verdict(&query, &[0, 7]), Verdict::Ignore, "short");
        assert!(is_truncated(&header(7, 0x8380)));
        assert!(!is_truncated(&header(7, 0x8180)));
    }

    fn fake_upstream(rcode_flags: u16) -> (std::net::UdpSocket, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = socket.local_addr().unwrap();
        let server = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let mut reply = buf[..n].to_vec();
                reply[2..4].copy_from_slice(&rcode_flags.to_be_bytes());
                let _ = server.send_to(&reply, from);
            }
        });
        (socket, addr)
    }

    #[test]
    fn forwards_to_the_first_answering_recursor() {
        let (_failing, failing_addr) = fake_upstream(0x8182);
        let (_good, good_addr) = fake_upstream(0x8180);
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let query = header(99, 0x0100);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let reply = rt.block_on(forward_udp(
            &query,
            &[silent_addr, failing_addr, good_addr],
            Duration::from_millis(200),
        ));
        let reply = reply.expect("the third recursor answers");
        assert_eq!(&reply[..4], &[0, 99, 0x81, 0x80]);
        let none = rt.block_on(forward_udp(&query, &[silent_addr], Duration::from_millis(50)));
        assert!(none.is_none(), "silence times out");
    }

    #[test]
    fn forwards_over_tcp_with_length_framing() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut message).unwrap();
            message[2..4].copy_from_slice(&0x8183u16.to_be_bytes());
            stream.write_all(&len).unwrap();
            stream.write_all(&message).unwrap();
        });
        let query = header(5, 0x0100);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let reply = rt.block_on(forward_tcp(&query, &[addr], Duration::from_secs(2)));
        assert_eq!(reply.expect("an answer")[..4], [0, 5, 0x81, 0x83]);
        server.join().unwrap();
    }
}
