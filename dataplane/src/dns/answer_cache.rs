//! The per-core answer cache: a query's bytes (all but its ID) → the
//! A answer of a [`PlainV4`] service, so that a repeated question is
//! answered with one hash of the packet, one table probe and a copy,
//! without parsing, classifying or looking the service up.
//!
//! What it holds: only answers the full path ([`crate::dns::answer`])
//! built from a `PlainV4` table entry (every instance passing, ≤ 8
//! distinct IPv4 addresses), for queries of one exact byte form: one
//! question, no answer or authority records, and either nothing after the
//! question or one option-less OPT record. The key is the whole packet
//! after its ID, so the flags, the name's case and the EDNS size are part
//! of it and the cached response is exactly what the full path writes for
//! those bytes (the instances are still drawn per query, with the same
//! lazy shuffle and the same number of draws as the full path).
//!
//! When it is good: an entry remembers the state index it was built at
//! and is used only while the replica is at that index; any write makes
//! every entry stale (the next query of each name takes the full path and
//! refreshes it). The zone is the caller's business: [`AnswerCache::clear`]
//! when it changes.
//!
//! Bounds: a fixed table of [`ANSWER_SLOTS`] slots of 128 bytes (4 MiB
//! per core, allocated at the first insert), keys of at most
//! [`KEY_BYTES_MAX`] bytes (longer queries always take the full path).
//! Each key may live in one of two slots (two halves of its hash); an
//! insert into two taken slots moves one occupant to its other slot when
//! that one is free, else replaces it. Lookups never probe more than the
//! two slots, and a batch of queries can [`AnswerCache::prefetch`] its
//! slots before answering, so the table's cache misses overlap. The hash
//! (FxHash of the key) is not keyed: a flood of crafted names can only
//! evict entries (those queries then cost the full path), never grow the
//! table or lengthen a probe; and only names that answered from a
//! `PlainV4` entry are ever inserted.

use rustc_hash::FxHasher;
use std::hash::Hasher;

use crate::dns::rng::{draw, Rng};
use crate::dns::service_cache::PLAIN_V4_ADDRESSES_MAX;
use crate::dns::wire::{rtype, CLASS_IN, HEADER_BYTES};

/// Slots in one core's table (a power of two).
pub const ANSWER_SLOTS: usize = 32_768;

/// Longest key (the packet after its two ID bytes) that can be cached.
pub const KEY_BYTES_MAX: usize = 70;

/// An option-less OPT record: root name, type, class, TTL, RDLENGTH 0.
const OPT_BYTES: usize = 11;
/// One A record owned by a pointer to the question name.
const A_RECORD_BYTES: usize = 16;
/// The bytes an A record owned by the question name starts with.
const A_RECORD_HEAD: [u8; 6] = [0xC0, 0x0C, 0, rtype::A as u8, 0, CLASS_IN as u8];

const _: () = assert!(ANSWER_SLOTS.is_power_of_two());
const _: () = assert!(std::mem::size_of::<AnswerSlot>() == 128);

/// What the full path answered from a `PlainV4` entry: every address the
/// service has (instance order) and the records' TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainAnswer {
    pub addresses: [[u8; 4]; PLAIN_V4_ADDRESSES_MAX],
    pub len: u8,
    pub ttl_s: u32,
}

impl PlainAnswer {
    /// The answer of `addresses` (at most [`PLAIN_V4_ADDRESSES_MAX`]).
    pub fn new(addresses: &[[u8; 4]], ttl_s: u32) -> PlainAnswer {
        assert!(
            !addresses.is_empty() && addresses.len() <= PLAIN_V4_ADDRESSES_MAX,
            "a plain answer has 1..={PLAIN_V4_ADDRESSES_MAX} addresses"
        );
        let mut all = [[0u8; 4]; PLAIN_V4_ADDRESSES_MAX];
        all[..addresses.len()].copy_from_slice(addresses);
        PlainAnswer {
            addresses: all,
            len: addresses.len() as u8,
            ttl_s,
        }
    }
}

/// One cached answer; two cache lines. `hash == 0` marks an empty slot.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct AnswerSlot {
    hash: u64,
    /// The state index the answer was built at.
    state_index: u64,
    ttl_be: [u8; 4],
    /// Bytes 2 and 3 of the full path's response (QR, AA, RD, RA, TC, RCODE).
    flags: [u8; 2],
    key_len: u8,
    /// Where the question ends in the packet (an OPT record may follow).
    question_end: u8,
    addresses_len: u8,
    /// Records the full path wrote (the answer cap applied to `addresses_len`).
    records: u8,
    addresses: [[u8; 4]; PLAIN_V4_ADDRESSES_MAX],
    key: [u8; KEY_BYTES_MAX],
}

impl AnswerSlot {
    const EMPTY: AnswerSlot = AnswerSlot {
        hash: 0,
        state_index: 0,
        ttl_be: [0; 4],
        flags: [0; 2],
        key_len: 0,
        question_end: 0,
        addresses_len: 0,
        records: 0,
        addresses: [[0; 4]; PLAIN_V4_ADDRESSES_MAX],
        key: [0; KEY_BYTES_MAX],
    };

    fn holds(&self, hash: u64, key: &[u8]) -> bool {
        self.hash == hash && same_key(&self.key, self.key_len as usize, key)
    }

    /// Free for an insert: empty, or built at another state index.
    fn is_free(&self, state_index: u64) -> bool {
        self.hash == 0 || self.state_index != state_index
    }
}

/// Counters (tests and benches read them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerCacheStats {
    pub hits: u64,
    pub inserts: u64,
    /// Inserts that replaced a current entry (both slots taken).
    pub evictions: u64,
}

/// One core's answer cache (see the module text).
#[derive(Default)]
pub struct AnswerCache {
    slots: Vec<AnswerSlot>,
    stats: AnswerCacheStats,
}

/// The key of `packet` (everything after the ID) when it may be cached.
fn key_of(packet: &[u8]) -> Option<&[u8]> {
    let key = packet.get(2..)?;
    (packet.len() >= HEADER_BYTES && key.len() <= KEY_BYTES_MAX).then_some(key)
}

fn hash_of(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    // 0 marks an empty slot.
    h.finish().max(1)
}

/// Whether the first `stored_len` bytes of `stored` are `key`, compared
/// eight bytes at a time in place (keys are a few dozen bytes: a call to
/// `memcmp` costs more than the comparison).
fn same_key(stored: &[u8; KEY_BYTES_MAX], stored_len: usize, key: &[u8]) -> bool {
    if stored_len != key.len() {
        return false;
    }
    let mut stored_words = stored[..stored_len].chunks_exact(8);
    let mut key_words = key.chunks_exact(8);
    for (a, b) in (&mut stored_words).zip(&mut key_words) {
        if u64::from_ne_bytes(a.try_into().expect("8 bytes")) != u64::from_ne_bytes(b.try_into().expect("8 bytes")) {
            return false;
        }
    }
    stored_words
        .remainder()
        .iter()
        .zip(key_words.remainder())
        .all(|(a, b)| a == b)
}

/// The two slots a hash may live in.
fn slots_of(hash: u64) -> (usize, usize) {
    let mask = ANSWER_SLOTS as u64 - 1;
    let first = hash & mask;
    let mut second = (hash >> 32) & mask;
    if second == first {
        second = (first + 1) & mask;
    }
    (first as usize, second as usize)
}

/// Where the question of `packet` ends, when the packet is exactly one
/// question (uncompressed name) followed by nothing or by one
/// option-less OPT record, with no answer or authority records; and
/// whether that OPT is there.
fn simple_question_end(packet: &[u8]) -> Option<(usize, bool)> {
    let header = packet.get(..HEADER_BYTES)?;
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return None;
    }
    let mut at = HEADER_BYTES;
    loop {
        let len = *packet.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let question_end = at + 4;
    let qtype = u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]);
    if qtype != rtype::A || qclass != CLASS_IN {
        return None;
    }
    match (count(10), packet.len() - question_end) {
        (0, 0) => Some((question_end, false)),
        (1, OPT_BYTES) => {
            let opt = &packet[question_end..];
            let opt_type = u16::from_be_bytes([opt[1], opt[2]]);
            let rdlen = u16::from_be_bytes([opt[9], opt[10]]);
            (opt[0] == 0 && opt_type == rtype::OPT && rdlen == 0).then_some((question_end, true))
        }
        _ => None,
    }
}

impl AnswerCache {
    /// Counters since the cache was made.
    pub fn stats(&self) -> AnswerCacheStats {
        self.stats
    }

    /// Forgets every answer (the zone changed).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| s.hash = 0);
    }

    /// Asks the CPU to bring `packet`'s two slots in, so that answering a
    /// batch does not wait for each probe in turn. Costs one hash.
    pub fn prefetch(&self, packet: &[u8]) {
        if self.slots.is_empty() {
            return;
        }
        let Some(key) = key_of(packet) else {
            return;
        };
        let (first, second) = slots_of(hash_of(key));
        prefetch_slot(&self.slots[first]);
        prefetch_slot(&self.slots[second]);
    }

    /// Writes the response to `packet` into `out` when its answer is
    /// cached and current at `state_index`; returns whether it did. The
    /// instances are drawn from `rng` as the full path draws them.
    pub fn answer(&mut self, packet: &[u8], state_index: u64, rng: &mut Rng, out: &mut Vec<u8>) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let Some(key) = key_of(packet) else {
            return false;
        };
        let hash = hash_of(key);
        let (first, second) = slots_of(hash);
        let slot = if self.slots[first].holds(hash, key) {
            &self.slots[first]
        } else if self.slots[second].holds(hash, key) {
            &self.slots[second]
        } else {
            return false;
        };
        if slot.state_index != state_index {
            return false;
        }
        let question_end = slot.question_end as usize;
        let records = slot.records as usize;
        let has_opt = packet.len() > question_end;
        debug_assert!(records >= 1 && records <= slot.addresses_len as usize);
        out.clear();
        out.extend_from_slice(&packet[..2]);
        out.extend_from_slice(&slot.flags);
        out.extend_from_slice(&[0, 1, 0, records as u8, 0, 0, 0, has_opt as u8]);
        out.extend_from_slice(&packet[HEADER_BYTES..question_end]);
        // The full path draws until it has written `records` and then
        // once more (the draw that finds the cap), unless none is left.
        let addresses_len = slot.addresses_len as usize;
        let mut order = [0u32; PLAIN_V4_ADDRESSES_MAX];
        let order = &mut order[..addresses_len];
        for (i, position) in order.iter_mut().enumerate() {
            *position = i as u32;
        }
        let draws = addresses_len.min(records + 1);
        for i in 0..draws {
            let address = slot.addresses[draw(order, i, rng) as usize];
            if i < records {
                out.extend_from_slice(&A_RECORD_HEAD);
                out.extend_from_slice(&slot.ttl_be);
                out.extend_from_slice(&[0, 4]);
                out.extend_from_slice(&address);
            }
        }
        if has_opt {
            let opt = &packet[question_end..question_end + OPT_BYTES];
            // The requester's size echoed; extended RCODE, version and
            // flags (DO) zero.
            out.extend_from_slice(&opt[..5]);
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&opt[9..]);
        }
        self.stats.hits += 1;
        true
    }

    /// Remembers `response`, which the full path wrote for `packet` at
    /// `state_index` from `plain`, when both have the cacheable form
    /// (else does nothing). Returns whether it was cached.
    pub fn insert(&mut self, packet: &[u8], response: &[u8], state_index: u64, plain: &PlainAnswer) -> bool {
        let Some(key) = key_of(packet) else {
            return false;
        };
        let Some((question_end, has_opt)) = simple_question_end(packet) else {
            return false;
        };
        let Some(records) = plain_response_records(packet, response, question_end, has_opt) else {
            return false;
        };
        if records == 0 || records > plain.len as usize {
            return false;
        }
        if self.slots.is_empty() {
            self.slots = vec![AnswerSlot::EMPTY; ANSWER_SLOTS];
        }
        let hash = hash_of(key);
        let mut slot = AnswerSlot {
            hash,
            state_index,
            ttl_be: plain.ttl_s.to_be_bytes(),
            flags: [response[2], response[3]],
            key_len: key.len() as u8,
            question_end: question_end as u8,
            addresses_len: plain.len,
            records: records as u8,
            addresses: plain.addresses,
            key: [0; KEY_BYTES_MAX],
        };
        slot.key[..key.len()].copy_from_slice(key);
        let at = self.place(hash, key, state_index);
        self.slots[at] = slot;
        self.stats.inserts += 1;
        true
    }

    /// The slot to write a new entry for `key` into, moving one current
    /// occupant to its other slot when that makes room.
    fn place(&mut self, hash: u64, key: &[u8], state_index: u64) -> usize {
        let (first, second) = slots_of(hash);
        for at in [first, second] {
            if self.slots[at].holds(hash, key) || self.slots[at].is_free(state_index) {
                return at;
            }
        }
        for at in [first, second] {
            let occupant = self.slots[at];
            let (a, b) = slots_of(occupant.hash);
            debug_assert!(at == a || at == b, "an entry lives in one of its two slots");
            let other = if at == a { b } else { a };
            if other != first && other != second && self.slots[other].is_free(state_index) {
                self.slots[other] = occupant;
                return at;
            }
        }
        self.stats.evictions += 1;
        first
    }
}

/// The number of A records in `response` when it is exactly the header,
/// `packet`'s question, A records owned by the question name, and the OPT
/// record when the query had one: the form [`AnswerCache::answer`]
/// rebuilds.
fn plain_response_records(packet: &[u8], response: &[u8], question_end: usize, has_opt: bool) -> Option<usize> {
    let header = response.get(..HEADER_BYTES)?;
    if header[..2] != packet[..2] || response.get(HEADER_BYTES..question_end)? != &packet[HEADER_BYTES..question_end] {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]) as usize;
    let records = count(6);
    if count(4) != 1 || count(8) != 0 || count(10) != has_opt as usize {
        return None;
    }
    let opt_bytes = if has_opt { OPT_BYTES } else { 0 };
    if response.len() != question_end + records * A_RECORD_BYTES + opt_bytes {
        return None;
    }
    let owned_by_question = response[question_end..question_end + records * A_RECORD_BYTES]
        .chunks_exact(A_RECORD_BYTES)
        .all(|r| r[..6] == A_RECORD_HEAD && r[10..12] == [0, 4]);
    owned_by_question.then_some(records)
}

#[cfg(target_arch = "x86_64")]
fn prefetch_slot(slot: &AnswerSlot) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let first_line = slot as *const AnswerSlot as *const i8;
    // SAFETY: a prefetch is a hint that never faults and reads nothing
    // into the program; both addresses are inside `slot`.
    unsafe {
        _mm_prefetch(first_line, _MM_HINT_T0);
        _mm_prefetch(first_line.add(64), _MM_HINT_T0);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_slot(_slot: &AnswerSlot) {}

#[cfg(test)]
#[path = "answer_cache_tests.rs"]
mod tests;
