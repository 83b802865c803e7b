//! `GET /v1/query` and `GET /v1/query/<id>`: the stored queries (a one-
//! element list for one ID; `404 Query not found` for an unknown ID).
//! Blocking reads (`?index=`) park until the prepared query table's index
//! passes the client's, parked on [`WatchItem::PreparedQueries`] (only a
//! prepared query write wakes them).

use proconsul_shared::state::PreparedQuery;

use crate::api::read::{json_body, or_answer, read_options};
use crate::api::response::{QueryMeta, Response};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};
use crate::query_exec::QUERY_NOT_FOUND;

use super::render::write_query;

/// Bytes reserved per rendered query.
const QUERY_BYTES_ESTIMATE: usize = 512;

/// `GET /v1/query`: every query, by ID.
pub fn list(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let table = &view.state.prepared_queries;
    answer(req, view, leader, table.len(), table.iter().map(|q| &**q))
}

/// `GET /v1/query/<id>`.
pub fn get(req: &ApiRequest<'_>, id: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let Some(q) = view.state.prepared_queries.get(id) else {
        // Consul's options errors come first, then the lookup.
        or_answer!(read_options(req, view, leader));
        return Outcome::Ready(Response::text(404, QUERY_NOT_FOUND));
    };
    answer(req, view, leader, 1, std::iter::once(&**q))
}

/// The list of `queries` (`count` of them) at the table's index, or a
/// parked read while that index has not passed the client's.
fn answer<'q>(
    req: &ApiRequest<'_>,
    view: &View,
    leader: LeaderStatus,
    count: usize,
    queries: impl Iterator<Item = &'q PreparedQuery>,
) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let index = view.state.prepared_queries.table_index().max(1);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::PreparedQueries);
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let body = json_body(pretty, QUERY_BYTES_ESTIMATE * count + 2, |w| {
            w.begin_array();
            for q in queries {
                write_query(w, q);
            }
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}
