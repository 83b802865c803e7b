//! Code shared by the Proconsul control plane and data plane.
//!
//! * [`state`]: the replicated state model (KV, catalog nodes) and the pure
//!   state machine that applies [`command::Command`]s and emits
//!   [`delta::Delta`]s.
//! * [`delta`]: the change records the control plane publishes; the same
//!   record is meant for the shared-memory ring and, later, for the stream a
//!   server sends to client agents.
//! * [`snapshot`]: the rkyv archive of the whole state (raft snapshot and
//!   shared-memory snapshot are the same bytes).
//! * [`shm`]: the shared-memory regions (delta ring, snapshot) and their
//!   reader and writer.
//! * [`ipc`]: frames and messages on the unix socket between the processes.
//!
//! Everything here is sans-IO except the thin memfd/mmap and fd-passing
//! helpers in [`shm::region`] and [`ipc::fdpass`].

pub mod agent_info;
pub mod command;
pub mod delta;
pub mod ipc;
pub mod limits;
pub mod pid_file;
pub mod shm;
pub mod snapshot;
pub mod state;
pub mod txn;

#[cfg(any(test, feature = "test-fixtures"))]
pub mod test_fixtures;

pub use command::{Command, CommandResult};
pub use delta::{Delta, DeltaOp};
pub use state::State;
