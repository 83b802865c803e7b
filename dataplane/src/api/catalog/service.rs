//! `GET /v1/catalog/service/<name>[?tag=t...][&node-meta=k:v...][&filter=]`:
//! the instances of one service (case-insensitive), `[]` when unknown.

use super::Selection;
use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::{keeps_service, RowFilter};
use crate::api::selectors::{NodeMetaFilter, TagFilter};
use crate::api::shapes::write_catalog_service;
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::WatchSet;
use crate::core::{LeaderStatus, View};

/// Bytes reserved per rendered instance.
const ROW_BYTES_ESTIMATE: usize = 768;

/// Handles `GET /v1/catalog/service/<name>` (`name` already decoded).
pub fn service(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    select(req, name, view, leader, Selection::Service)
}

/// Answers a catalog read of the instances `selection` picks for `name`.
pub(super) fn select(
    req: &ApiRequest<'_>,
    name: &str,
    view: &View,
    leader: LeaderStatus,
    selection: Selection,
) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let name = or_answer!(required_name(name, "Missing service name"));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let tags = TagFilter::from_query(&req.query);
    let meta = NodeMetaFilter::from_query(&req.query);
    let state = &view.state;
    let index = selection.index(&state.catalog, name);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(selection.watch_item(name.to_ascii_lowercase()));
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let instances = selection.instances(&state.catalog, name);
        let count = instances.map_or(0, |i| i.len());
        let body = json_body(pretty, ROW_BYTES_ESTIMATE * count + 2, |w| {
            w.begin_array();
            for instance in instances.into_iter().flat_map(|i| i.values()) {
                let node = state.nodes.get(&instance.node).map(|n| &**n);
                if tags.matches(instance) && meta.matches(node) && keeps_service(filter.as_ref(), node, instance) {
                    write_catalog_service(w, node, instance);
                }
            }
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}
