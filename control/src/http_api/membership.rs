//! Gossip membership over HTTP: `GET /v1/agent/members` rows,
//! `PUT /v1/agent/join/<address>`, `PUT /v1/agent/force-leave/<node>`.

use proconsul_shared::ipc::messages::HttpAnswer;
use serde_json::{json, Map, Value};

use super::answer::{empty_ok, query_param, text};
use super::HttpEnv;
use crate::agent::local::SyncTarget;
use crate::gossip::Member;

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

/// `PUT /v1/agent/join/<address>`: 200 once one push-pull succeeded, else
/// 500 with the reason (Consul's multi-error text).
pub async fn join<T: SyncTarget>(env: &HttpEnv<'_, T>, addr: &str) -> HttpAnswer {
    let Some(gossip) = env.gossip else {
        return no_gossip();
    };
    match gossip.join(&[addr.to_string()]).await {
        Ok(n) if n > 0 => empty_ok(),
        Ok(_) => text(500, format!("Failed to join {addr}")),
        Err(e) => text(500, e),
    }
}

/// `PUT /v1/agent/force-leave/<node>[?prune]`: a failed member becomes left
/// (with `prune`, forgotten at once).
pub fn force_leave<T: SyncTarget>(env: &HttpEnv<'_, T>, node: &str, query: &str) -> HttpAnswer {
    let Some(gossip) = env.gossip else {
        return no_gossip();
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
}
