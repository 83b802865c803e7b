//! `GET /v1/catalog/node/<name>` (`{"Node":..,"Services":{id: NodeService}}`,
//! `null` for an unknown node) and `GET /v1/catalog/node-services/<name>`
//! (`{"Node":..,"Services":[NodeService]}`, `404` for an unknown node).

use proconsul_shared::state::{Node, ServiceInstance};

use crate::api::json::JsonWriter;
use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::{keeps_node_service, RowFilter};
use crate::api::shapes::{write_node, write_node_service};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Bytes reserved for the node and per service.
const ROW_BYTES_ESTIMATE: usize = 512;

/// The two renderings of a node's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `node/<n>`: a map by service id; an unknown node is `null`.
    ById,
    /// `node-services/<n>`: a list; an unknown node is a `404`.
    List,
}

/// Handles `GET /v1/catalog/node/<name>`.
pub fn node(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    node_read(req, name, view, leader, Shape::ById)
}

/// Handles `GET /v1/catalog/node-services/<name>`.
pub fn node_services(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    node_read(req, name, view, leader, Shape::List)
}

fn node_read(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus, shape: Shape) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let name = or_answer!(required_name(name, "Missing node name"));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let state = &view.state;
    let index = state.nodes.table_index().max(state.catalog.services_table_index());
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet {
        items: vec![WatchItem::Nodes, WatchItem::Services],
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let meta = QueryMeta::new(index, leader, opts.consistency);
        let Some(node) = state.nodes.get(name) else {
            return match shape {
                Shape::ById => Response::json(200, json_body(pretty, 8, |w| w.null())).with_meta(meta),
                Shape::List => Response::empty(404).with_meta(meta),
            };
        };
        let services: Vec<&ServiceInstance> = state
            .catalog
            .node_services(&node.node)
            .map(|s| &**s)
            .filter(|s| keeps_node_service(filter.as_ref(), s))
            .collect();
        let body = json_body(pretty, ROW_BYTES_ESTIMATE * (services.len() + 1), |w| {
            write_node_view(w, node, &services, shape);
        });
        Response::json(200, body).with_meta(meta)
    })
}

fn write_node_view(w: &mut JsonWriter<'_>, node: &Node, services: &[&ServiceInstance], shape: Shape) {
    w.begin_object();
    w.key("Node");
    write_node(w, node);
    w.key("Services");
    match shape {
        Shape::ById => {
            w.begin_object();
            for s in services {
                w.key(&s.id);
                write_node_service(w, s);
            }
            w.end_object();
        }
        Shape::List => {
            w.begin_array();
            for s in services {
                write_node_service(w, s);
            }
            w.end_array();
        }
    }
    w.end_object();
}
