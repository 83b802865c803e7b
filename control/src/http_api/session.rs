//! Session writes (HTTP.md §5): `PUT /v1/session/create`,
//! `PUT /v1/session/destroy/<id>` and `PUT /v1/session/renew/<id>`. The
//! data plane serves the reads (`/v1/session/{info,node,list}`) and
//! forwards these whole.
//!
//! * create: the body is decoded as Consul's agent does (field names in any
//!   case; `LockDelay` a Go duration string or a number of nanoseconds, a
//!   number below 1000 meaning seconds; defaults `LockDelay` 15 s, `Node`
//!   this agent, `NodeChecks` `["serfHealth"]` with Consul's
//!   `Checks`/`NodeChecks` fix-up, a `null` list counting as `[]` as Go's
//!   decoder makes it), checked with Consul's texts (bad
//!   `Behavior` or `TTL`: 500), given a fresh UUID and proposed as
//!   `Command::SessionCreate`; the node and check rules are the state
//!   machine's (500 `Missing node registration`, `Missing check '<id>'
//!   registration`, `Check '<id>' is in critical state`). Answers
//!   `{"ID":"<uuid>"}`.
//! * destroy: `Command::SessionDestroy`, answers `true` (unknown IDs too).
//! * renew: `Command::SessionRenew` (no state change; every server's TTL
//!   timer is re-armed when it applies); unknown → `404 Session id '<id>'
//!   not found`, else `200` with the session in a one-element array, in
//!   the data plane's shape (`shapes::write_session`).

use proconsul_dataplane::api::json::JsonWriter;
use proconsul_dataplane::api::shapes::write_session;
use proconsul_shared::command::CommandResult;
use proconsul_shared::ipc::messages::HttpAnswer;
use proconsul_shared::state::{Session, SessionBehavior, SessionServiceCheck};
use proconsul_shared::Command;
use serde_json::{json, Value};

use super::answer::{self, method_not_allowed, text};
use super::check_def::Rejection;
use super::fields::{parse_body, DecodeError, Fields};
use super::fresh_id::fresh_uuid;
use super::HttpEnv;
use crate::agent::local::SyncTarget;
use crate::rpc::validate::validate;

/// `Allow` of the session write endpoints.
const PUT_ONLY: &str = "OPTIONS,PUT";
/// Largest create body read.
pub const SESSION_BODY_BYTES_MAX: usize = 64 * 1024;
/// Consul's default `LockDelay`.
pub const DEFAULT_LOCK_DELAY_NS: u64 = 15_000_000_000;
/// A raw `LockDelay` below this many nanoseconds counts as seconds
/// (Consul's `lockDelayMinThreshold`).
const LOCK_DELAY_SECONDS_BELOW: i64 = 1000;
/// Shortest and longest TTL (Consul's `SessionTTLMin` default and
/// `SessionTTLMax`).
pub const SESSION_TTL_MIN_NS: i64 = 10_000_000_000;
pub const SESSION_TTL_MAX_NS: i64 = 86_400_000_000_000;
/// Consul's `structs.SerfCheckID`.
pub const SERF_CHECK_ID: &str = "serfHealth";

/// Answers a forwarded `/v1/session/<rest>` write.
pub async fn handle<T: SyncTarget>(env: &HttpEnv<'_, T>, method: &str, rest: &str, body: &[u8]) -> HttpAnswer {
    let known = rest == "create" || rest.starts_with("destroy/") || rest.starts_with("renew/");
    if !known {
        return answer::not_found();
    }
    if method != "PUT" {
        return method_not_allowed(method, PUT_ONLY);
    }
    if rest == "create" {
        return create(env, body).await;
    }
    if let Some(id) = rest.strip_prefix("destroy/") {
        if id.is_empty() {
            return text(400, "Missing session");
        }
        return destroy(env, id).await;
    }
    match rest.strip_prefix("renew/") {
        Some("") => text(400, "Missing session"),
        Some(id) => renew(env, id).await,
        None => answer::not_found(),
    }
}

async fn create<T: SyncTarget>(env: &HttpEnv<'_, T>, body: &[u8]) -> HttpAnswer {
    let mut session = match decode(body, &env.agent.node_name) {
        Ok(s) => s,
        Err(r) => return text(r.status, r.message),
    };
    let state = env.target.replica();
    let Some(id) = fresh_uuid(|id| state.sessions.get(id).is_some()) else {
        return text(500, "UUID generation for session failed: every attempt collided");
    };
    session.id = id.clone();
    match write(env, Command::SessionCreate(session)).await {
        Ok((index, _)) => {
            let mut a = answer::json(200, &json!({ "ID": id }), false);
            a.wait_index = index;
            a
        }
        Err(a) => a,
    }
}

async fn destroy<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str) -> HttpAnswer {
    match write(env, Command::SessionDestroy { id: id.to_string() }).await {
        Ok((index, _)) => {
            let mut a = answer::json(200, &Value::Bool(true), false);
            a.wait_index = index;
            a
        }
        Err(a) => a,
    }
}

async fn renew<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str) -> HttpAnswer {
    let index = match write(env, Command::SessionRenew { id: id.to_string() }).await {
        Ok((index, CommandResult::Bool(true))) => index,
        Ok(_) => return text(404, format!("Session id '{id}' not found")),
        Err(a) => return a,
    };
    // The write was applied here before it was answered: the replica has it.
    let state = env.target.replica();
    let Some(session) = state.sessions.get(id) else {
        // Invalidated between the renew and this read.
        return text(404, format!("Session id '{id}' not found"));
    };
    // Pretty under `-dev`, as the data plane renders the session reads.
    let mut a = render_sessions(&[session.as_ref()], env.agent.pretty_json);
    a.wait_index = index;
    a
}

/// `200` with `sessions` as a JSON array, in the data plane's shape
/// (indented when `pretty`).
pub fn render_sessions(sessions: &[&Session], pretty: bool) -> HttpAnswer {
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_array();
    for s in sessions {
        write_session(&mut w, s);
    }
    w.end_array();
    w.finish();
    HttpAnswer {
        status: 200,
        content_type: answer::APPLICATION_JSON.into(),
        body,
        ..HttpAnswer::default()
    }
}

/// Proposes `command`; `Err` is the answer to give (a state-machine
/// refusal is a `500` with its text, as Consul's RPC errors are).
async fn write<T: SyncTarget>(env: &HttpEnv<'_, T>, command: Command) -> Result<(u64, CommandResult), HttpAnswer> {
    if let Err(e) = validate(&command) {
        return Err(text(e.status, e.message));
    }
    match env.target.write(command).await {
        Ok((index, CommandResult::Failed(why))) => {
            let mut a = text(500, why);
            a.wait_index = index;
            Err(a)
        }
        Ok(answer) => Ok(answer),
        Err(e) => Err(text(e.status, e.message)),
    }
}

/// Decodes and checks a create body (its ID left empty). `node_name` is
/// this agent's node, the default `Node`.
pub fn decode(body: &[u8], node_name: &str) -> Result<Session, Rejection> {
    if body.len() > SESSION_BODY_BYTES_MAX {
        return Err(Rejection::body_too_large(body.len(), SESSION_BODY_BYTES_MAX));
    }
    let value = parse_body(body).map_err(Rejection::decode)?;
    let f = Fields::of(&value, "Session").map_err(Rejection::decode)?;
    let nulls = NullLists::of(&value);
    let (session, behavior) = decode_fields(&f, nulls, node_name).map_err(Rejection::decode)?;
    let server_error = |message| Rejection { status: 500, message };
    let Some(behavior) = SessionBehavior::parse(&behavior) else {
        return Err(server_error(format!("Invalid Behavior setting '{behavior}'")));
    };
    check_ttl(&session.ttl).map_err(server_error)?;
    Ok(Session { behavior, ..session })
}

/// The session as decoded (behavior left at its default) and the text of
/// its `Behavior`.
fn decode_fields(f: &Fields<'_>, nulls: NullLists, node_name: &str) -> Result<(Session, String), DecodeError> {
    let lock_delay_ns = lock_delay_ns(f)?;
    let behavior = f.string(&["Behavior"])?;
    let mut node = f.string(&["Node"])?;
    if node.is_empty() {
        node = node_name.to_string();
    }
    let service_checks = f
        .objects(&["ServiceChecks"], "ServiceCheck")?
        .iter()
        .map(|c| {
            Ok(SessionServiceCheck {
                id: c.string(&["ID"])?,
                namespace: c.string(&["Namespace"])?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let given_checks = given_list(f, "Checks", nulls.checks)?;
    let given_node_checks = given_list(f, "NodeChecks", nulls.node_checks)?;
    let node_checks = fix_up_checks(given_checks, given_node_checks);
    let session = Session {
        id: String::new(),
        name: f.string(&["Name"])?,
        node,
        lock_delay_ns,
        behavior: SessionBehavior::default(),
        ttl: f.string(&["TTL"])?,
        node_checks,
        service_checks,
        create_index: 0,
        modify_index: 0,
    };
    Ok((session, behavior))
}

/// Which of the create body's check lists are written as JSON `null`.
#[derive(Debug, Clone, Copy, Default)]
struct NullLists {
    checks: bool,
    node_checks: bool,
}

impl NullLists {
    /// Go's decoder matches field names without case; `null` sets a
    /// slice to nil, replacing the agent's `["serfHealth"]` default.
    fn of(body: &Value) -> NullLists {
        let mut nulls = NullLists::default();
        let Some(object) = body.as_object() else {
            return nulls;
        };
        for (key, value) in object {
            if value.is_null() {
                nulls.checks |= key.eq_ignore_ascii_case("Checks");
                nulls.node_checks |= key.eq_ignore_ascii_case("NodeChecks");
            }
        }
        nulls
    }
}

/// A check list as Consul's agent sees it after decoding: `None` when
/// absent (the default stays), empty when written `null` (Go's nil slice,
/// which `fixupEmptySessionChecks` treats as `[]`), else its IDs.
fn given_list(f: &Fields<'_>, name: &str, written_null: bool) -> Result<Option<Vec<String>>, DecodeError> {
    match f.get(&[name]) {
        Some(_) => f.strings(&[name]).map(Some),
        None if written_null => Ok(Some(Vec::new())),
        None => Ok(None),
    }
}

/// `LockDelay`: absent = 15 s; a string is a Go duration, a number is
/// nanoseconds; either below 1000 ns counts as seconds (Consul's
/// `FixupLockDelay`). Negative values count as 0.
fn lock_delay_ns(f: &Fields<'_>) -> Result<u64, DecodeError> {
    let raw: i64 = match f.get(&["LockDelay"]) {
        None => return Ok(DEFAULT_LOCK_DELAY_NS),
        Some(Value::String(s)) => proconsul_dataplane::api::duration::parse_go_duration_ns(s)
            .map_err(|_| DecodeError(format!("time: invalid duration \"{s}\"")))?,
        Some(Value::Number(n)) => match n.as_i64().or_else(|| n.as_f64().map(|x| x as i64)) {
            Some(ns) => ns,
            None => {
                return Err(DecodeError(format!(
                    "json: cannot unmarshal number {n} into Go struct field .LockDelay of type time.Duration"
                )))
            }
        },
        Some(other) => {
            return Err(DecodeError(format!(
                "json: cannot unmarshal {} into Go struct field .LockDelay of type time.Duration",
                match other {
                    Value::Bool(_) => "bool",
                    Value::Array(_) => "array",
                    _ => "object",
                }
            )))
        }
    };
    let ns = if raw < LOCK_DELAY_SECONDS_BELOW {
        raw.saturating_mul(1_000_000_000)
    } else {
        raw
    };
    Ok(ns.max(0) as u64)
}

/// Consul's agent sets both `Checks` and `NodeChecks` to `["serfHealth"]`
/// before decoding, then (`fixupEmptySessionChecks`): an empty `Checks`
/// empties `NodeChecks`; a `Checks` left at the default is dropped; an
/// empty `NodeChecks` drops `Checks`. What remains of both is the node
/// checks (in that order, without repeats).
pub fn fix_up_checks(checks: Option<Vec<String>>, node_checks: Option<Vec<String>>) -> Vec<String> {
    let default = || vec![SERF_CHECK_ID.to_string()];
    let mut checks = checks.unwrap_or_else(default);
    let mut node_checks = node_checks.unwrap_or_else(default);
    if checks.is_empty() {
        node_checks.clear();
    } else if (checks.len() == 1 && checks[0] == SERF_CHECK_ID) || node_checks.is_empty() {
        checks.clear();
    }
    let mut merged: Vec<String> = Vec::with_capacity(node_checks.len() + checks.len());
    for id in node_checks.into_iter().chain(checks) {
        if !merged.contains(&id) {
            merged.push(id);
        }
    }
    merged
}

/// Consul's server-side check of a new session's TTL (`Session.Apply`),
/// with its texts: empty or zero (no TTL), else 10 s to 24 h.
fn check_ttl(ttl: &str) -> Result<(), String> {
    if ttl.is_empty() {
        return Ok(());
    }
    let ttl_ns = proconsul_dataplane::api::duration::parse_go_duration_ns(ttl)
        .map_err(|_| format!("Session TTL '{ttl}' invalid: time: invalid duration \"{ttl}\""))?;
    if ttl_ns != 0 && !(SESSION_TTL_MIN_NS..=SESSION_TTL_MAX_NS).contains(&ttl_ns) {
        return Err(format!("Invalid Session TTL '{ttl_ns}', must be between [10s=24h0m0s]"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
