//! The routing table: which endpoint a path names and which methods it
//! allows. Patterns ending in `/` match a prefix (the rest is the
//! endpoint's argument, e.g. the KV key); others match exactly, as in Go's
//! `ServeMux`.

use super::request::Method;

/// The endpoints this data plane serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Kv,
    Txn,
    StatusLeader,
    StatusPeers,
    AgentSelf,
    AgentLeave,
    /// Every other `/v1/agent/*` path: answered by the control plane.
    AgentForwarded,
    /// Every `/v1/operator/*` path: answered by the control plane (raft
    /// configuration, peer removal, leadership transfer, autopilot health).
    OperatorForwarded,
    CatalogRegister,
    CatalogDeregister,
    CatalogDatacenters,
    CatalogNodes,
    CatalogServices,
    CatalogService,
    CatalogNode,
    CatalogNodeServices,
    HealthNode,
    HealthChecks,
    HealthService,
    HealthState,
    EventFire,
    EventList,
    /// `PUT /v1/config`: forwarded to the control plane.
    ConfigApply,
    /// `GET /v1/config/<kind>[/<name>]` (read here) and
    /// `DELETE /v1/config/<kind>/<name>` (forwarded).
    Config,
    /// `GET /v1/catalog/gateway-services/<gateway>`.
    CatalogGatewayServices,
    /// `/v1/query`: list (here) and create (control plane).
    Query,
    /// `/v1/query/<id>[/execute|/explain]`.
    QuerySpecific,
    /// `GET /v1/catalog/connect/<service>`.
    CatalogConnect,
    /// `GET /v1/health/connect/<service>`.
    HealthConnect,
    /// `PUT /v1/session/create`, `/v1/session/destroy/<id>`,
    /// `/v1/session/renew/<id>`: forwarded to the control plane.
    SessionWrite,
    /// `GET /v1/session/info/<id>`.
    SessionInfo,
    /// `GET /v1/session/node/<node>`.
    SessionNode,
    /// `GET /v1/session/list`.
    SessionList,
    /// `GET /v1/health/ingress/<service>`.
    HealthIngress,
}

impl Route {
    /// Whether the control plane answers this route whole, method checks
    /// and `OPTIONS` included.
    pub fn is_forwarded_whole(self) -> bool {
        matches!(self, Route::AgentForwarded | Route::OperatorForwarded)
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Endpoint {
    pub pattern: &'static str,
    pub route: Route,
    pub methods: &'static [Method],
    /// The `Allow` header: `OPTIONS` and the methods, as Consul lists them.
    pub allow: &'static str,
}

/// Every endpoint, the hottest first.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        pattern: "/v1/kv/",
        route: Route::Kv,
        methods: &[Method::Get, Method::Put, Method::Delete],
        allow: "OPTIONS,GET,PUT,DELETE",
    },
    Endpoint {
        pattern: "/v1/health/service/",
        route: Route::HealthService,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/service/",
        route: Route::CatalogService,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/txn",
        route: Route::Txn,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/status/leader",
        route: Route::StatusLeader,
        methods: &[Method::Get],
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/status/peers",
        route: Route::StatusPeers,
        methods: &[Method::Get],
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/agent/self",
        route: Route::AgentSelf,
        methods: &[Method::Get],
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/agent/leave",
        route: Route::AgentLeave,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/health/checks/",
        route: Route::HealthChecks,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/health/node/",
        route: Route::HealthNode,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/health/state/",
        route: Route::HealthState,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/connect/",
        route: Route::CatalogConnect,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/health/connect/",
        route: Route::HealthConnect,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/services",
        route: Route::CatalogServices,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/nodes",
        route: Route::CatalogNodes,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/node/",
        route: Route::CatalogNode,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/node-services/",
        route: Route::CatalogNodeServices,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/datacenters",
        route: Route::CatalogDatacenters,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/register",
        route: Route::CatalogRegister,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/catalog/deregister",
        route: Route::CatalogDeregister,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/event/fire/",
        route: Route::EventFire,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/event/list",
        route: Route::EventList,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/catalog/gateway-services/",
        route: Route::CatalogGatewayServices,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/config",
        route: Route::ConfigApply,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/config/",
        route: Route::Config,
        methods: &[Method::Get, Method::Delete],
        allow: "OPTIONS,GET,DELETE",
    },
    Endpoint {
        pattern: "/v1/query",
        route: Route::Query,
        methods: &[Method::Get, Method::Post],
        allow: "OPTIONS,GET,POST",
    },
    Endpoint {
        pattern: "/v1/query/",
        route: Route::QuerySpecific,
        methods: &[Method::Get, Method::Put, Method::Delete],
        allow: "OPTIONS,GET,PUT,DELETE",
    },
    // After the agent endpoints served here: everything else under
    // `/v1/agent/` goes to the control plane, which checks methods itself.
    Endpoint {
        pattern: "/v1/agent/",
        route: Route::AgentForwarded,
        methods: &[Method::Get, Method::Put, Method::Post, Method::Delete],
        allow: "OPTIONS,GET,PUT,POST,DELETE",
    },
    // The operator endpoints need raft (on a server, or through one): the
    // control plane answers them, unknown paths and methods included.
    Endpoint {
        pattern: "/v1/operator/",
        route: Route::OperatorForwarded,
        methods: &[Method::Get, Method::Put, Method::Post, Method::Delete],
        allow: "OPTIONS,GET,PUT,POST,DELETE",
    },
    Endpoint {
        pattern: "/v1/session/create",
        route: Route::SessionWrite,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/session/destroy/",
        route: Route::SessionWrite,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/session/renew/",
        route: Route::SessionWrite,
        methods: &[Method::Put],
        allow: "OPTIONS,PUT",
    },
    Endpoint {
        pattern: "/v1/session/info/",
        route: Route::SessionInfo,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/session/node/",
        route: Route::SessionNode,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/session/list",
        route: Route::SessionList,
        methods: GET,
        allow: "OPTIONS,GET",
    },
    Endpoint {
        pattern: "/v1/health/ingress/",
        route: Route::HealthIngress,
        methods: GET,
        allow: "OPTIONS,GET",
    },
];

/// The method list of read-only endpoints.
const GET: &[Method] = &[Method::Get];

/// The endpoint for `path` and the part of the path after its pattern.
pub fn resolve(path: &str) -> Option<(&'static Endpoint, &str)> {
    ENDPOINTS.iter().find_map(|e| {
        if e.pattern.ends_with('/') {
            path.strip_prefix(e.pattern).map(|rest| (e, rest))
        } else {
            (path == e.pattern).then_some((e, ""))
        }
    })
}

impl Endpoint {
    /// Whether the endpoint accepts `method`.
    pub fn allows(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prefix_and_exact_patterns() {
        let (e, key) = resolve("/v1/kv/a/b").unwrap();
        assert_eq!((e.route, key), (Route::Kv, "a/b"));
        let (e, key) = resolve("/v1/kv/").unwrap();
        assert_eq!((e.route, key), (Route::Kv, ""));
        assert_eq!(resolve("/v1/txn").unwrap().0.route, Route::Txn);
        assert_eq!(resolve("/v1/status/leader").unwrap().0.route, Route::StatusLeader);
        assert!(resolve("/v1/kv").is_none(), "the KV pattern needs its slash");
        assert!(resolve("/v1/txn/").is_none());
        assert!(resolve("/v1/nope").is_none());
    }

    #[test]
    fn catalog_and_health_routes() {
        let cases = [
            ("/v1/catalog/services", Route::CatalogServices, ""),
            ("/v1/catalog/service/web", Route::CatalogService, "web"),
            ("/v1/catalog/service/", Route::CatalogService, ""),
            ("/v1/catalog/nodes", Route::CatalogNodes, ""),
            ("/v1/catalog/node/n1", Route::CatalogNode, "n1"),
            ("/v1/catalog/node-services/n1", Route::CatalogNodeServices, "n1"),
            ("/v1/catalog/datacenters", Route::CatalogDatacenters, ""),
            ("/v1/catalog/register", Route::CatalogRegister, ""),
            ("/v1/catalog/deregister", Route::CatalogDeregister, ""),
            ("/v1/health/service/web", Route::HealthService, "web"),
            ("/v1/health/checks/web", Route::HealthChecks, "web"),
            ("/v1/health/node/n1", Route::HealthNode, "n1"),
            ("/v1/health/state/any", Route::HealthState, "any"),
            ("/v1/catalog/connect/web", Route::CatalogConnect, "web"),
            ("/v1/health/connect/web", Route::HealthConnect, "web"),
        ];
        for (path, route, rest) in cases {
            let (e, got) = resolve(path).unwrap_or_else(|| panic!("{path} resolves"));
            assert_eq!((e.route, got), (route, rest), "{path}");
        }
        assert!(resolve("/v1/catalog/servicesx").is_none());
        assert!(resolve("/v1/health/service").is_none());
    }

    #[test]
    fn other_agent_paths_are_forwarded_but_self_and_leave_stay_here() {
        assert_eq!(resolve("/v1/agent/self").unwrap().0.route, Route::AgentSelf);
        assert_eq!(resolve("/v1/agent/leave").unwrap().0.route, Route::AgentLeave);
        for path in [
            "/v1/agent/services",
            "/v1/agent/service/register",
            "/v1/agent/self/x",
            "/v1/agent/",
        ] {
            let route = resolve(path).unwrap().0.route;
            assert_eq!(route, Route::AgentForwarded, "{path}");
            assert!(route.is_forwarded_whole());
        }
        assert!(
            !Route::CatalogRegister.is_forwarded_whole(),
            "catalog writes check PUT here"
        );
    }

    #[test]
    fn operator_paths_are_forwarded_whole() {
        for (path, rest) in [
            ("/v1/operator/raft/configuration", "raft/configuration"),
            ("/v1/operator/raft/peer", "raft/peer"),
            ("/v1/operator/autopilot/health", "autopilot/health"),
            ("/v1/operator/nope", "nope"),
        ] {
            let (e, got) = resolve(path).unwrap();
            assert_eq!((e.route, got), (Route::OperatorForwarded, rest), "{path}");
            assert!(e.route.is_forwarded_whole());
        }
        assert!(resolve("/v1/operator").is_none(), "the prefix needs its slash");
    }

    #[test]
    fn prepared_query_routes() {
        let (e, rest) = resolve("/v1/query").unwrap();
        assert_eq!((e.route, rest), (Route::Query, ""));
        assert!(e.allows(Method::Post) && e.allows(Method::Get) && !e.allows(Method::Put));
        let (e, rest) = resolve("/v1/query/abc/execute").unwrap();
        assert_eq!((e.route, rest), (Route::QuerySpecific, "abc/execute"));
        assert!(e.allows(Method::Put) && e.allows(Method::Delete) && !e.allows(Method::Post));
        assert!(resolve("/v1/queryx").is_none());
    }

    #[test]
    fn session_routes() {
        let cases = [
            ("/v1/session/create", Route::SessionWrite, ""),
            ("/v1/session/destroy/abc", Route::SessionWrite, "abc"),
            ("/v1/session/renew/abc", Route::SessionWrite, "abc"),
            ("/v1/session/info/abc", Route::SessionInfo, "abc"),
            ("/v1/session/info/", Route::SessionInfo, ""),
            ("/v1/session/node/n1", Route::SessionNode, "n1"),
            ("/v1/session/list", Route::SessionList, ""),
        ];
        for (path, route, rest) in cases {
            let (e, got) = resolve(path).unwrap_or_else(|| panic!("{path} resolves"));
            assert_eq!((e.route, got), (route, rest), "{path}");
        }
        let (create, _) = resolve("/v1/session/create").unwrap();
        assert!(create.allows(Method::Put) && !create.allows(Method::Get));
        let (list, _) = resolve("/v1/session/list").unwrap();
        assert!(list.allows(Method::Get) && !list.allows(Method::Put));
        for path in [
            "/v1/session/nope",
            "/v1/session/",
            "/v1/session/create/x",
            "/v1/session/listx",
        ] {
            assert!(resolve(path).is_none(), "{path} is not an endpoint");
        }
        assert!(
            !Route::SessionWrite.is_forwarded_whole(),
            "session writes check PUT here"
        );
    }

    #[test]
    fn allow_headers_list_the_methods() {
        for e in ENDPOINTS {
            let names: Vec<&str> = e
                .methods
                .iter()
                .map(|m| match m {
                    Method::Get => "GET",
                    Method::Put => "PUT",
                    Method::Delete => "DELETE",
                    Method::Post => "POST",
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(e.allow, format!("OPTIONS,{}", names.join(",")), "{}", e.pattern);
        }
    }
}
