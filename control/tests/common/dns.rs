//! DNS helpers over UDP and TCP, built on `hickory-proto` messages.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Default time a test waits for one DNS answer.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest DNS message (TCP length prefix is 16 bits).
const MESSAGE_BYTES_MAX: usize = 65_535;

/// A recursion-desired query for `name`/`rtype`, with an EDNS OPT
/// advertising `edns_payload` bytes when given.
pub fn query(name: &str, rtype: RecordType, edns_payload: Option<u16>) -> Message {
    let name = Name::from_ascii(name).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"));
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        msg.set_edns(edns);
    }
    msg
}

fn encode(msg: &Message) -> Vec<u8> {
    msg.to_vec().expect("test DNS query encodes")
}

fn decode(bytes: &[u8]) -> io::Result<Message> {
    Message::from_vec(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad DNS answer: {e}")))
}

/// Sends raw bytes over UDP and returns the first datagram that comes back
/// within `timeout`.
pub fn udp_raw(server: SocketAddr, bytes: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(bytes, server)?;
    let mut buf = vec![0u8; MESSAGE_BYTES_MAX];
    let (n, _) = socket.recv_from(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// One query over UDP; answers with another id are skipped.
pub fn udp_exchange(server: SocketAddr, msg: &Message, timeout: Duration) -> io::Result<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.send_to(&encode(msg), server)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MESSAGE_BYTES_MAX];
    // Bounded: each stray datagram costs one iteration, the deadline ends it.
    for _ in 0..64 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let (n, from) = socket.recv_from(&mut buf)?;
        if from != server {
            continue;
        }
        let answer = decode(&buf[..n])?;
        if answer.metadata.id == msg.metadata.id {
            return Ok(answer);
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "no DNS answer over UDP"))
}

/// A DNS-over-TCP connection (RFC 1035 §4.2.2: 2-byte length prefix).
pub struct TcpDns {
    stream: TcpStream,
}

impl TcpDns {
    pub fn connect(server: SocketAddr, timeout: Duration) -> io::Result<TcpDns> {
        let stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(TcpDns { stream })
    }

    /// Writes one length-prefixed message of raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u16::try_from(bytes.len()).expect("DNS message fits a TCP frame");
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(bytes);
        self.stream.write_all(&frame)
    }

    pub fn send(&mut self, msg: &Message) -> io::Result<()> {
        self.send_raw(&encode(msg))
    }

    /// Reads one length-prefixed message.
    pub fn recv(&mut self) -> io::Result<Message> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf)?;
        decode(&buf)
    }

    pub fn exchange(&mut self, msg: &Message) -> io::Result<Message> {
        self.send(msg)?;
        self.recv()
    }
}

/// One query on a fresh TCP connection.
pub fn tcp_exchange(server: SocketAddr, msg: &Message, timeout: Duration) -> io::Result<Message> {
    TcpDns::connect(server, timeout)?.exchange(msg)
}

/// The text of every TXT record in `records` (character-strings joined).
pub fn txt_strings(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// Records of one type.
pub fn of_type(records: &[Record], rtype: RecordType) -> Vec<&Record> {
    records.iter().filter(|r| r.record_type() == rtype).collect()
}
