//! `PUT /v1/event/fire/<name>[?node=&service=&tag=]`, body = payload.

use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::state::{uuid_halves, UserEvent, USER_EVENT_BYTES_MAX};
use proconsul_shared::Command;

use super::agent_filter::compile;
use super::uuid::random_uuid;
use crate::api::params::parse_query_options;
use crate::api::response::Response;
use crate::api::{ApiRequest, Forward, Outcome, ReplyKind};
use crate::core::{LeaderStatus, View};

/// Validates the event as Consul's agent does, then forwards it as a
/// replicated write; the reply renders the event ([`super::render_fired`]).
pub fn fire(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus, uuid_bytes: [u8; 16]) -> Outcome {
    let opts = match parse_query_options(&req.query) {
        Ok(opts) => opts,
        Err(response) => return Outcome::Ready(response),
    };
    if let Err(refused) = opts.check_serving(&view.agent, leader) {
        return Outcome::Ready(refused);
    }
    if name.is_empty() {
        return Outcome::Ready(Response::text(400, "Missing name"));
    }
    let filter = |key: &str| req.query.get(key).unwrap_or("").to_string();
    let event = UserEvent {
        id: random_uuid(uuid_bytes),
        name: name.to_string(),
        payload: (!req.body.is_empty()).then(|| req.body.to_vec()),
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
        version: 1,
        ltime: 0,
    };
    if let Err(message) = validate(&event) {
        return Outcome::Ready(Response::text(500, message));
    }
    let Some((id_high, id_low)) = uuid_halves(&event.id) else {
        return Outcome::Ready(Response::text(500, "generated event ID is not a UUID"));
    };
    Outcome::Forward(Forward {
        op: ControlOp::Write(Command::EventFire(event)),
        reply: ReplyKind::EventFired {
            pretty: req.pretty(view.agent.pretty_json),
            id_high,
            id_low,
        },
    })
}

/// Consul's checks on a user event, with its messages.
fn validate(event: &UserEvent) -> Result<(), String> {
    if !event.tag_filter.is_empty() && event.service_filter.is_empty() {
        return Err("Cannot provide tag filter without service filter".into());
    }
    for (what, expr) in [
        ("node", &event.node_filter),
        ("service", &event.service_filter),
        ("tag", &event.tag_filter),
    ] {
        if !expr.is_empty() {
            if let Err(e) = compile(expr) {
                return Err(format!("Invalid {what} filter: {e}"));
            }
        }
    }
    if event.size_bytes() > USER_EVENT_BYTES_MAX {
        return Err(format!(
            "user event exceeds configured limit of {USER_EVENT_BYTES_MAX} bytes before encoding"
        ));
    }
    Ok(())
}
