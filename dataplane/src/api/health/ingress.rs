//! `GET /v1/health/ingress/<service>[?passing][&tag=t...][&node-meta=k:v...][&filter=]`:
//! the health entries (`{"Node","Service","Checks"}`, as
//! `/v1/health/service`) of the instances of every ingress gateway whose
//! config entry exposes `<service>` (by name or through the wildcard:
//! [`exposing_gateways`]), gateway by gateway in name order. Governed and
//! parked as Consul's gateway service nodes: the config entry table, the
//! service (which a wildcard covers only while registered) and each
//! exposing gateway's service.
//!
//! With any `tag=` the read is [`health::service`](super::service)'s, as in
//! Consul: its `Health.ServiceNodes` RPC picks the tag-filter lookup
//! before the ingress one, so the answer is the service's own instances
//! carrying every tag (not the gateways), with that service's index, and
//! it parks on that service alone.

use crate::api::config::exposed::{exposing_gateways, exposure_index, gateway_instances};
use crate::api::health::entries::{write_entries, EntrySelectors};
use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::RowFilter;
use crate::api::selectors::{parse_passing, NodeMetaFilter, TagFilter};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Bytes reserved per rendered entry (node, service, two checks).
const ENTRY_BYTES_ESTIMATE: usize = 2048;
/// Gateway instances listed in one answer; more are left out.
pub const INGRESS_ENTRIES_MAX: usize = 10_000;

/// Handles `GET /v1/health/ingress/<service>` (`service` already decoded).
pub fn ingress(req: &ApiRequest<'_>, service: &str, view: &View, leader: LeaderStatus) -> Outcome {
    if req.query.has("tag") {
        return super::service::service(req, service, view, leader);
    }
    let opts = or_answer!(read_options(req, view, leader));
    let service = or_answer!(required_name(service, "Missing service name"));
    let selectors = EntrySelectors {
        passing_only: or_answer!(parse_passing(&req.query)),
        filter: or_answer!(RowFilter::from_query(&req.query)),
        tags: TagFilter::default(),
        meta: NodeMetaFilter::from_query(&req.query),
    };
    let state = &view.state;
    let gateways: Vec<String> = exposing_gateways(state, service)
        .map(|e| e.name.to_ascii_lowercase())
        .collect();
    let index = exposure_index(state, service, gateways.iter().map(String::as_str));
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet {
        items: [
            WatchItem::ConfigEntries,
            WatchItem::Service(service.to_ascii_lowercase()),
        ]
        .into_iter()
        .chain(gateways.iter().map(|g| WatchItem::Service(g.clone())))
        .collect(),
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let instances = gateways
            .iter()
            .flat_map(|g| gateway_instances(state, g))
            .map(std::sync::Arc::as_ref);
        let body = json_body(pretty, ENTRY_BYTES_ESTIMATE * gateways.len() + 2, |w| {
            w.begin_array();
            write_entries(w, state, instances, &selectors, INGRESS_ENTRIES_MAX);
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index.max(1), leader, opts.consistency))
    })
}

#[cfg(test)]
mod tests;
