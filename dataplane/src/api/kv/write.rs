//! `PUT` and `DELETE /v1/kv/<key>`: validated here, applied by the control
//! plane (forwarded as a [`Command`]).

use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::Command;

use crate::api::json::JsonWriter;
use crate::api::params::{parse_go_uint, QueryOptions};
use crate::api::response::Response;
use crate::api::{ApiRequest, Forward, Outcome, ReplyKind};
use crate::core::{LeaderStatus, View};

/// `PUT /v1/kv/<key>[?flags=][&cas=|&acquire=|&release=]`, body = value.
pub fn put(req: &ApiRequest<'_>, key: &str, opts: &QueryOptions<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    if key.is_empty() {
        return Outcome::Ready(Response::text(400, "Missing key name"));
    }
    if let Some(conflict) = conflicting_flags(req, &["cas", "acquire", "release"]) {
        return Outcome::Ready(conflict);
    }
    let flags = match req.query.get("flags") {
        Some(raw) => match parse_go_uint(raw) {
            Ok(flags) => flags,
            Err(message) => return Outcome::Ready(Response::text(500, message)),
        },
        None => 0,
    };
    let cas = match req.query.get("cas") {
        Some(raw) => match parse_go_uint(raw) {
            Ok(index) => Some(index),
            Err(message) => return Outcome::Ready(Response::text(500, message)),
        },
        None => None,
    };
    if let Err(refused) = opts.check_serving(&view.agent, leader) {
        return Outcome::Ready(refused);
    }
    let pretty = req.pretty(view.agent.pretty_json);
    // `?acquire=` / `?release=`: the state machine decides (an unknown
    // session fails with Consul's `invalid session "<id>"`, a key held by
    // another session answers `false`); the leader answers `false` without
    // a raft round while the key is under lock-delay.
    let lock = |session: &str| (!session.is_empty()).then(|| session.to_string());
    let lock_command = if let Some(session) = req.query.get("acquire") {
        let Some(session) = lock(session) else {
            return Outcome::Ready(missing_session());
        };
        Some(Command::KvLock {
            key: key.to_string(),
            value: req.body.to_vec(),
            flags,
            session,
        })
    } else if let Some(session) = req.query.get("release") {
        let Some(session) = lock(session) else {
            return Outcome::Ready(missing_session());
        };
        Some(Command::KvUnlock {
            key: key.to_string(),
            value: req.body.to_vec(),
            flags,
            session,
        })
    } else {
        None
    };
    if let Some(command) = lock_command {
        return Outcome::Forward(Forward {
            op: ControlOp::Write(command),
            reply: ReplyKind::Bool { pretty },
        });
    }
    let key = key.to_string();
    let value = req.body.to_vec();
    let command = match cas {
        Some(index) => Command::KvCas {
            key,
            value,
            flags,
            index,
        },
        None => Command::KvSet { key, value, flags },
    };
    Outcome::Forward(Forward {
        op: ControlOp::Write(command),
        reply: ReplyKind::Bool { pretty },
    })
}

/// `DELETE /v1/kv/<key>[?recurse|?cas=]`.
pub fn delete(req: &ApiRequest<'_>, key: &str, opts: &QueryOptions<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    if let Some(conflict) = conflicting_flags(req, &["recurse", "cas"]) {
        return Outcome::Ready(conflict);
    }
    let recurse = req.query.has("recurse");
    if !recurse && key.is_empty() {
        return Outcome::Ready(Response::text(400, "Missing key name"));
    }
    let command = match req.query.get("cas") {
        Some(raw) => match parse_go_uint(raw) {
            Ok(index) => Command::KvDeleteCas {
                key: key.to_string(),
                index,
            },
            Err(message) => return Outcome::Ready(Response::text(500, message)),
        },
        None if recurse => Command::KvDeleteTree {
            prefix: key.to_string(),
        },
        None => Command::KvDelete { key: key.to_string() },
    };
    if let Err(refused) = opts.check_serving(&view.agent, leader) {
        return Outcome::Ready(refused);
    }
    Outcome::Forward(Forward {
        op: ControlOp::Write(command),
        reply: ReplyKind::Bool {
            pretty: req.pretty(view.agent.pretty_json),
        },
    })
}

/// Consul's `conflictingFlags`: two of `flags` present → `400` with the
/// re-encoded query and a newline.
fn conflicting_flags(req: &ApiRequest<'_>, flags: &[&str]) -> Option<Response> {
    let present = flags.iter().filter(|f| req.query.has(f)).count();
    (present > 1).then(|| Response::text(400, format!("Conflicting flags: {}\n", req.query.encode())))
}

/// What Consul's state store answers for a lock or unlock without a
/// session.
fn missing_session() -> Response {
    Response::text(500, "missing session")
}

/// `true` / `false` as Consul's KV writes answer.
pub fn bool_response(value: bool, pretty: bool) -> Response {
    let mut body = Vec::with_capacity(6);
    let mut w = JsonWriter::new(&mut body, pretty);
    w.bool(value);
    w.finish();
    Response::json(200, body)
}
