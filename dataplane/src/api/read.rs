//! The prologue and epilogue every catalog and health read shares: the
//! common options validated in Consul's order, the agent's datacenter and
//! leader checks, and a JSON body rendered into one buffer.

use super::json::JsonWriter;
use super::params::{parse_query_options, QueryOptions};
use super::request::ApiRequest;
use super::response::Response;
use crate::core::{LeaderStatus, View};

/// Returns the `Err` response of a handler step as the handler's answer.
macro_rules! or_answer {
    ($step:expr) => {
        match $step {
            Ok(value) => value,
            Err(response) => return $crate::api::Outcome::Ready(response),
        }
    };
}
pub(crate) use or_answer;

/// `dc`, consistency, `wait` and `index`, then the serving checks
/// (another datacenter, a consistent read without a leader).
pub fn read_options<'q>(
    req: &'q ApiRequest<'_>,
    view: &View,
    leader: LeaderStatus,
) -> Result<QueryOptions<'q>, Response> {
    let opts = parse_query_options(&req.query)?;
    opts.check_serving(&view.agent, leader)?;
    Ok(opts)
}

/// A required path argument (`/v1/catalog/service/<name>`): Consul's `400`
/// with `missing` when it is empty.
pub fn required_name<'p>(name: &'p str, missing: &'static str) -> Result<&'p str, Response> {
    if name.is_empty() {
        Err(Response::text(400, missing))
    } else {
        Ok(name)
    }
}

/// Renders one JSON document into a buffer of `capacity_bytes`.
pub fn json_body(pretty: bool, capacity_bytes: usize, render: impl FnOnce(&mut JsonWriter<'_>)) -> Vec<u8> {
    let mut body = Vec::with_capacity(capacity_bytes);
    let mut w = JsonWriter::new(&mut body, pretty);
    render(&mut w);
    w.finish();
    body
}
