//! `/v1/txn` at the handler level.

use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::txn::{KvVerb, TxnKvOp};
use proconsul_shared::Command;

use crate::api::test_support::{leader, request, set, view_with};
use crate::api::{handle, Outcome, ReplyKind, Response};
use crate::core::View;

fn sample() -> View {
    view_with(&[set("a", b"hello"), set("b/1", b""), set("b/2", b"x")])
}

fn txn(view: &View, query: &str, body: &str) -> Outcome {
    handle(&request("PUT", "/v1/txn", query, body.as_bytes()), view, leader())
}

fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(r) => r,
        other => panic!("expected ready, got {other:?}"),
    }
}

fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn read_only_transactions_answer_from_the_view() {
    let r = ready(txn(
        &sample(),
        "",
        r#"[{"KV":{"Verb":"get","Key":"a"}},{"KV":{"Verb":"get-tree","Key":"b/"}}]"#,
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        text(&r),
        concat!(
            r#"{"Results":[{"KV":{"LockIndex":0,"Key":"a","Flags":0,"Value":"aGVsbG8=","CreateIndex":1,"ModifyIndex":1}},"#,
            r#"{"KV":{"LockIndex":0,"Key":"b/1","Flags":0,"Value":null,"CreateIndex":2,"ModifyIndex":2}},"#,
            r#"{"KV":{"LockIndex":0,"Key":"b/2","Flags":0,"Value":"eA==","CreateIndex":3,"ModifyIndex":3}}],"Errors":null}"#
        )
    );
    assert_eq!(r.leader, Some(leader()), "KnownLeader and LastContact headers");
    assert_eq!(r.meta, None, "no index header");
}

#[test]
fn failed_reads_roll_back_with_409() {
    let r = ready(txn(
        &sample(),
        "",
        r#"[{"KV":{"Verb":"get","Key":"a"}},{"KV":{"Verb":"get","Key":"missing"}},{"KV":{"Verb":"check-index","Key":"a","Index":9}}]"#,
    ));
    assert_eq!(r.status, 409);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Results"], serde_json::Value::Null);
    let errors = v["Errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["OpIndex"], 1);
    assert_eq!(errors[1]["OpIndex"], 2);
    assert!(errors[0]["What"].as_str().unwrap().contains("missing"));
}

#[test]
fn empty_transaction_commits_nothing() {
    let r = ready(txn(&sample(), "", "[]"));
    assert_eq!((r.status, text(&r)), (200, r#"{"Results":[],"Errors":null}"#));
}

#[test]
fn writes_are_forwarded_whole() {
    let body = r#"[
        {"kv":{"verb":"set","key":"k","value":"aGk=","flags":3304740253564472344}},
        {"KV":{"Verb":"cas","Key":"a","Value":null,"Index":1}},
        {"Kv":{"VERB":"get","KEY":"a"}},
        {"KV":{"Verb":"delete-tree","Key":"b/","Namespace":"default"}}
    ]"#;
    match txn(&sample(), "", body) {
        Outcome::Forward(f) => {
            assert_eq!(f.reply, ReplyKind::Txn { pretty: false });
            let ControlOp::Write(Command::Txn { ops }) = f.op else {
                panic!("expected a txn write, got {:?}", f.op);
            };
            let op = |verb, key: &str, value: &[u8], flags, index| TxnKvOp {
                verb,
                key: key.into(),
                value: value.to_vec(),
                flags,
                index,
                session: None,
            };
            assert_eq!(
                ops,
                vec![
                    op(KvVerb::Set, "k", b"hi", 0x2ddccbc058a50c18, 0),
                    op(KvVerb::Cas, "a", b"", 0, 1),
                    op(KvVerb::Get, "a", b"", 0, 0),
                    op(KvVerb::DeleteTree, "b/", b"", 0, 0),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_many_operations_is_413() {
    let ops = vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; 129].join(",");
    let r = ready(txn(&sample(), "", &format!("[{ops}]")));
    assert_eq!(
        (r.status, text(&r)),
        (413, "Transaction contains too many operations (129 > 128)")
    );
    let ops = vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; 128].join(",");
    assert_eq!(ready(txn(&sample(), "", &format!("[{ops}]"))).status, 200);
}

#[test]
fn value_over_the_kv_limit_is_413() {
    use base64::Engine;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 512 * 1024 + 1]);
    let r = ready(txn(
        &sample(),
        "",
        &format!(r#"[{{"KV":{{"Verb":"set","Key":"big","Value":"{big}"}}}}]"#),
    ));
    assert_eq!(
        (r.status, text(&r)),
        (413, r#"Value for key "big" is too large (524289 > 524288 bytes)"#)
    );
}

#[test]
fn malformed_bodies_are_400() {
    let cases = [
        ("", "Failed to parse body: EOF"),
        ("{", "Failed to parse body: EOF while parsing an object at line 1 column 1"),
        (r#"{"KV":{}}"#, "Failed to parse body: json: cannot unmarshal object into Go value of type api.TxnOps"),
        (r#"["x"]"#, "Failed to parse body: json: cannot unmarshal string into Go value of type api.TxnOp"),
        (
            r#"[{"KV":{"Verb":"set","Key":"k","Flags":"1"}}]"#,
            "Failed to parse body: json: cannot unmarshal string into Go value of type KVTxnOp.KV.Flags of type uint64",
        ),
        (
            r#"[{"KV":{"Verb":"set","Key":"k","Index":-1}}]"#,
            "Failed to parse body: json: cannot unmarshal number -1 into Go struct field KVTxnOp.KV.Index of type uint64",
        ),
    ];
    for (body, message) in cases {
        let r = ready(txn(&sample(), "", body));
        assert_eq!((r.status, text(&r)), (400, message), "{body:?}");
    }
    let r = ready(txn(
        &sample(),
        "",
        r#"[{"KV":{"Verb":"set","Key":"k","Value":"not base64!"}}]"#,
    ));
    assert_eq!(r.status, 400);
    assert!(text(&r).starts_with("Failed to parse body: illegal base64 data"));
}

#[test]
fn unknown_verbs_and_non_kv_operations_are_400() {
    let r = ready(txn(
        &sample(),
        "",
        r#"[{"KV":{"Verb":"get"}},{"KV":{"Verb":"frobnicate","Key":"k"}}]"#,
    ));
    assert_eq!(
        (r.status, text(&r)),
        (
            400,
            r#"Failed to parse body: unknown KV verb "frobnicate" (operation 1)"#
        )
    );
    let r = ready(txn(&sample(), "", r#"[{"Node":{"Verb":"get","Node":{"Node":"n"}}}]"#));
    assert_eq!(r.status, 400);
    assert_eq!(
        text(&r),
        "Failed to parse body: Node operations are not supported yet (operation 0); only KV operations are"
    );
    let r = ready(txn(&sample(), "", r#"[{"Service":{"Verb":"get"}}]"#));
    assert_eq!(r.status, 400);
}

#[test]
fn parameters() {
    let read = r#"[{"KV":{"Verb":"get","Key":"a"}}]"#;
    let write = r#"[{"KV":{"Verb":"set","Key":"a"}}]"#;
    assert_eq!(ready(txn(&sample(), "stale&consistent", read)).status, 400);
    assert_eq!(ready(txn(&sample(), "dc=dc2", read)).status, 500);
    let r = ready(txn(&sample(), "dc=dc2", write));
    assert_eq!((r.status, text(&r)), (500, "No path to datacenter"));
    assert!(matches!(txn(&sample(), "dc=dc1", write), Outcome::Forward(_)));
    let r = ready(txn(&sample(), "pretty", read));
    assert!(text(&r).starts_with("{\n    \"Results\": [\n"));
    match txn(&sample(), "pretty", write) {
        Outcome::Forward(f) => assert_eq!(f.reply, ReplyKind::Txn { pretty: true }),
        other => panic!("{other:?}"),
    }
}
