//! A fixed ring of bytes for answer bodies of varying size (the SRV
//! templates of the [`AnswerCache`](super::AnswerCache)): a push appends
//! at the head and may overwrite the oldest bodies; a [`BodyRef`] knows
//! whether its bytes are still there. Nothing is freed and nothing grows:
//! old bodies are simply written over, and a reference to one of them
//! answers `None` from then on.
//!
//! Positions are absolute byte counts since the ring was made (a `u64`,
//! never wrapping in practice); a body lives at `position % RING_BYTES`
//! and never straddles the end (a body that would is written at the start
//! of the next lap, the tail of this lap left unused).

/// Bytes in one ring (a power of two).
pub const RING_BYTES: usize = 4 << 20;

/// Largest body a ring takes.
pub const BODY_BYTES_MAX: usize = 4096;

const _: () = assert!(RING_BYTES.is_power_of_two() && BODY_BYTES_MAX <= RING_BYTES);

/// Where a body was pushed: its absolute position and length. Plain bytes
/// (alignment 1), so that it packs into a cache slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    at: [u8; 8],
    len: [u8; 2],
}

impl BodyRef {
    fn at(&self) -> u64 {
        u64::from_le_bytes(self.at)
    }

    fn len(&self) -> usize {
        u16::from_le_bytes(self.len) as usize
    }
}

/// The ring (allocated at the first push).
#[derive(Default)]
pub struct BodyRing {
    bytes: Vec<u8>,
    /// Absolute position of the next byte to write; only grows.
    head: u64,
}

impl BodyRing {
    /// Appends `body` and returns where it lives, or `None` when it is
    /// longer than [`BODY_BYTES_MAX`] (or empty).
    pub fn push(&mut self, body: &[u8]) -> Option<BodyRef> {
        if body.is_empty() || body.len() > BODY_BYTES_MAX {
            return None;
        }
        if self.bytes.is_empty() {
            self.bytes = vec![0; RING_BYTES];
        }
        let lap_left = RING_BYTES - (self.head as usize & (RING_BYTES - 1));
        let head_before = self.head;
        if body.len() > lap_left {
            self.head += lap_left as u64;
        }
        let at = self.head;
        let offset = at as usize & (RING_BYTES - 1);
        assert!(offset + body.len() <= RING_BYTES, "a body never straddles the end");
        self.bytes[offset..offset + body.len()].copy_from_slice(body);
        self.head += body.len() as u64;
        assert!(self.head > head_before, "the head only grows");
        Some(BodyRef {
            at: at.to_le_bytes(),
            len: (body.len() as u16).to_le_bytes(),
        })
    }

    /// The bytes of `body` while no later push has written over them.
    pub fn get(&self, body: BodyRef) -> Option<&[u8]> {
        let (at, len) = (body.at(), body.len());
        debug_assert!(at + len as u64 <= self.head, "a reference points behind the head");
        // Written over once the head has moved a whole ring past its end.
        if self.head > at + RING_BYTES as u64 || self.bytes.is_empty() {
            return None;
        }
        let offset = at as usize & (RING_BYTES - 1);
        Some(&self.bytes[offset..offset + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_back_until_a_lap_of_later_pushes_covers_it() {
        let mut ring = BodyRing::default();
        let first = ring.push(b"first body").unwrap();
        assert_eq!(ring.get(first), Some(&b"first body"[..]));
        let filler = vec![7u8; BODY_BYTES_MAX];
        let mut pushed = 0;
        // Up to a ring's worth after `first` it stays readable ...
        while pushed + BODY_BYTES_MAX <= RING_BYTES - 16 {
            ring.push(&filler).unwrap();
            pushed += BODY_BYTES_MAX;
            assert_eq!(ring.get(first), Some(&b"first body"[..]), "after {pushed} bytes");
        }
        // ... and once pushes have gone round past it, it is gone.
        ring.push(&filler).unwrap();
        ring.push(&filler).unwrap();
        assert_eq!(ring.get(first), None);
        assert_eq!(ring.bytes.len(), RING_BYTES, "the ring never grows");
    }

    #[test]
    fn a_body_that_would_straddle_the_end_starts_the_next_lap() {
        let mut ring = BodyRing::default();
        let body = vec![1u8; BODY_BYTES_MAX - 1];
        let mut refs = Vec::new();
        for _ in 0..RING_BYTES / body.len() + 3 {
            refs.push(ring.push(&body).unwrap());
        }
        for r in &refs {
            let offset = r.at() as usize % RING_BYTES;
            assert!(offset + r.len() <= RING_BYTES);
        }
        let last = *refs.last().unwrap();
        assert_eq!(ring.get(last).map(<[u8]>::len), Some(body.len()));
        assert_eq!(ring.get(refs[0]), None, "overwritten by the second lap");
    }

    #[test]
    fn empty_and_oversized_bodies_are_refused() {
        let mut ring = BodyRing::default();
        assert_eq!(ring.push(b""), None);
        assert_eq!(ring.push(&vec![0; BODY_BYTES_MAX + 1]), None);
        assert!(ring.push(&vec![0; BODY_BYTES_MAX]).is_some());
    }
}
