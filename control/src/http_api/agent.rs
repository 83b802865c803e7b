//! The `/v1/agent/*` endpoints the control plane serves: local services and
//! checks, TTL updates, maintenance, members, reload, local health.
//! Every write changes the local state first, then runs one anti-entropy
//! round so the answer can wait for the catalog (read-your-writes).

use std::time::Duration;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::messages::HttpAnswer;
use proconsul_shared::state::CheckStatus;
use serde_json::{json, Map, Value};

use super::answer::{empty_ok, json as json_answer, query_param, rejected, text};
use super::check_def::{decode_check, Rejection};
use super::fields::{parse_body, Fields};
use super::render::{agent_service, content_hash, health_check};
use super::service_def::decode_service;
use super::sidecar_def::{finish_sidecar, SIDECAR_SUFFIX};
use super::HttpEnv;
use crate::agent::local::state::{AgentLocalState, NODE_MAINTENANCE_CHECK_ID, SERVICE_MAINTENANCE_PREFIX};
use crate::agent::local::{now_ms, Source, SyncTarget};

/// `Status` of a live serf member.
const MEMBER_STATUS_ALIVE: u64 = 1;

fn pretty<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> bool {
    env.agent.pretty_json || query_param(query, "pretty").is_some()
}

/// Runs one sync round after a local write; the answer waits for it.
async fn synced<T: SyncTarget>(env: &HttpEnv<'_, T>) -> HttpAnswer {
    let mut answer = empty_ok();
    match env.local.sync_once(env.target).await {
        Ok(index) => answer.wait_index = index,
        Err(e) => tracing::debug!(target: "agent.anti_entropy", "sync after a local write failed: {}", e.message),
    }
    answer
}

/// `GET /v1/agent/services`.
pub fn services<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    let state = env.local.lock();
    let map: Map<String, Value> = state
        .services()
        .iter()
        .map(|(id, s)| (id.clone(), agent_service(&s.service, &env.local.settings.datacenter)))
        .collect();
    json_answer(200, &Value::Object(map), pretty(env, query))
}

/// `GET /v1/agent/checks`.
pub fn checks<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    let state = env.local.lock();
    let map: Map<String, Value> = state
        .checks()
        .iter()
        .map(|(id, c)| (id.clone(), health_check(&c.check)))
        .collect();
    json_answer(200, &Value::Object(map), pretty(env, query))
}

/// The rendered service with its `ContentHash`, or `None` when unknown.
fn service_with_hash(state: &AgentLocalState, id: &str, datacenter: &str) -> Option<(Value, String)> {
    let s = state.service(id)?;
    let mut v = agent_service(&s.service, datacenter);
    let hash = content_hash(&v);
    v["ContentHash"] = json!(hash);
    Some((v, hash))
}

fn service_answer(found: Option<(Value, String)>, id: &str, pretty: bool) -> HttpAnswer {
    match found {
        None => text(404, format!("unknown service ID: {id}")),
        Some((v, hash)) => {
            let mut a = json_answer(200, &v, pretty);
            a.headers.push(("X-Consul-ContentHash".into(), hash));
            a
        }
    }
}

/// `GET /v1/agent/service/<id>`, with hash-based blocking (`?hash=&wait=`).
pub async fn service<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, query: &str) -> HttpAnswer {
    let pretty = pretty(env, query);
    let datacenter = env.local.settings.datacenter.as_str();
    let mut changes = env.local.changes();
    let found = service_with_hash(&env.local.lock(), id, datacenter);
    let Some(wanted) = query_param(query, "hash").filter(|h| !h.is_empty()) else {
        return service_answer(found, id, pretty);
    };
    if found.as_ref().is_none_or(|(_, h)| *h != wanted) {
        return service_answer(found, id, pretty);
    }
    let settings = &env.local.settings;
    let wait_ms = match query_param(query, "wait").filter(|w| !w.is_empty()) {
        None => settings.default_query_time_ms,
        Some(w) => match proconsul_dataplane::api::duration::parse_go_duration_ms(&w) {
            Ok(ms) if ms >= 0 => ms as u64,
            _ => return text(400, "Invalid wait time"),
        },
    }
    .min(settings.max_query_time_ms);
    let Some(_slot) = env.local.hash_waiter() else {
        return text(429, "Too many blocking queries on this agent");
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    loop {
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {
                let found = service_with_hash(&env.local.lock(), id, datacenter);
                if found.as_ref().is_none_or(|(_, h)| *h != wanted) {
                    return service_answer(found, id, pretty);
                }
            }
            // Timed out (or the agent is going away): answer what is there.
            _ => return service_answer(service_with_hash(&env.local.lock(), id, datacenter), id, pretty),
        }
    }
}

/// `GET /v1/agent/members`: every LAN gossip member (this agent alone
/// when gossip is off); `?wan` is [`super::membership::members`]'s.
pub fn members<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    let list = match env.gossip {
        Some(g) => g.members().iter().map(super::membership::member_json).collect(),
        None => vec![member(env.agent)],
    };
    json_answer(200, &Value::Array(list), pretty(env, query))
}

/// This agent as a serf member.
pub fn member(agent: &AgentInfo) -> Value {
    let addr = if agent.advertise_addr.is_empty() {
        &agent.bind_addr
    } else {
        &agent.advertise_addr
    };
    let tags: Map<String, Value> = proconsul_dataplane::api::agent::member_tags(agent)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "Name": agent.node_name,
        "Addr": addr,
        "Port": agent.ports.serf_lan,
        "Tags": tags,
        "Status": MEMBER_STATUS_ALIVE,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

/// `PUT /v1/agent/service/register`.
pub async fn service_register<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str, body: &[u8]) -> HttpAnswer {
    let decoded = parse_body(body)
        .map_err(Rejection::decode)
        .and_then(|v| decode_service(&Fields::of(&v, "ServiceDefinition")?, env.local.settings.scripts(false)));
    let mut reg = match decoded {
        Ok(r) => r,
        Err(r) => return rejected(r),
    };
    let replace = match query_param(query, "replace-existing-checks") {
        None => false,
        Some(v) => v.is_empty() || v == "true",
    };
    let now = now_ms();
    let sidecar = reg.sidecar.take();
    let scripts = env.local.settings.scripts(false);
    let added = env.local.update(|s| {
        // The sidecar's port is chosen against the services already here.
        let services = s.services().values().map(|l| &l.service);
        let sidecar = match sidecar.map(|req| finish_sidecar(*req, services, scripts)) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => return (Err(e), Vec::new()),
        };
        let mut ops = match s.add_service(reg, Source::Api, replace, now) {
            Ok(ops) => ops,
            Err(e) => return (Err(e), Vec::new()),
        };
        if let Some(sidecar) = sidecar {
            match s.add_service(sidecar, Source::Api, replace, now) {
                Ok(more) => ops.extend(more),
                Err(e) => return (Err(e), ops),
            }
        }
        (Ok(()), ops)
    });
    match added {
        Ok(()) => synced(env).await,
        Err(r) => rejected(r),
    }
}

/// `PUT /v1/agent/service/deregister/<id>`.
pub async fn service_deregister<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str) -> HttpAnswer {
    let removed = env.local.update(|s| {
        // A sidecar registered with the service goes with it.
        let sidecar_id = format!("{id}{SIDECAR_SUFFIX}");
        let has_sidecar = s
            .service(&sidecar_id)
            .is_some_and(|l| l.service.proxy.destination_service_id == id);
        match s.remove_service(id) {
            Ok(mut ops) => {
                if has_sidecar {
                    ops.extend(s.remove_service(&sidecar_id).unwrap_or_default());
                }
                (Ok(()), ops)
            }
            Err(e) => (Err(e), Vec::new()),
        }
    });
    match removed {
        Ok(()) => synced(env).await,
        Err(r) => rejected(r),
    }
}

/// `PUT /v1/agent/check/register`.
pub async fn check_register<T: SyncTarget>(env: &HttpEnv<'_, T>, body: &[u8]) -> HttpAnswer {
    let decoded = parse_body(body).map_err(Rejection::decode).and_then(|v| {
        decode_check(
            &Fields::of(&v, "CheckDefinition")?,
            None,
            env.local.settings.scripts(false),
        )
    });
    let reg = match decoded {
        Ok(r) => r,
        Err(r) => return rejected(r),
    };
    let now = now_ms();
    let added = env.local.update(|s| match s.add_check(reg, Source::Api, now) {
        Ok(ops) => (Ok(()), ops),
        Err(e) => (Err(e), Vec::new()),
    });
    match added {
        Ok(()) => synced(env).await,
        Err(r) => rejected(r),
    }
}

/// `PUT /v1/agent/check/deregister/<id>`.
pub async fn check_deregister<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str) -> HttpAnswer {
    let removed = env.local.update(|s| match s.remove_check(id) {
        Ok(ops) => (Ok(()), ops),
        Err(e) => (Err(e), Vec::new()),
    });
    match removed {
        Ok(()) => synced(env).await,
        Err(r) => rejected(r),
    }
}

async fn ttl_update<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, status: CheckStatus, output: String) -> HttpAnswer {
    let now = now_ms();
    let updated = env.local.update(|s| match s.update_ttl(id, status, output, now) {
        Ok(ops) => (Ok(()), ops),
        Err(e) => (Err(e), Vec::new()),
    });
    match updated {
        Ok(()) => synced(env).await,
        Err(r) => rejected(r),
    }
}

/// `PUT /v1/agent/check/{pass,warn,fail}/<id>?note=`.
pub async fn check_ttl<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, status: CheckStatus, query: &str) -> HttpAnswer {
    let note = query_param(query, "note").unwrap_or_default();
    ttl_update(env, id, status, note).await
}

/// `PUT /v1/agent/check/update/<id>` with `{"Status","Output"}`.
pub async fn check_update<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, body: &[u8]) -> HttpAnswer {
    let parsed = parse_body(body).map_err(Rejection::decode).and_then(|v| {
        let f = Fields::of(&v, "checkUpdate")?;
        Ok((f.string(&["Status"])?, f.string(&["Output"])?))
    });
    let (status_text, output) = match parsed {
        Ok(p) => p,
        Err(r) => return rejected(r),
    };
    let Some(status) = CheckStatus::parse(&status_text) else {
        return text(400, format!("Invalid check status: '{status_text}'"));
    };
    ttl_update(env, id, status, output).await
}

/// Reads the required `enable` flag of the maintenance endpoints.
fn enable_flag(query: &str) -> Result<bool, HttpAnswer> {
    match query_param(query, "enable") {
        None => Err(text(400, "Missing value for enable")),
        Some(v) => match v.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(text(400, format!("Invalid value for enable: {v:?}"))),
        },
    }
}

/// `PUT /v1/agent/maintenance?enable=&reason=`.
pub async fn node_maintenance<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    let enable = match enable_flag(query) {
        Ok(e) => e,
        Err(a) => return a,
    };
    let reason = query_param(query, "reason").unwrap_or_default();
    let now = now_ms();
    env.local
        .update(|s| (s.set_node_maintenance(enable, &reason, now), Vec::new()));
    synced(env).await
}

/// `PUT /v1/agent/service/maintenance/<id>?enable=&reason=`.
pub async fn service_maintenance<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, query: &str) -> HttpAnswer {
    let enable = match enable_flag(query) {
        Ok(e) => e,
        Err(a) => return a,
    };
    let reason = query_param(query, "reason").unwrap_or_default();
    let now = now_ms();
    let set = env
        .local
        .update(|s| (s.set_service_maintenance(id, enable, &reason, now), Vec::new()));
    match set {
        Ok(_) => synced(env).await,
        Err(r) => rejected(r),
    }
}

/// `PUT /v1/agent/reload`.
pub async fn reload<T: SyncTarget>(env: &HttpEnv<'_, T>) -> HttpAnswer {
    match (env.reload)() {
        Ok(()) => synced(env).await,
        Err(why) => text(500, why),
    }
}

/// One local service's health: `(word, status code, body)`.
fn service_health(state: &AgentLocalState, id: &str, datacenter: &str) -> Option<(&'static str, u16, Value)> {
    let s = state.service(id)?;
    let checks: Vec<_> = state
        .checks()
        .values()
        .filter(|c| c.check.service_id == id || c.check.service_id.is_empty())
        .collect();
    let in_maintenance = checks.iter().any(|c| {
        c.check.check_id == NODE_MAINTENANCE_CHECK_ID || c.check.check_id.starts_with(SERVICE_MAINTENANCE_PREFIX)
    });
    let worst = checks
        .iter()
        .map(|c| c.check.status)
        .max()
        .unwrap_or(CheckStatus::Passing);
    let (word, code) = match (in_maintenance, worst) {
        (true, _) => ("maintenance", 503),
        (_, CheckStatus::Passing) => ("passing", 200),
        (_, CheckStatus::Warning) => ("warning", 429),
        (_, CheckStatus::Critical) => ("critical", 503),
    };
    let body = json!({
        "AggregatedStatus": word,
        "Service": agent_service(&s.service, datacenter),
        "Checks": checks.iter().map(|c| health_check(&c.check)).collect::<Vec<_>>(),
    });
    Some((word, code, body))
}

fn text_format(query: &str) -> bool {
    query_param(query, "format").is_some_and(|f| f == "text")
}

/// `GET /v1/agent/health/service/id/<id>`: the status code is the health.
pub fn health_by_id<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, query: &str) -> HttpAnswer {
    let state = env.local.lock();
    let Some((word, code, body)) = service_health(&state, id, &env.local.settings.datacenter) else {
        return text(404, format!("ServiceId {id} not found"));
    };
    if text_format(query) {
        return text(code, word);
    }
    json_answer(code, &body, pretty(env, query))
}

/// `GET /v1/agent/health/service/name/<name>`: every local instance; the
/// status code is the worst one's.
pub fn health_by_name<T: SyncTarget>(env: &HttpEnv<'_, T>, name: &str, query: &str) -> HttpAnswer {
    let state = env.local.lock();
    let datacenter = &env.local.settings.datacenter;
    let found: Vec<_> = state
        .services()
        .values()
        .filter(|s| s.service.service == name)
        .filter_map(|s| service_health(&state, &s.service.id, datacenter))
        .collect();
    if found.is_empty() {
        return text(404, format!("ServiceName {name} Not Found"));
    }
    let rank = |word: &str| match word {
        "passing" => 0,
        "warning" => 1,
        "critical" => 2,
        _ => 3,
    };
    let (word, code, _) = found.iter().max_by_key(|(w, _, _)| rank(w)).expect("not empty");
    let (word, code) = (*word, *code);
    if text_format(query) {
        return text(code, word);
    }
    let list: Vec<Value> = found.into_iter().map(|(_, _, body)| body).collect();
    json_answer(code, &Value::Array(list), pretty(env, query))
}
