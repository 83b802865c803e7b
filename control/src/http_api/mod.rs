//! The HTTP endpoints the control plane answers itself: the `/v1/agent/*`
//! endpoints over the agent's local state, and the catalog writes. The
//! data plane forwards these as [`HttpCall`]s; [`handle`] routes one to its
//! handler and returns the whole [`HttpAnswer`].
//!
//! * [`fields`]: case-insensitive body fields, Go-like decode errors.
//! * [`check_def`], [`service_def`]: register bodies (also config files).
//! * [`catalog`]: catalog register/deregister bodies into commands.
//! * [`agent`]: the agent endpoints.
//! * [`render`]: JSON shapes; [`answer`]: answers and query strings.
//! * [`operator`], [`operator_health`]: `/v1/operator/*` (raft configuration,
//!   peer removal, leadership transfer, autopilot health).
//!
//! Not served here: `filter` on agent listings (the filter engine lives in
//! the data plane).

pub mod agent;
pub mod answer;
pub mod catalog;
pub mod check_def;
pub mod config_entry;
pub mod fields;
pub mod fresh_id;
pub mod membership;
pub mod operator;
pub mod operator_health;
pub mod prepared_query;
pub mod proxy_def;
pub mod render;
pub mod service_def;
pub mod session;
pub mod sidecar_def;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::command::CommandResult;
use proconsul_shared::ipc::messages::{HttpAnswer, HttpCall};
use proconsul_shared::state::CheckStatus;

use crate::agent::local::{LocalAgent, SyncTarget};
use crate::rpc::validate::validate;
use answer::{method_not_allowed, not_found, rejected, text};

/// What a reload does: re-reads config files and applies their services
/// and checks; `Err` carries the text of a 500.
pub type ReloadFn = dyn Fn() -> Result<(), String> + Send + Sync;

/// Everything a handler reads or writes.
pub struct HttpEnv<'a, T: SyncTarget> {
    pub local: &'a LocalAgent,
    pub target: &'a T,
    pub agent: &'a AgentInfo,
    pub reload: &'a ReloadFn,
    /// Gossip membership (`None`: this agent alone).
    pub gossip: Option<&'a crate::gossip::Gossip>,
    /// The WAN pool (servers only).
    pub wan_gossip: Option<&'a crate::gossip::Gossip>,
}

const GET: &str = "OPTIONS,GET";
const PUT: &str = "OPTIONS,PUT";
const GET_PUT: &str = "OPTIONS,GET,PUT";

fn allowed(method: &str, allow: &str) -> bool {
    method != "OPTIONS" && allow.split(',').any(|m| m == method)
}

/// Answers one forwarded request.
pub async fn handle<T: SyncTarget>(env: &HttpEnv<'_, T>, call: &HttpCall) -> HttpAnswer {
    let path = call.path.as_str();
    let query = call.query.as_str();
    let method = call.method.as_str();
    if let Some(rest) = path.strip_prefix("/v1/catalog/") {
        return match rest {
            "register" | "deregister" if !allowed(method, PUT) => method_not_allowed(method, PUT),
            "register" => catalog_write(env, catalog::register_command(&call.body, &env.agent.datacenter)).await,
            "deregister" => catalog_write(env, catalog::deregister_command(&call.body, &env.agent.datacenter)).await,
            "datacenters" if !allowed(method, GET) => method_not_allowed(method, GET),
            "datacenters" => membership::datacenters(env, query),
            _ => not_found(),
        };
    }
    if path == "/v1/config" {
        if !allowed(method, PUT) {
            return method_not_allowed(method, PUT);
        }
        return config_entry::put(env, &call.body, query).await;
    }
    if let Some(rest) = path.strip_prefix("/v1/config/") {
        if !allowed(method, "OPTIONS,DELETE") {
            return method_not_allowed(method, "OPTIONS,GET,DELETE");
        }
        return config_entry::delete(env, rest, query).await;
    }
    if path == "/v1/query" {
        return prepared_query::handle(env, method, None, &call.body).await;
    }
    if let Some(id) = path.strip_prefix("/v1/query/") {
        return prepared_query::handle(env, method, Some(id), &call.body).await;
    }
    if let Some(rest) = path.strip_prefix("/v1/session/") {
        return session::handle(env, method, rest, &call.body).await;
    }
    let Some(rest) = path.strip_prefix("/v1/agent/") else {
        return not_found();
    };
    let (allow, route) = route(rest);
    let Some(route) = route else {
        return not_found();
    };
    if !allowed(method, allow) {
        return method_not_allowed(method, allow);
    }
    match route {
        Route::Services => agent::services(env, query),
        Route::Service(id) => agent::service(env, id, query).await,
        Route::Checks => agent::checks(env, query),
        Route::Members => membership::members(env, query),
        Route::Join(addr) => membership::join(env, addr, query).await,
        Route::ForceLeave(node) => membership::force_leave(env, node, query),
        Route::ServiceRegister => agent::service_register(env, query, &call.body).await,
        Route::ServiceDeregister(id) => agent::service_deregister(env, id).await,
        Route::ServiceMaintenance(id) => agent::service_maintenance(env, id, query).await,
        Route::CheckRegister => agent::check_register(env, &call.body).await,
        Route::CheckDeregister(id) => agent::check_deregister(env, id).await,
        Route::CheckTtl(id, status) => agent::check_ttl(env, id, status, query).await,
        Route::CheckUpdate(id) => agent::check_update(env, id, &call.body).await,
        Route::NodeMaintenance => agent::node_maintenance(env, query).await,
        Route::Reload => agent::reload(env).await,
        Route::HealthById(id) => agent::health_by_id(env, id, query),
        Route::HealthByName(name) => agent::health_by_name(env, name, query),
    }
}

/// One agent endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'p> {
    Services,
    Service(&'p str),
    Checks,
    Members,
    /// `PUT /v1/agent/join/<address>`.
    Join(&'p str),
    /// `PUT /v1/agent/force-leave/<node>`.
    ForceLeave(&'p str),
    ServiceRegister,
    ServiceDeregister(&'p str),
    ServiceMaintenance(&'p str),
    CheckRegister,
    CheckDeregister(&'p str),
    CheckTtl(&'p str, CheckStatus),
    CheckUpdate(&'p str),
    NodeMaintenance,
    Reload,
    HealthById(&'p str),
    HealthByName(&'p str),
}

/// Builds a route from the id in its path.
type RouteOf<'r> = fn(&'r str) -> Route<'r>;

/// The endpoint for a path under `/v1/agent/`, with its allowed methods.
pub fn route<'r>(rest: &'r str) -> (&'static str, Option<Route<'r>>) {
    let id_after = |prefix: &str| rest.strip_prefix(prefix).filter(|id| !id.is_empty());
    match rest {
        "services" => return (GET, Some(Route::Services)),
        "checks" => return (GET, Some(Route::Checks)),
        "members" => return (GET, Some(Route::Members)),
        "service/register" => return (PUT, Some(Route::ServiceRegister)),
        "check/register" => return (PUT, Some(Route::CheckRegister)),
        "maintenance" => return (PUT, Some(Route::NodeMaintenance)),
        "reload" => return (PUT, Some(Route::Reload)),
        _ => {}
    }
    let puts: [(&str, RouteOf<'r>); 7] = [
        ("join/", Route::Join),
        ("force-leave/", Route::ForceLeave),
        ("service/deregister/", Route::ServiceDeregister),
        ("service/maintenance/", Route::ServiceMaintenance),
        ("check/deregister/", Route::CheckDeregister),
        ("check/update/", Route::CheckUpdate),
        ("service/", Route::Service),
    ];
    for (prefix, make) in puts {
        if let Some(id) = id_after(prefix) {
            let allow = if prefix == "service/" { GET } else { PUT };
            return (allow, Some(make(id)));
        }
    }
    for (prefix, status) in [
        ("check/pass/", CheckStatus::Passing),
        ("check/warn/", CheckStatus::Warning),
        ("check/fail/", CheckStatus::Critical),
    ] {
        if let Some(id) = id_after(prefix) {
            return (GET_PUT, Some(Route::CheckTtl(id, status)));
        }
    }
    if let Some(id) = id_after("health/service/id/") {
        return (GET, Some(Route::HealthById(id)));
    }
    if let Some(name) = id_after("health/service/name/") {
        return (GET, Some(Route::HealthByName(name)));
    }
    (GET, None)
}

async fn catalog_write<T: SyncTarget>(
    env: &HttpEnv<'_, T>,
    command: Result<proconsul_shared::Command, check_def::Rejection>,
) -> HttpAnswer {
    let command = match command {
        Ok(c) => c,
        Err(r) => return rejected(r),
    };
    if let Err(e) = validate(&command) {
        return text(e.status, e.message);
    }
    match env.target.write(command).await {
        Ok((index, CommandResult::Failed(why))) => {
            let mut a = text(500, why);
            a.wait_index = index;
            a
        }
        Ok((index, _)) => {
            // Compact even under `-dev`/`?pretty` (Consul would add a
            // newline there); the data plane's catalog tests expect `true`.
            let mut a = answer::json(200, &serde_json::json!(true), false);
            a.wait_index = index;
            a
        }
        Err(e) => text(e.status, e.message),
    }
}

#[cfg(test)]
mod tests;
