//! `PUT /v1/txn` (HTTP.md §11, SUMMARY item 15), KV operations only.
//!
//! The body is decoded like Go's `encoding/json` into `api.TxnOps` (keys
//! matched case-insensitively, `Value` base64). A transaction of only read
//! verbs is answered from the view; any write sends the whole transaction
//! through raft as one [`Command::Txn`].

use base64::Engine;
use proconsul_shared::ipc::messages::ControlOp;
use proconsul_shared::limits::{KV_VALUE_BYTES_MAX, TXN_OPS_MAX};
use proconsul_shared::txn::{evaluate_read_only, KvVerb, TxnError, TxnKvOp, TxnResult};
use proconsul_shared::Command;
use serde_json::{Map, Value};

use super::go_quote::go_quote;
use super::json::JsonWriter;
use super::kv::write_dir_entry;
use super::params::{check_datacenter, parse_query_options};
use super::response::Response;
use super::{ApiRequest, Forward, Outcome, ReplyKind};
use crate::core::{LeaderStatus, View};

/// Handles `PUT /v1/txn`.
pub fn handle(req: &ApiRequest<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let ops = match decode_ops(req.body) {
        Ok(ops) => ops,
        Err(refused) => return Outcome::Ready(refused),
    };
    let pretty = req.pretty(view.agent.pretty_json);
    if ops.iter().all(|op| op.verb.is_read()) {
        let opts = match parse_query_options(&req.query) {
            Ok(opts) => opts,
            Err(refused) => return Outcome::Ready(refused),
        };
        if let Err(refused) = opts.check_serving(&view.agent, leader) {
            return Outcome::Ready(refused);
        }
        let mut response = match evaluate_read_only(&view.state.kv, &ops) {
            Ok(results) => render_committed(&results, pretty),
            Err(errors) => render_rolled_back(&errors, pretty),
        };
        response.leader = Some(leader);
        return Outcome::Ready(response);
    }
    if let Err(refused) = check_datacenter(req.query.get("dc").filter(|dc| !dc.is_empty()), &view.agent) {
        return Outcome::Ready(refused);
    }
    Outcome::Forward(Forward {
        op: ControlOp::Write(Command::Txn { ops }),
        reply: ReplyKind::Txn { pretty },
    })
}

/// `200 {"Results":[{"KV":DirEntry}...],"Errors":null}`.
pub fn render_committed(results: &[TxnResult], pretty: bool) -> Response {
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_object();
    w.key("Results");
    w.begin_array();
    for result in results {
        w.begin_object();
        w.key("KV");
        write_dir_entry(&mut w, &result.entry, result.with_value);
        w.end_object();
    }
    w.end_array();
    w.key("Errors");
    w.null();
    w.end_object();
    w.finish();
    Response::json(200, body)
}

/// `409 {"Results":null,"Errors":[{"OpIndex":n,"What":"..."}...]}`.
pub fn render_rolled_back(errors: &[TxnError], pretty: bool) -> Response {
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_object();
    w.key("Results");
    w.null();
    w.key("Errors");
    w.begin_array();
    for error in errors {
        w.begin_object();
        w.key("OpIndex");
        w.u64(error.op_index as u64);
        w.key("What");
        w.string(&error.what);
        w.end_object();
    }
    w.end_array();
    w.end_object();
    w.finish();
    Response::json(409, body)
}

/// Decodes and validates the operations, with Consul's answers for what
/// it refuses.
pub fn decode_ops(body: &[u8]) -> Result<Vec<TxnKvOp>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(parse_failure("EOF"));
    }
    let document: Value = serde_json::from_slice(body).map_err(|e| parse_failure(&e.to_string()))?;
    let raw_ops = match document {
        Value::Array(ops) => ops,
        Value::Null => Vec::new(),
        other => return Err(type_mismatch(&other, "api.TxnOps")),
    };
    if raw_ops.len() > TXN_OPS_MAX {
        return Err(Response::text(
            413,
            format!(
                "Transaction contains too many operations ({} > {TXN_OPS_MAX})",
                raw_ops.len()
            ),
        ));
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (position, raw) in raw_ops.iter().enumerate() {
        let fields = match raw {
            Value::Object(fields) => fields,
            Value::Null => continue,
            other => return Err(type_mismatch(other, "api.TxnOp")),
        };
        for kind in ["Node", "Service", "Check"] {
            if field(fields, kind).is_some_and(|v| !v.is_null()) {
                return Err(parse_failure(&format!(
                    "{kind} operations are not supported yet (operation {position}); only KV operations are"
                )));
            }
        }
        match field(fields, "KV") {
            None | Some(Value::Null) => continue,
            Some(Value::Object(kv)) => ops.push(decode_kv_op(kv, position)?),
            Some(other) => return Err(type_mismatch(other, "api.KVTxnOp")),
        }
    }
    Ok(ops)
}

fn decode_kv_op(kv: &Map<String, Value>, position: usize) -> Result<TxnKvOp, Response> {
    let verb_name = string_field(kv, "Verb")?;
    let key = string_field(kv, "Key")?;
    let session = string_field(kv, "Session")?;
    let flags = uint_field(kv, "Flags")?;
    let index = uint_field(kv, "Index")?;
    let value = match field(kv, "Value") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| parse_failure(&format!("illegal base64 data in KV.Value: {e}")))?,
        Some(other) => return Err(type_mismatch(other, "[]uint8")),
    };
    if value.len() > KV_VALUE_BYTES_MAX {
        return Err(Response::text(
            413,
            format!(
                "Value for key {} is too large ({} > {KV_VALUE_BYTES_MAX} bytes)",
                go_quote(&key),
                value.len()
            ),
        ));
    }
    let Some(verb) = KvVerb::parse(&verb_name) else {
        return Err(parse_failure(&format!(
            "unknown KV verb {} (operation {position})",
            go_quote(&verb_name)
        )));
    };
    Ok(TxnKvOp {
        verb,
        key,
        value,
        flags,
        index,
        session: (!session.is_empty()).then_some(session),
    })
}

/// Go's field matching: the exact name, else a case-insensitive match.
fn field<'v>(fields: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Result<String, Response> {
    match field(fields, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_mismatch(other, &format!("KVTxnOp.KV.{name} of type string"))),
    }
}

fn uint_field(fields: &Map<String, Value>, name: &str) -> Result<u64, Response> {
    match field(fields, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            parse_failure(&format!(
                "json: cannot unmarshal number {n} into Go struct field KVTxnOp.KV.{name} of type uint64"
            ))
        }),
        Some(other) => Err(type_mismatch(other, &format!("KVTxnOp.KV.{name} of type uint64"))),
    }
}

fn type_mismatch(value: &Value, target: &str) -> Response {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    parse_failure(&format!("json: cannot unmarshal {kind} into Go value of type {target}"))
}

/// Consul's `400 Failed to parse body: <err>`.
fn parse_failure(detail: &str) -> Response {
    Response::text(400, format!("Failed to parse body: {detail}"))
}

#[cfg(test)]
mod tests;
