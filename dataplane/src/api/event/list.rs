//! `GET /v1/event/list[?name=&index=&wait=]`.

use super::agent_filter::{is_for_agent, FilterCache};
use super::render::write_event;
use super::uuid::uuid_index;
use crate::api::blocking::blocking_wait;
use crate::api::params::parse_query_options;
use crate::api::read::json_body;
use crate::api::response::Response;
use crate::api::{ApiRequest, Block, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::View;

/// The index of an empty list (Consul's: never 0, so watchers do not spin).
const EMPTY_LIST_INDEX: u64 = 1;

/// Lists the recent events for this agent, oldest first.
pub fn list(req: &ApiRequest<'_>, view: &View) -> Outcome {
    let opts = match parse_query_options(&req.query) {
        Ok(opts) => opts,
        Err(response) => return Outcome::Ready(response),
    };
    let name = req.query.get("name").filter(|n| !n.is_empty());
    let state = &view.state;
    let node = view.agent.node_name.as_str();
    let mut cache = FilterCache::default();
    let events: Vec<_> = state
        .events
        .iter()
        .filter(|e| name.is_none_or(|n| e.name == n))
        .filter(|e| is_for_agent(e, node, state, &mut cache))
        .collect();
    let index = events
        .last()
        .and_then(|e| uuid_index(&e.id))
        .filter(|i| *i != 0)
        .unwrap_or(EMPTY_LIST_INDEX);
    if req.may_block && opts.min_index > 0 && index == opts.min_index {
        // Not monotonic: wait for the next event (whatever it is), then
        // compare again.
        return Outcome::Block(Block {
            min_index: state.events.table_index(),
            wait: blocking_wait(opts.wait_ns, &view.agent),
            watch: WatchSet::one(WatchItem::Events),
        });
    }
    let pretty = req.pretty(view.agent.pretty_json);
    let body = json_body(pretty, 256 * events.len() + 2, |w| {
        w.begin_array();
        for event in &events {
            write_event(w, event, event.ltime);
        }
        w.end_array();
    });
    let mut response = Response::json(200, body);
    response.headers.push(("X-Consul-Index".into(), index.to_string()));
    Outcome::Ready(response)
}
