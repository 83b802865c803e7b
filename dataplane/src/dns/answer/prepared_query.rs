//! `<query>.query[.<dc>].consul` and `_<query>._tcp.query.consul`
//! (DNS.md §2, §4, §6): execute a prepared query by ID, name or template
//! prefix and answer with its instances like a `.service` lookup.
//!
//! The instance set is [`query_exec::matching`] (the filters HTTP execute
//! applies), built once per state version per asked name with
//! [`service_cache::build`] into a per-core cache, and shuffled per answer
//! by `instance_records`. TTL: the query's `DNS.TTL`, else the agent's
//! `service_ttl` for the queried service. An unknown query, or one with
//! nothing healthy, is NXDOMAIN with the SOA.
//!
//! Not done: `Near` ordering (DNS answers are shuffled), `_ip` by client
//! address, and failover to other datacenters.

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

/// Per-core cache of prepared query answer sets and their TTLs, by asked
/// name, at the state index.
#[derive(Debug, Default)]
pub struct PreparedQueryCache {
    selections: SelectionCache<u32>,
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
        let state_index = state.index();
        self.selections.get_or_build(name, state_index, || {
            let query = prepare(state, name).ok()?;
            let instances = query_exec::matching(state, &query.service, false);
            let built = service_cache::build(state, state_index, instances.into_iter().map(|i| &**i));
            let ttl_s = ttl_of(&query.dns_ttl).unwrap_or_else(|| default_ttl_s(&query.service.service.to_lowercase()));
            Some((built, ttl_s))
        })
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
    fn ttl_is_whole_seconds_of_the_go_duration() {
        assert_eq!(ttl_of(""), None);
        assert_eq!(ttl_of("10s"), Some(10));
        assert_eq!(ttl_of("1m30s"), Some(90));
        assert_eq!(ttl_of("1500ms"), Some(1));
        assert_eq!(ttl_of("-1s"), None);
        assert_eq!(ttl_of("soon"), None);
    }
}
