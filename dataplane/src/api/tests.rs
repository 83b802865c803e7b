//! Routing, method checks and the small endpoints, at the handler level.

use proconsul_shared::ipc::messages::ControlOp;

use super::test_support::{leader, request, view_with};
use super::*;

fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(response) => response,
        other => panic!("expected a ready response, got {other:?}"),
    }
}

fn call(method: &str, path: &str, query: &str) -> Outcome {
    handle(&request(method, path, query, b""), &view_with(&[]), leader())
}

fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn index_page() {
    let r = ready(call("GET", "/", ""));
    assert_eq!(
        (r.status, text(&r), r.content_type),
        (200, "Consul Agent", ContentType::Text)
    );
}

#[test]
fn unknown_paths_are_404() {
    let r = ready(call("GET", "/v1/nope", ""));
    assert_eq!(
        (r.status, text(&r)),
        (404, "Invalid URL path: not a recognized HTTP API endpoint")
    );
    assert_eq!(r.content_type, ContentType::Text);
    let r = ready(call("GET", "/favicon.ico", ""));
    assert_eq!((r.status, r.body.len(), r.content_type), (404, 0, ContentType::None));
    let r = ready(call("GET", "/v1/kv", ""));
    assert_eq!(r.status, 404, "the KV endpoint needs its trailing slash");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let r = ready(call("POST", "/v1/kv/x", ""));
    assert_eq!((r.status, text(&r)), (405, "method POST not allowed"));
    assert_eq!(r.allow, Some("OPTIONS,GET,PUT,DELETE"));
    let r = ready(call("HEAD", "/v1/kv/x", ""));
    assert_eq!((r.status, r.allow), (405, Some("OPTIONS,GET,PUT,DELETE")));
    let r = ready(call("GET", "/v1/txn", ""));
    assert_eq!(
        (r.status, text(&r), r.allow),
        (405, "method GET not allowed", Some("OPTIONS,PUT"))
    );
    let r = ready(call("BREW", "/v1/status/leader", ""));
    assert_eq!(
        (r.status, text(&r), r.allow),
        (405, "method BREW not allowed", Some("OPTIONS,GET"))
    );
    let r = ready(call("GET", "/v1/agent/leave", ""));
    assert_eq!((r.status, r.allow), (405, Some("OPTIONS,PUT")));
}

#[test]
fn options_lists_methods() {
    let r = ready(call("OPTIONS", "/v1/kv/anything", ""));
    assert_eq!(
        (r.status, r.body.len(), r.allow),
        (200, 0, Some("OPTIONS,GET,PUT,DELETE"))
    );
    let r = ready(call("OPTIONS", "/v1/agent/self", ""));
    assert_eq!(r.allow, Some("OPTIONS,GET"));
    let r = ready(call("OPTIONS", "*", ""));
    assert_eq!((r.status, r.allow), (200, None));
}

#[test]
fn status_leader_and_peers() {
    let r = ready(call("GET", "/v1/status/leader", ""));
    assert_eq!(
        (r.status, text(&r), r.content_type),
        (200, r#""127.0.0.1:8300""#, ContentType::Json)
    );
    assert_eq!(r.meta, None, "status endpoints carry no index headers");
    let r = ready(call("GET", "/v1/status/peers", ""));
    assert_eq!((r.status, text(&r)), (200, r#"["127.0.0.1:8300"]"#));

    let mut view = view_with(&[]);
    view.cluster = std::sync::Arc::new(Default::default());
    let r = ready(handle(&request("GET", "/v1/status/leader", "", b""), &view, leader()));
    assert_eq!(text(&r), r#""""#, "no leader is an empty string");
    let r = ready(handle(&request("GET", "/v1/status/peers", "", b""), &view, leader()));
    assert_eq!(text(&r), "[]");

    let lost = LeaderStatus {
        known_leader: false,
        last_contact_ms: 9_000,
    };
    let r = ready(handle(
        &request("GET", "/v1/status/leader", "", b""),
        &view_with(&[]),
        lost,
    ));
    assert_eq!(
        text(&r),
        r#""""#,
        "a stale cluster status is not believed once leadership is lost"
    );

    let r = ready(call("GET", "/v1/status/leader", "dc=dc2"));
    assert_eq!((r.status, text(&r)), (500, "No path to datacenter"));
    let r = ready(call("GET", "/v1/status/peers", "stale&consistent"));
    assert_eq!(r.status, 400);
    let r = ready(call("GET", "/v1/status/leader", "pretty"));
    assert_eq!(text(&r), "\"127.0.0.1:8300\"\n");
}

#[test]
fn agent_endpoints_forward() {
    match call("GET", "/v1/agent/self", "") {
        Outcome::Forward(f) => {
            assert_eq!(f.op, ControlOp::Stats);
            assert_eq!(f.reply, ReplyKind::AgentSelf { pretty: false });
        }
        other => panic!("{other:?}"),
    }
    match call("GET", "/v1/agent/self", "pretty") {
        Outcome::Forward(f) => assert_eq!(f.reply, ReplyKind::AgentSelf { pretty: true }),
        other => panic!("{other:?}"),
    }
    match call("PUT", "/v1/agent/leave", "") {
        Outcome::Forward(f) => assert_eq!((f.op, f.reply), (ControlOp::Leave, ReplyKind::Empty)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn body_limits_per_endpoint() {
    assert_eq!(body_limit("PUT", "/v1/kv/a?cas=1"), 512 * 1024);
    assert_eq!(body_limit("PUT", "/v1/txn"), 512 * 1024);
    assert_eq!(body_limit("PUT", "/v1/agent/leave"), BODY_BYTES_MAX_DEFAULT);
    let r = body_too_large("/v1/kv/a", 600_000, 524_288);
    assert_eq!(r.status, 413);
    assert_eq!(
        text(&r),
        "Request body(600000 bytes) too large, max size: 524288 bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
    );
    let r = body_too_large("/v1/txn?stale", 600_000, 524_288);
    assert!(text(&r).ends_with("#txn_max_req_len."));
}

#[test]
fn arbitrary_paths_queries_and_bodies_never_panic() {
    let view = super::test_support::view_with(&[super::test_support::set("a", b"1")]);
    let paths = [
        "/",
        "/v1/kv/",
        "/v1/kv/a",
        "/v1/txn",
        "/v1/status/leader",
        "/v1/agent/self",
        "/v1/agent/leave",
        "*",
        "/v1/x",
    ];
    let queries = [
        "",
        "recurse",
        "keys&separator=",
        "raw",
        "index=1&wait=1ns",
        "cas=0",
        "cas=x",
        "flags=99999999999999999999",
        "acquire=&release=",
        "dc=",
        "max_stale=-1s",
        "wait=-5m&index=1",
        "index=18446744073709551615",
    ];
    let bodies: [&[u8]; 6] = [b"", b"[]", b"null", b"[{}]", b"[{\"KV\":null}]", &[0xff, 0xfe, 0x00]];
    for method in ["GET", "PUT", "DELETE", "POST", "OPTIONS", "HEAD", "X"] {
        for path in paths {
            for query in queries {
                for body in bodies {
                    let req = request(method, path, query, body);
                    let _ = handle(&req, &view, leader());
                }
            }
        }
    }
}
