//! A snapshot region: a 64-byte header (magic, format, payload length, raft
//! index, ring position the snapshot pairs with) followed by the rkyv
//! archive of the state.

use crate::shm::region::SharedRegion;
use crate::snapshot::{self, SnapshotError};
use crate::state::State;

pub const SNAPSHOT_MAGIC: u64 = u64::from_le_bytes(*b"PCSNAP01");
const HEADER_BYTES: usize = 64;

/// What a snapshot region holds besides the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    /// Ring position of the first delta not included in the snapshot.
    pub ring_pos: u64,
}

/// Archives `state` into a new memfd.
pub fn write(state: &State, ring_pos: u64) -> std::io::Result<(SharedRegion, SnapshotMeta)> {
    let bytes = snapshot::encode(state);
    let mut region = SharedRegion::create("proconsul-snapshot", (HEADER_BYTES + bytes.len()) as u64)?;
    let buf = region.bytes_mut();
    buf[0..8].copy_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
    buf[8..16].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf[16..24].copy_from_slice(&state.index().to_le_bytes());
    buf[24..32].copy_from_slice(&ring_pos.to_le_bytes());
    buf[HEADER_BYTES..].copy_from_slice(&bytes);
    Ok((
        region,
        SnapshotMeta {
            index: state.index(),
            ring_pos,
        },
    ))
}

/// Validates a mapped snapshot region and rebuilds the state from it.
pub fn read(region: &SharedRegion) -> Result<(State, SnapshotMeta), SnapshotError> {
    let buf = region.bytes();
    if buf.len() < HEADER_BYTES {
        return Err(SnapshotError::Invalid("region shorter than its header".into()));
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
    if word(0) != SNAPSHOT_MAGIC {
        return Err(SnapshotError::Invalid("bad magic".into()));
    }
    let len = word(8) as usize;
    if HEADER_BYTES + len != buf.len() {
        return Err(SnapshotError::Invalid(format!(
            "length {len} does not match region size {}",
            buf.len()
        )));
    }
    let meta = SnapshotMeta {
        index: word(16),
        ring_pos: word(24),
    };
    let state = snapshot::decode(&buf[HEADER_BYTES..])?;
    if state.index() != meta.index {
        return Err(SnapshotError::Invalid(
            "header index differs from archived index".into(),
        ));
    }
    Ok((state, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use std::os::fd::AsFd;

    #[test]
    fn write_then_map_elsewhere() {
        let mut s = State::default();
        s.apply_command(
            3,
            &Command::KvSet {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 1,
            },
        );
        let (region, meta) = write(&s, 4096).unwrap();
        let fd = region.fd().as_fd().try_clone_to_owned().unwrap();
        let mapped = SharedRegion::from_fd(fd).unwrap();
        let (restored, meta2) = read(&mapped).unwrap();
        assert_eq!(meta, meta2);
        assert_eq!(restored.kv.get("k").unwrap().value, b"v");
    }

    #[test]
    fn corrupt_region_is_refused() {
        let mut s = State::default();
        s.apply_command(
            3,
            &Command::KvSet {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 1,
            },
        );
        let (mut region, _) = write(&s, 0).unwrap();
        let n = region.len();
        for b in &mut region.bytes_mut()[HEADER_BYTES..n] {
            *b = 0xff;
        }
        assert!(read(&region).is_err());
    }
}
