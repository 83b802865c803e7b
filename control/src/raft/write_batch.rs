//! Group commit: concurrent writes share one raft entry.
//!
//! openraft makes every `client_write` its own log entry, and our log store
//! persists (fsyncs) each append before the next, so writes one entry each
//! are bounded by the disk's fsync rate. The [`WriteBatcher`] queues writes
//! (bounded: [`QUEUED_WRITES_MAX`]); one task takes everything queued, cut
//! by [`BatchBudget`] (at most [`BATCH_COMMANDS_MAX`] commands and
//! [`BATCH_COMMAND_BYTES_MAX`] encoded bytes), and submits it as one
//! [`Command::Batch`] entry (a lone command stays unbatched). At most
//! [`ENTRIES_IN_FLIGHT_MAX`] entries are in flight; while they are, new
//! writes accumulate for the next entry. Each waiter gets its member's
//! result at the entry's index, or the entry's error (not leader, timeout,
//! raft stopped) exactly as an unbatched write would ([`write_answer`]).
//!
//! The cut ([`BatchBudget`]) and the fan-out ([`fan_out`]) are pure; the
//! task and the queue are the IO edge.

use std::sync::Arc;
use std::time::Duration;

use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{limits, Command, CommandResult};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::limits::WRITE_WAIT_MS_MAX;
use super::types::Raft;
use super::write_answer;

/// Most commands in one batch entry.
pub const BATCH_COMMANDS_MAX: usize = 256;

/// Most encoded command bytes in one batch entry. Half the largest
/// publishable delta, so a batch's merged delta (about its commands' size
/// plus a few dozen bytes per op) still fits the delta ring.
pub const BATCH_COMMAND_BYTES_MAX: usize = limits::DELTA_BYTES_MAX / 2;

/// Most writes waiting for an entry; beyond, a write is refused (429).
pub const QUEUED_WRITES_MAX: usize = 4096;

/// Most batch entries submitted to raft and not yet answered. More lets
/// the leader append the next entry while the previous one replicates.
pub const ENTRIES_IN_FLIGHT_MAX: usize = 2;

/// What a write answers: `(raft index, result)` or the error for the client.
pub type WriteAnswer = Result<(u64, CommandResult), ControlError>;

/// One write waiting in the queue.
struct QueuedWrite {
    command: Command,
    /// Encoded size, measured once by [`write_answer::check_command_size`].
    bytes: usize,
    reply: oneshot::Sender<WriteAnswer>,
}

/// Whether a command must have a raft entry to itself: a batch someone
/// else built (batches do not nest). User events share entries: those of
/// one entry share its index as their `ltime`, in batch order.
pub fn needs_own_entry(command: &Command) -> bool {
    matches!(command, Command::Batch(_))
}

/// The cut of one batch (pure): admits commands in queue order until the
/// count or byte bound would be exceeded. The first command is always
/// admitted (a single command is bounded by the raft entry limit itself);
/// a command that needs its own entry is admitted only first, and closes
/// the batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchBudget {
    commands: usize,
    bytes: usize,
    closed: bool,
}

impl BatchBudget {
    /// Admits a command of `bytes` encoded bytes, or refuses it (it then
    /// starts the next batch).
    pub fn admit(&mut self, bytes: usize, own_entry: bool) -> bool {
        if self.commands == 0 {
            self.commands = 1;
            self.bytes = bytes;
            self.closed = own_entry;
            return true;
        }
        let fits = self.commands < BATCH_COMMANDS_MAX && self.bytes.saturating_add(bytes) <= BATCH_COMMAND_BYTES_MAX;
        if self.closed || own_entry || !fits {
            return false;
        }
        self.commands += 1;
        self.bytes += bytes;
        true
    }

    /// Commands admitted so far.
    pub fn commands(&self) -> usize {
        self.commands
    }
}

/// Splits an entry's answer into one answer per member (pure). A lone
/// command was submitted as itself, so its answer is passed through; a
/// batch's [`CommandResult::Batch`] gives each member its own result at the
/// shared index; an error goes to every member.
pub fn fan_out(answer: WriteAnswer, members: usize) -> Vec<WriteAnswer> {
    if members == 1 {
        return vec![answer];
    }
    match answer {
        Ok((index, CommandResult::Batch(results))) if results.len() == members => {
            results.into_iter().map(|r| Ok((index, r))).collect()
        }
        Ok((index, other)) => {
            let error = ControlError {
                status: 500,
                message: format!("raft entry {index} answered {other:?} for a batch of {members} writes"),
            };
            vec![Err(error); members]
        }
        Err(e) => vec![Err(e); members],
    }
}

/// The queue in front of raft. Cheap to clone; the batching task ends when
/// every clone is dropped.
#[derive(Clone)]
pub struct WriteBatcher {
    queue: mpsc::Sender<QueuedWrite>,
    /// Lock-delays consulted before a `KvLock` is proposed.
    sessions: Option<Arc<crate::session::SessionRuntime>>,
}

impl WriteBatcher {
    /// Starts the batching task for `raft` (needs a tokio runtime).
    pub fn start(raft: Raft) -> WriteBatcher {
        let (queue, queued) = mpsc::channel(QUEUED_WRITES_MAX);
        tokio::spawn(run(raft, queued));
        WriteBatcher { queue, sessions: None }
    }

    /// This queue with the server's session runtime: a `KvLock` of a key
    /// under lock-delay answers `Bool(false)` at the last applied index
    /// without being proposed (Consul's leader-side check).
    pub fn with_sessions(self, sessions: Arc<crate::session::SessionRuntime>) -> WriteBatcher {
        WriteBatcher {
            sessions: Some(sessions),
            ..self
        }
    }

    /// A replicated write, committed with whatever else is queued. Answers
    /// like an unbatched write: `(index, result)` once applied; 413 for an
    /// oversized command; 400 for a batch holding a batch; 429 when
    /// [`QUEUED_WRITES_MAX`] writes already wait; 500 without a leader, on
    /// timeout ([`WRITE_WAIT_MS_MAX`]) or when raft stopped.
    pub async fn write(&self, command: Command) -> WriteAnswer {
        write_answer::check_command_size(&command)?;
        if let (Some(sessions), Command::KvLock { key, .. }) = (&self.sessions, &command) {
            if sessions.lock_delayed(key) {
                return Ok((sessions.applied_index(), CommandResult::Bool(false)));
            }
        }
        let bytes = encoded_bytes(&command);
        if let Command::Batch(members) = &command {
            if members.iter().any(|m| matches!(m, Command::Batch(_))) {
                return Err(ControlError {
                    status: 400,
                    message: "a batch may not contain a batch".into(),
                });
            }
        }
        let (reply, answer) = oneshot::channel();
        let queued = QueuedWrite { command, bytes, reply };
        if let Err(e) = self.queue.try_send(queued) {
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => queue_full(),
                mpsc::error::TrySendError::Closed(_) => stopped(),
            });
        }
        let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => write_answer::answer(None),
        }
    }
}

/// A command's postcard size (it encodes: [`write_answer::check_command_size`]
/// passed).
fn encoded_bytes(command: &Command) -> usize {
    postcard::serialize_with_flavor(command, postcard::ser_flavors::Size::default()).unwrap_or(usize::MAX)
}

fn queue_full() -> ControlError {
    ControlError {
        status: 429,
        message: format!("too many writes waiting for raft ({QUEUED_WRITES_MAX} queued); retry later"),
    }
}

fn stopped() -> ControlError {
    ControlError {
        status: 500,
        message: "raft is not running: the write queue is closed".into(),
    }
}

/// The batching task: waits for an entry slot, then for a first write,
/// takes every queued write the budget admits, and commits them as one
/// entry in its own task.
async fn run(raft: Raft, mut queued: mpsc::Receiver<QueuedWrite>) {
    let slots = Arc::new(Semaphore::new(ENTRIES_IN_FLIGHT_MAX));
    let mut carried: Option<QueuedWrite> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(write) => write,
            None => match queued.recv().await {
                Some(write) => write,
                None => return,
            },
        };
        let mut budget = BatchBudget::default();
        let admitted = budget.admit(first.bytes, needs_own_entry(&first.command));
        debug_assert!(admitted, "the first write always fits");
        let mut batch = vec![first];
        while let Ok(next) = queued.try_recv() {
            if budget.admit(next.bytes, needs_own_entry(&next.command)) {
                batch.push(next);
            } else {
                carried = Some(next);
                break;
            }
        }
        assert_eq!(batch.len(), budget.commands(), "the batch is what the budget admitted");
        tokio::spawn(commit(raft.clone(), batch, slot));
    }
}

/// Submits one entry and answers each of its writes; the slot is freed
/// when done.
async fn commit(raft: Raft, batch: Vec<QueuedWrite>, _slot: OwnedSemaphorePermit) {
    let members = batch.len();
    let mut commands = Vec::with_capacity(members);
    let mut replies = Vec::with_capacity(members);
    for write in batch {
        commands.push(write.command);
        replies.push(write.reply);
    }
    let entry = match commands.pop() {
        Some(only) if commands.is_empty() => only,
        Some(last) => {
            commands.push(last);
            Command::Batch(commands)
        }
        None => return,
    };
    let wait = Duration::from_millis(WRITE_WAIT_MS_MAX);
    let outcome = tokio::time::timeout(wait, raft.client_write(entry)).await.ok();
    let answers = fan_out(write_answer::answer(outcome), members);
    debug_assert_eq!(answers.len(), replies.len());
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A waiter that gave up (timed out) no longer listens.
        let _ = reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::UserEvent;

    fn set(key: &str) -> Command {
        Command::KvSet {
            key: key.into(),
            value: b"v".to_vec(),
            flags: 0,
        }
    }

    #[test]
    fn budget_cuts_by_count() {
        let mut budget = BatchBudget::default();
        for i in 0..BATCH_COMMANDS_MAX {
            assert!(budget.admit(10, false), "command {i} fits");
        }
        assert!(
            !budget.admit(10, false),
            "one past the count limit starts the next batch"
        );
        assert_eq!(budget.commands(), BATCH_COMMANDS_MAX);
    }

    #[test]
    fn budget_cuts_by_bytes_but_always_admits_the_first() {
        let mut budget = BatchBudget::default();
        assert!(budget.admit(BATCH_COMMAND_BYTES_MAX - 100, false));
        assert!(budget.admit(100, false), "exactly at the byte limit fits");
        assert!(!budget.admit(1, false), "one byte over does not");
        let mut big = BatchBudget::default();
        assert!(
            big.admit(BATCH_COMMAND_BYTES_MAX * 2, false),
            "a lone large command is its own entry"
        );
        assert!(!big.admit(1, false));
        assert_eq!(big.commands(), 1);
    }

    #[test]
    fn commands_needing_their_own_entry_go_alone() {
        let event = Command::EventFire(UserEvent::default());
        assert!(!needs_own_entry(&event), "events share entries");
        assert!(needs_own_entry(&Command::Batch(vec![set("a")])));
        assert!(!needs_own_entry(&set("a")));

        let mut after_writes = BatchBudget::default();
        assert!(after_writes.admit(10, false));
        assert!(!after_writes.admit(10, true), "a built batch does not join a batch");
        let mut batch_first = BatchBudget::default();
        assert!(batch_first.admit(10, true));
        assert!(!batch_first.admit(10, false), "nothing joins a built batch");
        assert_eq!(batch_first.commands(), 1);
    }

    #[test]
    fn fan_out_gives_each_member_its_result_at_the_shared_index() {
        let batch = CommandResult::Batch(vec![CommandResult::Bool(true), CommandResult::Bool(false)]);
        assert_eq!(
            fan_out(Ok((7, batch)), 2),
            vec![Ok((7, CommandResult::Bool(true))), Ok((7, CommandResult::Bool(false)))]
        );
        assert_eq!(
            fan_out(Ok((8, CommandResult::Done)), 1),
            vec![Ok((8, CommandResult::Done))],
            "a lone command passes through"
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_with_429() {
        let (queue, _held) = mpsc::channel(QUEUED_WRITES_MAX);
        for _ in 0..QUEUED_WRITES_MAX {
            let (reply, _) = oneshot::channel();
            let queued = QueuedWrite {
                command: set("k"),
                bytes: 1,
                reply,
            };
            assert!(queue.try_send(queued).is_ok());
        }
        let batcher = WriteBatcher { queue, sessions: None };
        let e = batcher.write(set("k")).await.unwrap_err();
        assert_eq!(e.status, 429);
        assert!(e.message.contains("4096 queued"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_closed_queue_answers_raft_not_running() {
        let (queue, held) = mpsc::channel(1);
        drop(held);
        let e = WriteBatcher { queue, sessions: None }
            .write(set("k"))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.message.contains("not running")), (500, true));
    }

    #[tokio::test]
    async fn an_acquire_under_lock_delay_answers_false_without_raft() {
        let (queue, held) = mpsc::channel(1);
        drop(held);
        let sessions = Arc::new(crate::session::SessionRuntime::new());
        sessions.record_lock_delay("locked", 15_000_000_000);
        let batcher = WriteBatcher { queue, sessions: None }.with_sessions(sessions);
        let lock = |key: &str| Command::KvLock {
            key: key.into(),
            value: Vec::new(),
            flags: 0,
            session: "s".into(),
        };
        assert_eq!(batcher.write(lock("locked")).await, Ok((0, CommandResult::Bool(false))));
        let e = batcher.write(lock("free")).await.unwrap_err();
        assert!(
            e.message.contains("not running"),
            "a free key goes to raft: {}",
            e.message
        );
    }

    #[tokio::test]
    async fn nested_batches_and_oversized_writes_are_refused_before_the_queue() {
        let (queue, _held) = mpsc::channel(1);
        let batcher = WriteBatcher { queue, sessions: None };
        let nested = Command::Batch(vec![Command::Batch(vec![set("a")])]);
        assert_eq!(batcher.write(nested).await.unwrap_err().status, 400);
        let huge = Command::KvSet {
            key: "k".into(),
            value: vec![0; crate::raft::limits::ENTRY_COMMAND_BYTES_MAX],
            flags: 0,
        };
        assert_eq!(batcher.write(huge).await.unwrap_err().status, 413);
    }

    /// A single durable server (a WAL in `dir`: every entry is fsynced).
    async fn durable_server(dir: &std::path::Path) -> (crate::raft::RaftHandle, Arc<crate::publish::Publisher>) {
        let publisher =
            crate::publish::Publisher::new(1, proconsul_shared::limits::DELTA_RING_BYTES_MIN).expect("publisher");
        let options = crate::raft::RaftOptions {
            node_id: 1,
            rpc_addr: "127.0.0.1:8300".into(),
            data_dir: Some(dir.to_path_buf()),
            dev: false,
            cluster: None,
        };
        let raft = crate::raft::RaftHandle::start(options, publisher.clone())
            .await
            .expect("raft starts");
        (raft, publisher)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_entries_and_each_gets_its_own_result() {
        const WRITERS: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let (raft, publisher) = durable_server(dir.path()).await;
        let start_index = publisher.applied_index();
        let mut tasks = Vec::new();
        for i in 0..WRITERS {
            let raft = raft.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("batch/{i}");
                (key.clone(), raft.write(set(&key)).await)
            }));
        }
        let mut indexes = std::collections::BTreeSet::new();
        let mut written = Vec::new();
        for task in tasks {
            let (key, answer) = task.await.unwrap();
            let (index, result) = answer.expect("write applied");
            assert_eq!(result, CommandResult::Bool(true));
            indexes.insert(index);
            written.push((key, index));
        }
        let state = publisher.state();
        for (key, index) in &written {
            assert_eq!(state.kv.get(key).map(|e| e.modify_index), Some(*index), "{key}");
        }
        let entries = publisher.applied_index() - start_index;
        assert_eq!(entries as usize, indexes.len(), "one raft entry per distinct index");
        assert!(
            indexes.len() < WRITERS / 2,
            "{WRITERS} concurrent writes took {} entries: they were not grouped",
            indexes.len()
        );
        raft.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn competing_cas_writes_in_one_batch_let_exactly_one_win() {
        const WRITERS: usize = 32;
        let dir = tempfile::tempdir().unwrap();
        let (raft, publisher) = durable_server(dir.path()).await;
        let mut tasks = Vec::new();
        for i in 0..WRITERS {
            let raft = raft.clone();
            tasks.push(tokio::spawn(async move {
                let cas = Command::KvCas {
                    key: "lock".into(),
                    value: format!("owner-{i}").into_bytes(),
                    flags: 0,
                    index: 0,
                };
                (i, raft.write(cas).await.expect("write applied"))
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (i, (index, result)) = task.await.unwrap();
            if result == CommandResult::Bool(true) {
                winners.push((i, index));
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create-only CAS wins: {winners:?}");
        let (owner, index) = winners[0];
        let entry = publisher.state().kv.get("lock").cloned().expect("the winner's key");
        assert_eq!(entry.value, format!("owner-{owner}").into_bytes());
        assert_eq!(entry.modify_index, index);
        raft.shutdown().await;
    }

    #[test]
    fn fan_out_gives_every_member_the_error() {
        let no_leader = fan_out(Err(ControlError::no_leader()), 3);
        assert_eq!(no_leader, vec![Err(ControlError::no_leader()); 3]);
        let short = CommandResult::Batch(vec![CommandResult::Done]);
        for answer in fan_out(Ok((9, short)), 2) {
            let e = answer.unwrap_err();
            assert_eq!(e.status, 500);
            assert!(e.message.contains("batch of 2 writes"), "{}", e.message);
        }
    }
}
