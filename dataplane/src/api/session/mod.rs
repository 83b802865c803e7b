//! Sessions (HTTP.md §5): `GET /v1/session/info/<id>`,
//! `/v1/session/node/<node>` and `/v1/session/list` are answered here from
//! the replica (blocking on [`WatchItem::Sessions`](crate::blocking::WatchItem::Sessions));
//! `PUT /v1/session/create`, `/destroy/<id>` and `/renew/<id>` go whole to
//! the control plane (defaults, validation, a new UUID, TTL timers, the
//! raft write).

mod read;

pub use read::{info, list, node};

use crate::api::forwarded::forward_whole;
use crate::api::{ApiRequest, Outcome};

/// `PUT /v1/session/{create,destroy/<id>,renew/<id>}`: the control plane
/// answers (the method was checked against the route here).
pub fn write(req: &ApiRequest<'_>) -> Outcome {
    forward_whole(req)
}

#[cfg(test)]
mod tests;
