//! Prepared query writes (HTTP.md §10): `POST /v1/query` (a new UUID),
//! `PUT /v1/query/<id>` (full replace) and `DELETE /v1/query/<id>`. The
//! data plane serves the reads and forwards these whole.
//!
//! The body is decoded the way Consul's decoder does (field names in any
//! case), checked with Consul's texts (`Invalid prepared query: ...`,
//! `failed compiling template: ...`, all `500` as Consul's RPC errors
//! are), and proposed as a [`Command`]; the name rules (unique, never an
//! ID) and existence are the state machine's, so every replica agrees.

use proconsul_shared::command::CommandResult;
use proconsul_shared::ipc::messages::HttpAnswer;
use proconsul_shared::state::{
    uuid_halves, FailoverTarget, PreparedQuery, QueryFailover, QueryTemplate, ServiceQuery, PREPARED_QUERY_BYTES_MAX,
};
use proconsul_shared::Command;
use serde_json::json;

use super::answer::{self, method_not_allowed, text};
use super::check_def::Rejection;
use super::fields::{parse_body, DecodeError, Fields};
use super::fresh_id::fresh_uuid;
use super::HttpEnv;
use crate::agent::local::SyncTarget;
use crate::rpc::validate::validate;

/// `Allow` of `/v1/query` (reads are the data plane's).
const COLLECTION_METHODS: &str = "OPTIONS,GET,POST";
/// `Allow` of `/v1/query/<id>`.
const SPECIFIC_METHODS: &str = "OPTIONS,GET,PUT,DELETE";
/// Most `NodeMeta` pairs (Consul's `metaMaxKeyPairs`).
const NODE_META_PAIRS_MAX: usize = 64;

/// Answers a forwarded `/v1/query` or `/v1/query/<id>` write.
pub async fn handle<T: SyncTarget>(env: &HttpEnv<'_, T>, method: &str, rest: Option<&str>, body: &[u8]) -> HttpAnswer {
    match (rest, method) {
        (None, "POST") => create(env, body).await,
        (None, _) => method_not_allowed(method, COLLECTION_METHODS),
        (Some(id), "PUT") => update(env, id, body).await,
        (Some(id), "DELETE") => delete(env, id).await,
        (Some(_), _) => method_not_allowed(method, SPECIFIC_METHODS),
    }
}

async fn create<T: SyncTarget>(env: &HttpEnv<'_, T>, body: &[u8]) -> HttpAnswer {
    let mut query = match decode(body) {
        Ok(q) => q,
        Err(r) => return text(r.status, r.message),
    };
    if !query.id.is_empty() {
        return text(500, "ID must be empty when creating a new prepared query");
    }
    let state = env.target.replica();
    let Some(id) = fresh_uuid(|id| state.prepared_queries.get(id).is_some()) else {
        return text(500, "UUID generation for prepared query failed: every attempt collided");
    };
    query.id = id.clone();
    if let Err(message) = check(&query) {
        return text(500, message);
    }
    match write(env, Command::PreparedQueryCreate(query)).await {
        Ok(index) => {
            let mut a = answer::json(200, &json!({ "ID": id }), false);
            a.wait_index = index;
            a
        }
        Err(a) => a,
    }
}

async fn update<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str, body: &[u8]) -> HttpAnswer {
    let mut query = match decode(body) {
        Ok(q) => q,
        Err(r) => return text(r.status, r.message),
    };
    if uuid_halves(id).is_none() {
        return non_existent(id);
    }
    query.id = id.to_string();
    if let Err(message) = check(&query) {
        return text(500, message);
    }
    done(write(env, Command::PreparedQueryUpdate(query)).await)
}

async fn delete<T: SyncTarget>(env: &HttpEnv<'_, T>, id: &str) -> HttpAnswer {
    if uuid_halves(id).is_none() {
        return non_existent(id);
    }
    done(write(env, Command::PreparedQueryDelete { id: id.to_string() }).await)
}

fn non_existent(id: &str) -> HttpAnswer {
    text(500, format!("Cannot modify non-existent prepared query: '{id}'"))
}

/// `200` with an empty body once the write is applied.
fn done(written: Result<u64, HttpAnswer>) -> HttpAnswer {
    match written {
        Ok(index) => {
            let mut a = answer::empty_ok();
            a.wait_index = index;
            a
        }
        Err(a) => a,
    }
}

/// Proposes `command`; `Ok` is its raft index, `Err` the answer to give.
async fn write<T: SyncTarget>(env: &HttpEnv<'_, T>, command: Command) -> Result<u64, HttpAnswer> {
    if let Err(e) = validate(&command) {
        return Err(text(e.status, e.message));
    }
    match env.target.write(command).await {
        Ok((index, CommandResult::Failed(why))) => {
            let mut a = text(500, why);
            a.wait_index = index;
            Err(a)
        }
        Ok((index, _)) => Ok(index),
        Err(e) => Err(text(e.status, e.message)),
    }
}

/// Consul's checks before a query is stored (`parseQuery`, then the
/// template compile of its state store), with Consul's texts.
pub fn check(query: &PreparedQuery) -> Result<(), String> {
    let invalid = |why: String| Err(format!("Invalid prepared query: {why}"));
    let s = &query.service;
    if s.service.is_empty() {
        return invalid("Must provide a Service name to query".into());
    }
    if s.failover.nearest_n < 0 {
        return invalid(format!("Bad NearestN '{}', must be >= 0", s.failover.nearest_n));
    }
    if s.node_meta.len() > NODE_META_PAIRS_MAX {
        return invalid(format!(
            "Node metadata cannot contain more than {NODE_META_PAIRS_MAX} key/value pairs"
        ));
    }
    if s.node_meta.keys().any(String::is_empty) {
        return invalid("Key cannot be blank".into());
    }
    if !query.dns_ttl.is_empty() {
        match proconsul_dataplane::api::duration::parse_go_duration_ns(&query.dns_ttl) {
            Err(_) => {
                return invalid(format!(
                    "Bad DNS TTL '{}': time: invalid duration \"{}\"",
                    query.dns_ttl, query.dns_ttl
                ))
            }
            Ok(ns) if ns < 0 => return invalid(format!("DNS TTL '{ns}', must be >=0")),
            Ok(_) => {}
        }
    }
    proconsul_dataplane::query_exec::template::check(query).map_err(|e| format!("failed compiling template: {e}"))
}

/// Decodes a `PreparedQuery` body, within [`PREPARED_QUERY_BYTES_MAX`].
pub fn decode(body: &[u8]) -> Result<PreparedQuery, Rejection> {
    if body.len() > PREPARED_QUERY_BYTES_MAX {
        return Err(Rejection::body_too_large(body.len(), PREPARED_QUERY_BYTES_MAX));
    }
    let value = parse_body(body).map_err(Rejection::decode)?;
    let f = Fields::of(&value, "PreparedQuery").map_err(Rejection::decode)?;
    decode_query(&f).map_err(Rejection::decode)
}

fn decode_query(f: &Fields<'_>) -> Result<PreparedQuery, DecodeError> {
    let template = match f.object(&["Template"], "QueryTemplateOptions")? {
        Some(t) => QueryTemplate {
            template_type: t.string(&["Type"])?,
            regexp: t.string(&["Regexp"])?,
            remove_empty_tags: t.bool(&["RemoveEmptyTags"])?,
        },
        None => QueryTemplate::default(),
    };
    let service = match f.object(&["Service"], "ServiceQuery")? {
        Some(s) => decode_service(&s)?,
        None => ServiceQuery::default(),
    };
    let dns_ttl = match f.object(&["DNS"], "QueryDNSOptions")? {
        Some(d) => d.string(&["TTL"])?,
        None => String::new(),
    };
    Ok(PreparedQuery {
        id: f.string(&["ID"])?,
        name: f.string(&["Name"])?,
        session: f.string(&["Session"])?,
        token: f.string(&["Token"])?,
        template,
        service,
        dns_ttl,
        create_index: 0,
        modify_index: 0,
    })
}

fn decode_service(s: &Fields<'_>) -> Result<ServiceQuery, DecodeError> {
    let failover = match s.object(&["Failover"], "QueryFailoverOptions")? {
        Some(fo) => QueryFailover {
            nearest_n: fo.int(&["NearestN"], i64::MIN, i64::MAX, "int")?.unwrap_or(0),
            datacenters: fo.strings(&["Datacenters"])?,
            targets: fo
                .objects(&["Targets"], "QueryFailoverTarget")?
                .iter()
                .map(|t| {
                    Ok(FailoverTarget {
                        peer: t.string(&["Peer", "PeerName"])?,
                        datacenter: t.string(&["Datacenter"])?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        },
        None => QueryFailover::default(),
    };
    let connect = match s.object(&["Connect"], "QueryConnect")? {
        Some(c) => c.bool(&["Enabled"])?,
        None => false,
    };
    Ok(ServiceQuery {
        service: s.string(&["Service"])?,
        failover,
        ignore_check_ids: s.strings(&["IgnoreCheckIDs"])?,
        only_passing: s.bool(&["OnlyPassing"])?,
        near: s.string(&["Near"])?,
        tags: s.strings(&["Tags"])?,
        node_meta: s.string_map(&["NodeMeta"])?,
        service_meta: s.string_map(&["ServiceMeta"])?,
        connect,
        peer: s.string(&["Peer"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(body: &str) -> PreparedQuery {
        decode(body.as_bytes()).unwrap_or_else(|r| panic!("{}: {}", r.status, r.message))
    }

    #[test]
    fn a_body_over_the_limit_is_413_in_consuls_words() {
        let body = vec![b' '; PREPARED_QUERY_BYTES_MAX + 1];
        let r = decode(&body).expect_err("over the limit");
        assert_eq!(r.status, 413);
        assert_eq!(
            r.message,
            format!(
                "Request body({} bytes) too large, max size: {PREPARED_QUERY_BYTES_MAX} bytes",
                PREPARED_QUERY_BYTES_MAX + 1
            )
        );
    }

    #[test]
    fn decodes_every_field_in_any_case() {
        let q = decoded(
            r#"{"name":"web-q","Token":"t","template":{"type":"name_prefix_match","regexp":"^(.*)$","RemoveEmptyTags":true},
               "Service":{"service":"web","Failover":{"NearestN":2,"Datacenters":["dc2"],"Targets":[{"Peer":"p","Datacenter":"dc3"}]},
               "IgnoreCheckIDs":["c1"],"OnlyPassing":true,"Near":"_agent","Tags":["a","!b"],
               "NodeMeta":{"Rack":"r1"},"ServiceMeta":{"v":"1"},"Connect":{"Enabled":true},"Peer":"x"},
               "DNS":{"TTL":"10s"}}"#,
        );
        assert_eq!(q.name, "web-q");
        assert_eq!(q.token, "t");
        assert_eq!(q.template.template_type, "name_prefix_match");
        assert!(q.template.remove_empty_tags);
        let s = &q.service;
        assert_eq!((s.service.as_str(), s.failover.nearest_n), ("web", 2));
        assert_eq!(s.failover.targets[0].datacenter, "dc3");
        assert_eq!(s.tags, ["a", "!b"]);
        assert_eq!(s.node_meta["Rack"], "r1", "user map keys keep their case");
        assert!(s.only_passing && s.connect);
        assert_eq!(q.dns_ttl, "10s");
    }

    #[test]
    fn bad_bodies_are_refused_with_decode_errors_and_the_size_bound() {
        let r = decode(b"{").unwrap_err();
        assert_eq!(r.status, 400);
        assert!(r.message.starts_with("Request decode failed: "), "{}", r.message);
        let r = decode(br#"{"Service":{"Tags":"a"}}"#).unwrap_err();
        assert!(r.message.contains("cannot unmarshal string"), "{}", r.message);
        let big = format!(r#"{{"Name":"{}"}}"#, "x".repeat(PREPARED_QUERY_BYTES_MAX));
        assert_eq!(decode(big.as_bytes()).unwrap_err().status, 413);
    }

    #[test]
    fn check_uses_consuls_texts() {
        let mut q = decoded(r#"{"Service":{"Service":"web"}}"#);
        assert_eq!(check(&q), Ok(()));
        q.service.service.clear();
        assert_eq!(
            check(&q),
            Err("Invalid prepared query: Must provide a Service name to query".into())
        );
        let q = decoded(r#"{"Service":{"Service":"web","Failover":{"NearestN":-1}}}"#);
        assert_eq!(
            check(&q),
            Err("Invalid prepared query: Bad NearestN '-1', must be >= 0".into())
        );
        let q = decoded(r#"{"Service":{"Service":"web"},"DNS":{"TTL":"soon"}}"#);
        assert_eq!(
            check(&q),
            Err("Invalid prepared query: Bad DNS TTL 'soon': time: invalid duration \"soon\"".into())
        );
        let q = decoded(r#"{"Service":{"Service":"web"},"DNS":{"TTL":"-1s"}}"#);
        assert_eq!(
            check(&q),
            Err("Invalid prepared query: DNS TTL '-1000000000', must be >=0".into())
        );
        let q = decoded(r#"{"Name":"x-","Template":{"Type":"bogus"},"Service":{"Service":"web"}}"#);
        assert_eq!(
            check(&q),
            Err("failed compiling template: Bad Template.Type 'bogus'".into())
        );
        let q = decoded(
            r#"{"Name":"x-","Template":{"Type":"name_prefix_match","Regexp":"("},"Service":{"Service":"web"}}"#,
        );
        assert!(check(&q)
            .unwrap_err()
            .starts_with("failed compiling template: Bad Regexp: "));
    }
}
