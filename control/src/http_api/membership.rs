//! Gossip membership over HTTP: `GET /v1/agent/members[?wan]` rows,
//! `PUT /v1/agent/join/<address>[?wan]`,
//! `PUT /v1/agent/force-leave/<node>[?prune][&wan]`, and
//! `GET /v1/catalog/datacenters` (from the WAN pool). `wan` is on when
//! present with a non-empty value, as Consul reads it.

use proconsul_shared::ipc::messages::HttpAnswer;
use serde_json::{json, Map, Value};

use super::answer::{empty_ok, json as json_answer, query_param, text};
use super::HttpEnv;
use crate::agent::local::SyncTarget;
use crate::agent::wan::known_datacenters;
use crate::gossip::{Gossip, Member};

/// Consul's answer to `join?wan` on a client agent.
pub const JOIN_WAN_NOT_SERVER: &str = "Must be a server to join WAN cluster";
/// Consul's answer to `force-leave?wan` on a client agent.
pub const FORCE_LEAVE_WAN_NOT_SERVER: &str = "Must be a server to force-leave a node from the WAN cluster";
/// Consul's answer to `members?wan` with a specific segment.
pub const WAN_SEGMENT_REFUSED: &str = "Cannot provide a segment with wan=true";

/// Whether the query asks for the WAN pool (`wan` with any non-empty value).
pub fn wants_wan(query: &str) -> bool {
    query_param(query, "wan").is_some_and(|v| !v.is_empty())
}

fn pretty<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> bool {
    env.agent.pretty_json || query_param(query, "pretty").is_some()
}

/// The pool a `wan` request addresses: `Err` with Consul's text on a client.
fn wan_pool<'e, T: SyncTarget>(env: &HttpEnv<'e, T>, not_server: &str) -> Result<&'e Gossip, HttpAnswer> {
    match env.wan_gossip {
        Some(w) => Ok(w),
        None if !env.agent.server => Err(text(500, not_server)),
        None => Err(text(
            500,
            "WAN gossip is not running on this server (ports.serf_wan = -1)",
        )),
    }
}

/// `GET /v1/agent/members`: the LAN pool, or with `?wan` the WAN pool
/// (`null` on a client agent, as Consul encodes its nil list).
pub fn members<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    if !wants_wan(query) {
        return super::agent::members(env, query);
    }
    if query_param(query, "segment").is_some_and(|s| !s.is_empty() && s != "_all") {
        return text(400, WAN_SEGMENT_REFUSED);
    }
    let list = match env.wan_gossip {
        Some(w) => Value::Array(w.members().iter().map(member_json).collect()),
        None if env.agent.server => Value::Array(Vec::new()),
        None => Value::Null,
    };
    json_answer(200, &list, pretty(env, query))
}

/// `GET /v1/catalog/datacenters`: our datacenter first, then every other
/// one the WAN pool knows, by name.
pub fn datacenters<T: SyncTarget>(env: &HttpEnv<'_, T>, query: &str) -> HttpAnswer {
    let wan = env.wan_gossip.map(Gossip::members).unwrap_or_default();
    let list = known_datacenters(&wan, &env.agent.datacenter);
    json_answer(200, &json!(list), pretty(env, query))
}

/// One gossip member in Consul's `Member` shape.
pub fn member_json(m: &Member) -> Value {
    let tags: Map<String, Value> = m.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "Name": m.name,
        "Addr": m.addr.to_string(),
        "Port": m.port,
        "Tags": tags,
        "Status": m.status.code(),
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

fn no_gossip() -> HttpAnswer {
    text(500, "gossip is not running on this agent")
}

/// `PUT /v1/agent/join/<address>[?wan]`: 200 once one push-pull succeeded, else
/// 500 with the reason (Consul's multi-error text).
pub async fn join<T: SyncTarget>(env: &HttpEnv<'_, T>, addr: &str, query: &str) -> HttpAnswer {
    let pool = if wants_wan(query) {
        wan_pool(env, JOIN_WAN_NOT_SERVER)
    } else {
        env.gossip.ok_or_else(no_gossip)
    };
    let gossip = match pool {
        Ok(g) => g,
        Err(answer) => return answer,
    };
    match gossip.join(&[addr.to_string()]).await {
        Ok(n) if n > 0 => empty_ok(),
        Ok(_) => text(500, format!("Failed to join {addr}")),
        Err(e) => text(500, e),
    }
}

/// `PUT /v1/agent/force-leave/<node>[?prune][&wan]`: a failed member becomes left
/// (with `prune`, forgotten at once).
pub fn force_leave<T: SyncTarget>(env: &HttpEnv<'_, T>, node: &str, query: &str) -> HttpAnswer {
    let pool = if wants_wan(query) {
        wan_pool(env, FORCE_LEAVE_WAN_NOT_SERVER)
    } else {
        env.gossip.ok_or_else(no_gossip)
    };
    let gossip = match pool {
        Ok(g) => g,
        Err(answer) => return answer,
    };
    let prune = query_param(query, "prune").is_some();
    match gossip.force_leave(node, prune) {
        Ok(()) => empty_ok(),
        Err(e) => text(500, e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::gossip::MemberStatus;

    #[test]
    fn a_member_renders_in_consuls_shape_with_its_status_code() {
        let m = Member {
            name: "c1".into(),
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
            port: 8301,
            tags: BTreeMap::from([("role".to_string(), "node".to_string())]),
            status: MemberStatus::Failed,
        };
        let v = member_json(&m);
        assert_eq!(v["Name"], "c1");
        assert_eq!(v["Addr"], "127.0.0.9");
        assert_eq!(v["Port"], 8301);
        assert_eq!(v["Status"], 4);
        assert_eq!(v["Tags"]["role"], "node");
        assert_eq!(v["DelegateCur"], 4);
    }

    #[test]
    fn wan_is_on_only_with_a_non_empty_value() {
        assert!(wants_wan("wan=1"));
        assert!(wants_wan("segment=_all&wan=true"));
        assert!(wants_wan("wan=false"), "Consul only checks for a value");
        assert!(!wants_wan("wan="));
        assert!(!wants_wan("wan"));
        assert!(!wants_wan("segment=_all"));
    }
}
