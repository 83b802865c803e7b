//! Consul's `UserEvent` JSON.

use proconsul_shared::state::{uuid_halves, UserEvent};

use crate::api::json::JsonWriter;
use crate::api::read::json_body;
use crate::api::response::Response;
use crate::core::View;

/// One event object. `ltime` is what the field shows (0 in the fire
/// answer, as Consul's agent has not stamped it yet).
pub fn write_event(w: &mut JsonWriter<'_>, event: &UserEvent, ltime: u64) {
    w.begin_object();
    w.key("ID");
    w.string(&event.id);
    w.key("Name");
    w.string(&event.name);
    w.key("Payload");
    match &event.payload {
        Some(bytes) => w.base64_or_null(bytes),
        None => w.null(),
    }
    w.key("NodeFilter");
    w.string(&event.node_filter);
    w.key("ServiceFilter");
    w.string(&event.service_filter);
    w.key("TagFilter");
    w.string(&event.tag_filter);
    w.key("Version");
    w.u64(u64::from(event.version));
    w.key("LTime");
    w.u64(ltime);
    w.end_object();
}

/// The answer to a fire: the event as applied at raft index `index`,
/// found in the view that already holds the write.
pub fn render_fired(view: &View, index: u64, id: (u64, u64), pretty: bool) -> Response {
    let found = view
        .state
        .events
        .iter()
        .rev()
        .find(|e| e.ltime == index && uuid_halves(&e.id) == Some(id));
    match found {
        Some(event) => Response::json(200, json_body(pretty, 256, |w| write_event(w, event, 0))),
        None => Response::text(
            500,
            "event fired but not yet visible on this agent; list it with /v1/event/list",
        ),
    }
}
