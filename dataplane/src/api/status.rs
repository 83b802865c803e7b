//! `/v1/status/leader` and `/v1/status/peers` (HTTP.md §8): no ACL, no
//! index headers; what clients probe first.

use super::json::JsonWriter;
use super::params::{check_datacenter, parse_query_options};
use super::response::Response;
use super::ApiRequest;
use crate::core::{LeaderStatus, View};

/// `GET /v1/status/leader` → `"ip:port"`, `""` when leaderless. The last
/// cluster status the control plane sent is only believed while leadership is
/// known: with the control plane gone it may name a leader that is dead.
pub fn leader(req: &ApiRequest<'_>, view: &View, status: LeaderStatus) -> Response {
    let opts = match parse_query_options(&req.query) {
        Ok(opts) => opts,
        Err(refused) => return refused,
    };
    if let Err(refused) = check_datacenter(opts.datacenter, &view.agent) {
        return refused;
    }
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, req.pretty(view.agent.pretty_json));
    let leader = if status.known_leader {
        view.cluster.leader.as_deref()
    } else {
        None
    };
    w.string(leader.unwrap_or(""));
    w.finish();
    Response::json(200, body)
}

/// `GET /v1/status/peers` → `["ip:port", ...]` (raft voters).
pub fn peers(req: &ApiRequest<'_>, view: &View) -> Response {
    let opts = match parse_query_options(&req.query) {
        Ok(opts) => opts,
        Err(refused) => return refused,
    };
    if let Err(refused) = check_datacenter(opts.datacenter, &view.agent) {
        return refused;
    }
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, req.pretty(view.agent.pretty_json));
    w.string_array(view.cluster.peers.iter().map(String::as_str));
    w.finish();
    Response::json(200, body)
}
