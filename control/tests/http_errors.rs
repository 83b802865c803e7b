//! HTTP protocol handling and error answers (spec HTTP.md §0, SUMMARY.md
//! item 10): methods, OPTIONS, unknown paths, malformed requests, limits,
//! pipelining and keep-alive.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::http::{self, encode_request, Conn, RESPONSE_TIMEOUT};
use common::{Agent, AgentSpec};

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

/// The methods listed in an `Allow` header.
fn allowed(r: &common::http::Response) -> Vec<String> {
    r.header("Allow")
        .unwrap_or_else(|| panic!("no Allow header: {:?}", r.headers))
        .split(',')
        .map(|m| m.trim().to_string())
        .collect()
}

#[test]
fn a_wrong_method_is_405_with_allow() {
    let agent = dev();
    let r = agent.request("DELETE", "/v1/status/leader", &[], b"");
    r.expect_status(405);
    assert_eq!(r.text().trim(), "method DELETE not allowed");
    let allow = allowed(&r);
    assert!(
        allow.contains(&"OPTIONS".to_string()) && allow.contains(&"GET".to_string()),
        "{allow:?}"
    );
    assert!(!allow.contains(&"DELETE".to_string()));

    let r = agent.request("POST", "/v1/kv/some/key", &[], b"v");
    r.expect_status(405);
    assert_eq!(r.text().trim(), "method POST not allowed");
    let allow = allowed(&r);
    for m in ["OPTIONS", "GET", "PUT", "DELETE"] {
        assert!(allow.contains(&m.to_string()), "{m} missing from {allow:?}");
    }
    agent.get("/v1/kv/some/key").expect_status(404);
}

#[test]
fn options_answers_200_with_allow_and_no_body() {
    let agent = dev();
    let r = agent.request("OPTIONS", "/v1/kv/anything", &[], b"");
    r.expect_status(200);
    assert!(r.body.is_empty(), "{:?}", r.text());
    let allow = allowed(&r);
    for m in ["OPTIONS", "GET", "PUT", "DELETE"] {
        assert!(allow.contains(&m.to_string()), "{m} missing from {allow:?}");
    }
    let r = agent.request("OPTIONS", "/v1/status/leader", &[], b"");
    r.expect_status(200);
    assert!(allowed(&r).contains(&"GET".to_string()));
}

#[test]
fn an_unknown_api_path_is_404_with_consuls_text() {
    let agent = dev();
    for target in ["/v1/not-an-endpoint", "/v1/kvv/x", "/v1/status/nope"] {
        let r = agent.get(target);
        r.expect_status(404);
        assert!(
            r.text()
                .contains("Invalid URL path: not a recognized HTTP API endpoint"),
            "{target}: {:?}",
            r.text()
        );
        assert!(
            r.header("Content-Type").is_some_and(|c| c.starts_with("text/plain")),
            "errors are plain text: {:?}",
            r.header("Content-Type")
        );
    }
}

#[test]
fn a_malformed_request_is_400_and_the_server_survives() {
    let agent = dev();
    let garbage: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/kv/x\r\n\r\n",
        b"GET /v1/kv/x HTTP/1.1\r\nBroken Header Line\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    ];
    for bytes in garbage {
        let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
        conn.write_raw(bytes).expect("write garbage");
        let r = conn
            .read_response()
            .unwrap_or_else(|e| panic!("no answer to {:?}: {e}", String::from_utf8_lossy(bytes)));
        assert_eq!(r.status, 400, "answer to {:?}", String::from_utf8_lossy(bytes));
        agent.get("/v1/status/leader").expect_status(200);
    }
    // A client that connects and leaves without a word harms nothing.
    drop(TcpStream::connect(agent.http_addr()).expect("connect"));
    let mut half = TcpStream::connect(agent.http_addr()).expect("connect");
    half.write_all(b"GET /v1/kv/x HT").expect("write half a request");
    drop(half);
    agent.get("/v1/status/leader").expect_status(200);
}

#[test]
fn an_oversized_header_is_refused_and_the_server_survives() {
    let agent = dev();
    let huge = "a".repeat(2 * 1024 * 1024);
    let r = agent.request("GET", "/v1/kv/x", &[("X-Huge", &huge)], b"");
    assert!(
        r.status == 431 || r.status == 400,
        "oversized header answered {} {:?}",
        r.status,
        r.text()
    );
    agent.get("/v1/status/leader").expect_status(200);
}

#[test]
fn an_oversized_body_on_any_endpoint_is_refused() {
    let agent = dev();
    let body = vec![b'x'; 4 * 1024 * 1024];
    let r = agent.put("/v1/kv/too/big", &body);
    r.expect_status(413);
    agent.get("/v1/status/leader").expect_status(200);
}

#[test]
fn stale_with_consistent_and_cached_with_consistent_are_400() {
    let agent = dev();
    agent.kv_put("mode", b"v");
    let r = agent.get("/v1/kv/mode?stale&consistent");
    r.expect_status(400);
    assert_eq!(
        r.text().trim(),
        "Cannot specify ?stale with ?consistent, conflicting semantics."
    );
    let r = agent.get("/v1/kv/mode?cached&consistent");
    r.expect_status(400);
    assert_eq!(
        r.text().trim(),
        "Cannot specify ?cached with ?consistent, conflicting semantics."
    );
    // Presence is what counts: empty values conflict too.
    let r = agent.get("/v1/kv/mode?stale=&consistent=");
    r.expect_status(400);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let agent = dev();
    agent.kv_put("pipe/1", b"one");
    agent.kv_put("pipe/3", b"three");
    let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
    let mut batch = Vec::new();
    batch.extend(encode_request("GET", "/v1/kv/pipe/1?raw", &[], b"", false));
    batch.extend(encode_request("GET", "/v1/kv/pipe/2", &[], b"", false));
    batch.extend(encode_request("PUT", "/v1/kv/pipe/2", &[], b"two", false));
    batch.extend(encode_request("GET", "/v1/kv/pipe/2?raw", &[], b"", false));
    batch.extend(encode_request("GET", "/v1/kv/pipe/3?raw", &[], b"", false));
    batch.extend(encode_request("GET", "/v1/status/leader", &[], b"", false));
    conn.write_raw(&batch).expect("write the batch in one go");
    let leader = format!("\"{}:8300\"", agent.ip());
    let expected: [(u16, &[u8]); 5] = [
        (200, b"one"),
        (404, b""),
        (200, b"two"),
        (200, b"three"),
        (200, leader.as_bytes()),
    ];
    let first = conn.read_response().expect("response 1");
    assert_eq!((first.status, first.body.as_slice()), (expected[0].0, expected[0].1));
    let second = conn.read_response().expect("response 2");
    assert_eq!(second.status, expected[1].0);
    assert!(second.body.is_empty());
    let put = conn.read_response().expect("response 3 (the PUT)");
    put.expect_status(200);
    assert_eq!(put.text().trim(), "true");
    for (i, (status, body)) in expected.iter().enumerate().skip(2) {
        let r = conn
            .read_response()
            .unwrap_or_else(|e| panic!("response {}: {e}", i + 2));
        assert_eq!(r.status, *status, "response {}", i + 2);
        assert_eq!(r.text().trim(), String::from_utf8_lossy(body), "response {}", i + 2);
    }
}

#[test]
fn a_keep_alive_connection_serves_many_requests() {
    let agent = dev();
    let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
    for i in 0..50 {
        let key = format!("/v1/kv/ka/{}", i % 5);
        let r = conn.exchange("PUT", &key, &[], i.to_string().as_bytes()).expect("PUT");
        r.expect_status(200);
        let r = conn.exchange("GET", &format!("{key}?raw"), &[], b"").expect("GET");
        r.expect_status(200);
        assert_eq!(r.text(), i.to_string());
    }
    // HTTP/1.1 keeps the connection open after an error answer too.
    let r = conn.exchange("GET", "/v1/kv/", &[], b"").expect("GET missing key name");
    r.expect_status(400);
    let r = conn
        .exchange("GET", "/v1/status/leader", &[], b"")
        .expect("GET after an error");
    r.expect_status(200);
}

#[test]
fn connection_close_is_honoured() {
    let agent = dev();
    let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
    conn.write_raw(&encode_request("GET", "/v1/status/leader", &[], b"", true))
        .expect("write");
    conn.read_response().expect("response").expect_status(200);
    assert!(
        conn.closed_by_peer(Duration::from_secs(5)),
        "the server keeps a Connection: close connection open"
    );
}

#[test]
fn a_chunked_request_body_is_accepted() {
    let agent = dev();
    let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
    conn.write_raw(
        b"PUT /v1/kv/chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .expect("write");
    let r = conn.read_response().expect("response");
    r.expect_status(200);
    assert_eq!(r.text().trim(), "true");
    assert_eq!(agent.get("/v1/kv/chunked?raw").body, b"hello world");
}

#[test]
fn many_concurrent_connections_are_served() {
    const CLIENTS: usize = 32;
    let agent = dev();
    agent.kv_put("conc", b"v");
    thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let addr = agent.http_addr();
                s.spawn(move || {
                    let mut conn = Conn::open(addr, RESPONSE_TIMEOUT).expect("connect");
                    for _ in 0..20 {
                        let r = conn.exchange("GET", "/v1/kv/conc?raw", &[], b"").expect("GET");
                        assert_eq!((r.status, r.body.as_slice()), (200, b"v".as_slice()));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("client thread");
        }
    });
    let r = http::request(agent.http_addr(), "GET", "/v1/kv/conc?raw", &[], b"", RESPONSE_TIMEOUT).expect("GET");
    assert_eq!(r.body, b"v");
}

#[test]
fn over_200_connections_from_one_ip_get_429() {
    /// Consul's default `limits.http_max_conns_per_client`.
    const CONNS_PER_CLIENT_MAX: usize = 200;
    let agent = dev();
    let mut held = Vec::with_capacity(CONNS_PER_CLIENT_MAX);
    for i in 0..CONNS_PER_CLIENT_MAX {
        let mut conn = Conn::open(agent.http_addr(), RESPONSE_TIMEOUT).expect("connect");
        let r = conn
            .exchange("GET", "/v1/status/leader", &[], b"")
            .unwrap_or_else(|e| panic!("connection {i} of {CONNS_PER_CLIENT_MAX}: {e}"));
        r.expect_status(200);
        held.push(conn);
    }
    let r = agent.get("/v1/status/leader");
    r.expect_status(429);
    assert_eq!(
        r.text().trim(),
        "Your IP is issuing too many concurrent connections, please rate limit your calls"
    );
    // Held connections keep working, and a freed slot is usable again.
    let r = held[0]
        .exchange("GET", "/v1/status/leader", &[], b"")
        .expect("held connection");
    r.expect_status(200);
    held.truncate(CONNS_PER_CLIENT_MAX - 1);
    let freed = common::process::poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let r = agent
            .try_request("GET", "/v1/status/leader", &[], b"", RESPONSE_TIMEOUT)
            .ok()?;
        (r.status == 200).then_some(())
    });
    assert!(freed.is_some(), "a closed connection did not free its slot");
}
