//! `GET /v1/health/node/<n>`, `/v1/health/checks/<s>`, `/v1/health/state/<state>`:
//! lists of checks, `[]` when nothing matches.

use std::sync::Arc;

use proconsul_shared::state::{CheckStatus, HealthCheck};

use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::row_filter::{keeps_check, RowFilter};
use crate::api::selectors::NodeMetaFilter;
use crate::api::shapes::write_health_check;
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Bytes reserved per rendered check.
const ROW_BYTES_ESTIMATE: usize = 512;

/// Which checks `/v1/health/state/<state>` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateSelector {
    Any,
    Only(CheckStatus),
    /// A word Consul does not know: matches nothing.
    Nothing,
}

impl StateSelector {
    fn parse(word: &str) -> StateSelector {
        match word {
            "any" => StateSelector::Any,
            other => CheckStatus::parse(other).map_or(StateSelector::Nothing, StateSelector::Only),
        }
    }

    fn matches(self, status: CheckStatus) -> bool {
        match self {
            StateSelector::Any => true,
            StateSelector::Only(wanted) => status == wanted,
            StateSelector::Nothing => false,
        }
    }
}

/// `GET /v1/health/node/<name>`: every check on the node.
pub fn node_checks(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let name = or_answer!(required_name(name, "Missing node name"));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let state = &view.state;
    let index = state.catalog.checks_table_index().max(state.nodes.table_index());
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet {
        items: vec![WatchItem::Checks, WatchItem::Nodes],
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let checks = state
            .catalog
            .node_checks(name)
            .filter(|c| keeps_check(filter.as_ref(), c));
        let body = render_checks(pretty, checks);
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}

/// `GET /v1/health/checks/<service>[?node-meta=k:v]`: the service checks of
/// every instance of the service.
pub fn service_checks(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let name = or_answer!(required_name(name, "Missing service name"));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let meta = NodeMetaFilter::from_query(&req.query);
    let state = &view.state;
    let index = state.catalog.service_index(name);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::Service(name.to_ascii_lowercase()));
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let mut checks: Vec<&Arc<HealthCheck>> = Vec::new();
        for instance in state.catalog.instances(name).into_iter().flat_map(|i| i.values()) {
            if !meta.matches(state.nodes.get(&instance.node).map(|n| &**n)) {
                continue;
            }
            checks.extend(
                state
                    .catalog
                    .node_checks(&instance.node)
                    .filter(|c| c.service_id == instance.id)
                    .filter(|c| keeps_check(filter.as_ref(), c)),
            );
        }
        // Consul lists them in its checks-table order: node, then check id.
        checks.sort_by(|a, b| {
            let node = |c: &HealthCheck| c.node.to_ascii_lowercase();
            node(a).cmp(&node(b)).then_with(|| a.check_id.cmp(&b.check_id))
        });
        let body = render_checks(pretty, checks.into_iter());
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}

/// `GET /v1/health/state/<state>[?node-meta=k:v]`: checks in a state
/// (`any`, `passing`, `warning`, `critical`; other words match nothing).
pub fn state_checks(req: &ApiRequest<'_>, word: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let word = or_answer!(required_name(word, "Missing check state"));
    let filter = or_answer!(RowFilter::from_query(&req.query));
    let meta = NodeMetaFilter::from_query(&req.query);
    let selector = StateSelector::parse(word);
    let state = &view.state;
    let index = state.catalog.checks_table_index();
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || {
        let mut set = WatchSet::one(WatchItem::Checks);
        if !meta.is_empty() {
            set.items.push(WatchItem::Nodes);
        }
        set
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let checks = state.catalog.checks().filter(|c| {
            selector.matches(c.status)
                && (meta.is_empty() || meta.matches(state.nodes.get(&c.node).map(|n| &**n)))
                && keeps_check(filter.as_ref(), c)
        });
        let body = render_checks(pretty, checks);
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}

fn render_checks<'c>(pretty: bool, checks: impl Iterator<Item = &'c Arc<HealthCheck>>) -> Vec<u8> {
    json_body(pretty, ROW_BYTES_ESTIMATE * 4, |w| {
        w.begin_array();
        for check in checks {
            write_health_check(w, check);
        }
        w.end_array();
    })
}
