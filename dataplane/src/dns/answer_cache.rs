//! The per-core answer cache: a query's bytes (all but its ID) → the
//! A or SRV answer of a service, so that a repeated question is answered
//! with one hash of the packet, one table probe and a copy, without
//! parsing, classifying or looking the service up.
//!
//! What it holds: only answers the full path ([`crate::dns::answer`])
//! says may be rebuilt ([`CacheableAnswer`]): A answers built from a
//! `PlainV4` table entry (every instance passing, ≤ 8 distinct IPv4
//! addresses), and SRV answers of a `.service` lookup whose candidates
//! (≤ [`SRV_CANDIDATES_MAX`]) were all answered with position-independent
//! records ([`srv_template`]). Only queries of one exact byte form: one
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
//! [`KEY_BYTES_MAX`] bytes (longer queries always take the full path);
//! SRV bodies live in a fixed [`BodyRing`] of [`body_ring::RING_BYTES`]
//! (allocated at the first SRV insert), where the oldest are written over
//! (their slots then miss and are rebuilt by the full path).
//! Each key may live in one of two slots (two halves of its hash); an
//! insert into two taken slots moves one occupant to its other slot when
//! that one is free, else replaces it. Lookups never probe more than the
//! two slots, and a batch of queries can [`AnswerCache::prefetch`] its
//! slots before answering, so the table's cache misses overlap. The hash
//! (FxHash of the key) is not keyed: a flood of crafted names can only
//! evict entries (those queries then cost the full path), never grow the
//! table or lengthen a probe; and only names that answered from a
//! `PlainV4` entry are ever inserted.

pub mod body_ring;
pub mod srv_template;

use rustc_hash::FxHasher;
use std::hash::Hasher;

use crate::dns::rng::{draw, Rng};
use crate::dns::service_cache::PLAIN_V4_ADDRESSES_MAX;
use crate::dns::wire::{rtype, CLASS_IN, HEADER_BYTES};
use body_ring::{BodyRef, BodyRing};
pub use srv_template::{SrvDraws, SrvShape, SRV_CANDIDATES_MAX};

/// Slots in one core's table (a power of two).
pub const ANSWER_SLOTS: usize = 32_768;

/// Longest key (the packet after its two ID bytes) that can be cached.
pub const KEY_BYTES_MAX: usize = 69;

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

/// What the full path says the cache may keep of its last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheableAnswer {
    /// An A answer from a `PlainV4` entry.
    PlainA(PlainAnswer),
    /// An SRV answer whose records are position independent.
    Srv(SrvDraws),
}

/// The answer part of a slot (plain bytes: alignment 1, so that the slot
/// packs into two cache lines).
#[derive(Clone, Copy)]
#[repr(u8)]
enum SlotAnswer {
    PlainA {
        ttl_be: [u8; 4],
        addresses_len: u8,
        /// Records the full path wrote (the answer cap applied to `addresses_len`).
        records: u8,
        addresses: [[u8; 4]; PLAIN_V4_ADDRESSES_MAX],
    },
    Srv {
        body: BodyRef,
        answers: u8,
        additional_be: [u8; 2],
    },
}

/// One cached answer; two cache lines. `hash == 0` marks an empty slot.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct AnswerSlot {
    hash: u64,
    /// The state index the answer was built at.
    state_index: u64,
    /// Bytes 2 and 3 of the full path's response (QR, AA, RD, RA, TC, RCODE).
    flags: [u8; 2],
    key_len: u8,
    /// Where the question ends in the packet (an OPT record may follow).
    question_end: u8,
    answer: SlotAnswer,
    key: [u8; KEY_BYTES_MAX],
}

impl AnswerSlot {
    const EMPTY: AnswerSlot = AnswerSlot {
        hash: 0,
        state_index: 0,
        flags: [0; 2],
        key_len: 0,
        question_end: 0,
        answer: SlotAnswer::PlainA {
            ttl_be: [0; 4],
            addresses_len: 0,
            records: 0,
            addresses: [[0; 4]; PLAIN_V4_ADDRESSES_MAX],
        },
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
    /// The SRV bodies.
    bodies: BodyRing,
    /// A reused buffer for cutting an SRV response into its body.
    body_scratch: Vec<u8>,
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

/// The query form the cache rebuilds: where the question ends, its type
/// (A or SRV), and how many OPT bytes follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SimpleQuery {
    question_end: usize,
    qtype: u16,
    opt_bytes: usize,
}

/// The form of `packet` when it is exactly one A or SRV question
/// (uncompressed name) followed by nothing or by one option-less OPT
/// record, with no answer or authority records.
fn simple_query(packet: &[u8]) -> Option<SimpleQuery> {
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
    if (qtype != rtype::A && qtype != rtype::SRV) || qclass != CLASS_IN {
        return None;
    }
    let simple = |opt_bytes| SimpleQuery {
        question_end,
        qtype,
        opt_bytes,
    };
    match (count(10), packet.len() - question_end) {
        (0, 0) => Some(simple(0)),
        (1, OPT_BYTES) => {
            let opt = &packet[question_end..];
            let opt_type = u16::from_be_bytes([opt[1], opt[2]]);
            let rdlen = u16::from_be_bytes([opt[9], opt[10]]);
            (opt[0] == 0 && opt_type == rtype::OPT && rdlen == 0).then_some(simple(OPT_BYTES))
        }
        _ => None,
    }
}

/// The OPT record answering the option-less OPT `opt` of a query: the
/// requester's size echoed; extended RCODE, version and flags (DO) zero.
fn answer_opt(opt: &[u8]) -> [u8; OPT_BYTES] {
    let mut answer = [0; OPT_BYTES];
    answer[..5].copy_from_slice(&opt[..5]);
    answer[9..].copy_from_slice(&opt[9..OPT_BYTES]);
    answer
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
        let has_opt = packet.len() > question_end;
        let head = |out: &mut Vec<u8>, answers: u8, additional: u16| {
            let additional = (additional + has_opt as u16).to_be_bytes();
            out.clear();
            out.extend_from_slice(&packet[..2]);
            out.extend_from_slice(&slot.flags);
            out.extend_from_slice(&[0, 1, 0, answers, 0, 0, additional[0], additional[1]]);
            out.extend_from_slice(&packet[HEADER_BYTES..question_end]);
        };
        match slot.answer {
            SlotAnswer::PlainA {
                ttl_be,
                addresses_len,
                records,
                addresses,
            } => {
                head(out, records, 0);
                write_plain_a(&addresses[..addresses_len as usize], records, ttl_be, rng, out);
            }
            SlotAnswer::Srv {
                body,
                answers,
                additional_be,
            } => {
                // Written over in the ring: the full path answers (and
                // inserts again).
                let Some(body) = self.bodies.get(body) else {
                    return false;
                };
                let shape = SrvShape {
                    answers,
                    additional: u16::from_be_bytes(additional_be),
                };
                head(out, answers, shape.additional);
                srv_template::write_records(body, shape, rng, out);
            }
        }
        if has_opt {
            out.extend_from_slice(&answer_opt(&packet[question_end..]));
        }
        self.stats.hits += 1;
        true
    }

    /// Remembers `response`, which the full path wrote for `packet` at
    /// `state_index` and said `cacheable` of, when both have the
    /// cacheable form (else does nothing). Returns whether it was cached.
    pub fn insert(&mut self, packet: &[u8], response: &[u8], state_index: u64, cacheable: &CacheableAnswer) -> bool {
        let Some(key) = key_of(packet) else {
            return false;
        };
        let Some(query) = simple_query(packet) else {
            return false;
        };
        let question_end = query.question_end;
        // The response starts with the query's ID and question and ends
        // with the OPT record the cache would write.
        let opt_ok = query.opt_bytes == 0
            || response.len() >= OPT_BYTES
                && response[response.len() - OPT_BYTES..] == answer_opt(&packet[question_end..]);
        if !opt_ok
            || response.get(..2) != packet.get(..2)
            || response.get(HEADER_BYTES..question_end) != packet.get(HEADER_BYTES..question_end)
        {
            return false;
        }
        let answer = match (query.qtype, cacheable) {
            (rtype::A, CacheableAnswer::PlainA(plain)) => {
                let Some(records) = plain_a_records(response, question_end, query.opt_bytes) else {
                    return false;
                };
                if records == 0 || records > plain.len as usize {
                    return false;
                }
                SlotAnswer::PlainA {
                    ttl_be: plain.ttl_s.to_be_bytes(),
                    addresses_len: plain.len,
                    records: records as u8,
                    addresses: plain.addresses,
                }
            }
            (rtype::SRV, CacheableAnswer::Srv(draws)) => {
                let mut body = std::mem::take(&mut self.body_scratch);
                let shape = srv_template::cut_into_chunks(response, question_end, query.opt_bytes, draws, &mut body);
                let pushed = shape.and_then(|shape| Some((shape, self.bodies.push(&body)?)));
                self.body_scratch = body;
                let Some((shape, body)) = pushed else {
                    return false;
                };
                SlotAnswer::Srv {
                    body,
                    answers: shape.answers,
                    additional_be: shape.additional.to_be_bytes(),
                }
            }
            _ => return false,
        };
        if self.slots.is_empty() {
            self.slots = vec![AnswerSlot::EMPTY; ANSWER_SLOTS];
        }
        let hash = hash_of(key);
        let mut slot = AnswerSlot {
            hash,
            state_index,
            flags: [response[2], response[3]],
            key_len: key.len() as u8,
            question_end: question_end as u8,
            answer,
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

/// Writes the A records of a plain answer: the full path draws until it
/// has written `records` and then once more (the draw that finds the
/// cap), unless none is left.
fn write_plain_a(addresses: &[[u8; 4]], records: u8, ttl_be: [u8; 4], rng: &mut Rng, out: &mut Vec<u8>) {
    let records = records as usize;
    debug_assert!(records >= 1 && records <= addresses.len());
    let mut order = [0u32; PLAIN_V4_ADDRESSES_MAX];
    let order = &mut order[..addresses.len()];
    for (i, position) in order.iter_mut().enumerate() {
        *position = i as u32;
    }
    let draws = addresses.len().min(records + 1);
    for i in 0..draws {
        let address = addresses[draw(order, i, rng) as usize];
        if i < records {
            out.extend_from_slice(&A_RECORD_HEAD);
            out.extend_from_slice(&ttl_be);
            out.extend_from_slice(&[0, 4]);
            out.extend_from_slice(&address);
        }
    }
}

/// The number of A records in `response` when it is exactly the header,
/// a question ending at `question_end`, A records owned by the question
/// name, and `opt_bytes` of OPT record: the form [`write_plain_a`]
/// rebuilds.
fn plain_a_records(response: &[u8], question_end: usize, opt_bytes: usize) -> Option<usize> {
    let header = response.get(..HEADER_BYTES)?;
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]) as usize;
    let records = count(6);
    if count(4) != 1 || count(8) != 0 || count(10) != (opt_bytes > 0) as usize {
        return None;
    }
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

#[cfg(test)]
#[path = "answer_cache_srv_tests.rs"]
mod srv_tests;
