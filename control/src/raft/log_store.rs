//! openraft's log storage over a [`MemLog`] (reads) and, unless in `-dev`
//! mode, a [`Wal`] (durability). File IO runs on tokio's blocking pool so
//! an fsync never stalls the async workers; openraft serializes calls into
//! the store, so writes stay in order.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogId, RaftLogReader, StorageIOError};

use super::log_mem::MemLog;
use super::log_wal::{Wal, WalError, WalOptions};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Shared read access to the log, handed to openraft's replication tasks.
#[derive(Clone)]
pub struct LogReader {
    log: Arc<Mutex<MemLog>>,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(lock(&self.log).range(range))
    }
}

/// The raft log store.
pub struct LogStore {
    log: Arc<Mutex<MemLog>>,
    /// `None` in `-dev` mode.
    wal: Option<Arc<Mutex<Wal>>>,
}

impl LogStore {
    /// A log that lives only in memory (`-dev`).
    pub fn in_memory() -> LogStore {
        LogStore {
            log: Arc::default(),
            wal: None,
        }
    }

    /// Opens the WAL in `dir` and replays it.
    pub fn durable(dir: &Path, options: WalOptions) -> Result<LogStore, WalError> {
        let (wal, log) = Wal::open(dir, options)?;
        Ok(LogStore {
            log: Arc::new(Mutex::new(log)),
            wal: Some(Arc::new(Mutex::new(wal))),
        })
    }

    /// The index of the last entry present (or purged), if any.
    pub fn last_log_index(&self) -> Option<u64> {
        lock(&self.log).last_log_id().map(|id| id.index)
    }

    /// Runs `f` on the WAL on the blocking pool. `Ok(None)` in memory mode.
    async fn with_wal<T, F>(&self, f: F) -> io::Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Wal) -> io::Result<T> + Send + 'static,
    {
        match self.wal.clone() {
            None => Ok(None),
            Some(wal) => run_on_wal(wal, f).await.map(Some),
        }
    }
}

/// Runs `f` on the WAL on the blocking pool.
async fn run_on_wal<T, F>(wal: Arc<Mutex<Wal>>, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Wal) -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&mut lock(&wal)))
        .await
        .map_err(|e| io::Error::other(format!("WAL task failed: {e}")))?
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("raft log lock poisoned")
}

fn logs_error(verb: ErrorVerb, e: &io::Error) -> StorageError {
    StorageIOError::new(ErrorSubject::Logs, verb, e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(lock(&self.log).range(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let log = lock(&self.log);
        Ok(LogState {
            last_purged_log_id: log.last_purged(),
            last_log_id: log.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader { log: self.log.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let saved = *vote;
        self.with_wal(move |wal| wal.save_vote(&saved))
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        lock(&self.log).set_vote(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(lock(&self.log).vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        lock(&self.log).set_committed(committed);
        if let Some(wal) = &self.wal {
            lock(wal).set_committed(committed);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(lock(&self.log).committed())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            // Check the whole batch before any IO: the log must stay consecutive.
            let log = lock(&self.log);
            let next = log.next_index();
            for (offset, entry) in entries.iter().enumerate() {
                let index = entry.get_log_id().index;
                if index != next + offset as u64 {
                    let e = io::Error::other(format!(
                        "append of log index {index} would leave a hole (expected {})",
                        next + offset as u64
                    ));
                    return Err(logs_error(ErrorVerb::Write, &e));
                }
            }
        }
        let entries = match self.wal.clone() {
            None => entries,
            Some(wal) => match run_on_wal(wal, move |wal| wal.append(&entries).map(|_| entries)).await {
                Ok(entries) => entries,
                Err(e) => {
                    let err = logs_error(ErrorVerb::Write, &e);
                    callback.log_io_completed(Err(e));
                    return Err(err);
                }
            },
        };
        {
            let mut log = lock(&self.log);
            for entry in entries {
                log.append(entry).expect("batch checked consecutive above");
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let since = log_id.index;
        self.with_wal(move |wal| wal.truncate(since))
            .await
            .map_err(|e| logs_error(ErrorVerb::Delete, &e))?;
        lock(&self.log).truncate(since);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let needs_compaction = self
            .with_wal(move |wal| wal.purge(log_id).map(|_| wal.needs_compaction()))
            .await
            .map_err(|e| logs_error(ErrorVerb::Delete, &e))?
            .unwrap_or(false);
        lock(&self.log).purge(log_id);
        if needs_compaction {
            let live = lock(&self.log).clone();
            self.with_wal(move |wal| wal.compact(&live))
                .await
                .map_err(|e| logs_error(ErrorVerb::Write, &e))?;
        }
        Ok(())
    }
}
