//! One blocking keep-alive HTTP/1.1 connection for write benchmarks: send a
//! request, read one response, keep its status, body and the
//! `X-Consul-Index` header. Framing is [`ResponseReader`]'s; every read and
//! write is bounded by the connection's timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::bail;

use crate::http::response::ResponseReader;
use crate::limits::RESPONSE_HEADERS_MAX;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `X-Consul-Index`, when present and numeric.
    pub consul_index: Option<u64>,
    pub body: Vec<u8>,
}

/// The value of header `name` (ASCII case ignored) in the response head at
/// the start of `buf`; `None` if absent or the head is incomplete.
pub fn header_value(buf: &[u8], name: &str) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(_)) => parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_string()),
        _ => None,
    }
}

/// A keep-alive connection that reconnects on demand.
pub struct Connection {
    target: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    chunk: Vec<u8>,
}

impl Connection {
    /// A connection to `target`, opened on first use. `timeout` bounds the
    /// connect and each read and write.
    pub fn new(target: SocketAddr, timeout: Duration) -> Connection {
        Connection {
            target,
            timeout,
            stream: None,
            buf: Vec::new(),
            chunk: vec![0u8; READ_CHUNK_BYTES],
        }
    }

    /// The server this connection talks to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Drops the socket; the next request opens a new one.
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Sends `request` without reading (for a blocking query answered later).
    pub fn send(&mut self, request: &[u8]) -> anyhow::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.target, self.timeout)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("connected above");
        if let Err(e) = stream.write_all(request) {
            self.stream = None;
            return Err(e.into());
        }
        Ok(())
    }

    /// Reads the answer to the request sent last. On any error the socket
    /// is dropped, so a late answer is never taken for the next request's.
    pub fn receive(&mut self) -> anyhow::Result<Answer> {
        let result = self.receive_inner();
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn receive_inner(&mut self) -> anyhow::Result<Answer> {
        let Some(stream) = self.stream.as_mut() else {
            bail!("no request in flight to {}", self.target)
        };
        let mut reader = ResponseReader::new();
        self.buf.clear();
        loop {
            if let Some(r) = reader.next(&self.buf)? {
                let Some(body) = r.body.clone() else {
                    bail!(
                        "chunked answer from {}: not expected from a write or KV read",
                        self.target
                    )
                };
                let answer = Answer {
                    status: r.status,
                    consul_index: header_value(&self.buf, "X-Consul-Index").and_then(|v| v.parse().ok()),
                    body: self.buf[body].to_vec(),
                };
                if r.connection_close || r.wire_bytes != self.buf.len() {
                    self.stream = None;
                }
                return Ok(answer);
            }
            let n = stream.read(&mut self.chunk)?;
            if n == 0 {
                bail!("{} closed the connection before answering", self.target);
            }
            self.buf.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// Sends `request` and reads its answer.
    pub fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Answer> {
        self.send(request)?;
        self.receive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn header_value_is_case_insensitive_and_needs_a_whole_head() {
        let head = b"HTTP/1.1 404 Not Found\r\nx-consul-index: 42\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(header_value(head, "X-Consul-Index").as_deref(), Some("42"));
        assert_eq!(header_value(head, "X-Missing"), None);
        assert_eq!(
            header_value(b"HTTP/1.1 200 OK\r\nX-Consul-Index: 4", "X-Consul-Index"),
            None
        );
    }

    /// A server answering each request of one connection with the next of
    /// `answers` (one small request per read).
    pub(crate) fn fake_server(answers: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            for a in answers {
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                s.write_all(a).unwrap();
            }
        });
        addr
    }

    #[test]
    fn exchanges_keep_the_connection_and_read_the_index() {
        let addr = fake_server(vec![
            b"HTTP/1.1 404 Not Found\r\nX-Consul-Index: 7\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue",
        ]);
        let mut c = Connection::new(addr, Duration::from_secs(5));
        let a = c.exchange(b"GET /v1/kv/x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((a.status, a.consul_index, a.body.as_slice()), (404, Some(7), &b""[..]));
        let b = c.exchange(b"PUT /v1/kv/x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((b.status, b.consul_index, b.body.as_slice()), (200, None, &b"true"[..]));
    }

    #[test]
    fn a_silent_server_times_out_and_the_socket_is_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(500));
            drop(s);
        });
        let mut c = Connection::new(addr, Duration::from_millis(100));
        let started = std::time::Instant::now();
        assert!(c.exchange(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(c.receive().unwrap_err().to_string().contains("no request in flight"));
        holder.join().unwrap();
    }
}
