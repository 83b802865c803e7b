//! `GET /v1/session/info/<id>` (`[Session]` or `[]`),
//! `/v1/session/node/<node>` and `/v1/session/list`. Every one is indexed
//! by the sessions table (creates and destroys alike, never 0) and parks
//! on [`WatchItem::Sessions`] while that index has not passed the
//! client's.

use proconsul_shared::state::Session;

use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::shapes::{write_session, SESSION_BYTES_ESTIMATE};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Consul's `400` for `/v1/session/info/` without an ID.
pub const MISSING_SESSION: &str = "Missing session";
/// Consul's `400` for `/v1/session/node/` without a node.
pub const MISSING_NODE_NAME: &str = "Missing node name";

/// `GET /v1/session/info/<id>`: the session as a one-element list, or `[]`.
pub fn info(req: &ApiRequest<'_>, id: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let id = or_answer!(required_name(id, MISSING_SESSION));
    let found = view.state.sessions.get(id);
    answer(
        req,
        view,
        leader,
        &opts,
        usize::from(found.is_some()),
        found.into_iter().map(|s| &**s),
    )
}

/// `GET /v1/session/node/<node>`: the node's sessions, by ID.
pub fn node(req: &ApiRequest<'_>, node: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let node = or_answer!(required_name(node, MISSING_NODE_NAME));
    let table = &view.state.sessions;
    // Sizing only: counting the node's sessions would walk the table twice.
    let count = table.len().min(64);
    answer(req, view, leader, &opts, count, table.of_node(node).map(|s| &**s))
}

/// `GET /v1/session/list`: every live session, by ID.
pub fn list(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let table = &view.state.sessions;
    answer(req, view, leader, &opts, table.len(), table.iter().map(|s| &**s))
}

/// `sessions` (about `count` of them) as a JSON list at the sessions
/// table's index, or a parked read while that index has not passed the
/// client's.
fn answer<'s>(
    req: &ApiRequest<'_>,
    view: &View,
    leader: LeaderStatus,
    opts: &crate::api::params::QueryOptions<'_>,
    count: usize,
    sessions: impl Iterator<Item = &'s Session>,
) -> Outcome {
    // Consul never reports index 0 (BLOCKING.md §5): an empty table is 1.
    let index = view.state.sessions.table_index().max(1);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::Sessions);
    read_outcome(req, opts, index, &view.agent, watch, || {
        let body = json_body(pretty, SESSION_BYTES_ESTIMATE * count + 2, |w| {
            w.begin_array();
            for s in sessions {
                write_session(w, s);
            }
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}
