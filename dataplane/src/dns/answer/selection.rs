//! What `.connect`, `.ingress` and `.query` answers share: a bounded
//! per-core cache of instance sets built for an asked name at one version
//! ([`SelectionCache`]), and the answer tail that turns a set into records
//! and an rcode ([`Ctx::answer_selection`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::dns::service_cache::CachedService;
use crate::dns::wire::{rcode, ResponseWriter, Section};

use super::service::ServiceAnswer;
use super::{Ctx, Scratch};

/// Names kept in one core's cache of one kind of lookup; the cache starts
/// over when full (a flood of distinct names cannot grow it).
pub const SELECTIONS_CACHED_MAX: usize = 4096;

/// One asked name's instance set, built at `version`, with what else the
/// lookup derived from it (`extra`: e.g. a prepared query's TTL) and what
/// it read (`reads`: e.g. the service a prepared query resolved to), from
/// which its current version is computed.
#[derive(Debug)]
struct Selection<T, R> {
    version: u64,
    instances: Arc<CachedService>,
    extra: T,
    reads: R,
}

/// Instance sets by asked name (lower-case). The version is whatever
/// index governs the set (a service's Connect index; for a set that reads
/// several things, the largest of their indexes): a hit at the same
/// version answers without touching the catalog. Raft indexes only grow
/// and every change stamps the current one, so the largest index over
/// what a set read moves exactly when one of those things changes.
#[derive(Debug)]
pub struct SelectionCache<T, R = ()> {
    by_name: HashMap<String, Selection<T, R>>,
    builds: u64,
}

impl<T, R> Default for SelectionCache<T, R> {
    fn default() -> Self {
        SelectionCache {
            by_name: HashMap::new(),
            builds: 0,
        }
    }
}

impl<T: Copy> SelectionCache<T> {
    /// The set for `name` at `version`, built by `build` when missing or
    /// older. `build` answering `None` (nothing to resolve) caches nothing.
    pub fn get_or_build(
        &mut self,
        name: &str,
        version: u64,
        build: impl FnOnce() -> Option<(CachedService, T)>,
    ) -> Option<(Arc<CachedService>, T)> {
        self.get_or_build_from(name, |()| version, || build().map(|(set, extra)| (set, extra, ())))
    }
}

impl<T: Copy, R> SelectionCache<T, R> {
    /// The set for `name`, current when `version_of` its reads equals the
    /// version it was built at; else built by `build`, which also says
    /// what the new set read. `build` answering `None` caches nothing.
    pub fn get_or_build_from(
        &mut self,
        name: &str,
        version_of: impl Fn(&R) -> u64,
        build: impl FnOnce() -> Option<(CachedService, T, R)>,
    ) -> Option<(Arc<CachedService>, T)> {
        if let Some(hit) = self.by_name.get(name).filter(|s| version_of(&s.reads) == s.version) {
            return Some((hit.instances.clone(), hit.extra));
        }
        let (built, extra, reads) = build()?;
        let version = version_of(&reads);
        if self.by_name.len() >= SELECTIONS_CACHED_MAX && !self.by_name.contains_key(name) {
            self.by_name.clear();
        }
        let instances = Arc::new(built);
        self.builds += 1;
        self.by_name.insert(
            name.to_string(),
            Selection {
                version,
                instances: instances.clone(),
                extra,
                reads,
            },
        );
        assert!(
            self.by_name.len() <= SELECTIONS_CACHED_MAX,
            "selection cache over its bound"
        );
        Some((instances, extra))
    }
}

#[cfg(test)]
impl<T, R> SelectionCache<T, R> {
    /// How many sets were built (tests: proves reuse).
    pub fn builds(&self) -> u64 {
        self.builds
    }

    /// Names cached now.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl Ctx<'_> {
    /// Answers a lookup by service name (`.connect`, `.ingress`) from the
    /// instance set `cached`: passing instances only with `only_passing`,
    /// the service's TTL.
    pub(super) fn answer_service_set(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        service: &str,
        cached: &CachedService,
        scratch: &mut Scratch,
    ) -> (u8, bool) {
        let selection = if self.zone.only_passing {
            &cached.passing
        } else {
            &cached.all
        };
        let ttl_s = self.zone.service_ttl_s(service);
        self.answer_selection(w, qtype, cached, selection, ttl_s, scratch)
    }

    /// Writes `selection` (positions in `cached`) as a `.service` lookup
    /// would and answers the rcode: NXDOMAIN when the selection is empty,
    /// NODATA when none of the asked type exists; and whether answers were
    /// cut for room.
    pub(super) fn answer_selection(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        cached: &CachedService,
        selection: &[u32],
        ttl_s: u32,
        scratch: &mut Scratch,
    ) -> (u8, bool) {
        match self.instance_records(w, qtype, cached, selection, ttl_s, scratch) {
            ServiceAnswer::NoInstances => (self.nxdomain(w), false),
            ServiceAnswer::Written { cut } if w.count(Section::Answer) == 0 => (self.nodata(w), cut),
            ServiceAnswer::Written { cut } => (rcode::NOERROR, cut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(index: u64) -> CachedService {
        let mut set = CachedService::default();
        set.index = index;
        set
    }

    #[test]
    fn a_set_is_reused_at_its_version_and_rebuilt_after() {
        let mut cache = SelectionCache::<u32>::default();
        let (first, ttl) = cache.get_or_build("web", 5, || Some((set(5), 7))).unwrap();
        assert_eq!((first.index, ttl), (5, 7));
        let (again, _) = cache.get_or_build("web", 5, || panic!("not rebuilt")).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let (newer, _) = cache.get_or_build("web", 6, || Some((set(6), 7))).unwrap();
        assert_eq!(newer.index, 6);
        assert_eq!(cache.builds(), 2);
    }

    #[test]
    fn nothing_to_resolve_caches_nothing() {
        let mut cache = SelectionCache::<()>::default();
        assert!(cache.get_or_build("unknown", 1, || None).is_none());
        assert!(cache.is_empty());
        assert_eq!(cache.builds(), 0);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = SelectionCache::<()>::default();
        for i in 0..SELECTIONS_CACHED_MAX {
            cache.get_or_build(&format!("name-{i}"), 1, || Some((set(1), ())));
        }
        assert_eq!(cache.len(), SELECTIONS_CACHED_MAX);
        cache.get_or_build("name-0", 2, || Some((set(2), ())));
        assert_eq!(cache.len(), SELECTIONS_CACHED_MAX, "a known name does not clear");
        cache.get_or_build("one-more", 1, || Some((set(1), ())));
        assert_eq!(cache.len(), 1, "a new name in a full cache starts over");
    }

    #[test]
    fn a_set_is_current_while_what_it_read_keeps_its_version() {
        let mut cache = SelectionCache::<(), &str>::default();
        let mut indexes = std::collections::HashMap::from([("web", 5), ("db", 3)]);
        let build = |reads: &'static str| move || Some((set(1), (), reads));
        cache.get_or_build_from("q", |r| indexes[r], build("web"));
        indexes.insert("db", 9);
        cache.get_or_build_from("q", |r| indexes[r], || panic!("db is not read"));
        assert_eq!(cache.builds(), 1);
        indexes.insert("web", 10);
        cache.get_or_build_from("q", |r| indexes[r], build("web"));
        assert_eq!(cache.builds(), 2, "what it read moved: rebuilt");
    }
}
