//! The connection loop over real loopback sockets: one serving core (epoll
//! driver) with a hand-published replica version and no control plane
//! (writes answer `500 No cluster leader`). Clients are plain blocking std
//! sockets with read timeouts, so every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proconsul_shared::{Command, State};

use super::conn::parked_probe;
use super::conn::Timeouts;
use super::limits::{HEAD_BYTES_MAX, PARKED_READ_BYTES, PIPELINED_RESPONSES_MAX, READ_CHUNK_BYTES};
use crate::api::test_support::{set, state_with};
use crate::core::Core;
use crate::runtime::serve::follow_versions;
use crate::runtime::test_core::{core_without_control_plane, HandPublishedReplica};

const WAIT: Duration = Duration::from_secs(10);
const PARKED_MAX: usize = 16;
/// Timeouts for the listener that tests them.
const SHORT: Timeouts = Timeouts {
    idle: Duration::from_millis(150),
    request_read: Duration::from_millis(150),
    write: Duration::from_millis(300),
};

struct Server {
    /// Connections here use the default timeouts.
    addr: SocketAddr,
    /// Connections here use [`SHORT`] timeouts.
    short_addr: SocketAddr,
    replica: HandPublishedReplica,
    parked: Arc<AtomicUsize>,
    /// The core's shared-rendering counters: stored, shared.
    renders: Arc<[AtomicUsize; 2]>,
    thread: Option<JoinHandle<()>>,
}

/// Which monoio driver the serving core uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    Epoll,
    Uring,
}

type TestRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn runtime(driver: Driver) -> TestRuntime {
    match driver {
        Driver::Uring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .into(),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .into(),
    }
}

/// The drivers this machine can run: epoll always, io_uring when enabled.
fn drivers() -> Vec<Driver> {
    let mut drivers = vec![Driver::Epoll];
    if monoio::utils::detect_uring() {
        drivers.push(Driver::Uring);
    }
    drivers
}

impl Server {
    fn start(state: State) -> Server {
        Server::start_on(state, Driver::Epoll)
    }

    fn start_on(state: State, driver: Driver) -> Server {
        Server::start_parking(state, driver, PARKED_MAX)
    }

    fn start_parking(state: State, driver: Driver, parked_max: usize) -> Server {
        let replica = HandPublishedReplica::new(state);
        let parked = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let renders = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (hub2, parked2, renders2) = (replica.hub().clone(), parked.clone(), renders.clone());
        let thread = std::thread::spawn(move || {
            let mut rt = runtime(driver);
            rt.block_on(async move {
                let core = Core::new(core_without_control_plane(&hub2, "http-tests", parked_max));
                let listener = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let short = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send((listener.local_addr().unwrap(), short.local_addr().unwrap()))
                    .unwrap();
                let accept_core = core.clone();
                monoio::spawn(async move {
                    while let Ok((stream, peer)) = listener.accept().await {
                        monoio::spawn(super::serve_connection(accept_core.clone(), stream, peer));
                    }
                });
                let short_core = core.clone();
                monoio::spawn(async move {
                    while let Ok((stream, _)) = short.accept().await {
                        let core = short_core.clone();
                        monoio::spawn(async move { super::conn::serve(&core, stream, SHORT).await });
                    }
                });
                let report_core = core.clone();
                let stop = Arc::new(AtomicBool::new(false));
                let stop_reporting = stop.clone();
                monoio::spawn(async move {
                    while !stop_reporting.load(Ordering::SeqCst) {
                        parked2.store(report_core.inner().parked_queries(), Ordering::SeqCst);
                        let stats = report_core.inner().shared_renders().borrow().stats();
                        renders2[0].store(stats.stored as usize, Ordering::SeqCst);
                        renders2[1].store(stats.shared as usize, Ordering::SeqCst);
                        monoio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
                follow_versions(&core, &hub2).await;
                stop.store(true, Ordering::SeqCst);
            });
        });
        let (addr, short_addr) = rx.recv_timeout(WAIT).unwrap();
        Server {
            addr,
            short_addr,
            replica,
            parked,
            renders,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    }

    /// Applies `command` at the next index and publishes it.
    fn apply(&mut self, command: &Command) {
        self.replica.apply(command);
    }

    fn wait_parked(&self, n: usize) {
        let start = Instant::now();
        while self.parked.load(Ordering::SeqCst) != n {
            assert!(start.elapsed() < WAIT, "parked queries never reached {n}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.replica.hub().request_shutdown(0);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Reads one response (framed by Content-Length) from `s`, keeping any
/// bytes after it in `pending`.
fn read_reply(s: &mut TcpStream, pending: &mut Vec<u8>) -> Reply {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let status = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().unwrap());
            let head_only = status == 100;
            let total = end + 4 + if head_only { 0 } else { len };
            if pending.len() >= total {
                let body = pending[end + 4..total].to_vec();
                pending.drain(..total);
                return Reply { status, head, body };
            }
        }
        let n = s.read(&mut buf).expect("response within the timeout");
        assert!(
            n > 0,
            "connection closed mid-response; have {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&buf[..n]);
    }
}

fn roundtrip(s: &mut TcpStream, request: &str) -> Reply {
    s.write_all(request.as_bytes()).unwrap();
    read_reply(s, &mut Vec::new())
}

/// Whether the server closed the connection (EOF within the timeout).
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0))
}

fn sample() -> State {
    state_with(&[set("a", b"1"), set("b", b"2"), set("c", b"3")])
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for driver in drivers() {
        pipelined_requests_are_answered_in_order_on(driver);
    }
}

fn pipelined_requests_are_answered_in_order_on(driver: Driver) {
    let server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    let mut batch = String::new();
    for key in ["a", "b", "missing", "c"] {
        batch.push_str(&format!("GET /v1/kv/{key}?raw HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    s.write_all(batch.as_bytes()).unwrap();
    let mut pending = Vec::new();
    let replies: Vec<(u16, String)> = (0..4)
        .map(|_| {
            let r = read_reply(&mut s, &mut pending);
            (r.status, r.text().to_string())
        })
        .collect();
    assert_eq!(
        replies,
        [
            (200, "1".to_string()),
            (200, "2".to_string()),
            (404, String::new()),
            (200, "3".to_string())
        ]
    );
    // The connection is still usable.
    assert_eq!(roundtrip(&mut s, "GET /v1/kv/a?raw HTTP/1.1\r\n\r\n").text(), "1");
}

#[test]
fn many_pipelined_requests_are_flushed_in_batches() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let count = 200;
    let batch = "GET /v1/kv/b HTTP/1.1\r\n\r\n".repeat(count);
    s.write_all(batch.as_bytes()).unwrap();
    let mut pending = Vec::new();
    for _ in 0..count {
        let r = read_reply(&mut s, &mut pending);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Consul-Index"), Some("2"));
    }
}

#[test]
fn a_request_split_across_reads() {
    let server = Server::start(sample());
    let mut s = server.connect();
    s.set_nodelay(true).unwrap();
    let request = b"GET /v1/kv/c HTTP/1.1\r\nHost: x\r\nUser-Agent: split\r\n\r\n";
    for piece in request.chunks(7) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = read_reply(&mut s, &mut Vec::new());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Consul-Knownleader"), Some("true"));
    assert_eq!(r.header("X-Consul-Default-Acl-Policy"), Some("allow"));
    assert!(r.header("Date").is_some());
    assert!(r.text().contains(r#""Key":"c""#));
}

#[test]
fn bodies_are_consumed_before_the_next_request() {
    let server = Server::start(sample());
    let mut s = server.connect();
    // A chunked write (no control plane: 500) followed by a read.
    let request = "PUT /v1/kv/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /v1/kv/a?raw HTTP/1.1\r\n\r\n";
    s.write_all(request.as_bytes()).unwrap();
    let mut pending = Vec::new();
    let write = read_reply(&mut s, &mut pending);
    assert_eq!((write.status, write.text()), (500, "No cluster leader"));
    let read = read_reply(&mut s, &mut pending);
    assert_eq!((read.status, read.text()), (200, "1"));
    let request = "PUT /v1/kv/y HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /v1/kv/b?raw HTTP/1.1\r\n\r\n";
    s.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut s, &mut pending).status, 500);
    assert_eq!(read_reply(&mut s, &mut pending).text(), "2");
}

#[test]
fn oversized_body_is_refused_before_it_is_sent() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let r = roundtrip(&mut s, "PUT /v1/kv/big HTTP/1.1\r\nContent-Length: 600000\r\n\r\n");
    assert_eq!(r.status, 413);
    assert_eq!(
        r.text(),
        "Request body(600000 bytes) too large, max size: 524288 bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
    );
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(closed(&mut s));
}

#[test]
fn oversized_head_is_431() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let mut request = b"GET /v1/kv/a HTTP/1.1\r\n".to_vec();
    while request.len() <= HEAD_BYTES_MAX {
        request.extend_from_slice(b"X-Padding: 0123456789abcdef0123456789abcdef\r\n");
    }
    // The server may close before reading everything; ignore write errors.
    let _ = s.write_all(&request);
    let r = read_reply(&mut s, &mut Vec::new());
    assert_eq!((r.status, r.text()), (431, "431 Request Header Fields Too Large"));
}

#[test]
fn malformed_request_is_400_and_closes() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let r = roundtrip(&mut s, "NOT A REQUEST\r\n\r\n");
    assert_eq!((r.status, r.text()), (400, "400 Bad Request"));
    assert!(closed(&mut s));
    let mut s = server.connect();
    let r = roundtrip(&mut s, "GET /v1/kv/%zz HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 400, "bad escape in the path");
    assert!(closed(&mut s));
}

#[test]
fn connection_close_and_http10() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let r = roundtrip(&mut s, "GET /v1/kv/a HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    assert!(closed(&mut s));

    let mut s = server.connect();
    let r = roundtrip(&mut s, "GET /v1/kv/a HTTP/1.0\r\n\r\n");
    assert!(r.head.starts_with("HTTP/1.0 200 OK"));
    assert!(closed(&mut s));

    let mut s = server.connect();
    let r = roundtrip(&mut s, "GET /v1/kv/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert_eq!(
        roundtrip(&mut s, "GET /v1/kv/b?raw HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").text(),
        "2"
    );
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let server = Server::start(sample());
    let mut s = server.connect();
    s.write_all(b"PUT /v1/kv/e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let interim = read_reply(&mut s, &mut pending);
    assert_eq!(interim.status, 100);
    s.write_all(b"body").unwrap();
    let r = read_reply(&mut s, &mut pending);
    assert_eq!((r.status, r.text()), (500, "No cluster leader"));
}

#[test]
fn head_and_method_errors() {
    let server = Server::start(sample());
    let mut s = server.connect();
    let r = roundtrip(&mut s, "DELETE /v1/status/leader HTTP/1.1\r\n\r\n");
    assert_eq!((r.status, r.text()), (405, "method DELETE not allowed"));
    assert_eq!(r.header("Allow"), Some("OPTIONS,GET"));
    s.write_all(b"HEAD /v1/kv/a HTTP/1.1\r\n\r\nGET /v1/kv/a?raw HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let start = Instant::now();
    while !got.ends_with(b"\r\n\r\n1") {
        assert!(start.elapsed() < WAIT);
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_eq!(text.matches("HTTP/1.1").count(), 2, "HEAD got headers only: {text:?}");
}

#[test]
fn blocking_read_returns_when_the_key_changes() {
    for driver in drivers() {
        blocking_read_returns_when_the_key_changes_on(driver);
    }
}

fn blocking_read_returns_when_the_key_changes_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    s.write_all(b"GET /v1/kv/b?index=2&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    // A write elsewhere does not wake it.
    server.apply(&set("other", b"x"));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.parked.load(Ordering::SeqCst), 1);
    let started = Instant::now();
    server.apply(&set("b", b"new"));
    let r = read_reply(&mut s, &mut Vec::new());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Consul-Index"), Some("5"));
    assert!(r.text().contains(r#""Value":"bmV3""#));
    server.wait_parked(0);
}

/// Reads one whole response from `s` as raw bytes (framed by Content-Length).
fn read_raw_reply(s: &mut TcpStream) -> Vec<u8> {
    let mut pending = Vec::new();
    let reply = read_reply(s, &mut pending);
    assert!(pending.is_empty(), "one response only");
    let mut raw = reply.head.into_bytes();
    raw.extend_from_slice(b"\r\n\r\n");
    raw.extend_from_slice(&reply.body);
    raw
}

#[test]
fn identical_parked_queries_share_one_rendering() {
    for driver in drivers() {
        identical_parked_queries_share_one_rendering_on(driver);
    }
}

fn identical_parked_queries_share_one_rendering_on(driver: Driver) {
    const WATCHERS: usize = 1_000;
    let mut server = Server::start_parking(sample(), driver, 2 * WATCHERS);
    let mut same: Vec<TcpStream> = (0..WATCHERS).map(|_| server.connect()).collect();
    for s in &mut same {
        s.write_all(b"GET /v1/kv/b?index=2&wait=30s HTTP/1.1\r\n\r\n").unwrap();
    }
    // Same key, another index: its own rendering.
    let mut other = server.connect();
    other
        .write_all(b"GET /v1/kv/b?index=3&wait=30s HTTP/1.1\r\n\r\n")
        .unwrap();
    server.wait_parked(WATCHERS + 1);
    let stored_before = server.renders[0].load(Ordering::SeqCst);
    server.apply(&set("b", b"new"));
    let replies: Vec<Vec<u8>> = same.iter_mut().map(read_raw_reply).collect();
    let other_reply = read_raw_reply(&mut other);
    server.wait_parked(0);

    let mut distinct = replies.clone();
    distinct.sort();
    distinct.dedup();
    // One rendering per distinct `Date` second the answers were made in.
    assert!(distinct.len() <= 2, "{} different answers", distinct.len());
    let text = String::from_utf8(distinct[0].clone()).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("X-Consul-Index: 4\r\n"), "{text}");
    assert!(text.contains(r#""Value":"bmV3""#), "{text}");
    // Same answer, but a request of its own: rendered on its own (counted below).
    assert!(String::from_utf8(other_reply)
        .unwrap()
        .contains("X-Consul-Index: 4\r\n"));

    let start = Instant::now();
    loop {
        let stored = server.renders[0].load(Ordering::SeqCst) - stored_before;
        let shared = server.renders[1].load(Ordering::SeqCst);
        if stored + shared > WATCHERS {
            assert_eq!(stored, distinct.len() + 1, "one rendering per distinct answer");
            assert_eq!(shared, WATCHERS - distinct.len());
            break;
        }
        assert!(start.elapsed() < WAIT, "stored {stored} shared {shared}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn blocking_read_times_out_with_the_same_index() {
    for driver in drivers() {
        blocking_read_times_out_with_the_same_index_on(driver);
    }
}

fn blocking_read_times_out_with_the_same_index_on(driver: Driver) {
    let server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    let started = Instant::now();
    let r = roundtrip(&mut s, "GET /v1/kv/a?index=1&wait=200ms HTTP/1.1\r\n\r\n");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(200 * 17 / 16 + 2000), "{took:?}");
    assert_eq!((r.status, r.header("X-Consul-Index")), (200, Some("1")));
    // A missing key blocks too, and answers 404 with the index on timeout.
    let r = roundtrip(&mut s, "GET /v1/kv/nope?index=3&wait=50ms HTTP/1.1\r\n\r\n");
    assert_eq!((r.status, r.header("X-Consul-Index")), (404, Some("3")));
}

#[test]
fn a_parked_client_that_hangs_up_is_released() {
    for driver in drivers() {
        a_parked_client_that_hangs_up_is_released_on(driver);
    }
}

fn a_parked_client_that_hangs_up_is_released_on(driver: Driver) {
    let server = Server::start_on(sample(), driver);
    let s = server.connect();
    let mut writer = s.try_clone().unwrap();
    writer
        .write_all(b"GET /v1/kv/a?index=1&wait=60s HTTP/1.1\r\n\r\n")
        .unwrap();
    server.wait_parked(1);
    drop(writer);
    drop(s);
    server.wait_parked(0);
}

#[test]
fn a_request_pipelined_behind_a_parked_read_is_answered_after_it() {
    for driver in drivers() {
        a_request_pipelined_behind_a_parked_read_is_answered_after_it_on(driver);
    }
}

fn a_request_pipelined_behind_a_parked_read_is_answered_after_it_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    s.write_all(b"GET /v1/kv/c?index=3&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    s.write_all(b"GET /v1/kv/a?raw HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    server.apply(&set("c", b"changed"));
    let mut pending = Vec::new();
    let first = read_reply(&mut s, &mut pending);
    assert_eq!(first.header("X-Consul-Index"), Some("4"));
    let second = read_reply(&mut s, &mut pending);
    assert_eq!((second.status, second.text()), (200, "1"));
}

#[test]
fn a_request_longer_than_the_parked_read_is_answered_after_it() {
    for driver in drivers() {
        a_request_longer_than_the_parked_read_is_answered_after_it_on(driver);
    }
}

fn a_request_longer_than_the_parked_read_is_answered_after_it_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    s.write_all(b"GET /v1/kv/c?index=3&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    // Far more than the hang-up read takes: the rest waits in the socket.
    let padding = "p".repeat(PARKED_READ_BYTES * 20);
    s.write_all(format!("GET /v1/kv/b?raw HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.parked.load(Ordering::SeqCst), 1, "still parked");
    server.apply(&set("c", b"changed"));
    let mut pending = Vec::new();
    let first = read_reply(&mut s, &mut pending);
    assert_eq!((first.status, first.header("X-Consul-Index")), (200, Some("4")));
    let second = read_reply(&mut s, &mut pending);
    assert_eq!((second.status, second.text()), (200, "2"));
}

#[test]
fn a_parked_read_holds_no_connection_buffers() {
    for driver in drivers() {
        a_parked_read_holds_no_connection_buffers_on(driver);
    }
}

fn a_parked_read_holds_no_connection_buffers_on(driver: Driver) {
    let big = vec![b'v'; 2 * READ_CHUNK_BYTES];
    let mut server = Server::start_on(state_with(&[set("a", b"1"), set("big", &big)]), driver);
    let mut s = server.connect();
    // Grow both buffers first: a long request head, a large response.
    let padding = "p".repeat(2 * READ_CHUNK_BYTES);
    let r = roundtrip(
        &mut s,
        &format!("GET /v1/kv/big?raw HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n"),
    );
    assert_eq!((r.status, r.body.len()), (200, big.len()));
    let request = "GET /v1/kv/a?index=1&wait=5s HTTP/1.1\r\n\r\n";
    s.write_all(request.as_bytes()).unwrap();
    server.wait_parked(1);
    let held = parked_probe::held_bytes(s.local_addr().unwrap()).expect("recorded when it parked");
    // Only the parked request's own copy of its method and target.
    assert!(
        held <= request.len(),
        "a parked connection holds {held} bytes of buffers"
    );
    server.apply(&set("a", b"2"));
    let r = read_reply(&mut s, &mut Vec::new());
    assert_eq!((r.status, r.header("X-Consul-Index")), (200, Some("3")));
    // The connection serves on after its buffers were released.
    assert_eq!(
        roundtrip(&mut s, "GET /v1/kv/big?raw HTTP/1.1\r\n\r\n").body.len(),
        big.len()
    );
}

#[test]
fn idle_and_slow_clients_are_dropped() {
    let server = Server::start(sample());
    // Idle keep-alive connection.
    let mut s = TcpStream::connect(server.short_addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(roundtrip(&mut s, "GET /v1/kv/a?raw HTTP/1.1\r\n\r\n").text(), "1");
    let idle_since = Instant::now();
    assert!(closed(&mut s), "closed after the idle timeout");
    assert!(idle_since.elapsed() >= SHORT.idle);
    // A request that never finishes arriving.
    let mut s = TcpStream::connect(server.short_addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /v1/kv/a HTTP/1.1\r\nHost: sl").unwrap();
    let started = Instant::now();
    assert!(closed(&mut s), "closed after the request read timeout");
    assert!(started.elapsed() >= SHORT.request_read);
    // Trickling bytes does not extend the deadline: it covers the request.
    let mut s = TcpStream::connect(server.short_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let started = Instant::now();
    let mut cut = false;
    for byte in b"GET /v1/kv/a HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain(b"x".repeat(200).iter())
    {
        if s.write_all(&[*byte]).is_err() || closed(&mut s) {
            cut = true;
            break;
        }
        assert!(started.elapsed() < WAIT);
    }
    assert!(cut, "a trickling request is cut off");
    assert!(started.elapsed() < SHORT.request_read * 4);
}

#[test]
fn a_client_that_stops_reading_is_dropped() {
    // 512 KiB values: a few pipelined reads fill every socket buffer.
    let big = vec![b'v'; 512 * 1024];
    let server = Server::start(state_with(&[set("big", &big)]));
    let mut s = TcpStream::connect(server.short_addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let requests = "GET /v1/kv/big?raw HTTP/1.1\r\n\r\n".repeat(PIPELINED_RESPONSES_MAX * 2);
    s.write_all(requests.as_bytes()).unwrap();
    // Do not read until the server's write has timed out.
    std::thread::sleep(SHORT.write * 3);
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < WAIT, "the server never closed");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    let all = PIPELINED_RESPONSES_MAX * 2 * big.len();
    assert!(
        received < all,
        "the connection was cut before everything was written ({received} of {all})"
    );
}

/// Most bytes a connection's future may take (its task's allocation is
/// this plus monoio's task header). A parked query costs this much, so it
/// is most of issue #4's budget of 4 KiB per parked query (the rest: the
/// registry entry and deadline, the request's copy, the hang-up read).
/// Measured 2,024 bytes (debug and release alike) after the forwarding
/// state and the read/write timers were boxed (3,072 before this session's
/// changes, 2,432 after the per-query timer was removed).
const CONNECTION_FUTURE_BYTES_MAX: usize = 2_560;

#[test]
fn a_connection_future_fits_the_parked_query_budget() {
    let mut rt = runtime(Driver::Epoll);
    let size = rt.block_on(async {
        let replica = HandPublishedReplica::new(sample());
        let core = Core::new(core_without_control_plane(replica.hub(), "http-tests", PARKED_MAX));
        let listener = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let connection = super::serve_connection(core, stream, peer);
        std::mem::size_of_val(&connection)
    });
    eprintln!("connection future: {size} bytes");
    assert!(
        size <= CONNECTION_FUTURE_BYTES_MAX,
        "a connection's future is {size} bytes, over {CONNECTION_FUTURE_BYTES_MAX}"
    );
}

#[test]
fn identical_reads_on_one_view_share_one_rendering() {
    for driver in drivers() {
        identical_reads_on_one_view_share_one_rendering_on(driver);
    }
}

fn identical_reads_on_one_view_share_one_rendering_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    let renders = |server: &Server| {
        (
            server.renders[0].load(Ordering::SeqCst),
            server.renders[1].load(Ordering::SeqCst),
        )
    };
    let replies: Vec<Vec<u8>> = (0..3)
        .map(|_| read_raw_reply_after(&mut s, b"GET /v1/kv/b HTTP/1.1\r\n\r\n"))
        .collect();
    let text = String::from_utf8(replies[2].clone()).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    // Three reads in well under a second: at most one `Date` turn, so at
    // least one read was served from a stored rendering, byte for byte.
    assert!(replies[0] == replies[1] || replies[1] == replies[2]);
    let start = Instant::now();
    while renders(&server).0 + renders(&server).1 < 3 {
        assert!(
            start.elapsed() < WAIT,
            "renders (stored, shared) = {:?}",
            renders(&server)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (stored, shared) = renders(&server);
    assert!(shared >= 1 && stored <= 2, "stored {stored} shared {shared}");
    // A write is a new view: the next read renders again, with the new value.
    server.apply(&set("b", b"changed"));
    let start = Instant::now();
    loop {
        let reply = read_raw_reply_after(&mut s, b"GET /v1/kv/b HTTP/1.1\r\n\r\n");
        if String::from_utf8_lossy(&reply).contains(r#""Value":"Y2hhbmdlZA==""#) {
            break;
        }
        assert!(start.elapsed() < WAIT, "the write never became visible");
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    while renders(&server).0 <= stored {
        assert!(start.elapsed() < WAIT, "the new view was not rendered afresh");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `request` on `s` and reads its whole reply.
fn read_raw_reply_after(s: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    read_raw_reply(s)
}

#[test]
fn a_woken_watcher_reparks_on_the_same_connection() {
    for driver in drivers() {
        a_woken_watcher_reparks_on_the_same_connection_on(driver);
    }
}

/// The answer of a woken parked query is sent from its task while the
/// hang-up read stays in flight; that read then takes the client's next
/// request, short or longer than the read's buffer (the rest is taken
/// without another round), and the connection parks again.
fn a_woken_watcher_reparks_on_the_same_connection_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let mut s = server.connect();
    let mut pending = Vec::new();
    s.write_all(b"GET /v1/kv/b?index=2&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    server.apply(&set("b", b"one"));
    let r = read_reply(&mut s, &mut pending);
    assert_eq!((r.status, r.header("X-Consul-Index")), (200, Some("4")));
    // Re-park at once with a request longer than the hang-up read.
    let padding = "p".repeat(PARKED_READ_BYTES * 3);
    s.write_all(format!("GET /v1/kv/b?index=4&wait=5s HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n").as_bytes())
        .unwrap();
    server.wait_parked(1);
    server.apply(&set("b", b"two"));
    let r = read_reply(&mut s, &mut pending);
    assert_eq!((r.status, r.header("X-Consul-Index")), (200, Some("5")));
    assert!(r.text().contains(r#""Value":"dHdv""#), "{}", r.text());
    // Re-park later, with a short request: the read waited for it.
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"GET /v1/kv/b?index=5&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    server.apply(&set("b", b"three"));
    let r = read_reply(&mut s, &mut pending);
    assert_eq!((r.status, r.header("X-Consul-Index")), (200, Some("6")));
    assert!(pending.is_empty(), "one answer per request");
    server.wait_parked(0);
}

#[test]
fn a_woken_watcher_that_stays_idle_is_dropped() {
    let mut server = Server::start(sample());
    let mut s = TcpStream::connect(server.short_addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /v1/kv/b?index=2&wait=5s HTTP/1.1\r\n\r\n").unwrap();
    server.wait_parked(1);
    server.apply(&set("b", b"new"));
    let r = read_reply(&mut s, &mut Vec::new());
    assert_eq!(r.header("X-Consul-Index"), Some("4"));
    let answered = Instant::now();
    assert!(closed(&mut s), "closed after the idle timeout");
    let idle = answered.elapsed();
    assert!(idle >= SHORT.idle - Duration::from_millis(20), "{idle:?}");
    assert!(idle < WAIT, "{idle:?}");
}

#[test]
fn a_woken_answer_larger_than_the_socket_takes_arrives_whole() {
    for driver in drivers() {
        a_woken_answer_larger_than_the_socket_takes_arrives_whole_on(driver);
    }
}

/// A client with a small receive buffer that is slow to read: the direct
/// send takes what fits, the connection writes the rest, and the
/// connection keeps serving.
fn a_woken_answer_larger_than_the_socket_takes_arrives_whole_on(driver: Driver) {
    let mut server = Server::start_on(sample(), driver);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /v1/kv/c?index=3&wait=5s&raw HTTP/1.1\r\n\r\n")
        .unwrap();
    server.wait_parked(1);
    let big = vec![b'v'; 400 * 1024];
    server.apply(&set("c", &big));
    // Not reading for a while: the server's socket fills.
    std::thread::sleep(Duration::from_millis(100));
    let mut pending = Vec::new();
    let r = read_reply(&mut s, &mut pending);
    assert_eq!((r.status, r.body.len()), (200, big.len()));
    assert!(r.body == big, "the body arrives intact");
    assert_eq!(roundtrip(&mut s, "GET /v1/kv/a?raw HTTP/1.1\r\n\r\n").text(), "1");
}
