//! The durable raft log: an append-only file `<raft dir>/wal.log` of framed
//! records (see [`super::record`]), each a postcard [`WalRecord`]: a log
//! entry, or a truncate, purge or committed marker.
//!
//! * An append writes all its entries in one `write` and one `fdatasync`;
//!   the caller reports the entries flushed only after that returns.
//! * Opening replays the file into a [`MemLog`]. A torn last record (a crash
//!   mid-write) is cut off with a warning; damage anywhere else refuses to
//!   open, naming the file and the byte offset.
//! * Purged entries stay in the file as dead bytes until they outweigh the
//!   live ones; then [`Wal::compact`] rewrites the file (temp + fsync +
//!   rename + directory fsync).
//! * The committed id is buffered and written ahead of the next record
//!   batch: losing it only means re-applying fewer entries at start-up (the
//!   start-up wait catches up with the rest).
//! * One process at a time: the directory is locked with `flock`.
//!
//! The vote lives in its own file ([`super::vote_file`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use openraft::RaftLogId;
use serde::{Deserialize, Serialize};

use super::durable_file::write_atomically;
use super::limits::{WAL_COMPACT_DEAD_BYTES_MIN, WAL_RECORD_BYTES_MAX};
use super::log_mem::{LogShapeError, MemLog};
use super::record::{self, append_record, RECORD_HEADER_BYTES};
use super::types::{Entry, LogId, Vote};
use super::vote_file;

const WAL_FILE: &str = "wal.log";
const WAL_MAGIC: &[u8; 8] = b"PCWAL001";
const LOCK_FILE: &str = "LOCK";

/// One WAL record. `E` is `&Entry` when writing and `Entry` when reading
/// (postcard encodes both the same way).
#[derive(Debug, Serialize, Deserialize)]
enum WalRecord<E> {
    Entry(E),
    /// Entries at or after `since` were removed.
    Truncate {
        since: u64,
    },
    /// Entries up to and including `upto` were removed.
    Purge {
        upto: LogId,
    },
    /// The last committed log id.
    Committed(Option<LogId>),
}

/// Why a WAL could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("raft WAL {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Another process holds the directory lock.
    #[error("raft data directory {0} is in use by another proconsul process")]
    Locked(PathBuf),
    /// The file does not start with the WAL magic.
    #[error("raft WAL {0} is not a proconsul WAL (bad magic); refusing to start")]
    BadMagic(PathBuf),
    /// Damage before the last record.
    #[error("raft WAL {path} is corrupt ({source}); refusing to start: restore the data directory from a backup")]
    Corrupt { path: PathBuf, source: record::Corrupt },
    /// An intact record whose payload is not a WAL record.
    #[error("raft WAL {path}: record at byte {offset} does not decode ({reason}); refusing to start")]
    Decode {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    /// Entries that do not follow each other.
    #[error("raft WAL {path}: record at byte {offset} breaks the log ({source}); refusing to start")]
    Shape {
        path: PathBuf,
        offset: usize,
        source: LogShapeError,
    },
}

/// Tuning for tests; production uses the defaults.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Compaction happens only above this many dead bytes.
    pub compact_dead_bytes_min: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            compact_dead_bytes_min: WAL_COMPACT_DEAD_BYTES_MIN,
        }
    }
}

/// The open WAL (writer side). Reads go to the [`MemLog`] it replayed into.
pub struct Wal {
    dir: PathBuf,
    file: File,
    /// Bytes in the file, header included.
    file_bytes: u64,
    /// Record size of each live entry, to know how much of the file is dead.
    entry_bytes: BTreeMap<u64, u64>,
    live_bytes: u64,
    /// A committed id not yet written.
    pending_committed: Option<Option<LogId>>,
    /// Set after a failed write: the file tail is unknown, so no more writes.
    failed: bool,
    options: WalOptions,
    _lock: Flock<File>,
}

impl Wal {
    /// Opens (or creates) the WAL in `dir` and replays it, with the saved
    /// vote, into a [`MemLog`].
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, MemLog), WalError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(WAL_FILE);
        if !path.exists() {
            write_atomically(dir, WAL_FILE, WAL_MAGIC).map_err(io_err(&path))?;
        }
        let buf = fs::read(&path).map_err(io_err(&path))?;
        if buf.len() < WAL_MAGIC.len() || &buf[..WAL_MAGIC.len()] != WAL_MAGIC {
            return Err(WalError::BadMagic(path));
        }
        let (mut log, replay) = replay(&path, &buf)?;
        if let Some(vote) = vote_file::load(dir).map_err(io_err(dir))? {
            log.set_vote(vote);
        }
        let file_bytes = replay.valid_len as u64;
        if let Some(torn) = replay.torn {
            tracing::warn!(
                wal = %path.display(),
                offset = torn.offset,
                dropped_bytes = buf.len() - torn.offset,
                reason = torn.reason,
                "dropping a torn record at the end of the raft WAL (crash during a write)"
            );
            let f = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            f.set_len(file_bytes).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
        }
        let file = OpenOptions::new().append(true).open(&path).map_err(io_err(&path))?;
        let live_bytes = replay.entry_bytes.values().sum();
        let wal = Wal {
            dir: dir.to_path_buf(),
            file,
            file_bytes,
            entry_bytes: replay.entry_bytes,
            live_bytes,
            pending_committed: None,
            failed: false,
            options,
            _lock: lock,
        };
        Ok((wal, log))
    }

    /// Bytes in the WAL file.
    #[cfg(test)]
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Appends `entries` with one write and one fdatasync. Entries must
    /// follow each other (the caller checks them against its [`MemLog`]).
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        let mut buf = self.batch_start();
        let mut sizes = Vec::with_capacity(entries.len());
        for entry in entries {
            let size = append_record(&mut buf, &WalRecord::Entry(entry), WAL_RECORD_BYTES_MAX)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            sizes.push((entry.get_log_id().index, size as u64));
        }
        self.write_batch(&buf)?;
        for (index, size) in sizes {
            self.entry_bytes.insert(index, size);
            self.live_bytes += size;
        }
        Ok(())
    }

    /// Records that entries at or after `since` are gone.
    pub fn truncate(&mut self, since: u64) -> io::Result<()> {
        let mut buf = self.batch_start();
        append_record(&mut buf, &WalRecord::<&Entry>::Truncate { since }, WAL_RECORD_BYTES_MAX)
            .map_err(io::Error::other)?;
        self.write_batch(&buf)?;
        for (_, size) in self.entry_bytes.split_off(&since) {
            self.live_bytes -= size;
        }
        Ok(())
    }

    /// Records that entries up to and including `upto` are gone.
    pub fn purge(&mut self, upto: LogId) -> io::Result<()> {
        let mut buf = self.batch_start();
        append_record(&mut buf, &WalRecord::<&Entry>::Purge { upto }, WAL_RECORD_BYTES_MAX)
            .map_err(io::Error::other)?;
        self.write_batch(&buf)?;
        let kept = self.entry_bytes.split_off(&(upto.index + 1));
        for size in self.entry_bytes.values() {
            self.live_bytes -= size;
        }
        self.entry_bytes = kept;
        Ok(())
    }

    /// Buffers the committed id; it is written ahead of the next batch.
    pub fn set_committed(&mut self, committed: Option<LogId>) {
        self.pending_committed = Some(committed);
    }

    /// Saves the vote durably (its own file, replaced atomically).
    pub fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.check_usable()?;
        vote_file::save(&self.dir, vote)
    }

    /// Whether purged records now outweigh live ones enough to rewrite.
    pub fn needs_compaction(&self) -> bool {
        let dead = self.file_bytes.saturating_sub(self.live_bytes + WAL_MAGIC.len() as u64);
        dead > self.live_bytes && dead > self.options.compact_dead_bytes_min
    }

    /// Rewrites the file with only what `log` holds (its purge point, its
    /// committed id and its entries), then swaps it in atomically. `log`
    /// must be the store's current log.
    pub fn compact(&mut self, log: &MemLog) -> io::Result<()> {
        self.check_usable()?;
        debug_assert!(log
            .entries()
            .map(|e| e.get_log_id().index)
            .eq(self.entry_bytes.keys().copied()));
        let mut buf = WAL_MAGIC.to_vec();
        if let Some(upto) = log.last_purged() {
            append_record(&mut buf, &WalRecord::<&Entry>::Purge { upto }, WAL_RECORD_BYTES_MAX)
                .map_err(io::Error::other)?;
        }
        let committed = self.pending_committed.take().unwrap_or(log.committed());
        append_record(
            &mut buf,
            &WalRecord::<&Entry>::Committed(committed),
            WAL_RECORD_BYTES_MAX,
        )
        .map_err(io::Error::other)?;
        let mut entry_bytes = BTreeMap::new();
        for entry in log.entries() {
            let size =
                append_record(&mut buf, &WalRecord::Entry(entry), WAL_RECORD_BYTES_MAX).map_err(io::Error::other)?;
            entry_bytes.insert(entry.get_log_id().index, size as u64);
        }
        let swapped = write_atomically(&self.dir, WAL_FILE, &buf)
            .and_then(|_| OpenOptions::new().append(true).open(self.dir.join(WAL_FILE)));
        match swapped {
            Ok(file) => self.file = file,
            Err(e) => {
                // Which file the directory now names is unknown: stop writing.
                self.failed = true;
                return Err(e);
            }
        }
        tracing::info!(
            wal = %self.dir.join(WAL_FILE).display(),
            from_bytes = self.file_bytes,
            to_bytes = buf.len(),
            "compacted the raft WAL"
        );
        self.file_bytes = buf.len() as u64;
        self.live_bytes = entry_bytes.values().sum();
        self.entry_bytes = entry_bytes;
        Ok(())
    }

    /// Writes a buffered committed id, if any, without waiting for disk.
    pub fn flush_committed(&mut self) -> io::Result<()> {
        if self.pending_committed.is_none() {
            return Ok(());
        }
        let buf = self.batch_start();
        self.write_batch(&buf)
    }

    /// A new write buffer, starting with the pending committed id.
    fn batch_start(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        if let Some(committed) = self.pending_committed.take() {
            append_record(
                &mut buf,
                &WalRecord::<&Entry>::Committed(committed),
                WAL_RECORD_BYTES_MAX,
            )
            .expect("a log id always encodes within the record limit");
        }
        buf
    }

    fn write_batch(&mut self, buf: &[u8]) -> io::Result<()> {
        self.check_usable()?;
        let written = self.file.write_all(buf).and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            self.failed = true;
            return Err(e);
        }
        self.file_bytes += buf.len() as u64;
        Ok(())
    }

    fn check_usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "raft WAL refused the write: an earlier write failed and the file tail is unknown",
            ));
        }
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.flush_committed() {
            tracing::warn!(error = %e, "could not record the committed raft index on close");
        }
    }
}

/// What a replay found besides the log.
struct Replay {
    valid_len: usize,
    torn: Option<record::TornTail>,
    entry_bytes: BTreeMap<u64, u64>,
}

/// Rebuilds the log from the WAL bytes (magic already checked).
fn replay(path: &Path, buf: &[u8]) -> Result<(MemLog, Replay), WalError> {
    let found = record::scan(buf, WAL_MAGIC.len(), WAL_RECORD_BYTES_MAX).map_err(|source| WalError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    let mut log = MemLog::default();
    let mut entry_bytes = BTreeMap::new();
    for rec in &found.records {
        let decoded: WalRecord<Entry> = postcard::from_bytes(rec.payload).map_err(|e| WalError::Decode {
            path: path.to_path_buf(),
            offset: rec.offset,
            reason: e.to_string(),
        })?;
        match decoded {
            WalRecord::Entry(entry) => {
                let index = entry.get_log_id().index;
                log.append(entry).map_err(|source| WalError::Shape {
                    path: path.to_path_buf(),
                    offset: rec.offset,
                    source,
                })?;
                entry_bytes.insert(index, (RECORD_HEADER_BYTES + rec.payload.len()) as u64);
            }
            WalRecord::Truncate { since } => {
                log.truncate(since);
                entry_bytes.split_off(&since);
            }
            WalRecord::Purge { upto } => {
                log.purge(upto);
                entry_bytes = entry_bytes.split_off(&(upto.index + 1));
            }
            WalRecord::Committed(committed) => log.set_committed(committed),
        }
    }
    Ok((
        log,
        Replay {
            valid_len: found.valid_len,
            torn: found.torn,
            entry_bytes,
        },
    ))
}

fn lock_dir(dir: &Path) -> Result<Flock<File>, WalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| WalError::Io {
            path: path.clone(),
            source,
        })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| match errno {
        nix::errno::Errno::EWOULDBLOCK => WalError::Locked(dir.to_path_buf()),
        other => WalError::Io {
            path,
            source: other.into(),
        },
    })
}

#[cfg(test)]
mod tests;
