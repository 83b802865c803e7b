//! One rendering shared by identical parked queries (issue #4 item 5).
//!
//! When one change wakes many parked queries with the same request (same
//! method, target (path and query string, so the same `?index`), body and
//! framing) the first to run renders its response bytes and stores them
//! here; the others copy those bytes instead of running the query and
//! rendering again. Everything the bytes depend on is part of the key:
//! the request, the framing, whether it is the final (timed-out) answer,
//! the leader status headers and the `Date` header; the view they were
//! rendered from is the cache's generation: a lookup against another view
//! empties the cache first. Pure (no IO, no clock): the caller passes the
//! view, the date and the leader status.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use rustc_hash::FxHasher;

use super::date::HTTP_DATE_BYTES;
use super::response::Framing;
use crate::core::LeaderStatus;

/// Most renderings kept for one view.
pub const SHARED_RENDERS_MAX: usize = 256;
/// Most rendered bytes kept for one view; a rendering that would exceed it
/// is used once and not kept.
pub const SHARED_RENDER_BYTES_MAX: usize = 4 << 20;

/// Everything a parked query's response bytes depend on besides the view.
#[derive(Debug, Clone, Copy)]
pub struct RenderKey<'a> {
    /// The request method.
    pub method: &'a str,
    /// The raw request target (path and query string).
    pub target: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// How the response is framed on the connection.
    pub framing: Framing,
    /// The final answer of a query that stops waiting (timed out,
    /// overloaded, restored), rendered without blocking.
    pub final_answer: bool,
    /// The `X-Consul-KnownLeader` / `X-Consul-LastContact` values.
    pub leader: LeaderStatus,
    /// The `Date` header.
    pub date: &'a [u8; HTTP_DATE_BYTES],
}

impl RenderKey<'_> {
    /// A fast non-keyed hash: a client that makes digests collide only
    /// lengthens a bucket of a cache bounded at [`SHARED_RENDERS_MAX`].
    fn digest(&self) -> u64 {
        let mut h = FxHasher::default();
        self.method.hash(&mut h);
        self.target.hash(&mut h);
        self.body.hash(&mut h);
        (
            self.framing.version_minor,
            self.framing.keep_alive,
            self.framing.head_only,
        )
            .hash(&mut h);
        self.final_answer.hash(&mut h);
        (self.leader.known_leader, self.leader.last_contact_ms).hash(&mut h);
        self.date.hash(&mut h);
        h.finish()
    }
}

/// A stored rendering with its own copy of the key.
struct Entry {
    method: Box<str>,
    target: Box<str>,
    body: Box<[u8]>,
    framing: Framing,
    final_answer: bool,
    leader: LeaderStatus,
    date: [u8; HTTP_DATE_BYTES],
    bytes: Rc<[u8]>,
}

impl Entry {
    fn matches(&self, key: &RenderKey<'_>) -> bool {
        *self.target == *key.target
            && *self.method == *key.method
            && *self.body == *key.body
            && self.framing == key.framing
            && self.final_answer == key.final_answer
            && self.leader == key.leader
            && self.date == *key.date
    }
}

/// Counters, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderStats {
    /// Renderings stored.
    pub stored: u64,
    /// Lookups answered from a stored rendering.
    pub shared: u64,
    /// Renderings not stored because a limit was reached.
    pub refused: u64,
}

/// The renderings of one core for its current view `V`.
pub struct SharedRenders<V> {
    /// The view every stored rendering was made from.
    view: Option<Rc<V>>,
    /// Key digest → renderings with that digest.
    by_digest: HashMap<u64, Vec<Entry>>,
    entries: usize,
    bytes: usize,
    stats: RenderStats,
}

impl<V> Default for SharedRenders<V> {
    fn default() -> SharedRenders<V> {
        SharedRenders {
            view: None,
            by_digest: HashMap::new(),
            entries: 0,
            bytes: 0,
            stats: RenderStats::default(),
        }
    }
}

impl<V> SharedRenders<V> {
    /// An empty cache.
    pub fn new() -> SharedRenders<V> {
        SharedRenders::default()
    }

    /// The rendering stored for `key` from `view`, if any. A `view` other
    /// than the one the stored renderings came from empties the cache.
    pub fn get(&mut self, view: &Rc<V>, key: &RenderKey<'_>) -> Option<Rc<[u8]>> {
        self.switch_to(view);
        let found = self
            .by_digest
            .get(&key.digest())?
            .iter()
            .find(|e| e.matches(key))
            .map(|e| e.bytes.clone())?;
        self.stats.shared += 1;
        Some(found)
    }

    /// Stores `bytes` as the rendering of `key` from `view`. Returns
    /// whether it was kept (false at [`SHARED_RENDERS_MAX`] entries or
    /// [`SHARED_RENDER_BYTES_MAX`] bytes).
    pub fn insert(&mut self, view: &Rc<V>, key: &RenderKey<'_>, bytes: Rc<[u8]>) -> bool {
        self.switch_to(view);
        if self.entries >= SHARED_RENDERS_MAX || self.bytes + bytes.len() > SHARED_RENDER_BYTES_MAX {
            self.stats.refused += 1;
            return false;
        }
        let bucket = self.by_digest.entry(key.digest()).or_default();
        if bucket.iter().any(|e| e.matches(key)) {
            return false;
        }
        self.bytes += bytes.len();
        self.entries += 1;
        self.stats.stored += 1;
        bucket.push(Entry {
            method: key.method.into(),
            target: key.target.into(),
            body: key.body.into(),
            framing: key.framing,
            final_answer: key.final_answer,
            leader: key.leader,
            date: *key.date,
            bytes,
        });
        debug_assert!(self.bytes <= SHARED_RENDER_BYTES_MAX && self.entries <= SHARED_RENDERS_MAX);
        true
    }

    /// Renderings stored now.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The counters since this cache was made.
    pub fn stats(&self) -> RenderStats {
        self.stats
    }

    /// Empties the cache if `view` is not the one it holds renderings of.
    fn switch_to(&mut self, view: &Rc<V>) {
        if self.view.as_ref().is_some_and(|v| Rc::ptr_eq(v, view)) {
            return;
        }
        self.view = Some(view.clone());
        self.by_digest.clear();
        self.entries = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: [u8; HTTP_DATE_BYTES] = *b"Sun, 22 Nov 2026 21:00:00 GMT";
    const LATER: [u8; HTTP_DATE_BYTES] = *b"Sun, 22 Nov 2026 21:00:01 GMT";

    fn key<'a>(target: &'a str, date: &'a [u8; HTTP_DATE_BYTES]) -> RenderKey<'a> {
        RenderKey {
            method: "GET",
            target,
            body: b"",
            framing: Framing {
                version_minor: 1,
                keep_alive: true,
                head_only: false,
            },
            final_answer: false,
            leader: LeaderStatus {
                known_leader: true,
                last_contact_ms: 0,
            },
            date,
        }
    }

    #[test]
    fn identical_keys_share_one_rendering() {
        let view = Rc::new(1u8);
        let mut cache = SharedRenders::new();
        let k = key("/v1/kv/hot?index=7", &DATE);
        assert!(cache.get(&view, &k).is_none());
        assert!(cache.insert(&view, &k, Rc::from(&b"answer"[..])));
        for _ in 0..999 {
            assert_eq!(cache.get(&view, &k).as_deref(), Some(&b"answer"[..]));
        }
        assert_eq!(
            cache.stats(),
            RenderStats {
                stored: 1,
                shared: 999,
                refused: 0
            }
        );
        assert!(!cache.insert(&view, &k, Rc::from(&b"again"[..])), "stored once");
    }

    #[test]
    fn any_difference_in_the_key_is_another_rendering() {
        let view = Rc::new(1u8);
        let mut cache = SharedRenders::new();
        let base = key("/v1/kv/hot?index=7", &DATE);
        cache.insert(&view, &base, Rc::from(&b"base"[..]));
        let mut variants = vec![
            key("/v1/kv/hot?index=8", &DATE),
            key("/v1/kv/hot?index=7&stale", &DATE),
            key("/v1/kv/hot?index=7", &LATER),
        ];
        let mut v = base;
        v.method = "HEAD";
        variants.push(v);
        let mut v = base;
        v.body = b"x";
        variants.push(v);
        let mut v = base;
        v.framing.keep_alive = false;
        variants.push(v);
        let mut v = base;
        v.final_answer = true;
        variants.push(v);
        let mut v = base;
        v.leader.known_leader = false;
        variants.push(v);
        for variant in &variants {
            assert!(cache.get(&view, variant).is_none(), "{variant:?}");
        }
        assert_eq!(cache.get(&view, &base).as_deref(), Some(&b"base"[..]));
    }

    #[test]
    fn a_new_view_empties_the_cache() {
        let old = Rc::new(1u8);
        let new = Rc::new(1u8);
        let mut cache = SharedRenders::new();
        let k = key("/v1/kv/hot?index=7", &DATE);
        cache.insert(&old, &k, Rc::from(&b"old"[..]));
        assert!(cache.get(&new, &k).is_none(), "rendered from another view");
        assert!(cache.is_empty());
        assert!(cache.get(&old, &k).is_none(), "switching back does not resurrect it");
    }

    #[test]
    fn entry_and_byte_limits_refuse_with_a_count() {
        let view = Rc::new(());
        let mut cache = SharedRenders::new();
        let targets: Vec<String> = (0..=SHARED_RENDERS_MAX)
            .map(|i| format!("/v1/kv/k{i}?index=1"))
            .collect();
        for t in &targets[..SHARED_RENDERS_MAX] {
            assert!(cache.insert(&view, &key(t, &DATE), Rc::from(&b"x"[..])));
        }
        assert!(!cache.insert(&view, &key(&targets[SHARED_RENDERS_MAX], &DATE), Rc::from(&b"x"[..])));
        assert_eq!(cache.len(), SHARED_RENDERS_MAX);

        let mut cache = SharedRenders::new();
        let big: Rc<[u8]> = vec![0u8; SHARED_RENDER_BYTES_MAX].into();
        assert!(cache.insert(&view, &key("/a", &DATE), big));
        assert!(
            !cache.insert(&view, &key("/b", &DATE), Rc::from(&b"1"[..])),
            "over the byte budget"
        );
        assert_eq!(cache.stats().refused, 1);
        assert!(cache.get(&view, &key("/b", &DATE)).is_none());
    }
}
