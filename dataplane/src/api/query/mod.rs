//! Prepared queries (HTTP.md §10): `GET /v1/query` (list),
//! `GET /v1/query/<id>`, `GET /v1/query/<id-or-name>/execute` and
//! `/explain` are answered here from the replica; `POST /v1/query`,
//! `PUT` and `DELETE /v1/query/<id>` go whole to the control plane
//! (validation, a new UUID, the raft write).
//!
//! ACLs are not enforced by this agent, which is Consul's ACL-disabled
//! case: every caller may see a query's `Token`, so it is shown as stored.

mod execute;
mod read;
mod render;

pub use execute::{execute, explain};
pub use read::{get, list};

use crate::api::forwarded::forward_whole;
use crate::api::request::Method;
use crate::api::{ApiRequest, Outcome};
use crate::core::{LeaderStatus, View};

/// Whether a request to `path` must be answered for itself, never from
/// another identical request's rendering: prepared query execution
/// shuffles per request (as Consul does) and may sort by the client's
/// address (`near=_ip`).
pub fn answers_per_request(path: &str) -> bool {
    path.starts_with("/v1/query/") && path.ends_with("/execute")
}

/// `/v1/query`: `GET` lists, `POST` creates (control plane).
pub fn collection(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    match req.method {
        Method::Get => list(req, view, leader),
        _ => forward_whole(req),
    }
}

/// `/v1/query/<rest>`: `<id>/execute` and `<id>/explain` (any allowed
/// method, as Consul's handler), else `GET` reads the query and
/// `PUT`/`DELETE` write it (control plane).
pub fn specific(req: &ApiRequest<'_>, rest: &str, view: &View, leader: LeaderStatus) -> Outcome {
    if let Some(id_or_name) = rest.strip_suffix("/execute") {
        return execute(req, id_or_name, view, leader);
    }
    if let Some(id_or_name) = rest.strip_suffix("/explain") {
        return explain(req, id_or_name, view, leader);
    }
    match req.method {
        Method::Get => get(req, rest, view, leader),
        _ => forward_whole(req),
    }
}

#[cfg(test)]
mod tests;
