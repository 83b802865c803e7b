//! Where the newest raft snapshot is kept: the file `<raft dir>/snapshot`,
//! or memory in `-dev` mode. The data is the rkyv state archive
//! (`proconsul_shared::snapshot`); the meta is openraft's (last log id,
//! membership, snapshot id).
//!
//! File layout (little-endian): magic `PCRSNP01`, u64 meta length, u64 data
//! length, u32 crc32 of meta and data, u32 zero, postcard meta, data. The
//! file is replaced atomically (temp + fsync + rename + directory fsync).
//! Only a newer snapshot replaces the stored one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::durable_file::{read_bounded, write_atomically_with};
use super::limits::{SNAPSHOT_DATA_BYTES_MAX, SNAPSHOT_META_BYTES_MAX};
use super::types::SnapshotMeta;

const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_MAGIC: &[u8; 8] = b"PCRSNP01";
const HEADER_BYTES: usize = 32;

/// A snapshot as stored: meta plus the state archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The rkyv state archive.
    pub data: Vec<u8>,
}

struct Slot {
    meta: Option<SnapshotMeta>,
    /// The data, in memory mode only.
    data: Option<Vec<u8>>,
}

/// The newest snapshot, on disk or in memory.
pub struct SnapshotStore {
    /// `None` in memory mode.
    dir: Option<PathBuf>,
    slot: Mutex<Slot>,
}

impl SnapshotStore {
    /// Snapshots kept in memory only (`-dev`).
    pub fn in_memory() -> SnapshotStore {
        SnapshotStore {
            dir: None,
            slot: Mutex::new(Slot { meta: None, data: None }),
        }
    }

    /// Snapshots kept in `dir`. Reads the stored meta now, so a damaged
    /// snapshot refuses to start instead of surfacing later.
    pub fn durable(dir: &Path) -> io::Result<SnapshotStore> {
        std::fs::create_dir_all(dir)?;
        let meta = read_file(dir)?.map(|s| s.meta);
        Ok(SnapshotStore {
            dir: Some(dir.to_path_buf()),
            slot: Mutex::new(Slot { meta, data: None }),
        })
    }

    /// Meta of the stored snapshot, if any.
    #[cfg(test)]
    pub fn meta(&self) -> Option<SnapshotMeta> {
        self.lock().meta.clone()
    }

    /// Stores `data` under `meta` unless the stored snapshot is at least as
    /// new. Returns whether it was stored. Blocking (file IO).
    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<bool> {
        if data.len() as u64 > SNAPSHOT_DATA_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "snapshot of {} bytes exceeds the {SNAPSHOT_DATA_BYTES_MAX}-byte limit",
                    data.len()
                ),
            ));
        }
        let mut slot = self.lock();
        if let Some(stored) = &slot.meta {
            if stored.last_log_id >= meta.last_log_id {
                return Ok(false);
            }
        }
        match &self.dir {
            Some(dir) => write_file(dir, meta, data)?,
            None => slot.data = Some(data.to_vec()),
        }
        slot.meta = Some(meta.clone());
        Ok(true)
    }

    /// The stored snapshot with its data. Blocking (file IO).
    pub fn load(&self) -> io::Result<Option<StoredSnapshot>> {
        let slot = self.lock();
        match &self.dir {
            Some(dir) => read_file(dir),
            None => Ok(slot
                .meta
                .clone()
                .zip(slot.data.clone())
                .map(|(meta, data)| StoredSnapshot { meta, data })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().expect("snapshot store lock poisoned")
    }
}

fn write_file(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let meta_bytes = postcard::to_allocvec(meta).map_err(io::Error::other)?;
    if meta_bytes.len() as u64 > SNAPSHOT_META_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("snapshot meta of {} bytes exceeds the limit", meta_bytes.len()),
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta_bytes);
    crc.update(data);
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&(meta_bytes.len() as u64).to_le_bytes());
    header.extend_from_slice(&(data.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc.finalize().to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    debug_assert_eq!(header.len(), HEADER_BYTES);
    write_atomically_with(dir, SNAPSHOT_FILE, |f| {
        f.write_all(&header)?;
        f.write_all(&meta_bytes)?;
        f.write_all(data)
    })
}

fn read_file(dir: &Path) -> io::Result<Option<StoredSnapshot>> {
    let bytes_max = HEADER_BYTES as u64 + SNAPSHOT_META_BYTES_MAX + SNAPSHOT_DATA_BYTES_MAX;
    let Some(mut buf) = read_bounded(dir, SNAPSHOT_FILE, bytes_max)? else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "raft snapshot {} is damaged ({why}); refusing to start",
                dir.join(SNAPSHOT_FILE).display()
            ),
        )
    };
    if buf.len() < HEADER_BYTES || &buf[..8] != SNAPSHOT_MAGIC {
        return Err(invalid("bad magic"));
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let (meta_len, data_len) = (word(8), word(16));
    let crc = u32::from_le_bytes(buf[24..28].try_into().expect("4 bytes"));
    if meta_len > SNAPSHOT_META_BYTES_MAX || HEADER_BYTES as u64 + meta_len + data_len != buf.len() as u64 {
        return Err(invalid("lengths do not match the file size"));
    }
    if crc32fast::hash(&buf[HEADER_BYTES..]) != crc {
        return Err(invalid("checksum mismatch"));
    }
    let data_at = HEADER_BYTES + meta_len as usize;
    let meta: SnapshotMeta = postcard::from_bytes(&buf[HEADER_BYTES..data_at]).map_err(|e| invalid(&e.to_string()))?;
    buf.drain(..data_at);
    Ok(Some(StoredSnapshot { meta, data: buf }))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::{BasicNode, Membership};

    use super::*;
    use crate::raft::log_mem::tests::log_id;
    use crate::raft::types::StoredMembership;

    fn meta(index: u64) -> SnapshotMeta {
        let nodes = BTreeMap::from([(1, BasicNode::new("127.0.0.1:8300"))]);
        let membership = Membership::new(vec![BTreeSet::from([1])], nodes);
        SnapshotMeta {
            last_log_id: Some(log_id(2, index)),
            last_membership: StoredMembership::new(Some(log_id(1, 0)), membership),
            snapshot_id: format!("2-{index}-1"),
        }
    }

    #[test]
    fn durable_snapshot_survives_reopen_and_only_newer_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::durable(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        assert!(store.save(&meta(10), b"ten").unwrap());
        assert!(!store.save(&meta(5), b"five").unwrap(), "older snapshots are ignored");
        assert!(store.save(&meta(20), b"twenty").unwrap());

        let reopened = SnapshotStore::durable(dir.path()).unwrap();
        assert_eq!(reopened.meta(), Some(meta(20)));
        let loaded = reopened.load().unwrap().unwrap();
        assert_eq!(loaded.meta, meta(20));
        assert_eq!(loaded.data, b"twenty");
    }

    #[test]
    fn memory_snapshot_round_trips() {
        let store = SnapshotStore::in_memory();
        assert_eq!(store.meta(), None);
        store.save(&meta(3), b"abc").unwrap();
        assert_eq!(store.load().unwrap().unwrap().data, b"abc");
    }

    #[test]
    fn damaged_snapshot_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        SnapshotStore::durable(dir.path())
            .unwrap()
            .save(&meta(7), b"payload")
            .unwrap();
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = SnapshotStore::durable(dir.path()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("checksum"), "{err}");

        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        let err = SnapshotStore::durable(dir.path()).err().unwrap();
        assert!(err.to_string().contains("lengths"), "{err}");
    }
}
