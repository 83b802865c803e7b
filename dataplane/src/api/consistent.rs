//! `?consistent` reads (BLOCKING.md §8): which requests need the raft
//! read-index barrier before they are served from the local replica, and
//! what the barrier's answer means. Pure; the HTTP layer sends
//! `ControlOp::ReadBarrier` and waits for the view (`crate::read_barrier`).
//!
//! A consistent read is linearizable: the control plane answers the
//! leader's read index (leadership confirmed by a quorum after the request
//! arrived), the core waits until its view has applied that index, and the
//! handler then reads that view. For a blocking `?consistent&index=` query
//! the barrier runs before the first evaluation only (as Consul's
//! `blockingQuery` verifies leadership once, before its loop): a wake-up
//! re-reads the replica, which only moves forward from the barrier's index.

use proconsul_shared::ipc::messages::{ControlError, ControlReply};

use super::params::parse_consistency;
use super::reply::error_response;
use super::request::{ApiRequest, Method};
use super::response::{Consistency, Response};
use super::route::{resolve, Route};
use super::txn::decode_ops;

/// Whether `req` is a read that asked for `?consistent` on an endpoint
/// served from the replica: KV reads, read-only transactions, catalog,
/// health, config entry and prepared query reads. Requests with invalid consistency flags are left to their
/// handler (which answers the `400`), writes go through raft anyway.
pub fn needs_read_barrier(req: &ApiRequest<'_>) -> bool {
    if !req.query.has("consistent") || parse_consistency(&req.query) != Ok(Consistency::Consistent) {
        return false;
    }
    let Some((endpoint, _)) = resolve(req.path) else {
        return false;
    };
    let reads = matches!(req.method, Method::Get | Method::Head);
    match endpoint.route {
        Route::Kv => reads,
        Route::Txn => {
            req.method == Method::Put && decode_ops(req.body).is_ok_and(|ops| ops.iter().all(|op| op.verb.is_read()))
        }
        Route::CatalogNodes
        | Route::CatalogServices
        | Route::CatalogService
        | Route::CatalogNode
        | Route::CatalogNodeServices
        | Route::HealthNode
        | Route::HealthChecks
        | Route::HealthService
        | Route::CatalogConnect
        | Route::HealthConnect
        | Route::HealthState
        | Route::Config
        | Route::CatalogGatewayServices
        | Route::Query
        | Route::QuerySpecific
        | Route::SessionInfo
        | Route::SessionNode
        | Route::SessionList => reads,
        _ => false,
    }
}

/// What the barrier's reply asks of the core: `Ok(index)` to serve from a
/// view at or past `index`, or the response to answer instead (no leader,
/// no quorum, a timeout: the control plane's status and text).
pub fn barrier_index(reply: Result<ControlReply, ControlError>) -> Result<u64, Response> {
    match reply {
        Ok(ControlReply::ReadIndex(index)) => Ok(index),
        Ok(other) => Err(Response::text(
            500,
            format!("unexpected reply from the control plane to a read barrier: {other:?}"),
        )),
        Err(error) => Err(error_response(&error)),
    }
}

/// Checks the view a consistent read is about to use has applied the read
/// index (the core waits for it, bounded): otherwise the read would not be
/// linearizable, and the answer is a `500`.
pub fn check_view_reached(read_index: u64, view_index: u64) -> Result<(), Response> {
    if view_index >= read_index {
        return Ok(());
    }
    Err(Response::text(
        500,
        format!("timed out waiting for the local replica to apply the read index {read_index} (applied {view_index})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::request;

    fn needs(method: &str, path: &str, query: &str, body: &[u8]) -> bool {
        needs_read_barrier(&request(method, path, query, body))
    }

    #[test]
    fn consistent_reads_of_replica_endpoints_need_the_barrier() {
        assert!(needs("GET", "/v1/kv/a", "consistent", b""));
        assert!(needs("HEAD", "/v1/kv/a", "consistent=false", b""), "presence-only");
        assert!(needs("GET", "/v1/kv/", "consistent&recurse", b""));
        assert!(needs("GET", "/v1/catalog/nodes", "consistent", b""));
        assert!(needs("GET", "/v1/catalog/services", "consistent", b""));
        assert!(needs("GET", "/v1/catalog/service/web", "consistent", b""));
        assert!(needs("GET", "/v1/catalog/node/n1", "consistent", b""));
        assert!(needs("GET", "/v1/health/service/web", "consistent&index=5", b""));
        assert!(needs("GET", "/v1/health/state/any", "consistent", b""));
        assert!(needs("GET", "/v1/health/node/n1", "consistent", b""));
        assert!(needs("GET", "/v1/health/checks/web", "consistent", b""));
    }

    #[test]
    fn other_modes_writes_and_bad_flags_do_not() {
        assert!(!needs("GET", "/v1/kv/a", "", b""));
        assert!(!needs("GET", "/v1/kv/a", "stale", b""));
        assert!(!needs("GET", "/v1/kv/a", "leader", b""));
        assert!(!needs("GET", "/v1/kv/a", "consistent&stale", b""), "the handler's 400");
        assert!(!needs("GET", "/v1/kv/a", "consistent&cached", b""), "the handler's 400");
        assert!(
            !needs("PUT", "/v1/kv/a", "consistent", b"v"),
            "a write goes through raft"
        );
        assert!(!needs("DELETE", "/v1/kv/a", "consistent", b""));
        assert!(!needs("GET", "/v1/agent/self", "consistent", b""));
        assert!(!needs("GET", "/v1/status/leader", "consistent", b""));
        assert!(!needs("GET", "/v1/nope", "consistent", b""));
    }

    #[test]
    fn only_read_only_transactions_need_it() {
        let read = br#"[{"KV":{"Verb":"get","Key":"a"}}]"#;
        let write = br#"[{"KV":{"Verb":"get","Key":"a"}},{"KV":{"Verb":"set","Key":"a","Value":"eA=="}}]"#;
        assert!(needs("PUT", "/v1/txn", "consistent", read));
        assert!(!needs("PUT", "/v1/txn", "consistent", write));
        assert!(!needs("PUT", "/v1/txn", "", read));
        assert!(!needs("PUT", "/v1/txn", "consistent", b"not json"), "the handler's 400");
    }

    #[test]
    fn barrier_replies() {
        assert_eq!(barrier_index(Ok(ControlReply::ReadIndex(17))), Ok(17));
        let refused = barrier_index(Err(ControlError::no_leader())).unwrap_err();
        assert_eq!(
            (refused.status, refused.body.as_slice()),
            (500, &b"No cluster leader"[..])
        );
        let odd = barrier_index(Ok(ControlReply::Done)).unwrap_err();
        assert_eq!(odd.status, 500);
    }

    #[test]
    fn a_view_behind_the_read_index_is_refused() {
        assert_eq!(check_view_reached(5, 5), Ok(()));
        assert_eq!(check_view_reached(5, 9), Ok(()));
        let behind = check_view_reached(9, 5).unwrap_err();
        assert_eq!(behind.status, 500);
        assert!(String::from_utf8(behind.body)
            .unwrap()
            .contains("read index 9 (applied 5)"));
    }
}
