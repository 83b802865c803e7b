//! A tiny blocking HTTP/1.1 client for the CLI's calls to an agent: one
//! request per connection (`Connection: close`), over TCP or a unix socket.
//!
//! Pure parts: [`parse_address`], [`encode_request`], [`try_parse_response`],
//! the percent-encoders. [`Client::request`] does the socket IO.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Largest response accepted.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest response head (status line and headers).
pub const HEADER_BYTES_MAX: usize = 64 * 1024;
/// Most response headers.
pub const HEADERS_MAX: usize = 128;
/// Connect timeout.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Read/write timeout once connected.
pub const IO_TIMEOUT_MS: u64 = 60_000;

/// Where the agent's HTTP API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    Unix(PathBuf),
}

/// Parses `-http-addr` / `CONSUL_HTTP_ADDR`: `127.0.0.1:8500`,
/// `http://host:port`, `unix:///path`. HTTPS is refused (no TLS here).
pub fn parse_address(text: &str) -> Result<Address, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(format!("invalid address {text:?}: empty socket path"));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    if text.starts_with("https://") {
        return Err(format!("{text}: HTTPS is not supported by this client"));
    }
    let hostport = text.strip_prefix("http://").unwrap_or(text).trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') {
        return Err(format!("invalid address {text:?}"));
    }
    let has_port = match hostport.rfind(']') {
        Some(end) => hostport[end..].contains(':'),
        None => hostport.contains(':'),
    };
    Ok(Address::Tcp(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    }))
}

/// Percent-encodes a KV key for a URL path: unreserved characters and `/`
/// stay as they are.
pub fn percent_encode_path(key: &str) -> String {
    encode(key, |b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
}

/// Percent-encodes a query-string value (like Go's `url.QueryEscape`, with
/// `%20` for spaces).
pub fn percent_encode_query(value: &str) -> String {
    encode(value, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), trimmed of trailing whitespace.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim_end().to_string()
    }
}

/// Builds a request. `host` is the `Host` header value.
pub fn encode_request(method: &str, host: &str, path_and_query: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-cli\r\nAccept: */*\r\nConnection: close\r\n"
    );
    if let Some(t) = token {
        head.push_str(&format!("X-Consul-Token: {t}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body. `Ok(None)` = incomplete.
fn decode_chunked(mut body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(body, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size".to_string())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size > RESPONSE_BYTES_MAX || out.len() + size > RESPONSE_BYTES_MAX {
            return Err(format!("response body over the {RESPONSE_BYTES_MAX}-byte limit"));
        }
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Parses a response from the bytes read so far. `Ok(None)` = read more;
/// `eof` says the peer closed, so whatever is there is all there is.
pub fn try_parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > HEADER_BYTES_MAX {
            return Err(format!("response headers over the {HEADER_BYTES_MAX}-byte limit"));
        }
        if eof {
            return Err("connection closed before a complete response".into());
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "response headers are not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match (version.starts_with("HTTP/1."), status) {
        (true, Some(s)) if (100..=999).contains(&s) => s,
        _ => return Err(format!("malformed status line {status_line:?}")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= HEADERS_MAX {
            return Err(format!("more than {HEADERS_MAX} response headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header {line:?}"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let body = &buf[head_end + 4..];
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some(response));
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return match decode_chunked(body)? {
            Some(decoded) => {
                response.body = decoded;
                Ok(Some(response))
            }
            None if eof => Err("connection closed inside a chunked body".into()),
            None => Ok(None),
        };
    }
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
        if len > RESPONSE_BYTES_MAX {
            return Err(format!("response body over the {RESPONSE_BYTES_MAX}-byte limit"));
        }
        if body.len() >= len {
            response.body = body[..len].to_vec();
            return Ok(Some(response));
        }
        if eof {
            return Err("connection closed before the whole body arrived".into());
        }
        return Ok(None);
    }
    if eof {
        response.body = body.to_vec();
        return Ok(Some(response));
    }
    Ok(None)
}

/// What went wrong, in the words Go's HTTP client would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError(pub String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "i/o timeout".into(),
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

/// Go's spelling of a method in errors (`Get`, `Put`, `Delete`).
fn go_method(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Talks to one agent.
#[derive(Debug, Clone)]
pub struct Client {
    address: Address,
    token: Option<String>,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

impl Client {
    pub fn new(address: Address, token: Option<String>) -> Client {
        Client { address, token }
    }

    /// The URL of a path, for messages.
    pub fn url(&self, path_and_query: &str) -> String {
        match &self.address {
            Address::Tcp(hp) => format!("http://{hp}{path_and_query}"),
            Address::Unix(_) => format!("http://unix{path_and_query}"),
        }
    }

    fn connect(&self) -> std::io::Result<Box<dyn Stream>> {
        let timeout = Some(Duration::from_millis(IO_TIMEOUT_MS));
        match &self.address {
            Address::Tcp(hostport) => {
                let mut last = std::io::Error::other(format!("no address for {hostport}"));
                for addr in hostport.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, Duration::from_millis(CONNECT_TIMEOUT_MS)) {
                        Ok(s) => {
                            s.set_read_timeout(timeout)?;
                            s.set_write_timeout(timeout)?;
                            let _ = s.set_nodelay(true);
                            return Ok(Box::new(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            Address::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
                Ok(Box::new(s))
            }
        }
    }

    /// Sends one request and reads its response.
    pub fn request(&self, method: &str, path_and_query: &str, body: &[u8]) -> Result<Response, ClientError> {
        let url = self.url(path_and_query);
        let op = go_method(method);
        let dial = match &self.address {
            Address::Tcp(hp) => format!("dial tcp {hp}"),
            Address::Unix(p) => format!("dial unix {}", p.display()),
        };
        let mut stream = self
            .connect()
            .map_err(|e| ClientError(format!("{op} \"{url}\": {dial}: connect: {}", io_text(&e))))?;
        let host = match &self.address {
            Address::Tcp(hp) => hp.as_str(),
            Address::Unix(_) => "unix",
        };
        let request = encode_request(method, host, path_and_query, self.token.as_deref(), body);
        let io_error = |e: std::io::Error| ClientError(format!("{op} \"{url}\": {}", io_text(&e)));
        stream.write_all(&request).map_err(io_error)?;
        stream.flush().map_err(io_error)?;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut chunk).map_err(io_error)?;
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > RESPONSE_BYTES_MAX + HEADER_BYTES_MAX {
                return Err(ClientError(format!(
                    "{op} \"{url}\": response over the {RESPONSE_BYTES_MAX}-byte limit"
                )));
            }
            match try_parse_response(&buf, n == 0) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(ClientError(format!("{op} \"{url}\": {e}"))),
            }
        }
    }
}

/// Go's `api` error for a non-200 answer.
pub fn unexpected_status(response: &Response) -> String {
    format!("Unexpected response code: {} ({})", response.status, response.text())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A one-shot HTTP server on 127.0.0.1: answers each connection with
    /// the next canned response and reports each request it saw.
    pub(crate) fn serve_canned(responses: Vec<Vec<u8>>) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for response in responses {
                let Ok((mut s, _)) = listener.accept() else { return };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 65536];
                // Read the head, then Content-Length bytes of body.
                loop {
                    let n = s.read(&mut buf).unwrap_or(0);
                    req.extend_from_slice(&buf[..n]);
                    if let Some(end) = find(&req, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&req[..end]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map(|v| v.parse::<usize>().unwrap())
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len || n == 0 {
                            break;
                        }
                    } else if n == 0 {
                        break;
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&req).to_string());
                let _ = s.write_all(&response);
            }
        });
        (addr, rx)
    }

    pub(crate) fn ok_json(status: u16, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("127.0.0.1:8500"),
            Ok(Address::Tcp("127.0.0.1:8500".into()))
        );
        assert_eq!(
            parse_address("http://127.0.0.1:18500/"),
            Ok(Address::Tcp("127.0.0.1:18500".into()))
        );
        assert_eq!(
            parse_address("http://localhost"),
            Ok(Address::Tcp("localhost:80".into()))
        );
        assert_eq!(parse_address("[::1]:8500"), Ok(Address::Tcp("[::1]:8500".into())));
        assert_eq!(
            parse_address("unix:///tmp/c.sock"),
            Ok(Address::Unix("/tmp/c.sock".into()))
        );
        assert!(parse_address("https://x:8501")
            .unwrap_err()
            .contains("HTTPS is not supported"));
        assert!(parse_address("").is_err());
        assert!(parse_address("http://x/y").is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode_path("a/b c/ü?#%"), "a/b%20c/%C3%BC%3F%23%25");
        assert_eq!(percent_encode_query("/"), "%2F");
        assert_eq!(percent_encode_query("a b&c"), "a%20b%26c");
        let r = encode_request("PUT", "h:1", "/v1/kv/a", Some("tok"), b"xyz");
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("PUT /v1/kv/a HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("X-Consul-Token: tok\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\nxyz"));
        let get = String::from_utf8(encode_request("GET", "h", "/", None, b"")).unwrap();
        assert!(!get.contains("Content-Length"));
    }

    #[test]
    fn content_length_responses() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Consul-Index: 7\r\n\r\ntrue";
        assert_eq!(try_parse_response(&full[..20], false), Ok(None));
        assert_eq!(try_parse_response(&full[..full.len() - 1], false), Ok(None));
        let r = try_parse_response(full, false).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"true");
        assert_eq!(r.header("x-consul-index"), Some("7"));
        assert!(try_parse_response(&full[..full.len() - 1], true).is_err());
    }

    #[test]
    fn chunked_and_eof_delimited_responses() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(try_parse_response(&chunked[..60], false), Ok(None));
        assert_eq!(try_parse_response(chunked, false).unwrap().unwrap().body, b"abcde");
        let eof = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(try_parse_response(eof, false), Ok(None));
        let r = try_parse_response(eof, true).unwrap().unwrap();
        assert_eq!((r.status, r.text()), (404, "nope".to_string()));
    }

    #[test]
    fn malformed_and_oversized_responses() {
        assert!(try_parse_response(b"SMTP 220\r\n\r\n", false).is_err());
        assert!(try_parse_response(b"HTTP/1.1 abc\r\n\r\n", false).is_err());
        assert!(try_parse_response(b"HTTP/1.1 200 OK\r\nbad\r\n\r\n", false).is_err());
        assert!(try_parse_response(b"HTTP/1.1 200 OK\r\n", true).is_err());
        let big_head = vec![b'a'; HEADER_BYTES_MAX + 1];
        assert!(try_parse_response(&big_head, false).unwrap_err().contains("limit"));
        let huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", RESPONSE_BYTES_MAX + 1);
        assert!(try_parse_response(huge.as_bytes(), false)
            .unwrap_err()
            .contains("limit"));
        let many: String = (0..=HEADERS_MAX).map(|i| format!("H{i}: v\r\n")).collect();
        let text = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(try_parse_response(text.as_bytes(), false)
            .unwrap_err()
            .contains("headers"));
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(try_parse_response(bad_chunk, false).is_err());
    }

    #[test]
    fn round_trip_over_tcp() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "[\"a\"]")]);
        let client = Client::new(parse_address(&addr).unwrap(), Some("t".into()));
        let r = client.request("GET", "/v1/kv/?keys", b"").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"[\"a\"]");
        let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(req.starts_with("GET /v1/kv/?keys HTTP/1.1\r\n"));
        assert!(req.contains("X-Consul-Token: t"));
    }

    #[test]
    fn refused_connections_read_like_go() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let client = Client::new(Address::Tcp(addr.clone()), None);
        let e = client.request("GET", "/v1/agent/self", b"").unwrap_err();
        assert_eq!(
            e.0,
            format!("Get \"http://{addr}/v1/agent/self\": dial tcp {addr}: connect: connection refused")
        );
    }
}
