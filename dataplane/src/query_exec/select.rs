//! Which instances a prepared query answers with, in which order: the one
//! selection both `GET /v1/query/<q>/execute` and `<q>.query.consul` use.
//! Pure (the shuffle draws from a caller-seeded [`Rng`]).
//!
//! Consul's rules: instances of `Service.Service` whose node exists; an
//! instance with a critical check is dropped, one with a warning check too
//! when `OnlyPassing` (checks named in `IgnoreCheckIDs` never count);
//! `NodeMeta` and `ServiceMeta` pairs must all match; every `Tags` entry
//! must be on the instance, a `!tag` entry must not (case-insensitive).
//! The survivors are shuffled; then, when a near node is known (`?near=`,
//! else `Service.Near`; `_agent` = this agent, `_ip` = the node with the
//! source address), that node's instance moves first if it is among the
//! first ten (Consul's order without network coordinates). `limit` trims.

use std::net::IpAddr;
use std::sync::Arc;

use proconsul_shared::state::{CheckStatus, Node, ServiceInstance, ServiceQuery};
use proconsul_shared::State;

use crate::dns::rng::Rng;

/// Instances considered per execution; more are ignored.
pub const EXECUTE_INSTANCES_MAX: usize = 100_000;
/// How deep Consul looks for the near node after sorting.
const NEAR_SEARCH_DEPTH: usize = 10;

/// Who executes the query.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source<'a> {
    /// `?near=` (empty = use the query's `Near`).
    pub near: &'a str,
    /// This agent's node name (for `_agent`).
    pub agent_node: &'a str,
    /// The client's IP (for `_ip`), when known.
    pub ip: Option<IpAddr>,
    /// Most instances returned (0 = all).
    pub limit: usize,
    /// `?connect`: answer with the service's Connect-capable instances
    /// (as `Connect.Enabled` does).
    pub connect: bool,
}

/// The instances `query` selects, in answer order.
pub fn select<'s>(
    state: &'s State,
    query: &ServiceQuery,
    source: &Source<'_>,
    rng: &mut Rng,
) -> Vec<&'s Arc<ServiceInstance>> {
    let mut out = matching(state, query, source.connect);
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    if let Some(near) = near_node(state, query, source) {
        let depth = out.len().min(NEAR_SEARCH_DEPTH);
        if let Some(pos) = out[..depth].iter().position(|i| i.node.eq_ignore_ascii_case(&near)) {
            out.swap(0, pos);
        }
    }
    if source.limit > 0 {
        out.truncate(source.limit);
    }
    out
}

/// The instances passing the query's filters, in catalog order (DNS
/// caches this set and shuffles it per answer).
///
/// With `connect` (or the query's `Connect.Enabled`) the candidates are the
/// service's Connect-capable instances (its proxies and native instances)
/// instead of the service's own.
pub fn matching<'s>(state: &'s State, query: &ServiceQuery, connect: bool) -> Vec<&'s Arc<ServiceInstance>> {
    let candidates = if connect || query.connect {
        state.catalog.connect_instances(&query.service)
    } else {
        state.catalog.instances(&query.service)
    };
    let Some(instances) = candidates else {
        return Vec::new();
    };
    instances
        .values()
        .take(EXECUTE_INSTANCES_MAX)
        .filter(|inst| keeps(state, query, inst))
        .collect()
}

/// An instance's health as the query judges it: the worst of its checks
/// (node checks included) except those named in `IgnoreCheckIDs`;
/// passing without any.
pub fn counted_status(state: &State, query: &ServiceQuery, inst: &ServiceInstance) -> CheckStatus {
    state
        .catalog
        .instance_checks(inst)
        .filter(|c| !query.ignore_check_ids.iter().any(|id| *id == c.check_id))
        .map(|c| c.status)
        .max()
        .unwrap_or(CheckStatus::Passing)
}

/// Whether one instance passes the query's health, meta and tag filters.
fn keeps(state: &State, query: &ServiceQuery, inst: &ServiceInstance) -> bool {
    let Some(node) = state.nodes.get(&inst.node) else {
        return false;
    };
    let healthy = match counted_status(state, query, inst) {
        CheckStatus::Passing => true,
        CheckStatus::Warning => !query.only_passing,
        CheckStatus::Critical => false,
    };
    healthy
        && query.node_meta.iter().all(|(k, v)| node.meta.get(k) == Some(v))
        && query.service_meta.iter().all(|(k, v)| inst.meta.get(k) == Some(v))
        && query.tags.iter().filter(|t| !t.is_empty()).all(|tag| {
            let (wanted, tag) = match tag.strip_prefix('!') {
                Some(excluded) => (false, excluded),
                None => (true, tag.as_str()),
            };
            inst.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) == wanted
        })
}

/// The node to put first, if any.
fn near_node(state: &State, query: &ServiceQuery, source: &Source<'_>) -> Option<String> {
    let near = if source.near.is_empty() {
        query.near.as_str()
    } else {
        source.near
    };
    match near {
        "" => None,
        "_agent" => Some(source.agent_node.to_string()).filter(|n| !n.is_empty()),
        // Consul: the node whose address is the client's, else no sort.
        "_ip" => {
            let ip = source.ip?;
            let at_ip = |n: &&Arc<Node>| n.address.parse::<IpAddr>().is_ok_and(|a| a == ip);
            state.nodes.iter().find(at_ip).map(|n| n.node.clone())
        }
        node => Some(node.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_exec::test_support::{catalog, check};

    fn query(service: &str) -> ServiceQuery {
        ServiceQuery {
            service: service.into(),
            ..ServiceQuery::default()
        }
    }

    fn nodes(selected: &[&Arc<ServiceInstance>]) -> Vec<String> {
        let mut names: Vec<String> = selected.iter().map(|i| i.node.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn critical_is_dropped_and_warning_only_with_only_passing() {
        let state = catalog(&[
            ("n1", &["v1"], CheckStatus::Passing),
            ("n2", &["v1"], CheckStatus::Warning),
            ("n3", &["v1"], CheckStatus::Critical),
        ]);
        let mut rng = Rng::new(7);
        let all = select(&state, &query("web"), &Source::default(), &mut rng);
        assert_eq!(nodes(&all), ["n1", "n2"]);
        let strict = ServiceQuery {
            only_passing: true,
            ..query("WEB")
        };
        assert_eq!(nodes(&select(&state, &strict, &Source::default(), &mut rng)), ["n1"]);
        let ignoring = ServiceQuery {
            ignore_check_ids: vec![check("n3")],
            ..query("web")
        };
        assert_eq!(
            nodes(&select(&state, &ignoring, &Source::default(), &mut rng)),
            ["n1", "n2", "n3"]
        );
        assert!(select(&state, &query("db"), &Source::default(), &mut rng).is_empty());
    }

    #[test]
    fn connect_selects_the_services_proxies() {
        use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
        use proconsul_shared::state::{ServiceProxy, KIND_CONNECT_PROXY};
        use proconsul_shared::test_fixtures::node_at;
        use proconsul_shared::Command;
        let mut state = catalog(&[("n1", &[], CheckStatus::Passing)]);
        let reg = CatalogRegistration {
            node: NodeRegistration {
                meta: [("rack".to_string(), "r-n1".to_string())].into(),
                ..node_at("n1", "10.0.0.1")
            },
            skip_node_update: true,
            service: Some(ServiceInstance {
                id: "web-proxy".into(),
                service: "web-sidecar-proxy".into(),
                kind: KIND_CONNECT_PROXY.into(),
                port: 21000,
                proxy: ServiceProxy {
                    destination_service_name: "web".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            checks: Vec::new(),
        };
        state.apply_command(50, &Command::CatalogRegister(reg));
        let ids = |v: Vec<&Arc<ServiceInstance>>| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(matching(&state, &query("web"), false)), ["web"]);
        assert_eq!(ids(matching(&state, &query("web"), true)), ["web-proxy"]);
        let enabled = ServiceQuery {
            connect: true,
            ..query("web")
        };
        assert_eq!(ids(matching(&state, &enabled, false)), ["web-proxy"]);
    }

    #[test]
    fn tags_require_and_exclude_case_insensitively() {
        let state = catalog(&[
            ("n1", &["primary", "v1"], CheckStatus::Passing),
            ("n2", &["Primary", "experimental"], CheckStatus::Passing),
            ("n3", &["secondary"], CheckStatus::Passing),
        ]);
        let q = ServiceQuery {
            tags: vec!["PRIMARY".into(), "!experimental".into()],
            ..query("web")
        };
        assert_eq!(nodes(&select(&state, &q, &Source::default(), &mut Rng::new(1))), ["n1"]);
    }

    #[test]
    fn node_and_service_meta_must_match() {
        let state = catalog(&[("n1", &[], CheckStatus::Passing), ("n2", &[], CheckStatus::Passing)]);
        let q = ServiceQuery {
            node_meta: [("rack".to_string(), "r-n1".to_string())].into(),
            ..query("web")
        };
        assert_eq!(nodes(&select(&state, &q, &Source::default(), &mut Rng::new(1))), ["n1"]);
        let q = ServiceQuery {
            service_meta: [("version".to_string(), "n2".to_string())].into(),
            ..query("web")
        };
        assert_eq!(nodes(&select(&state, &q, &Source::default(), &mut Rng::new(1))), ["n2"]);
    }

    #[test]
    fn order_is_shuffled_near_node_first_and_limit_trims() {
        let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
        let rows: Vec<(&str, &[&str], CheckStatus)> = names
            .iter()
            .map(|n| (n.as_str(), &[][..], CheckStatus::Passing))
            .collect();
        let state = catalog(&rows);
        let mut rng = Rng::new(42);
        let firsts: std::collections::BTreeSet<String> = (0..64)
            .map(|_| {
                select(&state, &query("web"), &Source::default(), &mut rng)[0]
                    .node
                    .clone()
            })
            .collect();
        assert!(firsts.len() > 3, "shuffled: {firsts:?}");
        for _ in 0..32 {
            let agent = Source {
                agent_node: "n5",
                near: "_agent",
                ..Source::default()
            };
            assert_eq!(select(&state, &query("web"), &agent, &mut rng)[0].node, "n5");
            let by_query = ServiceQuery {
                near: "N3".into(),
                ..query("web")
            };
            assert_eq!(select(&state, &by_query, &Source::default(), &mut rng)[0].node, "n3");
            let by_ip = Source {
                near: "_ip",
                ip: Some("10.0.0.6".parse().unwrap()),
                ..Source::default()
            };
            assert_eq!(select(&state, &query("web"), &by_ip, &mut rng)[0].node, "n6");
        }
        let limited = Source {
            limit: 3,
            ..Source::default()
        };
        assert_eq!(select(&state, &query("web"), &limited, &mut rng).len(), 3);
    }
}
