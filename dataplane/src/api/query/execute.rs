//! `GET /v1/query/<id-or-name>/execute[?near=&limit=&connect]` and
//! `/explain`: resolve and render the query ([`crate::query_exec`]), then
//! select its instances and answer
//! `{"Service","Nodes":[{Node,Service,Checks}],"DNS":{"TTL"},"Datacenter","Failovers":0}`
//! with the shapes of `/v1/health/service`. Not blocking (Consul's
//! execute is not either).
//!
//! `near=_ip` (or the query's `Near: "_ip"`) puts first the instance on
//! the node whose address is the client's (the connection's peer; an
//! `X-Forwarded-For` header is not read), else does not sort.
//!
//! Failover to other datacenters is not performed: when nothing is
//! healthy here the answer is empty with `"Failovers": 0`.

use std::sync::Arc;

use proconsul_shared::state::{HealthCheck, PreparedQuery};

use crate::api::read::{json_body, or_answer, read_options};
use crate::api::response::{QueryMeta, Response};
use crate::api::shapes::write_service_entry;
use crate::api::{ApiRequest, Outcome};
use crate::core::{LeaderStatus, View};
use crate::dns::rng::Rng;
use crate::query_exec::{prepare, select, PrepareError, Source, QUERY_NOT_FOUND};

use super::render::{write_dns, write_query};

/// Bytes reserved per rendered node entry.
const ENTRY_BYTES_ESTIMATE: usize = 2048;

/// The query, or the response Consul gives when it cannot be prepared.
fn prepared(view: &View, id_or_name: &str) -> Result<Arc<PreparedQuery>, Response> {
    prepare(&view.state, id_or_name).map_err(|e| match e {
        PrepareError::NotFound => Response::text(404, QUERY_NOT_FOUND),
        PrepareError::Failed(message) => Response::text(500, message),
    })
}

/// `?limit=`: Go's `strconv.Atoi`; Consul answers `400` otherwise.
fn parse_limit(req: &ApiRequest<'_>) -> Result<usize, Response> {
    match req.query.get("limit") {
        None | Some("") => Ok(0),
        Some(text) => text
            .parse::<i64>()
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|_| {
                Response::text(
                    400,
                    format!("Bad limit: strconv.Atoi: parsing {text:?}: invalid syntax"),
                )
            }),
    }
}

/// `GET /v1/query/<id-or-name>/execute`.
pub fn execute(req: &ApiRequest<'_>, id_or_name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let limit = or_answer!(parse_limit(req));
    let query = or_answer!(prepared(view, id_or_name));
    let state = &view.state;
    let source = Source {
        near: req.query.get("near").unwrap_or(""),
        agent_node: &view.agent.node_name,
        ip: req.peer_ip,
        limit,
        // Consul: the parameter's presence turns it on.
        connect: req.query.get("connect").is_some(),
    };
    let mut rng = Rng::new(rand::random());
    let selected = select(state, &query.service, &source, &mut rng);
    let pretty = req.pretty(view.agent.pretty_json);
    let mut checks: Vec<&HealthCheck> = Vec::new();
    let body = json_body(pretty, ENTRY_BYTES_ESTIMATE * selected.len() + 256, |w| {
        w.begin_object();
        w.key("Service");
        w.string(&query.service.service);
        w.key("Nodes");
        w.begin_array();
        for instance in &selected {
            let Some(node) = state.nodes.get(&instance.node) else {
                continue;
            };
            checks.clear();
            checks.extend(state.catalog.instance_checks(instance).map(Arc::as_ref));
            write_service_entry(w, node, instance, &checks);
        }
        w.end_array();
        w.key("DNS");
        write_dns(w, &query.dns_ttl);
        w.key("Datacenter");
        w.string(&view.agent.datacenter);
        w.key("Failovers");
        w.u64(0);
        w.end_object();
    });
    let meta = QueryMeta::new(state.index().max(1), leader, opts.consistency);
    Outcome::Ready(Response::json(200, body).with_meta(meta))
}

/// `GET /v1/query/<id-or-name>/explain`: `{"Query": <rendered query>}`.
pub fn explain(req: &ApiRequest<'_>, id_or_name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let query = or_answer!(prepared(view, id_or_name));
    let pretty = req.pretty(view.agent.pretty_json);
    let body = json_body(pretty, 1024, |w| {
        w.begin_object();
        w.key("Query");
        write_query(w, &query);
        w.end_object();
    });
    let meta = QueryMeta::new(
        view.state.prepared_queries.table_index().max(1),
        leader,
        opts.consistency,
    );
    Outcome::Ready(Response::json(200, body).with_meta(meta))
}
