//! The SRV form of a cached answer: the full path's SRV response cut into
//! one chunk per candidate instance (its SRV record and its ADDITIONAL
//! records), so that a hit draws the instances in a new order, writes
//! their SRV records, and writes each one's additional records owned by a
//! pointer to the offset its target got in *this* response.
//!
//! That is byte for byte what the full path writes for the same draws
//! when every instance's records are position independent: the SRV
//! target written whole (never compressed), and every additional record
//! owned by a pointer to its own instance's target. The full path says
//! when that holds ([`SrvDraws`], set only for such instances), and
//! [`cut_into_chunks`] checks the response has exactly that shape.
//!
//! Body layout (in the [`BodyRing`](super::body_ring::BodyRing)):
//! `candidates + 1` little-endian `u16` chunk starts, then the chunks.
//! Chunk `j` (the `j`-th candidate in the order the full path drew from):
//! one byte, the length of the SRV record after its owner pointer; those
//! bytes; then each additional record after its owner pointer (type,
//! class, TTL, RDLENGTH, RDATA; delimited by RDLENGTH).

use crate::dns::rng::{draw, Rng};
use crate::dns::wire::{rtype, CLASS_IN, HEADER_BYTES};

/// Most candidate instances an SRV answer may have to be cached.
pub const SRV_CANDIDATES_MAX: usize = 16;

/// A record's fixed part after its owner: type, class, TTL, RDLENGTH.
const RECORD_FIXED_BYTES: usize = 10;
/// An SRV record's RDATA before its target: priority, weight, port.
const SRV_RDATA_HEAD_BYTES: usize = 6;
/// A pointer to the question name (the owner of every SRV answer).
const QUESTION_POINTER: [u8; 2] = [0xC0, 0x0C];
/// The bytes after the owner that every cached SRV record starts with.
const SRV_TYPE_CLASS: [u8; 4] = [0, rtype::SRV as u8, 0, CLASS_IN as u8];
/// From an SRV record's first byte (its owner pointer) to its target.
const SRV_TARGET_FROM_RECORD: usize = 2 + RECORD_FIXED_BYTES + SRV_RDATA_HEAD_BYTES;

/// What the full path drew for an SRV answer whose instances all have
/// position-independent records: the candidates in the order it drew
/// from, and the instances in the order it wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvDraws {
    candidates: [u32; SRV_CANDIDATES_MAX],
    written: [u32; SRV_CANDIDATES_MAX],
    candidates_len: u8,
    written_len: u8,
}

impl SrvDraws {
    /// The draws of `candidates` that wrote `written`; `None` when there
    /// are more than [`SRV_CANDIDATES_MAX`] candidates.
    pub fn new(candidates: &[u32], written: &[u32]) -> Option<SrvDraws> {
        if candidates.len() > SRV_CANDIDATES_MAX || written.len() > candidates.len() {
            return None;
        }
        let mut draws = SrvDraws {
            candidates: [0; SRV_CANDIDATES_MAX],
            written: [0; SRV_CANDIDATES_MAX],
            candidates_len: candidates.len() as u8,
            written_len: written.len() as u8,
        };
        draws.candidates[..candidates.len()].copy_from_slice(candidates);
        draws.written[..written.len()].copy_from_slice(written);
        Some(draws)
    }

    fn candidates(&self) -> &[u32] {
        &self.candidates[..self.candidates_len as usize]
    }

    fn written(&self) -> &[u32] {
        &self.written[..self.written_len as usize]
    }
}

/// The counts a cached SRV answer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvShape {
    /// Candidates, each answered once (ANCOUNT).
    pub answers: u8,
    /// Additional records without the OPT record.
    pub additional: u16,
}

/// Cuts `response` (the full path's answer to a query whose question ends
/// at `question_end`) into the body described in the module text, into
/// `body`, when it is: the header and question, one SRV record per
/// candidate (every candidate answered), their additional records each
/// owned by a pointer to its own record's target, in the order of the
/// records, and `opt_bytes` of OPT record at the end.
pub fn cut_into_chunks(
    response: &[u8],
    question_end: usize,
    opt_bytes: usize,
    draws: &SrvDraws,
    body: &mut Vec<u8>,
) -> Option<SrvShape> {
    let candidates = draws.candidates();
    let written = draws.written();
    let header = response.get(..HEADER_BYTES)?;
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]) as usize;
    let answers = count(6);
    let has_opt = opt_bytes > 0;
    if candidates.is_empty() || answers != candidates.len() || written.len() != answers {
        return None;
    }
    if count(4) != 1 || count(8) != 0 || count(10) < has_opt as usize {
        return None;
    }
    let additional = count(10) - has_opt as usize;
    // Where each written record is and where its target starts.
    let mut records = [(0usize, 0usize); SRV_CANDIDATES_MAX];
    let mut at = question_end;
    for record in records.iter_mut().take(answers) {
        if response.get(at..at + 2)? != QUESTION_POINTER || response.get(at + 2..at + 6)? != SRV_TYPE_CLASS {
            return None;
        }
        let rdlen = u16::from_be_bytes([*response.get(at + 10)?, *response.get(at + 11)?]) as usize;
        let end = at + 2 + RECORD_FIXED_BYTES + rdlen;
        let target = at + SRV_TARGET_FROM_RECORD;
        if rdlen <= SRV_RDATA_HEAD_BYTES || uncompressed_name_end(response.get(..end)?, target)? != end {
            return None;
        }
        *record = (at, end);
        at = end;
    }
    // Additional records: owned by a pointer to one of the targets, in
    // the records' order. `owners[k]` is where record k's own start.
    let mut owned = [(0usize, 0usize); SRV_CANDIDATES_MAX];
    let mut owner_before = 0;
    for _ in 0..additional {
        let pointer = u16::from_be_bytes([*response.get(at)?, *response.get(at + 1)?]);
        if pointer & 0xC000 != 0xC000 {
            return None;
        }
        let target = (pointer & 0x3FFF) as usize;
        let k = records[..answers]
            .iter()
            .position(|&(record, _)| record + SRV_TARGET_FROM_RECORD == target)?;
        if k < owner_before {
            return None;
        }
        owner_before = k;
        let rdlen = u16::from_be_bytes([*response.get(at + 10)?, *response.get(at + 11)?]) as usize;
        let end = at + 2 + RECORD_FIXED_BYTES + rdlen;
        response.get(at..end)?;
        if owned[k] == (0, 0) {
            owned[k].0 = at;
        }
        owned[k].1 = end;
        at = end;
    }
    if response.len() != at + opt_bytes {
        return None;
    }
    // Chunks in the candidates' order: candidate j was written as the
    // k-th record where `written[k] == candidates[j]`.
    body.clear();
    let starts_bytes = 2 * (answers + 1);
    body.resize(starts_bytes, 0);
    for (j, candidate) in candidates.iter().enumerate() {
        let k = written.iter().position(|w| w == candidate)?;
        let start = body.len();
        body[2 * j..2 * j + 2].copy_from_slice(&u16::try_from(start).ok()?.to_le_bytes());
        let (record, end) = records[k];
        let srv = &response[record + 2..end];
        body.push(u8::try_from(srv.len()).ok()?);
        body.extend_from_slice(srv);
        let (first, last) = owned[k];
        let mut at = first;
        while at < last {
            let rdlen = u16::from_be_bytes([response[at + 10], response[at + 11]]) as usize;
            let end = at + 2 + RECORD_FIXED_BYTES + rdlen;
            body.extend_from_slice(&response[at + 2..end]);
            at = end;
        }
    }
    let end = u16::try_from(body.len()).ok()?;
    body[2 * answers..starts_bytes].copy_from_slice(&end.to_le_bytes());
    Some(SrvShape {
        answers: answers as u8,
        additional: u16::try_from(additional).ok()?,
    })
}

/// Where the uncompressed name at `at` in `bytes` ends (after its root
/// byte); `None` for a pointer, a bad label or a name running off the end.
fn uncompressed_name_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
}

/// Writes the answer and additional records of a cached SRV `body` with
/// `shape.answers` candidates to `out` (which holds the header and the
/// question), drawing the order from `rng` as the full path does: one
/// draw per candidate. `out` must stay under 16 KiB (pointer range).
pub fn write_records(body: &[u8], shape: SrvShape, rng: &mut Rng, out: &mut Vec<u8>) {
    let answers = shape.answers as usize;
    debug_assert!((1..=SRV_CANDIDATES_MAX).contains(&answers));
    let start_of = |j: usize| u16::from_le_bytes([body[2 * j], body[2 * j + 1]]) as usize;
    let mut order = [0u32; SRV_CANDIDATES_MAX];
    let order = &mut order[..answers];
    for (i, position) in order.iter_mut().enumerate() {
        *position = i as u32;
    }
    let mut targets = [0u16; SRV_CANDIDATES_MAX];
    for (i, target) in targets.iter_mut().enumerate().take(answers) {
        let j = draw(order, i, rng) as usize;
        let chunk = start_of(j);
        let srv_len = body[chunk] as usize;
        let record = out.len();
        out.extend_from_slice(&QUESTION_POINTER);
        out.extend_from_slice(&body[chunk + 1..chunk + 1 + srv_len]);
        *target = (record + SRV_TARGET_FROM_RECORD) as u16;
    }
    for (&j, &target) in order.iter().zip(&targets) {
        let (chunk, end) = (start_of(j as usize), start_of(j as usize + 1));
        let mut at = chunk + 1 + body[chunk] as usize;
        let owner = (0xC000 | target).to_be_bytes();
        while at < end {
            let rdlen = u16::from_be_bytes([body[at + 8], body[at + 9]]) as usize;
            let record_end = at + RECORD_FIXED_BYTES + rdlen;
            out.extend_from_slice(&owner);
            out.extend_from_slice(&body[at..record_end]);
            at = record_end;
        }
    }
    debug_assert!(out.len() < 0x4000, "targets stay within pointer range");
}
