//! `<query>.query[.<dc>].consul` and `_<query>._tcp.query.consul`
//! (DNS.md §2, §4, §6): execute a prepared query by ID, name or template
//! prefix and answer with its instances like a `.service` lookup.
//!
//! The instance set is [`query_exec::matching`] (the filters HTTP execute
//! applies, `IgnoreCheckIDs` included: see [`ignored_checks`]), built with
//! [`service_cache::build`] into a per-core cache once per version of what
//! it reads (the prepared query table, and the resolved service's index,
//! or its Connect index for a Connect query), so an unrelated write (a KV
//! put) does not rebuild it; shuffled per answer by `instance_records`.
//! TTL: the query's `DNS.TTL`, else the agent's `service_ttl` for the
//! queried service. An unknown query, or one with nothing healthy, is
//! NXDOMAIN with the SOA.
//!
//! Not done: `Near` ordering (DNS answers are shuffled, so `_agent` and
//! `_ip` do not apply), and failover to other datacenters.

mod ignored_checks;

use std::sync::Arc;

use proconsul_shared::State;

use crate::api::duration::parse_go_duration_ns;
use crate::dns::service_cache::{self, CachedService};
use crate::dns::wire::ResponseWriter;
use crate::query_exec::{self, prepare};

use super::selection::SelectionCache;
use super::{Ctx, Scratch};

/// Nanoseconds per second, for `DNS.TTL`.
const NANOS_PER_S: i64 = 1_000_000_000;

/// What a `.query` set read besides the prepared query table (which
/// decides both): the service the query resolved to (lower-case) and
/// whether it selects the service's Connect instances.
#[derive(Debug)]
struct QueryReads {
    service: String,
    connect: bool,
}

impl QueryReads {
    /// The largest index over what the set read.
    fn version(&self, state: &State) -> u64 {
        let service_index = if self.connect {
            state.catalog.connect_index(&self.service)
        } else {
            state.catalog.service_index(&self.service)
        };
        service_index.max(state.prepared_queries.table_index())
    }
}

/// Per-core cache of prepared query answer sets and their TTLs, by asked
/// name, at the version of what each read.
#[derive(Debug, Default)]
pub struct PreparedQueryCache {
    selections: SelectionCache<u32, QueryReads>,
}

impl PreparedQueryCache {
    /// The answer set and TTL for `name` (lower-case) in `state`; `None`
    /// when no query resolves (unknown names are not cached).
    fn get(
        &mut self,
        state: &State,
        name: &str,
        default_ttl_s: impl Fn(&str) -> u32,
    ) -> Option<(Arc<CachedService>, u32)> {
        self.selections.get_or_build_from(
            name,
            |reads| reads.version(state),
            || {
                let query = prepare(state, name).ok()?;
                let service = &query.service;
                let reads = QueryReads {
                    service: service.service.to_ascii_lowercase(),
                    connect: service.connect,
                };
                let version = reads.version(state);
                let instances = query_exec::matching(state, service, false);
                let built = if service.ignore_check_ids.is_empty() {
                    service_cache::build(state, version, instances.into_iter().map(|i| &**i))
                } else {
                    ignored_checks::build_ignoring_checks(state, service, version, &instances)
                };
                let ttl_s = ttl_of(&query.dns_ttl).unwrap_or_else(|| default_ttl_s(&reads.service));
                Some((built, ttl_s, reads))
            },
        )
    }

    /// How many answer sets were built (tests: proves reuse).
    #[cfg(test)]
    pub fn builds(&self) -> u64 {
        self.selections.builds()
    }
}

/// `DNS.TTL` in whole seconds; `None` when unset (or, never stored,
/// unparsable or negative).
fn ttl_of(text: &str) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    let ns = parse_go_duration_ns(text).ok().filter(|ns| *ns >= 0)?;
    Some(u32::try_from(ns / NANOS_PER_S).unwrap_or(u32::MAX))
}

impl Ctx<'_> {
    /// Answers `<name>.query`: the rcode, and whether answers were cut
    /// for room.
    pub(super) fn prepared_query(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        name: &str,
        scratch: &mut Scratch,
    ) -> (u8, bool) {
        // `name` comes from the parsed question, already lower-case.
        let zone = self.zone;
        let Some((cached, ttl_s)) = scratch
            .prepared_queries
            .get(self.state, name, |service| zone.service_ttl_s(service))
        else {
            return (self.nxdomain(w), false);
        };
        self.answer_selection(w, qtype, &cached, &cached.all, ttl_s, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_exec::test_support::catalog;
    use proconsul_shared::state::{CheckStatus, PreparedQuery, ServiceQuery};
    use proconsul_shared::Command;

    fn state_with_query(dns_ttl: &str) -> State {
        let mut state = catalog(&[
            ("n1", &["primary"], CheckStatus::Passing),
            ("n2", &["primary"], CheckStatus::Warning),
            ("n3", &["other"], CheckStatus::Passing),
            ("n4", &["primary"], CheckStatus::Critical),
        ]);
        let query = PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: "Web-Q".into(),
            service: ServiceQuery {
                service: "web".into(),
                tags: vec!["primary".into()],
                ..ServiceQuery::default()
            },
            dns_ttl: dns_ttl.into(),
            ..PreparedQuery::default()
        };
        state.apply_command(20, &Command::PreparedQueryCreate(query));
        state
    }

    fn nodes(cached: &CachedService) -> Vec<&str> {
        cached.instances.iter().map(|i| i.node.as_str()).collect()
    }

    #[test]
    fn answer_sets_follow_the_query_and_are_reused_per_state_version() {
        let state = state_with_query("10s");
        let mut cache = PreparedQueryCache::default();
        let (set, ttl) = cache.get(&state, "web-q", |_| 99).unwrap();
        assert_eq!((nodes(&set), ttl), (vec!["n1", "n2"], 10));
        assert_eq!(set.all.len(), 2);
        let (by_id, _) = cache
            .get(&state, "11111111-2222-3333-4444-555555555555", |_| 99)
            .unwrap();
        assert_eq!(nodes(&by_id), ["n1", "n2"]);
        cache.get(&state, "web-q", |_| 99);
        assert_eq!(cache.builds(), 2, "same version: reused");
        assert!(cache.get(&state, "unknown", |_| 99).is_none());
        assert_eq!(cache.builds(), 2, "unknown names build nothing");
        let untimed = state_with_query("");
        let (_, ttl) = PreparedQueryCache::default()
            .get(&untimed, "web-q", |service| if service == "web" { 7 } else { 0 })
            .unwrap();
        assert_eq!(ttl, 7, "service_ttl of the queried service");
    }

    #[test]
    fn only_what_the_set_read_rebuilds_it() {
        use crate::dns::test_support::set_check;
        let mut state = state_with_query("10s");
        let mut cache = PreparedQueryCache::default();
        cache.get(&state, "web-q", |_| 99).unwrap();
        let kv = Command::KvSet {
            key: "unrelated".into(),
            value: Vec::new(),
            flags: 0,
        };
        state.apply_command(21, &kv);
        let (set, _) = cache.get(&state, "web-q", |_| 99).unwrap();
        assert_eq!(cache.builds(), 1, "a KV write between two queries: reused");
        assert_eq!(nodes(&set), ["n1", "n2"]);
        set_check(&mut state, 22, "n1", "web", "check-n1", "critical");
        let (set, _) = cache.get(&state, "web-q", |_| 99).unwrap();
        assert_eq!(
            (cache.builds(), nodes(&set)),
            (2, vec!["n2"]),
            "a service change: rebuilt"
        );
        let query = PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: "web-q".into(),
            service: ServiceQuery {
                service: "web".into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        };
        state.apply_command(23, &Command::PreparedQueryUpdate(query));
        let (set, _) = cache.get(&state, "web-q", |_| 99).unwrap();
        assert_eq!(
            (cache.builds(), nodes(&set)),
            (3, vec!["n2", "n3"]),
            "a query change: rebuilt"
        );
    }

    #[test]
    fn ignored_checks_keep_an_instance_and_judge_its_health_without_them() {
        use crate::dns::test_support::set_check;
        use crate::query_exec::test_support::check;
        let mut state = state_with_query("");
        // n2: warning by its own check, and a critical node check.
        set_check(&mut state, 21, "n2", "", "serfHealth", "critical");
        let query = PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: "web-q".into(),
            service: ServiceQuery {
                service: "web".into(),
                ignore_check_ids: vec![check("n4"), "serfHealth".into()],
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        };
        state.apply_command(22, &Command::PreparedQueryUpdate(query));
        let mut cache = PreparedQueryCache::default();
        let (set, _) = cache.get(&state, "web-q", |_| 5).unwrap();
        assert_eq!(
            nodes(&set),
            ["n1", "n2", "n3", "n4"],
            "n4 is critical only by an ignored check"
        );
        let statuses: Vec<_> = set.instances.iter().map(|i| i.status).collect();
        assert_eq!(
            statuses,
            [
                CheckStatus::Passing,
                CheckStatus::Warning,
                CheckStatus::Passing,
                CheckStatus::Passing
            ]
        );
        assert_eq!(set.passing, [0, 2, 3]);
        assert_eq!(set.all, [0, 1, 2, 3]);
        let n4 = &set.instances[3];
        assert_eq!(
            n4.address.ip(),
            Some("10.0.0.4".parse().unwrap()),
            "addressed as any set"
        );
    }

    #[test]
    fn ignored_checks_with_nodes_registered_out_of_name_order() {
        use crate::dns::test_support::register_service;
        use crate::replica::fixtures::register_node;
        // A node registered after the others but sorting before them: the
        // set must not depend on the order nodes were written in (a
        // rebuilt node table once asserted on it and killed the core).
        let mut state = state_with_query("");
        register_node(&mut state, 30, "a-late", "10.0.0.9", &[]);
        register_service(&mut state, 31, "a-late", "web", "web", &["primary"], "", 80);
        let query = PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: "web-q".into(),
            service: ServiceQuery {
                service: "web".into(),
                ignore_check_ids: vec!["serfHealth".into()],
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        };
        state.apply_command(32, &Command::PreparedQueryUpdate(query));
        let (set, _) = PreparedQueryCache::default().get(&state, "web-q", |_| 5).unwrap();
        assert_eq!(
            nodes(&set),
            ["a-late", "n1", "n2", "n3"],
            "n4 stays critical by its own check"
        );
        assert_eq!(set.instances[0].address.ip(), Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn ttl_is_whole_seconds_of_the_go_duration() {
        assert_eq!(ttl_of(""), None);
        assert_eq!(ttl_of("10s"), Some(10));
        assert_eq!(ttl_of("1m30s"), Some(90));
        assert_eq!(ttl_of("1500ms"), Some(1));
        assert_eq!(ttl_of("-1s"), None);
        assert_eq!(ttl_of("soon"), None);
    }
}
