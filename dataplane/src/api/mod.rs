//! The Consul HTTP API as pure functions: a parsed request and one view of
//! the state in, an [`Outcome`] out. No sockets, clocks or tasks here; the
//! HTTP layer (`crate::http`) executes outcomes that need the control plane
//! or a wait.
//!
//! * [`route`]: the routing table and method allow-lists.
//! * [`params`]: the common query parameters (`dc`, consistency, `index`, `wait`).
//! * [`kv`], [`txn`], [`status`], [`agent`], [`catalog`], [`health`]: the
//!   endpoints; [`forwarded`]: requests the control plane answers whole.
//! * [`shapes`]: Consul's catalog and health JSON shapes.
//! * [`selectors`], [`row_filter`]: `node-meta`, `tag`, `passing`, `filter`.
//! * [`reply`]: rendering a forwarded request's reply.
//! * [`json`]: the Go-compatible JSON writer every response uses.

pub mod agent;
pub mod blocking;
pub mod catalog;
pub mod config;
pub mod consistent;
pub mod duration;
pub mod duration_text;
pub mod event;
pub mod forwarded;
pub mod go_quote;
pub mod health;
pub mod json;
pub mod kv;
pub mod params;
pub mod query;
pub mod read;
pub mod reply;
pub mod request;
pub mod response;
pub mod route;
pub mod row_filter;
pub mod selectors;
pub mod session;
pub mod shapes;
pub mod status;
pub mod txn;

#[cfg(test)]
pub(crate) mod test_support;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::limits::{KV_VALUE_BYTES_MAX, TXN_BODY_BYTES_MAX};

pub use blocking::Block;
pub use reply::{render_reply, ReplyKind};
pub use request::{ApiRequest, Method};
pub use response::{ContentType, Response};

use crate::blocking::WatchSet;
use crate::core::{LeaderStatus, View};
use crate::http::limits::BODY_BYTES_MAX_DEFAULT;
use params::QueryOptions;
use route::Route;

/// What a handler decided. Short-lived (one per request, never stored),
/// so the size of a forwarded write's `ControlOp` is not worth a box.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Answer now.
    Ready(Response),
    /// A blocking read whose index has not moved past the client's: park
    /// until something in the watch set changes (or the wait ends), then
    /// run the handler again.
    Block(Block),
    /// Needs the control plane: send `op`, render the reply by `reply`.
    Forward(Forward),
}

/// A request for the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub op: ControlOp,
    pub reply: ReplyKind,
}

/// The text `GET /` answers when no UI is served.
pub const INDEX_PAGE: &str = "Consul Agent";

/// Handles one request against one view.
pub fn handle(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    if req.path == "/" {
        return Outcome::Ready(Response::text(200, INDEX_PAGE));
    }
    if req.path == "*" && req.method == Method::Options {
        // Go's server answers `OPTIONS *` itself.
        return Outcome::Ready(Response::empty(200));
    }
    let Some((endpoint, rest)) = route::resolve(req.path) else {
        return Outcome::Ready(not_found(req.path));
    };
    if endpoint.route.is_forwarded_whole() {
        return forwarded::forward_whole(req);
    }
    if req.method == Method::Options {
        return Outcome::Ready(Response {
            allow: Some(endpoint.allow),
            ..Response::empty(200)
        });
    }
    if !endpoint.allows(req.method) {
        return Outcome::Ready(method_not_allowed(req, endpoint.allow));
    }
    match endpoint.route {
        Route::Kv => kv::handle(req, rest, view, leader),
        Route::Txn => txn::handle(req, view, leader),
        Route::StatusLeader => Outcome::Ready(status::leader(req, view, leader)),
        Route::StatusPeers => Outcome::Ready(status::peers(req, view)),
        Route::AgentSelf => agent::agent_self(req, view),
        Route::AgentLeave => agent::leave(),
        Route::AgentForwarded | Route::OperatorForwarded | Route::CatalogRegister | Route::CatalogDeregister => {
            forwarded::forward_whole(req)
        }
        Route::CatalogDatacenters => catalog::datacenters(req),
        Route::CatalogNodes => catalog::nodes(req, view, leader),
        Route::CatalogServices => catalog::services(req, view, leader),
        Route::CatalogService => catalog::service(req, rest, view, leader),
        Route::CatalogNode => catalog::node(req, rest, view, leader),
        Route::CatalogNodeServices => catalog::node_services(req, rest, view, leader),
        Route::HealthNode => health::node_checks(req, rest, view, leader),
        Route::HealthChecks => health::service_checks(req, rest, view, leader),
        Route::HealthService => health::service(req, rest, view, leader),
        Route::CatalogConnect => catalog::connect(req, rest, view, leader),
        Route::HealthConnect => health::connect(req, rest, view, leader),
        Route::HealthState => health::state_checks(req, rest, view, leader),
        Route::EventFire => event::fire(req, rest, view, leader, rand::random()),
        Route::EventList => event::list(req, view),
        Route::Query => query::collection(req, view, leader),
        Route::QuerySpecific => query::specific(req, rest, view, leader),
        Route::ConfigApply => forwarded::forward_whole(req),
        Route::Config if req.method == Method::Delete => forwarded::forward_whole(req),
        Route::Config => config::get_or_list(req, rest, view, leader),
        Route::CatalogGatewayServices => config::gateway_services(req, rest, view, leader),
        Route::SessionWrite => session::write(req),
        Route::SessionInfo => session::info(req, rest, view, leader),
        Route::SessionNode => session::node(req, rest, view, leader),
        Route::SessionList => session::list(req, view, leader),
        Route::HealthIngress => health::ingress(req, rest, view, leader),
    }
}

/// The body limit of the endpoint a request targets (raw target, before
/// decoding), so an oversized body is refused before it is read.
pub fn body_limit(_method: &str, target: &str) -> usize {
    let path = target.split('?').next().unwrap_or(target);
    if path.starts_with("/v1/kv/") {
        KV_VALUE_BYTES_MAX
    } else if path == "/v1/txn" {
        TXN_BODY_BYTES_MAX
    } else {
        BODY_BYTES_MAX_DEFAULT
    }
}

/// The `413` for a body over its endpoint's limit, in Consul's words.
pub fn body_too_large(target: &str, body_bytes: u64, limit_bytes: usize) -> Response {
    let path = target.split('?').next().unwrap_or(target);
    let setting = if path == "/v1/txn" {
        "txn_max_req_len"
    } else {
        "kv_max_value_size"
    };
    Response::text(
        413,
        format!(
            "Request body({body_bytes} bytes) too large, max size: {limit_bytes} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#{setting}."
        ),
    )
}

/// `404` for a path no endpoint serves: Consul's text under `/v1/`, an
/// empty body elsewhere (Go's index handler).
pub fn not_found(path: &str) -> Response {
    if path.starts_with("/v1/") {
        Response::text(404, "Invalid URL path: not a recognized HTTP API endpoint")
    } else {
        Response::empty(404)
    }
}

/// `405 method <M> not allowed` with the `Allow` header.
pub fn method_not_allowed(req: &ApiRequest<'_>, allow: &'static str) -> Response {
    Response {
        allow: Some(allow),
        ..Response::text(405, format!("method {} not allowed", req.method_name))
    }
}

/// The common tail of every index-backed read: block when the result has
/// not moved past the client's `?index` (and the request may still park),
/// else render.
pub(crate) fn read_outcome(
    req: &ApiRequest<'_>,
    opts: &QueryOptions<'_>,
    result_index: u64,
    agent: &AgentInfo,
    watch: impl FnOnce() -> WatchSet,
    render: impl FnOnce() -> Response,
) -> Outcome {
    if req.may_block && opts.min_index > 0 && result_index.max(1) <= opts.min_index {
        return Outcome::Block(Block {
            min_index: opts.min_index,
            wait: blocking::blocking_wait(opts.wait_ns, agent),
            watch: watch(),
        });
    }
    Outcome::Ready(render())
}

#[cfg(test)]
mod tests;
