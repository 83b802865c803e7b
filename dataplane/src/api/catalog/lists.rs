//! `GET /v1/catalog/datacenters`, `/v1/catalog/nodes`, `/v1/catalog/services`.

use crate::api::params::parse_consistency;
use crate::api::read::{json_body, or_answer, read_options};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::{keeps_node, keeps_service, RowFilter};
use crate::api::selectors::NodeMetaFilter;
use crate::api::shapes::write_node;
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Bytes reserved per node or service in a rendered list.
const ROW_BYTES_ESTIMATE: usize = 256;

/// `GET /v1/catalog/datacenters`: consistency flags are validated here,
/// then the control plane answers from its WAN gossip pool (our own
/// datacenter first, then the others by name); no index headers.
pub fn datacenters(req: &ApiRequest<'_>) -> Outcome {
    or_answer!(parse_consistency(&req.query));
    crate::api::forwarded::forward_whole(req)
}

/// `GET /v1/catalog/nodes[?node-meta=k:v][&filter=]`.
pub fn nodes(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let meta = NodeMetaFilter::from_query(&req.query);
    let table = &view.state.nodes;
    let index = table.table_index();
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::Nodes);
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let body = json_body(pretty, ROW_BYTES_ESTIMATE * table.len(), |w| {
            w.begin_array();
            for node in table.iter() {
                if meta.matches_meta(&node.meta) && keeps_node(filter.as_ref(), node) {
                    write_node(w, node);
                }
            }
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}

/// `GET /v1/catalog/services[?node-meta=k:v][&filter=]`: service name →
/// the sorted, de-duplicated union of its instances' tags.
pub fn services(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let meta = NodeMetaFilter::from_query(&req.query);
    let state = &view.state;
    let index = state.catalog.services_table_index();
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || {
        let mut set = WatchSet::one(WatchItem::Services);
        if !meta.is_empty() {
            set.items.push(WatchItem::Nodes);
        }
        set
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let mut listed: Vec<(&str, Vec<&str>)> = Vec::new();
        for (_, instances) in state.catalog.services_by_name() {
            let mut name = None;
            let mut tags: Vec<&str> = Vec::new();
            for instance in instances.values() {
                let node = state.nodes.get(&instance.node).map(|n| &**n);
                if !meta.matches(node) || !keeps_service(filter.as_ref(), node, instance) {
                    continue;
                }
                name.get_or_insert(instance.service.as_str());
                tags.extend(instance.tags.iter().map(String::as_str));
            }
            if let Some(name) = name {
                tags.sort_unstable();
                tags.dedup();
                listed.push((name, tags));
            }
        }
        // Go sorts map keys by bytes; the table is ordered by lower-cased name.
        listed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let body = json_body(pretty, ROW_BYTES_ESTIMATE * listed.len() + 2, |w| {
            w.begin_object();
            for (name, tags) in &listed {
                w.key(name);
                w.string_array(tags.iter().copied());
            }
            w.end_object();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}
