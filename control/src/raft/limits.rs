//! Every bound of the raft module in one place. Each is enforced with a
//! clear error where it applies, and tested there.

use proconsul_shared::limits;

/// Largest encoded command accepted as a raft entry: a command reaches the
/// control plane in one IPC frame, so nothing larger can be legitimate.
pub const ENTRY_COMMAND_BYTES_MAX: usize = limits::IPC_FRAME_BYTES_MAX;

/// Largest WAL record payload. Above [`ENTRY_COMMAND_BYTES_MAX`] to leave
/// room for the entry's own framing; a larger length in a file is
/// corruption.
pub const WAL_RECORD_BYTES_MAX: usize = ENTRY_COMMAND_BYTES_MAX + 64 * 1024;

/// The WAL is rewritten without purged entries once its dead bytes exceed
/// both its live bytes and this floor.
pub const WAL_COMPACT_DEAD_BYTES_MIN: u64 = 64 * 1024 * 1024;

/// Largest vote file (a vote is a few dozen bytes).
pub const VOTE_FILE_BYTES_MAX: u64 = 4096;

/// Largest encoded snapshot meta (ids and the membership).
pub const SNAPSHOT_META_BYTES_MAX: u64 = 1024 * 1024;

/// Largest snapshot archive we write or read.
pub const SNAPSHOT_DATA_BYTES_MAX: u64 = limits::SNAPSHOT_BYTES_MAX;

/// A snapshot is built after this many applied entries.
pub const SNAPSHOT_EVERY_LOGS: u64 = 10_000;

/// Entries kept behind a snapshot after purging (lag for followers).
pub const SNAPSHOT_LOGS_KEPT: u64 = 1_000;

/// A follower further behind than this is caught up with a snapshot. It
/// must exceed [`SNAPSHOT_EVERY_LOGS`].
pub const REPLICATION_LAG_LOGS_MAX: u64 = 2 * SNAPSHOT_EVERY_LOGS;

/// How long [`super::RaftHandle::start`] waits to lead and catch up.
pub const START_WAIT_MS_MAX: u64 = 10_000;

/// How long a write waits to be committed and applied.
pub const WRITE_WAIT_MS_MAX: u64 = 30_000;
