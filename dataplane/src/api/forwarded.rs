//! Requests the control plane answers whole (`ControlOp::Http`): agent
//! endpoints over agent-local state and catalog writes. The data plane
//! passes method, decoded path, raw query, body and token through and
//! renders the answer verbatim (`ReplyKind::Http`); method checks and body
//! validation are the control plane's.

use proconsul_shared::ipc::messages::{ControlOp, HttpCall};

use super::reply::ReplyKind;
use super::request::ApiRequest;
use super::{Forward, Outcome};

/// Forwards `req` as it came.
pub fn forward_whole(req: &ApiRequest<'_>) -> Outcome {
    Outcome::Forward(Forward {
        op: ControlOp::Http(http_call(req)),
        reply: ReplyKind::Http,
    })
}

/// The `HttpCall` carrying `req`.
pub fn http_call(req: &ApiRequest<'_>) -> HttpCall {
    HttpCall {
        method: req.method_name.to_string(),
        path: req.path.to_string(),
        query: req.raw_query.to_string(),
        body: req.body.to_vec(),
        token: req.token().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::request;

    #[test]
    fn carries_the_whole_request() {
        let req = request(
            "PUT",
            "/v1/agent/service/register",
            "replace-existing-checks",
            b"{\"Name\":\"web\"}",
        )
        .with_forwarding("replace-existing-checks", Some("header-token"));
        let Outcome::Forward(forward) = forward_whole(&req) else {
            panic!("expected a forward");
        };
        assert_eq!(forward.reply, ReplyKind::Http);
        assert_eq!(
            forward.op,
            ControlOp::Http(HttpCall {
                method: "PUT".into(),
                path: "/v1/agent/service/register".into(),
                query: "replace-existing-checks".into(),
                body: b"{\"Name\":\"web\"}".to_vec(),
                token: Some("header-token".into()),
            })
        );
    }

    #[test]
    fn query_token_wins_over_the_header() {
        let req = request("GET", "/v1/agent/services", "token=from-query", b"")
            .with_forwarding("token=from-query", Some("header-token"));
        assert_eq!(http_call(&req).token.as_deref(), Some("from-query"));
        let req = request("GET", "/v1/agent/services", "token=", b"").with_forwarding("token=", None);
        assert_eq!(http_call(&req).token, None);
    }
}
