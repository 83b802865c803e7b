//! `GET /v1/health/service/<name>[?passing][&tag=t...][&node-meta=k:v...][&filter=]`:
//! one entry per instance, `{"Node":Node,"Service":NodeService,"Checks":[..]}`,
//! where `Checks` are the instance's node checks and its own service checks
//! in check-id order (Consul's `parseCheckServiceNodes`). `?passing` drops
//! every instance with a check that is not passing (warnings too). This is
//! the hot health read: rendered straight into one buffer.

use std::sync::Arc;

use crate::api::catalog::Selection;
use crate::api::health::entries::{write_entries, EntrySelectors};
use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::RowFilter;
use crate::api::selectors::{parse_passing, NodeMetaFilter, TagFilter};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::WatchSet;
use crate::core::{LeaderStatus, View};

/// Bytes reserved per rendered entry (node, service, two checks).
const ENTRY_BYTES_ESTIMATE: usize = 2048;

/// Handles `GET /v1/health/service/<name>` (`name` already decoded).
pub fn service(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    select(req, name, view, leader, Selection::Service)
}

/// `GET /v1/health/connect/<name>`: the same read over the Connect-capable
/// instances for `name` (proxies whose destination it is, native ones).
pub fn connect(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    select(req, name, view, leader, Selection::Connect)
}

/// Answers a health read of the instances `selection` picks for `name`.
fn select(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus, selection: Selection) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let name = or_answer!(required_name(name, "Missing service name"));
    let selectors = EntrySelectors {
        passing_only: or_answer!(parse_passing(&req.query)),
        filter: or_answer!(RowFilter::from_query(&req.query)),
        tags: TagFilter::from_query(&req.query),
        meta: NodeMetaFilter::from_query(&req.query),
    };
    let state = &view.state;
    let index = selection.index(&state.catalog, name);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(selection.watch_item(name.to_ascii_lowercase()));
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let instances = selection.instances(&state.catalog, name);
        let count = instances.map_or(0, |i| i.len());
        let body = json_body(pretty, ENTRY_BYTES_ESTIMATE * count + 2, |w| {
            w.begin_array();
            let rows = instances.into_iter().flat_map(|i| i.values()).map(Arc::as_ref);
            write_entries(w, state, rows, &selectors, usize::MAX);
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}
