//! Turning the control plane's answer to a forwarded request into the
//! HTTP response its endpoint promises.

use proconsul_shared::ipc::messages::{ControlError, ControlReply, HttpAnswer};
use proconsul_shared::CommandResult;

use super::agent::{render_self, Stats};
use super::kv::bool_response;
use super::response::Response;
use super::txn::{render_committed, render_rolled_back};
use crate::core::View;

/// How to render the reply of a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// KV writes: `true` / `false`.
    Bool { pretty: bool },
    /// Transactions: results (200) or errors (409).
    Txn { pretty: bool },
    /// Agent writes: 200 with an empty body.
    Empty,
    /// `/v1/agent/self` around the control plane's `Stats`.
    AgentSelf { pretty: bool },
    /// A request forwarded whole (`ControlOp::Http`): the control plane's
    /// answer, verbatim.
    Http,
    /// `PUT /v1/event/fire`: the event, found in the view by its write's
    /// index and its UUID (as two numbers, to stay `Copy`).
    EventFired { pretty: bool, id_high: u64, id_low: u64 },
}

/// Renders `result` for an endpoint of kind `kind`. `view` is the view
/// after the reply (a write's effects are visible in it).
pub fn render_reply(kind: ReplyKind, result: Result<ControlReply, ControlError>, view: &View) -> Response {
    match (kind, result) {
        (ReplyKind::AgentSelf { pretty }, Ok(ControlReply::Stats(stats))) => render_self(&view.agent, &stats, pretty),
        // The control plane is away: `/agent/self` still answers, without stats.
        (ReplyKind::AgentSelf { pretty }, Err(_)) => render_self(&view.agent, &Stats::new(), pretty),
        (_, Err(error)) => error_response(&error),
        (
            ReplyKind::EventFired {
                pretty,
                id_high,
                id_low,
            },
            Ok(ControlReply::Written { index, .. }),
        ) => super::event::render_fired(view, index, (id_high, id_low), pretty),
        (ReplyKind::Bool { pretty }, Ok(ControlReply::Written { result, .. })) => match result {
            CommandResult::Bool(value) => bool_response(value, pretty),
            CommandResult::Done => bool_response(true, pretty),
            // A state-machine refusal (`?acquire=` with an unknown session).
            CommandResult::Failed(why) => Response::text(500, why),
            other => unexpected(&other),
        },
        (ReplyKind::Txn { pretty }, Ok(ControlReply::Written { result, .. })) => match result {
            CommandResult::TxnCommitted(results) => render_committed(&results, pretty),
            CommandResult::TxnRolledBack(errors) => render_rolled_back(&errors, pretty),
            other => unexpected(&other),
        },
        (ReplyKind::Empty, Ok(ControlReply::Done | ControlReply::Written { .. })) => Response::empty(200),
        (ReplyKind::Http, Ok(ControlReply::Http(answer))) => http_answer(answer),
        (_, Ok(other)) => unexpected(&other),
    }
}

/// The control plane's whole answer to a forwarded request: status,
/// content type, its extra headers and body. A status outside 100..=599 is
/// a bug on the other side and becomes a 500.
pub fn http_answer(answer: HttpAnswer) -> Response {
    if !(100..=599).contains(&answer.status) {
        return Response::text(
            500,
            format!("control plane answered with HTTP status {}", answer.status),
        );
    }
    let mut headers = Vec::with_capacity(answer.headers.len() + 1);
    if !answer.content_type.is_empty() {
        headers.push(("Content-Type".to_string(), answer.content_type));
    }
    headers.extend(answer.headers);
    Response {
        headers,
        body: answer.body,
        ..Response::empty(answer.status)
    }
}

/// A control-plane error as the plain-text answer it carries; a status
/// outside 400..=599 is a bug on the other side and becomes a 500.
pub fn error_response(error: &ControlError) -> Response {
    let status = if (400..=599).contains(&error.status) {
        error.status
    } else {
        500
    };
    Response::text(status, error.message.clone())
}

fn unexpected(what: &dyn std::fmt::Debug) -> Response {
    Response::text(500, format!("unexpected reply from the control plane: {what:?}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proconsul_shared::state::KvEntry;
    use proconsul_shared::txn::{TxnError, TxnResult};

    use super::*;
    use crate::api::test_support::view_with;

    fn body(r: &Response) -> &str {
        std::str::from_utf8(&r.body).unwrap()
    }

    #[test]
    fn kv_write_replies() {
        let view = view_with(&[]);
        let written = |result| Ok(ControlReply::Written { index: 5, result });
        let r = render_reply(
            ReplyKind::Bool { pretty: false },
            written(CommandResult::Bool(true)),
            &view,
        );
        assert_eq!((r.status, body(&r)), (200, "true"));
        let r = render_reply(
            ReplyKind::Bool { pretty: false },
            written(CommandResult::Bool(false)),
            &view,
        );
        assert_eq!((r.status, body(&r)), (200, "false"));
        let r = render_reply(
            ReplyKind::Bool { pretty: true },
            written(CommandResult::Bool(true)),
            &view,
        );
        assert_eq!(body(&r), "true\n");
    }

    #[test]
    fn errors_carry_status_and_text() {
        let view = view_with(&[]);
        let r = render_reply(ReplyKind::Bool { pretty: false }, Err(ControlError::no_leader()), &view);
        assert_eq!((r.status, body(&r)), (500, "No cluster leader"));
        let odd = ControlError {
            status: 200,
            message: "weird".into(),
        };
        assert_eq!(render_reply(ReplyKind::Empty, Err(odd), &view).status, 500);
    }

    #[test]
    fn txn_replies() {
        let view = view_with(&[]);
        let entry = KvEntry {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 0,
            lock_index: 0,
            session: None,
            create_index: 3,
            modify_index: 3,
        };
        let committed = CommandResult::TxnCommitted(vec![TxnResult {
            entry,
            with_value: false,
        }]);
        let r = render_reply(
            ReplyKind::Txn { pretty: false },
            Ok(ControlReply::Written {
                index: 3,
                result: committed,
            }),
            &view,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r),
            r#"{"Results":[{"KV":{"LockIndex":0,"Key":"k","Flags":0,"Value":null,"CreateIndex":3,"ModifyIndex":3}}],"Errors":null}"#
        );
        let rolled_back = CommandResult::TxnRolledBack(vec![TxnError {
            op_index: 1,
            what: "key \"x\" doesn't exist".into(),
        }]);
        let r = render_reply(
            ReplyKind::Txn { pretty: false },
            Ok(ControlReply::Written {
                index: 4,
                result: rolled_back,
            }),
            &view,
        );
        assert_eq!(r.status, 409);
        assert_eq!(
            body(&r),
            r#"{"Results":null,"Errors":[{"OpIndex":1,"What":"key \"x\" doesn't exist"}]}"#
        );
    }

    #[test]
    fn agent_self_with_and_without_stats() {
        let view = view_with(&[]);
        let stats = BTreeMap::from([(
            "agent".to_string(),
            BTreeMap::from([("checks".to_string(), "0".to_string())]),
        )]);
        let r = render_reply(
            ReplyKind::AgentSelf { pretty: false },
            Ok(ControlReply::Stats(stats)),
            &view,
        );
        assert!(body(&r).contains(r#""Stats":{"agent":{"checks":"0"}}"#));
        let r = render_reply(
            ReplyKind::AgentSelf { pretty: false },
            Err(ControlError::no_leader()),
            &view,
        );
        assert_eq!(r.status, 200);
        assert!(body(&r).contains(r#""Stats":{}"#));
    }

    #[test]
    fn forwarded_http_answers_are_rendered_verbatim() {
        let view = view_with(&[]);
        let answer = HttpAnswer {
            status: 404,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"Unknown service ID \"x\"".to_vec(),
            headers: vec![("X-Consul-Contenthash".into(), "abc".into())],
            wait_index: 0,
        };
        let r = render_reply(ReplyKind::Http, Ok(ControlReply::Http(answer)), &view);
        assert_eq!((r.status, body(&r)), (404, "Unknown service ID \"x\""));
        assert_eq!(
            r.headers,
            vec![
                ("Content-Type".to_string(), "text/plain; charset=utf-8".to_string()),
                ("X-Consul-Contenthash".to_string(), "abc".to_string())
            ]
        );
        assert_eq!(r.content_type, crate::api::ContentType::None);
        let empty = HttpAnswer {
            status: 200,
            ..HttpAnswer::default()
        };
        let r = render_reply(ReplyKind::Http, Ok(ControlReply::Http(empty)), &view);
        assert_eq!((r.status, r.body.len(), r.headers.len()), (200, 0, 0));
        let odd = HttpAnswer {
            status: 42,
            ..HttpAnswer::default()
        };
        assert_eq!(
            render_reply(ReplyKind::Http, Ok(ControlReply::Http(odd)), &view).status,
            500
        );
        let r = render_reply(ReplyKind::Http, Err(ControlError::no_leader()), &view);
        assert_eq!((r.status, body(&r)), (500, "No cluster leader"));
        let r = render_reply(ReplyKind::Http, Ok(ControlReply::Done), &view);
        assert_eq!(r.status, 500, "a reply of the wrong kind");
    }

    #[test]
    fn leave_and_mismatches() {
        let view = view_with(&[]);
        let r = render_reply(ReplyKind::Empty, Ok(ControlReply::Done), &view);
        assert_eq!((r.status, r.body.len()), (200, 0));
        let r = render_reply(ReplyKind::Bool { pretty: false }, Ok(ControlReply::Done), &view);
        assert_eq!(r.status, 500);
        assert!(body(&r).starts_with("unexpected reply from the control plane"));
    }
}
