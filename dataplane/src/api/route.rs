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
];

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
        assert!(resolve("/v1/agent/self/x").is_none());
        assert!(resolve("/v1/nope").is_none());
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
