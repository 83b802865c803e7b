//! The query parameters every read shares (Consul's `s.parse`): `dc`,
//! consistency (`stale`, `consistent`, `leader`, `cached`, `max_stale`),
//! and blocking (`wait`, `index`), validated in Consul's order with
//! Consul's messages. Also Go's `strconv.ParseUint` with its messages.

use proconsul_shared::agent_info::AgentInfo;

use super::duration::parse_go_duration_ns;
use super::go_quote::go_quote;
use super::response::{Consistency, Response};
use crate::core::LeaderStatus;
use crate::http::query::Query;

/// The validated common options of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOptions<'q> {
    /// `?dc=` when given and not empty.
    pub datacenter: Option<&'q str>,
    pub consistency: Consistency,
    /// `?index=`: block until the result index passes it (0 = answer now).
    pub min_index: u64,
    /// `?wait=` in nanoseconds (Go's duration), when given.
    pub wait_ns: Option<i64>,
}

/// Parses and validates the common options; the error is the response.
pub fn parse_query_options<'q>(query: &'q Query<'_>) -> Result<QueryOptions<'q>, Response> {
    let datacenter = query.get("dc").filter(|dc| !dc.is_empty());
    let consistency = parse_consistency(query)?;
    let wait_ns = match query.get("wait").filter(|w| !w.is_empty()) {
        Some(w) => Some(parse_go_duration_ns(w).map_err(|_| Response::text(400, "Invalid wait time"))?),
        None => None,
    };
    let min_index = match query.get("index").filter(|i| !i.is_empty()) {
        Some(i) => i.parse::<u64>().map_err(|_| Response::text(400, "Invalid index"))?,
        None => 0,
    };
    Ok(QueryOptions {
        datacenter,
        consistency,
        min_index,
        wait_ns,
    })
}

/// The consistency mode of `query` (`stale`, `consistent`, `cached`,
/// `max_stale`), with Consul's `400`s for conflicting flags.
pub fn parse_consistency(query: &Query<'_>) -> Result<Consistency, Response> {
    let mut stale = query.has("stale");
    let consistent = query.has("consistent");
    let cached = query.has("cached");
    if let Some(max_stale) = query.get("max_stale").filter(|v| !v.is_empty()) {
        let ns = parse_go_duration_ns(max_stale)
            .map_err(|_| Response::text(400, format!("Invalid max_stale value {}", go_quote(max_stale))))?;
        stale |= ns > 0;
    }
    if stale && consistent {
        return Err(Response::text(
            400,
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ));
    }
    if cached && consistent {
        return Err(Response::text(
            400,
            "Cannot specify ?cached with ?consistent, conflicting semantics.",
        ));
    }
    Ok(if consistent {
        Consistency::Consistent
    } else if stale {
        Consistency::Stale
    } else {
        Consistency::Leader
    })
}

impl QueryOptions<'_> {
    /// Checks what the RPC layer would refuse: another datacenter (we have
    /// no WAN federation: `500 No path to datacenter`) and a consistent read
    /// without a known leader (`500 No cluster leader`). The data plane
    /// serves default and stale reads from its replica even while the
    /// control plane is away (`X-Consul-KnownLeader: false` tells clients).
    pub fn check_serving(&self, agent: &AgentInfo, leader: LeaderStatus) -> Result<(), Response> {
        check_datacenter(self.datacenter, agent)?;
        if self.consistency == Consistency::Consistent && !leader.known_leader {
            return Err(Response::text(500, "No cluster leader"));
        }
        Ok(())
    }
}

/// `500 No path to datacenter` for any datacenter but the agent's.
pub fn check_datacenter(datacenter: Option<&str>, agent: &AgentInfo) -> Result<(), Response> {
    match datacenter {
        Some(dc) if dc != agent.datacenter => Err(Response::text(500, "No path to datacenter")),
        _ => Ok(()),
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`, with Go's error text (Consul
/// answers it as a `500`).
pub fn parse_go_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {}: invalid syntax", go_quote(s)));
    }
    s.parse::<u64>()
        .map_err(|_| format!("strconv.ParseUint: parsing {}: value out of range", go_quote(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parsed options as plain values: dc, mode, index, wait.
    type Parsed = (Option<String>, Consistency, u64, Option<i64>);

    fn opts(raw: &str) -> Result<Parsed, (u16, String)> {
        let q = Query::parse(raw).unwrap();
        parse_query_options(&q)
            .map(|o| (o.datacenter.map(str::to_string), o.consistency, o.min_index, o.wait_ns))
            .map_err(|r| (r.status, String::from_utf8(r.body).unwrap()))
    }

    fn err(raw: &str) -> (u16, String) {
        opts(raw).unwrap_err()
    }

    #[test]
    fn defaults() {
        assert_eq!(opts("").unwrap(), (None, Consistency::Leader, 0, None));
        assert_eq!(opts("dc=").unwrap().0, None);
    }

    #[test]
    fn consistency_modes() {
        assert_eq!(opts("stale").unwrap().1, Consistency::Stale);
        assert_eq!(opts("stale=false").unwrap().1, Consistency::Stale, "presence-only");
        assert_eq!(opts("consistent").unwrap().1, Consistency::Consistent);
        assert_eq!(opts("leader").unwrap().1, Consistency::Leader);
        assert_eq!(opts("cached").unwrap().1, Consistency::Leader);
        assert_eq!(opts("max_stale=10s").unwrap().1, Consistency::Stale);
        assert_eq!(opts("max_stale=0s").unwrap().1, Consistency::Leader);
    }

    #[test]
    fn conflicting_consistency_is_400() {
        let stale = (
            400,
            "Cannot specify ?stale with ?consistent, conflicting semantics.".to_string(),
        );
        assert_eq!(err("stale&consistent"), stale);
        assert_eq!(err("max_stale=5s&consistent"), stale);
        assert_eq!(
            err("cached&consistent"),
            (
                400,
                "Cannot specify ?cached with ?consistent, conflicting semantics.".to_string()
            )
        );
        assert_eq!(
            err("max_stale=abc"),
            (400, r#"Invalid max_stale value "abc""#.to_string())
        );
    }

    #[test]
    fn index_and_wait() {
        assert_eq!(opts("index=42&wait=60000ms").unwrap().2, 42);
        assert_eq!(opts("index=42&wait=60000ms").unwrap().3, Some(60_000_000_000));
        assert_eq!(opts("index=&wait=").unwrap().2, 0, "empty values are ignored as in Go");
        assert_eq!(err("index=abc"), (400, "Invalid index".to_string()));
        assert_eq!(err("index=-1"), (400, "Invalid index".to_string()));
        assert_eq!(err("index=18446744073709551616"), (400, "Invalid index".to_string()));
        assert_eq!(err("wait=10"), (400, "Invalid wait time".to_string()));
        assert_eq!(err("wait=forever"), (400, "Invalid wait time".to_string()));
        // Go checks wait before index, consistency before both.
        assert_eq!(err("index=x&wait=y"), (400, "Invalid wait time".to_string()));
        assert_eq!(
            err("index=x&stale&consistent").1,
            "Cannot specify ?stale with ?consistent, conflicting semantics."
        );
    }

    #[test]
    fn datacenter_and_leader_checks() {
        let agent = crate::api::test_support::agent();
        let leader = LeaderStatus {
            known_leader: true,
            last_contact_ms: 0,
        };
        let no_leader = LeaderStatus {
            known_leader: false,
            last_contact_ms: 9000,
        };
        let q = Query::parse("dc=dc1").unwrap();
        assert!(parse_query_options(&q).unwrap().check_serving(&agent, leader).is_ok());
        let q = Query::parse("dc=elsewhere").unwrap();
        let r = parse_query_options(&q)
            .unwrap()
            .check_serving(&agent, leader)
            .unwrap_err();
        assert_eq!((r.status, r.body), (500, b"No path to datacenter".to_vec()));
        let q = Query::parse("consistent").unwrap();
        let r = parse_query_options(&q)
            .unwrap()
            .check_serving(&agent, no_leader)
            .unwrap_err();
        assert_eq!((r.status, r.body), (500, b"No cluster leader".to_vec()));
        let q = Query::parse("").unwrap();
        assert!(parse_query_options(&q)
            .unwrap()
            .check_serving(&agent, no_leader)
            .is_ok());
    }

    #[test]
    fn go_uint_parsing() {
        assert_eq!(parse_go_uint("0"), Ok(0));
        assert_eq!(parse_go_uint("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_go_uint("abc"),
            Err(r#"strconv.ParseUint: parsing "abc": invalid syntax"#.to_string())
        );
        assert_eq!(
            parse_go_uint(""),
            Err(r#"strconv.ParseUint: parsing "": invalid syntax"#.to_string())
        );
        assert_eq!(
            parse_go_uint("+1"),
            Err(r#"strconv.ParseUint: parsing "+1": invalid syntax"#.to_string())
        );
        assert_eq!(
            parse_go_uint("18446744073709551616"),
            Err(r#"strconv.ParseUint: parsing "18446744073709551616": value out of range"#.to_string())
        );
    }
}
