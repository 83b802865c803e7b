//! `/v1/kv` at the handler level: states built by applying real commands.

use std::time::Duration;

use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::Command;

use crate::api::response::{Consistency, QueryMeta};
use crate::api::test_support::{agent, leader, request, set, state_with, view_of, view_with};
use crate::api::{handle, ApiRequest, Block, ContentType, Outcome, ReplyKind, Response};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

fn run(view: &View, method: &str, path: &str, query: &str, body: &[u8]) -> Outcome {
    handle(&request(method, path, query, body), view, leader())
}

fn get(view: &View, path: &str, query: &str) -> Response {
    match run(view, "GET", path, query, b"") {
        Outcome::Ready(r) => r,
        other => panic!("expected ready, got {other:?}"),
    }
}

fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

fn forwarded(outcome: Outcome) -> (Command, ReplyKind) {
    match outcome {
        Outcome::Forward(f) => match f.op {
            ControlOp::Write(command) => (command, f.reply),
            other => panic!("expected a write, got {other:?}"),
        },
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn refused(outcome: Outcome) -> (u16, String) {
    match outcome {
        Outcome::Ready(r) => (r.status, String::from_utf8(r.body).unwrap()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn meta(index: u64) -> Option<QueryMeta> {
    Some(QueryMeta::new(index, leader(), Consistency::Leader))
}

fn sample() -> View {
    view_with(&[
        set("web/a", b"1"),                       // index 1
        set("web/sub/b", b"22"),                  // 2
        set("web/sub/c", b""),                    // 3
        set("db/x", b"<tag>&"),                   // 4
        set("web/sub/deep/d", b"4"),              // 5
        Command::KvDelete { key: "db/x".into() }, // 6
        set("web/z", b"z"),                       // 7
    ])
}

#[test]
fn single_key_is_an_array_of_dir_entries() {
    let r = get(&sample(), "/v1/kv/web/a", "");
    assert_eq!((r.status, r.content_type), (200, ContentType::Json));
    assert_eq!(
        text(&r),
        r#"[{"LockIndex":0,"Key":"web/a","Flags":0,"Value":"MQ==","CreateIndex":1,"ModifyIndex":1}]"#
    );
    assert_eq!(r.meta, meta(1), "index is the key's ModifyIndex");
}

#[test]
fn empty_value_is_null() {
    let r = get(&sample(), "/v1/kv/web/sub/c", "");
    assert!(text(&r).contains(r#""Value":null"#));
}

#[test]
fn missing_key_is_404_with_index_headers() {
    let r = get(&sample(), "/v1/kv/nope", "");
    assert_eq!((r.status, r.body.len(), r.content_type), (404, 0, ContentType::None));
    assert_eq!(r.meta, meta(7), "a missing key reports the table index");
    let r = get(&view_with(&[]), "/v1/kv/nope", "");
    assert_eq!(r.meta.unwrap().index, 1, "never 0");
}

#[test]
fn raw_returns_the_bytes() {
    let view = view_with(&[set("bin", &[0, 159, 146, 150])]);
    let r = get(&view, "/v1/kv/bin", "raw");
    assert_eq!((r.status, r.content_type), (200, ContentType::RawValue));
    assert_eq!(r.body, vec![0, 159, 146, 150]);
    assert_eq!(r.meta, meta(1));
    assert_eq!(get(&view, "/v1/kv/other", "raw").status, 404);
}

#[test]
fn recurse_lists_the_prefix_in_key_order() {
    let r = get(&sample(), "/v1/kv/web/sub/", "recurse");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let keys: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["web/sub/b", "web/sub/c", "web/sub/deep/d"]);
    assert_eq!(r.meta, meta(5), "max ModifyIndex under the prefix");
    // `recurse=false` still recurses (presence-only flag).
    assert_eq!(get(&sample(), "/v1/kv/web/sub/", "recurse=false").status, 200);
    // Root recurse lists everything.
    let r = get(&sample(), "/v1/kv/", "recurse");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn recurse_index_includes_deletes() {
    let r = get(&sample(), "/v1/kv/db/", "recurse");
    assert_eq!((r.status, r.body.len()), (404, 0), "everything under db/ was deleted");
    assert_eq!(r.meta, meta(6), "the tombstone's index");
    let r = get(&sample(), "/v1/kv/never/", "recurse");
    assert_eq!((r.status, r.meta), (404, meta(7)));
}

#[test]
fn json_strings_escape_like_go() {
    let view = view_with(&[set("a<b>&c", b"v")]);
    let r = get(&view, "/v1/kv/a<b>&c", "");
    assert!(text(&r).contains(r#""Key":"a\u003cb\u003e\u0026c""#));
}

#[test]
fn empty_key_needs_recurse_or_keys() {
    let r = get(&sample(), "/v1/kv/", "");
    assert_eq!((r.status, text(&r)), (400, "Missing key name"));
    assert_eq!(get(&sample(), "/v1/kv/", "keys").status, 200);
}

#[test]
fn keys_listing() {
    let r = get(&sample(), "/v1/kv/", "keys");
    assert_eq!(
        text(&r),
        r#"["web/a","web/sub/b","web/sub/c","web/sub/deep/d","web/z"]"#
    );
    let r = get(&sample(), "/v1/kv/", "keys&separator=/");
    assert_eq!(text(&r), r#"["web/"]"#);
    let r = get(&sample(), "/v1/kv/web/", "keys&separator=/");
    assert_eq!(text(&r), r#"["web/a","web/sub/","web/z"]"#);
    assert_eq!(r.meta, meta(7));
    let r = get(&sample(), "/v1/kv/web/", "keys&seperator=/");
    assert_eq!(
        text(&r),
        r#"["web/a","web/sub/","web/z"]"#,
        "Consul's misspelling is accepted"
    );
    let r = get(&sample(), "/v1/kv/web/", "keys&seperator=x&separator=/");
    assert_eq!(text(&r), r#"["web/a","web/sub/","web/z"]"#, "the right spelling wins");
    let r = get(&sample(), "/v1/kv/web/sub/", "keys&separator=/");
    assert_eq!(text(&r), r#"["web/sub/b","web/sub/c","web/sub/deep/"]"#);
}

#[test]
fn keys_on_empty_prefix_and_root() {
    let r = get(&sample(), "/v1/kv/nothing/", "keys");
    assert_eq!((r.status, r.body.len()), (404, 0));
    assert!(r.meta.is_some());
    let r = get(&view_with(&[]), "/v1/kv/", "keys");
    assert_eq!((r.status, text(&r)), (200, "[]"), "the root is never 404");
}

#[test]
fn flags_keep_all_64_bits() {
    let (command, _) = forwarded(run(&sample(), "PUT", "/v1/kv/lock", "flags=3304740253564472344", b"x"));
    assert_eq!(
        command,
        Command::KvSet {
            key: "lock".into(),
            value: b"x".to_vec(),
            flags: 0x2ddccbc058a50c18
        }
    );
    let view = view_of(state_with(&[command]), agent());
    let r = get(&view, "/v1/kv/lock", "");
    assert!(text(&r).contains(r#""Flags":3304740253564472344"#));
    let r = get(
        &view_of(
            state_with(&[Command::KvSet {
                key: "m".into(),
                value: vec![],
                flags: u64::MAX,
            }]),
            agent(),
        ),
        "/v1/kv/m",
        "",
    );
    assert!(text(&r).contains(r#""Flags":18446744073709551615"#));
}

#[test]
fn put_stores_the_body_verbatim() {
    let body = br#"{"not":"parsed"} "#;
    let (command, reply) = forwarded(run(&sample(), "PUT", "/v1/kv/cfg/app", "", body));
    assert_eq!(
        command,
        Command::KvSet {
            key: "cfg/app".into(),
            value: body.to_vec(),
            flags: 0
        }
    );
    assert_eq!(reply, ReplyKind::Bool { pretty: false });
}

#[test]
fn put_cas() {
    let (command, _) = forwarded(run(&sample(), "PUT", "/v1/kv/k", "cas=0", b"v"));
    assert_eq!(
        command,
        Command::KvCas {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 0,
            index: 0
        },
        "cas=0 is create-only"
    );
    let (command, _) = forwarded(run(&sample(), "PUT", "/v1/kv/k", "cas=12&flags=3", b"v"));
    assert_eq!(
        command,
        Command::KvCas {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 3,
            index: 12
        }
    );
}

#[test]
fn put_refusals() {
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/", "", b"v")),
        (400, "Missing key name".into())
    );
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "cas=1&acquire=s", b"v")),
        (400, "Conflicting flags: acquire=s&cas=1\n".into())
    );
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "release=s&acquire=s", b"v")).0,
        400
    );
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "flags=abc", b"v")),
        (500, r#"strconv.ParseUint: parsing "abc": invalid syntax"#.into())
    );
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "cas=-1", b"v")),
        (500, r#"strconv.ParseUint: parsing "-1": invalid syntax"#.into())
    );
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "dc=other", b"v")),
        (500, "No path to datacenter".into())
    );
}

#[test]
fn acquire_and_release_are_forwarded_as_lock_writes() {
    let (command, reply) = forwarded(run(&sample(), "PUT", "/v1/kv/k", "acquire=adf4238a&flags=7", b"v"));
    assert_eq!(
        command,
        Command::KvLock {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 7,
            session: "adf4238a".into(),
        }
    );
    assert_eq!(reply, ReplyKind::Bool { pretty: false });
    let (command, _) = forwarded(run(&sample(), "PUT", "/v1/kv/web/a", "release=adf4238a", b""));
    assert_eq!(
        command,
        Command::KvUnlock {
            key: "web/a".into(),
            value: Vec::new(),
            flags: 0,
            session: "adf4238a".into(),
        }
    );
}

#[test]
fn acquire_and_release_without_a_session_are_refused() {
    for query in ["acquire=", "release", "release="] {
        assert_eq!(
            refused(run(&sample(), "PUT", "/v1/kv/k", query, b"")),
            (500, "missing session".into()),
            "{query}"
        );
    }
    assert_eq!(
        refused(run(&sample(), "PUT", "/v1/kv/k", "acquire=s&flags=x", b"")),
        (500, r#"strconv.ParseUint: parsing "x": invalid syntax"#.into()),
        "flags are checked first"
    );
}

#[test]
fn deletes() {
    let (command, reply) = forwarded(run(&sample(), "DELETE", "/v1/kv/web/a", "", b""));
    assert_eq!(command, Command::KvDelete { key: "web/a".into() });
    assert_eq!(reply, ReplyKind::Bool { pretty: false });
    let (command, _) = forwarded(run(&sample(), "DELETE", "/v1/kv/web/", "recurse", b""));
    assert_eq!(command, Command::KvDeleteTree { prefix: "web/".into() });
    let (command, _) = forwarded(run(&sample(), "DELETE", "/v1/kv/", "recurse", b""));
    assert_eq!(command, Command::KvDeleteTree { prefix: "".into() }, "wipes everything");
    let (command, _) = forwarded(run(&sample(), "DELETE", "/v1/kv/web/a", "cas=0", b""));
    assert_eq!(
        command,
        Command::KvDeleteCas {
            key: "web/a".into(),
            index: 0
        }
    );
    assert_eq!(
        refused(run(&sample(), "DELETE", "/v1/kv/web/", "recurse&cas=3", b"")),
        (400, "Conflicting flags: cas=3&recurse=\n".into())
    );
    assert_eq!(
        refused(run(&sample(), "DELETE", "/v1/kv/", "", b"")),
        (400, "Missing key name".into())
    );
    assert_eq!(refused(run(&sample(), "DELETE", "/v1/kv/k", "cas=x", b"")).0, 500);
}

#[test]
fn common_parameters_are_validated_for_every_method() {
    for method in ["GET", "PUT", "DELETE"] {
        assert_eq!(
            refused(run(&sample(), method, "/v1/kv/web/a", "stale&consistent", b"")).1,
            "Cannot specify ?stale with ?consistent, conflicting semantics."
        );
        assert_eq!(
            refused(run(&sample(), method, "/v1/kv/web/a", "index=x", b"")).1,
            "Invalid index"
        );
    }
    assert_eq!(
        refused(run(&sample(), "GET", "/v1/kv/web/a", "dc=dc9", b"")),
        (500, "No path to datacenter".into())
    );
    assert_eq!(get(&sample(), "/v1/kv/web/a", "dc=dc1").status, 200);
}

#[test]
fn consistency_headers_and_leaderless_reads() {
    let r = get(&sample(), "/v1/kv/web/a", "stale");
    assert_eq!(r.meta.unwrap().consistency, Consistency::Stale);
    let r = get(&sample(), "/v1/kv/web/a", "consistent");
    assert_eq!(r.meta.unwrap().consistency, Consistency::Consistent);
    let lost = LeaderStatus {
        known_leader: false,
        last_contact_ms: 12_000,
    };
    let r = match handle(&request("GET", "/v1/kv/web/a", "", b""), &sample(), lost) {
        Outcome::Ready(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(r.status, 200, "default reads keep serving the replica");
    assert_eq!(r.meta.unwrap().leader, lost);
    let r = match handle(&request("GET", "/v1/kv/web/a", "consistent", b""), &sample(), lost) {
        Outcome::Ready(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((r.status, text(&r)), (500, "No cluster leader"));
}

#[test]
fn pretty_output() {
    let r = get(&sample(), "/v1/kv/web/a", "pretty");
    assert!(text(&r).starts_with("[\n    {\n        \"LockIndex\": 0,\n"));
    assert!(text(&r).ends_with("    }\n]\n"));
    let mut dev = agent();
    dev.pretty_json = true;
    let view = view_of(state_with(&[set("k", b"v")]), dev);
    assert!(text(&get(&view, "/v1/kv/k", "")).ends_with("]\n"));
}

#[test]
fn key_length_is_bounded() {
    let long = format!("/v1/kv/{}", "k".repeat(super::KEY_BYTES_MAX + 1));
    let (status, message) = refused(run(&sample(), "GET", &long, "", b""));
    assert_eq!(status, 400);
    assert_eq!(
        message,
        format!(
            "Key too long ({} > {} bytes)",
            super::KEY_BYTES_MAX + 1,
            super::KEY_BYTES_MAX
        )
    );
    let ok = format!("/v1/kv/{}", "k".repeat(super::KEY_BYTES_MAX));
    assert_eq!(get(&sample(), &ok, "").status, 404);
}

fn blocked(outcome: Outcome) -> Block {
    match outcome {
        Outcome::Block(b) => b,
        other => panic!("expected to block, got {other:?}"),
    }
}

#[test]
fn blocking_reads_park_until_the_index_moves() {
    let view = sample();
    let b = blocked(run(&view, "GET", "/v1/kv/web/a", "index=1&wait=2s", b""));
    assert_eq!(
        b,
        Block {
            min_index: 1,
            wait: Duration::from_secs(2),
            watch: WatchSet::one(WatchItem::KvKey("web/a".into())),
        }
    );
    // An index ahead of the data blocks too (BLOCKING.md §5).
    let b = blocked(run(&view, "GET", "/v1/kv/web/sub/", "recurse&index=100", b""));
    assert_eq!(b.watch, WatchSet::one(WatchItem::KvPrefix("web/sub/".into())));
    assert_eq!(b.wait, Duration::from_secs(300), "default query time");
    let b = blocked(run(&view, "GET", "/v1/kv/web/", "keys&index=7&wait=1h", b""));
    assert_eq!(b.watch, WatchSet::one(WatchItem::KvPrefix("web/".into())));
    assert_eq!(b.wait, Duration::from_secs(600), "clamped to max_query_time");
    // A missing key blocks on the key itself.
    let b = blocked(run(&view, "GET", "/v1/kv/not/yet", "index=7", b""));
    assert_eq!(b.watch, WatchSet::one(WatchItem::KvKey("not/yet".into())));
    // Past the client's index: answer at once.
    assert_eq!(get(&view, "/v1/kv/web/a", "index=0").status, 200);
    assert!(matches!(
        run(&view, "GET", "/v1/kv/web/z", "index=6", b""),
        Outcome::Ready(_)
    ));
}

#[test]
fn a_request_that_may_no_longer_block_answers() {
    let view = sample();
    let mut req: ApiRequest<'_> = request("GET", "/v1/kv/web/a", "index=5", b"");
    assert!(matches!(handle(&req, &view, leader()), Outcome::Block(_)));
    req.may_block = false;
    match handle(&req, &view, leader()) {
        Outcome::Ready(r) => assert_eq!((r.status, r.meta.unwrap().index), (200, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn writes_never_block() {
    assert!(matches!(
        run(&sample(), "PUT", "/v1/kv/web/a", "index=100", b"v"),
        Outcome::Forward(_)
    ));
}

#[test]
fn render_get_response_writes_the_whole_http_response() {
    let view = sample();
    let mut out = Vec::new();
    super::render_get_response(&view, leader(), "web/a", &mut out);
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.contains("\r\nContent-Type: application/json\r\n"));
    assert!(head.contains("\r\nX-Consul-Index: 1\r\n"));
    assert!(head.contains("\r\nX-Consul-Knownleader: true\r\n"));
    assert!(head.contains("\r\nX-Consul-Lastcontact: 0\r\n"));
    assert!(head.contains("\r\nX-Consul-Effective-Consistency: leader\r\n"));
    assert!(head.contains("\r\nX-Consul-Default-Acl-Policy: allow\r\n"));
    assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
    assert_eq!(
        body,
        r#"[{"LockIndex":0,"Key":"web/a","Flags":0,"Value":"MQ==","CreateIndex":1,"ModifyIndex":1}]"#
    );
    let mut out = Vec::new();
    super::render_get_response(&view, leader(), "missing", &mut out);
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("HTTP/1.1 404 Not Found\r\n"));
}
