//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`.
//!
//! Hand-rolled on purpose: the tests need to send exactly the bytes they
//! mean (pipelined requests, malformed request lines, oversized headers)
//! and to see exactly what came back (header spelling, bodies with NULs).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// Longest status or header line the client accepts.
const LINE_BYTES_MAX: usize = 64 * 1024;
/// Most header lines in one response.
const HEADER_LINES_MAX: usize = 256;
/// Largest response body the client accepts.
const BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default time a test waits for one response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP response, as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// `X-Consul-Index` as a number; panics if it is missing or not a u64.
    pub fn index(&self) -> u64 {
        let raw = self
            .header("X-Consul-Index")
            .unwrap_or_else(|| panic!("no X-Consul-Index header in {self:?}"));
        raw.parse()
            .unwrap_or_else(|e| panic!("X-Consul-Index {raw:?} is not a u64: {e}"))
    }

    /// Panics with the whole response unless the status is `status`.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; headers {:?} body {:?}",
            self.headers,
            self.text()
        );
        self
    }
}

/// Encodes one request. `Host` and `Content-Length` (when there is a body
/// or the method usually carries one) are added; `close` adds
/// `Connection: close`.
pub fn encode_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8], close: bool) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: proconsul-test\r\nUser-Agent: proconsul-tests\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(LINE_BYTES_MAX as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a full response",
        ));
    }
    if line.len() > LINE_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "response line too long"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(r)?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_hex, 16).map_err(|e| invalid(format!("bad chunk size {size_hex:?}: {e}")))?;
        if body.len() + size > BODY_BYTES_MAX {
            return Err(invalid(format!("chunked body over {BODY_BYTES_MAX} bytes")));
        }
        if size == 0 {
            // Trailers end with an empty line.
            for _ in 0..HEADER_LINES_MAX {
                if read_line(r)?.is_empty() {
                    return Ok(body);
                }
            }
            return Err(invalid("too many trailer lines".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line(r)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF".into()));
        }
    }
}

/// Reads exactly one response from `r`. `head_request` tells that the
/// request was `HEAD` (no body follows whatever the headers say).
pub fn read_response<R: BufRead>(r: &mut R, head_request: bool) -> io::Result<Response> {
    let status_line = read_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("bad status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= HEADER_LINES_MAX {
            return Err(invalid(format!("more than {HEADER_LINES_MAX} header lines")));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_request || status / 100 == 1 || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = read_chunked(r)?;
    } else if let Some(len) = response.header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|e| invalid(format!("bad Content-Length {len:?}: {e}")))?;
        if len > BODY_BYTES_MAX {
            return Err(invalid(format!("Content-Length {len} over {BODY_BYTES_MAX}")));
        }
        response.body = vec![0; len];
        r.read_exact(&mut response.body)?;
    } else {
        r.by_ref()
            .take(BODY_BYTES_MAX as u64 + 1)
            .read_to_end(&mut response.body)?;
        if response.body.len() > BODY_BYTES_MAX {
            return Err(invalid(format!("body over {BODY_BYTES_MAX} bytes")));
        }
    }
    Ok(response)
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects with `timeout` for the connect and for every read and write.
    pub fn open(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// Changes the read timeout (a blocking query needs more than the default).
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))
    }

    /// Writes raw bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Sends one keep-alive request.
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
        self.write_raw(&encode_request(method, target, headers, body, false))
    }

    /// Reads the next response on this connection.
    pub fn read_response(&mut self) -> io::Result<Response> {
        read_response(&mut self.reader, false)
    }

    /// Sends one request and reads its response.
    pub fn exchange(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.send(method, target, headers, body)?;
        self.read_response()
    }

    /// Whether the server closed the connection (a read sees EOF or a reset
    /// within `timeout`).
    pub fn closed_by_peer(&mut self, timeout: Duration) -> bool {
        if self.set_read_timeout(timeout).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }
}

/// One request on a fresh connection (`Connection: close`). The request is
/// written from a second thread while this one reads, so a server that
/// answers early (413 before reading a large body) is still heard.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let mut conn = Conn::open(addr, timeout)?;
    let bytes = encode_request(method, target, headers, body, true);
    let mut writer = conn.reader.get_ref().try_clone()?;
    let write = thread::spawn(move || writer.write_all(&bytes).and_then(|()| writer.flush()));
    let response = read_response(&mut conn.reader, method == "HEAD");
    let written = write.join().expect("request writer thread panicked");
    match (response, written) {
        (Ok(r), _) => Ok(r),
        (Err(read_err), Ok(())) => Err(read_err),
        (Err(read_err), Err(write_err)) => Err(io::Error::new(
            read_err.kind(),
            format!("{read_err} (after write error: {write_err})"),
        )),
    }
}
