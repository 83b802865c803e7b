//! One watcher connection's protocol, sans-IO: a non-blocking GET of its
//! key to learn `X-Consul-Index`, then a blocking GET `?index=&wait=`,
//! re-issued with the new index after every answer. The driver feeds it
//! the bytes read and writes what [`WatchConn::to_write`] returns.

use crate::http::response::{ResponseError, ResponseReader};
use crate::limits::{RESPONSE_HEADERS_MAX, RESPONSE_HEAD_BYTES_MAX};

/// Where a watcher is in its exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchPhase {
    /// Connected; the index GET is queued or in flight.
    Indexing,
    /// The blocking GET at `index` is queued or in flight.
    Parked { index: u64 },
}

/// What one complete response meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// The index GET answered; the blocking GET is now queued.
    Indexed { index: u64 },
    /// A blocking GET returned (woken or timed out); parked again at `index`.
    Returned { status: u16, index: u64 },
}

/// Why a watcher's bytes are unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchError {
    /// The response framing is wrong.
    Response(ResponseError),
    /// A response without a numeric `X-Consul-Index`.
    NoIndex { status: u16 },
    /// The server will close the connection after this response.
    Closing { status: u16 },
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Response(e) => write!(f, "{e}"),
            WatchError::NoIndex { status } => write!(f, "status {status} response without X-Consul-Index"),
            WatchError::Closing { status } => write!(f, "server closes the connection after a {status} response"),
        }
    }
}

/// One watcher's state.
#[derive(Debug)]
pub struct WatchConn {
    path: String,
    wait_s: u64,
    phase: WatchPhase,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    reader: ResponseReader,
}

impl WatchConn {
    /// A watcher of the KV key `key` whose blocking GETs ask `wait=<wait_s>s`.
    /// Its first request (the index GET) is queued.
    pub fn new(key: &str, wait_s: u64) -> WatchConn {
        let mut conn = WatchConn {
            path: format!("/v1/kv/{key}"),
            wait_s,
            phase: WatchPhase::Indexing,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            reader: ResponseReader::new(),
        };
        conn.queue(None);
        conn
    }

    /// Where it is.
    pub fn phase(&self) -> WatchPhase {
        self.phase
    }

    fn queue(&mut self, index: Option<u64>) {
        self.out.clear();
        self.written = 0;
        let query = match index {
            Some(i) => format!("?index={i}&wait={}s", self.wait_s),
            None => String::new(),
        };
        self.out.extend_from_slice(
            format!(
                "GET {}{query} HTTP/1.1\r\nHost: proconsul\r\nUser-Agent: proconsul-loadtest\r\n\r\n",
                self.path
            )
            .as_bytes(),
        );
    }

    /// Request bytes not yet written.
    pub fn to_write(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// `n` bytes of [`WatchConn::to_write`] were written.
    pub fn wrote(&mut self, n: usize) {
        assert!(self.written + n <= self.out.len(), "wrote past the queued request");
        self.written += n;
    }

    /// Feeds bytes read from the socket; returns the event of the response
    /// they completed, if any (one request is outstanding at a time).
    pub fn received(&mut self, bytes: &[u8]) -> Result<Option<WatchEvent>, WatchError> {
        self.input.extend_from_slice(bytes);
        let Some(response) = self.reader.next(&self.input).map_err(WatchError::Response)? else {
            return Ok(None);
        };
        let status = response.status;
        if response.connection_close {
            return Err(WatchError::Closing { status });
        }
        let index = consul_index(&self.input[..response.wire_bytes]).ok_or(WatchError::NoIndex { status })?;
        self.input.drain(..response.wire_bytes);
        let event = match self.phase {
            WatchPhase::Indexing => WatchEvent::Indexed { index },
            WatchPhase::Parked { .. } => WatchEvent::Returned { status, index },
        };
        self.phase = WatchPhase::Parked { index };
        self.queue(Some(index));
        Ok(Some(event))
    }
}

/// `X-Consul-Index` of a complete response.
fn consul_index(response: &[u8]) -> Option<u64> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    let head = &response[..response.len().min(RESPONSE_HEAD_BYTES_MAX)];
    parsed.parse(head).ok()?;
    let value = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("X-Consul-Index"))?
        .value;
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &str, index: Option<u64>, body: &str) -> Vec<u8> {
        let index = index.map(|i| format!("X-Consul-Index: {i}\r\n")).unwrap_or_default();
        format!(
            "HTTP/1.1 {status}\r\n{index}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn request_line(conn: &WatchConn) -> String {
        let text = String::from_utf8(conn.to_write().to_vec()).unwrap();
        text.lines().next().unwrap().to_string()
    }

    #[test]
    fn indexes_then_parks_and_reparks_at_each_new_index() {
        let mut c = WatchConn::new("watch/k1", 300);
        assert_eq!(request_line(&c), "GET /v1/kv/watch/k1 HTTP/1.1");
        let n = c.to_write().len();
        c.wrote(n);
        assert!(c.to_write().is_empty());
        let bytes = response("404 Not Found", Some(7), "");
        // Split delivery: nothing until the response is whole.
        assert_eq!(c.received(&bytes[..10]).unwrap(), None);
        assert_eq!(
            c.received(&bytes[10..]).unwrap(),
            Some(WatchEvent::Indexed { index: 7 })
        );
        assert_eq!(c.phase(), WatchPhase::Parked { index: 7 });
        assert_eq!(request_line(&c), "GET /v1/kv/watch/k1?index=7&wait=300s HTTP/1.1");
        let woke = response("200 OK", Some(9), "[]");
        assert_eq!(
            c.received(&woke).unwrap(),
            Some(WatchEvent::Returned { status: 200, index: 9 })
        );
        assert_eq!(request_line(&c), "GET /v1/kv/watch/k1?index=9&wait=300s HTTP/1.1");
    }

    #[test]
    fn responses_without_index_or_closing_are_errors() {
        let mut c = WatchConn::new("k", 1);
        assert_eq!(
            c.received(&response("429 Too Many Requests", None, "slow down")),
            Err(WatchError::NoIndex { status: 429 })
        );
        let mut c = WatchConn::new("k", 1);
        let closing = b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(c.received(closing), Err(WatchError::Closing { status: 500 }));
        let mut c = WatchConn::new("k", 1);
        assert!(matches!(c.received(b"garbage\r\n\r\n"), Err(WatchError::Response(_))));
    }

    #[test]
    #[should_panic(expected = "wrote past")]
    fn writing_more_than_queued_is_a_bug() {
        let mut c = WatchConn::new("k", 1);
        let n = c.to_write().len();
        c.wrote(n + 1);
    }
}
