//! The outside half of a CNAME chase (DNS.md §2): our answer ends in a
//! CNAME to a name outside our domains; the edge asks the recursors for
//! that name ([`pending`], [`chase_query`]) and appends the records of
//! their answer to ours ([`merge`]). Pure: bytes in, bytes out; the
//! sockets are in `dns::udp` and `dns::tcp`.
//!
//! Both messages are decoded into records with every name expanded (the
//! upstream answer's compression pointers mean nothing in ours), and the
//! merged message is written back without compression. When anything is
//! malformed or the result is too large, there is no merge: the caller
//! sends our answer alone, which is what a chase that failed gives.

use crate::dns::wire::{rtype, CLASS_IN, HEADER_BYTES, NAME_BYTES_MAX, UDP_PAYLOAD_BYTES_CLASSIC};

/// Records read from one message; a larger one is not merged.
pub const MESSAGE_RECORDS_MAX: usize = 512;
/// Upstream records appended to one answer (Consul keeps a few).
pub const CHASED_RECORDS_MAX: usize = 16;
/// Compression pointers followed in one name.
const POINTER_HOPS_MAX: usize = 32;

/// One resource record, names expanded (wire form, original case).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    name: Vec<u8>,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

/// A decoded message: header, the question as raw (uncompressed) bytes,
/// and the answer, authority and additional records.
#[derive(Debug, Clone)]
struct Message {
    header: [u8; HEADER_BYTES],
    question: Vec<u8>,
    qtype: u16,
    sections: [Vec<Record>; 3],
}

/// The name to ask the recursors for, and where its answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaseQuestion {
    /// The CNAME target, uncompressed wire form.
    pub target: Vec<u8>,
    /// `A` or `AAAA`.
    pub qtype: u16,
    /// Where the answer's records go: section (0 answer, 2 additional)
    /// and position in it.
    section: usize,
    position: usize,
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// Reads the (possibly compressed) name at `pos`: its expanded wire form
/// and the position after it in the message.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::with_capacity(64);
    let mut end = None;
    for _ in 0..POINTER_HOPS_MAX + NAME_BYTES_MAX {
        let len = *msg.get(pos)? as usize;
        match len {
            0 => {
                name.push(0);
                return (name.len() <= NAME_BYTES_MAX).then_some((name, end.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let target = (u16_at(msg, pos)? & 0x3fff) as usize;
                end.get_or_insert(pos + 2);
                if target >= pos {
                    return None; // pointers only go backwards: no loops
                }
                pos = target;
            }
            l if l <= 63 => {
                name.extend_from_slice(msg.get(pos..pos + 1 + l)?);
                if name.len() > NAME_BYTES_MAX {
                    return None;
                }
                pos += 1 + l;
            }
            _ => return None,
        }
    }
    None
}

/// RDATA with its names expanded, for the types that carry names.
fn read_rdata(msg: &[u8], rtype_: u16, start: usize, len: usize) -> Option<Vec<u8>> {
    let end = start.checked_add(len)?;
    let raw = msg.get(start..end)?;
    let (fixed_before, names, fixed_after) = match rtype_ {
        rtype::CNAME | rtype::NS | rtype::PTR => (0, 1, 0),
        rtype::SRV => (6, 1, 0),
        rtype::SOA => (0, 2, 20),
        15 /* MX */ => (2, 1, 0),
        _ => return Some(raw.to_vec()),
    };
    let mut out = msg.get(start..start + fixed_before)?.to_vec();
    let mut pos = start + fixed_before;
    for _ in 0..names {
        let (name, next) = read_name(msg, pos)?;
        out.extend_from_slice(&name);
        pos = next;
    }
    out.extend_from_slice(msg.get(pos..pos + fixed_after)?);
    (pos + fixed_after == end).then_some(out)
}

fn parse(msg: &[u8]) -> Option<Message> {
    let header: [u8; HEADER_BYTES] = msg.get(..HEADER_BYTES)?.try_into().ok()?;
    if u16_at(msg, 4)? != 1 {
        return None;
    }
    let (qname, pos) = read_name(msg, HEADER_BYTES)?;
    let qtype = u16_at(msg, pos)?;
    let mut question = qname;
    question.extend_from_slice(msg.get(pos..pos + 4)?);
    let mut pos = pos + 4;
    let counts = [u16_at(msg, 6)?, u16_at(msg, 8)?, u16_at(msg, 10)?];
    if counts.iter().map(|c| *c as usize).sum::<usize>() > MESSAGE_RECORDS_MAX {
        return None;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    for (section, count) in sections.iter_mut().zip(counts) {
        for _ in 0..count {
            let (name, next) = read_name(msg, pos)?;
            let rtype_ = u16_at(msg, next)?;
            let class = u16_at(msg, next + 2)?;
            let ttl = u32::from_be_bytes(msg.get(next + 4..next + 8)?.try_into().ok()?);
            let rdlen = u16_at(msg, next + 8)? as usize;
            let rdata = read_rdata(msg, rtype_, next + 10, rdlen)?;
            pos = next + 10 + rdlen;
            section.push(Record {
                name,
                rtype: rtype_,
                class,
                ttl,
                rdata,
            });
        }
    }
    Some(Message {
        header,
        question,
        qtype,
        sections,
    })
}

fn serialize(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&m.header);
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    for (i, section) in m.sections.iter().enumerate() {
        let at = 6 + 2 * i;
        out[at..at + 2].copy_from_slice(&(section.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&m.question);
    for r in m.sections.iter().flatten() {
        out.extend_from_slice(&r.name);
        out.extend_from_slice(&r.rtype.to_be_bytes());
        out.extend_from_slice(&r.class.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&r.rdata);
    }
    out
}

fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The name in `m` that still needs resolving: the target of a CNAME
/// (the last one, answer section first) or of an SRV record that nothing
/// in `m` answers for, with the address type to ask for.
fn find_pending(m: &Message) -> Option<ChaseQuestion> {
    let owners = || m.sections.iter().flatten().map(|r| r.name.as_slice());
    let unanswered = |target: &[u8]| !owners().any(|o| same_name(o, target));
    let qtype = if m.qtype == rtype::AAAA { rtype::AAAA } else { rtype::A };
    for section in [0, 2] {
        let found = m.sections[section]
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| r.rtype == rtype::CNAME && unanswered(&r.rdata));
        if let Some((position, r)) = found {
            return Some(ChaseQuestion {
                target: r.rdata.clone(),
                qtype,
                section,
                position: position + 1,
            });
        }
    }
    // An SRV target that is a hostname: its addresses go to ADDITIONAL.
    let srv_target = m.sections[0]
        .iter()
        .filter(|r| r.rtype == rtype::SRV && r.rdata.len() > 6)
        .map(|r| &r.rdata[6..])
        .find(|target| unanswered(target))?;
    Some(ChaseQuestion {
        target: srv_target.to_vec(),
        qtype,
        section: 2,
        position: 0,
    })
}

/// What a response still needs from the recursors, if anything.
pub fn pending(response: &[u8]) -> Option<ChaseQuestion> {
    find_pending(&parse(response)?)
}

/// The query to send the recursors for `chase`, with message id `id`.
pub fn chase_query(chase: &ChaseQuestion, id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_BYTES + chase.target.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&chase.target);
    q.extend_from_slice(&chase.qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// Our `response` with the address and CNAME records of the recursor's
/// `reply` placed after the CNAME they resolve; `None` when either does
/// not decode or the result would exceed `size_max` bytes.
pub fn merge(response: &[u8], reply: &[u8], size_max: usize) -> Option<Vec<u8>> {
    let mut ours = parse(response)?;
    let theirs = parse(reply)?;
    let chase = find_pending(&ours)?;
    if !same_name(&theirs.question[..theirs.question.len() - 4], &chase.target) {
        return None;
    }
    let chased = theirs.sections[0]
        .iter()
        .filter(|r| matches!(r.rtype, rtype::A | rtype::AAAA | rtype::CNAME) && r.class == CLASS_IN)
        .take(CHASED_RECORDS_MAX)
        .cloned();
    let section = &mut ours.sections[chase.section];
    let tail = section.split_off(chase.position.min(section.len()));
    section.extend(chased);
    section.extend(tail);
    let merged = serialize(&ours);
    (merged.len() <= size_max).then_some(merged)
}

/// The largest UDP answer for `response`: the requester's size from our
/// OPT record (we echo it), else 512.
pub fn udp_size_max(response: &[u8]) -> usize {
    parse(response)
        .and_then(|m| {
            m.sections[2]
                .iter()
                .find(|r| r.rtype == rtype::OPT)
                .map(|r| r.class as usize)
        })
        .map_or(UDP_PAYLOAD_BYTES_CLASSIC, |size| size.max(UDP_PAYLOAD_BYTES_CLASSIC))
}
