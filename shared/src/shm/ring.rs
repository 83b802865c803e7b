//! The delta ring: one writer (the control plane), any number of readers
//! (data-plane appliers), over a shared region.
//!
//! Layout: a 4 KiB header page, then `capacity` bytes of ring. Positions are
//! monotonic byte counts; the physical offset is `pos % capacity`. Records
//! are 16-byte aligned: a 16-byte record header (payload length, kind, raft
//! index) and the payload padded to 16. A record that would cross the end
//! of the ring is preceded by a padding record that fills the tail.
//!
//! The writer never waits for readers. A reader that falls more than
//! `capacity - RECORD_BYTES_MAX` behind may see bytes being overwritten, so
//! it checks the head again after copying a record and reports
//! [`ReadOutcome::Overrun`]; it then resyncs from a fresh snapshot.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::limits::{DELTA_BYTES_MAX, DELTA_RING_BYTES_MIN};
use crate::shm::futex;
use crate::shm::region::SharedRegion;

pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"PCRING01");
pub const RING_FORMAT_VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 4096;
const RECORD_HEADER_BYTES: u64 = 16;
const ALIGN: u64 = 16;
/// The largest record, header included.
pub const RECORD_BYTES_MAX: u64 = RECORD_HEADER_BYTES + DELTA_BYTES_MAX as u64;

const KIND_DELTA: u32 = 1;
const KIND_PADDING: u32 = 2;

/// The header page. Every field a reader looks at while the writer runs is
/// atomic.
#[repr(C)]
pub struct RingHeader {
    magic: u64,
    format_version: u32,
    _pad0: u32,
    capacity: u64,
    /// Identifies the control-plane instance that owns the ring.
    epoch: u64,
    /// Bytes ever written: the position of the next record.
    head: AtomicU64,
    /// Raft index of the last record written.
    published_index: AtomicU64,
    /// Futex word, bumped after every publish.
    wake_seq: AtomicU32,
    leader_known: AtomicU32,
    /// Control plane's wall clock (unix ms) at its last heartbeat.
    heartbeat_ms: AtomicU64,
    /// Milliseconds since this server last heard from the leader.
    last_contact_ms: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<RingHeader>() <= HEADER_BYTES);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("delta record of {0} bytes exceeds the {DELTA_BYTES_MAX}-byte limit")]
    RecordTooLarge(usize),
    #[error("ring capacity {0} is below {DELTA_RING_BYTES_MIN} or not a multiple of 16")]
    BadCapacity(u64),
    #[error("region is not a delta ring (magic/version/capacity mismatch)")]
    NotARing,
    #[error("delta indexes must increase: {index} after {previous}")]
    IndexNotIncreasing { index: u64, previous: u64 },
}

/// What a reader found at its cursor.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A record: its raft index and its payload (copied, 16-byte aligned).
    Record { index: u64 },
    /// Nothing new.
    Empty,
    /// The writer lapped this reader: resync from a snapshot.
    Overrun,
}

fn header(region: &SharedRegion) -> &RingHeader {
    // SAFETY: the region is at least HEADER_BYTES long (checked at
    // construction), page aligned, and RingHeader is repr(C) of atomics and
    // plain integers, valid for any bit pattern.
    unsafe { &*(region.as_ptr() as *const RingHeader) }
}

fn padded(len: u64) -> u64 {
    len.div_ceil(ALIGN) * ALIGN
}

/// Liveness and leadership as the control plane last wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub unix_ms: u64,
    pub leader_known: bool,
    pub last_contact_ms: u64,
}

/// The writer side.
pub struct RingWriter {
    region: SharedRegion,
    capacity: u64,
    head: u64,
    last_index: u64,
}

impl RingWriter {
    /// Creates a ring of `capacity` bytes in a new memfd.
    pub fn create(capacity: u64, epoch: u64) -> Result<RingWriter, RingError> {
        if capacity < DELTA_RING_BYTES_MIN || !capacity.is_multiple_of(ALIGN) {
            return Err(RingError::BadCapacity(capacity));
        }
        let mut region = SharedRegion::create("proconsul-delta-ring", HEADER_BYTES as u64 + capacity)
            .map_err(|_| RingError::BadCapacity(capacity))?;
        let p = region.as_mut_ptr() as *mut RingHeader;
        // SAFETY: fresh zeroed mapping we own, nobody else maps it yet.
        unsafe {
            (*p).magic = RING_MAGIC;
            (*p).format_version = RING_FORMAT_VERSION;
            (*p).capacity = capacity;
            (*p).epoch = epoch;
        }
        Ok(RingWriter {
            region,
            capacity,
            head: 0,
            last_index: 0,
        })
    }

    pub fn region(&self) -> &SharedRegion {
        &self.region
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Position of the next record: a reader starting here sees every
    /// record appended from now on.
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Appends one record and wakes readers.
    pub fn append(&mut self, index: u64, payload: &[u8]) -> Result<(), RingError> {
        if payload.len() > DELTA_BYTES_MAX {
            return Err(RingError::RecordTooLarge(payload.len()));
        }
        if index <= self.last_index {
            return Err(RingError::IndexNotIncreasing {
                index,
                previous: self.last_index,
            });
        }
        let need = RECORD_HEADER_BYTES + padded(payload.len() as u64);
        let mut pos = self.head;
        let tail_room = self.capacity - pos % self.capacity;
        if tail_room < need {
            self.write_record_header(pos, KIND_PADDING, tail_room - RECORD_HEADER_BYTES, 0);
            pos += tail_room;
        }
        self.write_record_header(pos, KIND_DELTA, payload.len() as u64, index);
        let off = HEADER_BYTES as u64 + pos % self.capacity + RECORD_HEADER_BYTES;
        // SAFETY: off + len is inside the region: `need <= tail_room` holds here.
        unsafe {
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.region.as_mut_ptr().add(off as usize),
                payload.len(),
            );
        }
        pos += need;
        debug_assert_eq!(pos % ALIGN, 0);
        let h = header(&self.region);
        h.published_index.store(index, Ordering::Relaxed);
        h.head.store(pos, Ordering::Release);
        h.wake_seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&h.wake_seq);
        self.head = pos;
        self.last_index = index;
        Ok(())
    }

    /// Records liveness and leadership for readers.
    pub fn heartbeat(&self, beat: Heartbeat) {
        let h = header(&self.region);
        h.leader_known.store(beat.leader_known as u32, Ordering::Relaxed);
        h.last_contact_ms.store(beat.last_contact_ms, Ordering::Relaxed);
        h.heartbeat_ms.store(beat.unix_ms, Ordering::Release);
    }

    fn write_record_header(&mut self, pos: u64, kind: u32, len: u64, index: u64) {
        let off = HEADER_BYTES + (pos % self.capacity) as usize;
        let mut rec = [0u8; RECORD_HEADER_BYTES as usize];
        rec[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&kind.to_le_bytes());
        rec[8..16].copy_from_slice(&index.to_le_bytes());
        self.region.bytes_mut()[off..off + rec.len()].copy_from_slice(&rec);
    }
}

/// The reader side. Each reader owns its cursor.
pub struct RingReader {
    region: SharedRegion,
    capacity: u64,
    cursor: u64,
    last_index: u64,
    payload: rkyv::util::AlignedVec<16>,
}

impl RingReader {
    /// Opens a ring received from the writer, starting at `cursor`.
    pub fn open(region: SharedRegion, cursor: u64) -> Result<RingReader, RingError> {
        if region.len() < HEADER_BYTES {
            return Err(RingError::NotARing);
        }
        let h = header(&region);
        let capacity = h.capacity;
        if h.magic != RING_MAGIC
            || h.format_version != RING_FORMAT_VERSION
            || !capacity.is_multiple_of(ALIGN)
            || region.len() as u64 != HEADER_BYTES as u64 + capacity
            || !cursor.is_multiple_of(ALIGN)
        {
            return Err(RingError::NotARing);
        }
        Ok(RingReader {
            region,
            capacity,
            cursor,
            last_index: 0,
            payload: Default::default(),
        })
    }

    pub fn epoch(&self) -> u64 {
        header(&self.region).epoch
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Moves the cursor (after a resync to a snapshot taken at `pos`).
    pub fn seek(&mut self, pos: u64) {
        assert_eq!(pos % ALIGN, 0, "ring positions are 16-byte aligned");
        self.cursor = pos;
        self.last_index = 0;
    }

    /// The payload of the last [`ReadOutcome::Record`].
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn heartbeat(&self) -> Heartbeat {
        let h = header(&self.region);
        let unix_ms = h.heartbeat_ms.load(Ordering::Acquire);
        Heartbeat {
            unix_ms,
            leader_known: h.leader_known.load(Ordering::Relaxed) != 0,
            last_contact_ms: h.last_contact_ms.load(Ordering::Relaxed),
        }
    }

    pub fn published_index(&self) -> u64 {
        header(&self.region).published_index.load(Ordering::Acquire)
    }

    fn lapped(&self, head: u64) -> bool {
        head.saturating_sub(self.cursor) + RECORD_BYTES_MAX > self.capacity
    }

    /// Reads the next record, if any.
    pub fn read_next(&mut self) -> ReadOutcome {
        loop {
            let h = header(&self.region);
            let head = h.head.load(Ordering::Acquire);
            if head == self.cursor {
                return ReadOutcome::Empty;
            }
            assert!(
                head > self.cursor,
                "ring cursor {} is ahead of head {}",
                self.cursor,
                head
            );
            if self.lapped(head) {
                return ReadOutcome::Overrun;
            }
            let phys = (self.cursor % self.capacity) as usize;
            let base = HEADER_BYTES + phys;
            let bytes = self.region.bytes();
            let len = u32::from_le_bytes(bytes[base..base + 4].try_into().unwrap()) as u64;
            let kind = u32::from_le_bytes(bytes[base + 4..base + 8].try_into().unwrap());
            let index = u64::from_le_bytes(bytes[base + 8..base + 16].try_into().unwrap());
            let tail_room = self.capacity - phys as u64;
            let total = RECORD_HEADER_BYTES + padded(len);
            if total > tail_room
                || (kind != KIND_DELTA && kind != KIND_PADDING)
                || len > DELTA_BYTES_MAX as u64 && kind == KIND_DELTA
            {
                // Torn by a lapping writer, or corrupt: either way resync.
                return ReadOutcome::Overrun;
            }
            if kind == KIND_PADDING {
                self.cursor += tail_room;
                continue;
            }
            self.payload.clear();
            self.payload
                .extend_from_slice(&bytes[base + 16..base + 16 + len as usize]);
            fence(Ordering::Acquire);
            if self.lapped(h.head.load(Ordering::Acquire)) {
                return ReadOutcome::Overrun;
            }
            if index <= self.last_index {
                return ReadOutcome::Overrun;
            }
            self.cursor += total;
            self.last_index = index;
            return ReadOutcome::Record { index };
        }
    }

    /// Sleeps until the writer publishes something new or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let h = header(&self.region);
        let seq = h.wake_seq.load(Ordering::Acquire);
        if h.head.load(Ordering::Acquire) != self.cursor {
            return;
        }
        futex::wait(&h.wake_seq, seq, timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn reader_for(w: &RingWriter, cursor: u64) -> RingReader {
        let fd = w.region().fd().as_fd().try_clone_to_owned().unwrap();
        RingReader::open(SharedRegion::from_fd(fd).unwrap(), cursor).unwrap()
    }

    #[test]
    fn rejects_small_capacity_and_large_records() {
        assert!(matches!(RingWriter::create(1024, 1), Err(RingError::BadCapacity(1024))));
        let mut w = RingWriter::create(DELTA_RING_BYTES_MIN, 1).unwrap();
        let big = vec![0u8; DELTA_BYTES_MAX + 1];
        assert_eq!(w.append(1, &big), Err(RingError::RecordTooLarge(DELTA_BYTES_MAX + 1)));
        assert_eq!(w.append(1, b"a"), Ok(()));
        assert_eq!(
            w.append(1, b"b"),
            Err(RingError::IndexNotIncreasing { index: 1, previous: 1 })
        );
    }

    #[test]
    fn reads_in_order_across_wraparound() {
        let mut w = RingWriter::create(DELTA_RING_BYTES_MIN, 7).unwrap();
        let mut r = reader_for(&w, 0);
        assert_eq!(r.epoch(), 7);
        let chunk = vec![0xabu8; 100_000];
        let mut next_read = 1u64;
        for i in 1..=2_000u64 {
            let mut payload = chunk.clone();
            payload[..8].copy_from_slice(&i.to_le_bytes());
            w.append(i, &payload[..(i as usize * 37) % 100_000 + 8]).unwrap();
            // Read every few appends so the reader never falls a lap behind.
            if i % 50 == 0 {
                loop {
                    match r.read_next() {
                        ReadOutcome::Record { index } => {
                            assert_eq!(index, next_read);
                            assert_eq!(&r.payload()[..8], &index.to_le_bytes());
                            assert_eq!(r.payload().len(), (index as usize * 37) % 100_000 + 8);
                            next_read += 1;
                        }
                        ReadOutcome::Empty => break,
                        ReadOutcome::Overrun => panic!("unexpected overrun"),
                    }
                }
            }
        }
        assert_eq!(next_read, 2_001);
        assert!(w.head() > DELTA_RING_BYTES_MIN, "the test really wrapped around");
    }

    #[test]
    fn lapped_reader_sees_overrun_then_resyncs() {
        let mut w = RingWriter::create(DELTA_RING_BYTES_MIN, 1).unwrap();
        let mut r = reader_for(&w, 0);
        let payload = vec![1u8; 1_000_000];
        for i in 1..=40 {
            w.append(i, &payload).unwrap();
        }
        assert_eq!(r.read_next(), ReadOutcome::Overrun);
        r.seek(w.head());
        w.append(41, b"after").unwrap();
        assert_eq!(r.read_next(), ReadOutcome::Record { index: 41 });
        assert_eq!(r.payload(), b"after");
        assert_eq!(r.read_next(), ReadOutcome::Empty);
    }

    #[test]
    fn heartbeat_round_trips() {
        let w = RingWriter::create(DELTA_RING_BYTES_MIN, 1).unwrap();
        let r = reader_for(&w, 0);
        let beat = Heartbeat {
            unix_ms: 123,
            leader_known: true,
            last_contact_ms: 4,
        };
        w.heartbeat(beat);
        assert_eq!(r.heartbeat(), beat);
    }

    #[test]
    fn wait_returns_when_data_is_there() {
        let mut w = RingWriter::create(DELTA_RING_BYTES_MIN, 1).unwrap();
        let r = reader_for(&w, 0);
        w.append(1, b"x").unwrap();
        let t = std::time::Instant::now();
        r.wait(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
