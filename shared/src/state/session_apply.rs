//! Applying session writes and KV lock writes: Consul's state-store rules
//! for sessions, so that every replica reaches the same answer.

use super::State;
use crate::command::{Command, CommandResult};
use crate::delta::DeltaOp;

impl State {
    /// `SessionCreate`, `SessionDestroy`, `KvLock` and `KvUnlock`.
    pub(super) fn apply_session_command(
        &mut self,
        index: u64,
        command: &Command,
        ops: &mut Vec<DeltaOp>,
    ) -> CommandResult {
        let _ = (index, ops);
        match command {
            Command::SessionCreate(_)
            | Command::SessionDestroy { .. }
            | Command::KvLock { .. }
            | Command::KvUnlock { .. } => CommandResult::Failed("sessions are being built".into()),
            other => unreachable!("not a session command: {other:?}"),
        }
    }
}
