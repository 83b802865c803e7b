//! What a write answers, as the status and message a Consul client
//! expects (pure): the size check before raft, and the mapping of raft's
//! outcome afterwards.

use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::BasicNode;
use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::{Command, CommandResult};

use super::limits::{ENTRY_COMMAND_BYTES_MAX, WRITE_WAIT_MS_MAX};
use super::types::{NodeId, TypeConfig};

/// Raft's answer to a write, or `None` when waiting for it timed out.
pub type WriteOutcome =
    Option<Result<ClientWriteResponse<TypeConfig>, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>>;

/// Refuses a command larger than a raft entry may be (413), before it
/// reaches the log.
pub fn check_command_size(cmd: &Command) -> Result<(), ControlError> {
    let bytes =
        postcard::serialize_with_flavor(cmd, postcard::ser_flavors::Size::default()).map_err(|e| ControlError {
            status: 400,
            message: format!("command does not encode: {e}"),
        })?;
    if bytes > ENTRY_COMMAND_BYTES_MAX {
        return Err(ControlError {
            status: 413,
            message: format!("command of {bytes} bytes exceeds the {ENTRY_COMMAND_BYTES_MAX}-byte raft entry limit"),
        });
    }
    Ok(())
}

/// Maps raft's outcome to `(index, result)` or the error to answer.
/// Without leadership (or with another leader: forwarding comes with the
/// cluster work) the answer is Consul's `500 No cluster leader`.
pub fn answer(outcome: WriteOutcome) -> Result<(u64, CommandResult), ControlError> {
    match outcome {
        Some(Ok(response)) => Ok((response.log_id.index, response.data)),
        Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(ControlError::no_leader()),
        Some(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => Err(ControlError {
            status: 500,
            message: format!("raft membership change failed: {e}"),
        }),
        Some(Err(RaftError::Fatal(e))) => Err(ControlError {
            status: 500,
            message: format!("raft is not running: {e}"),
        }),
        None => Err(ControlError {
            status: 500,
            message: format!("timed out after {WRITE_WAIT_MS_MAX} ms waiting for the write to be applied"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::{Fatal, ForwardToLeader};

    use super::*;
    use crate::raft::log_mem::tests::log_id;

    fn set(bytes: usize) -> Command {
        Command::KvSet {
            key: "k".into(),
            value: vec![0u8; bytes],
            flags: 0,
        }
    }

    #[test]
    fn size_limit_is_413() {
        assert_eq!(check_command_size(&set(ENTRY_COMMAND_BYTES_MAX - 64)), Ok(()));
        let err = check_command_size(&set(ENTRY_COMMAND_BYTES_MAX)).unwrap_err();
        assert_eq!(err.status, 413);
        assert!(err.message.contains("raft entry limit"), "{}", err.message);
    }

    #[test]
    fn outcomes_map_to_consul_answers() {
        let applied = ClientWriteResponse::<TypeConfig> {
            log_id: log_id(2, 17),
            data: CommandResult::Bool(false),
            membership: None,
        };
        assert_eq!(answer(Some(Ok(applied))), Ok((17, CommandResult::Bool(false))));

        let no_leader = RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader::empty()));
        assert_eq!(answer(Some(Err(no_leader))), Err(ControlError::no_leader()));
        let elsewhere = ForwardToLeader::new(2, BasicNode::new("127.0.0.2:8300"));
        let other_leader = RaftError::APIError(ClientWriteError::ForwardToLeader(elsewhere));
        assert_eq!(answer(Some(Err(other_leader))), Err(ControlError::no_leader()));

        let stopped = answer(Some(Err(RaftError::Fatal(Fatal::Stopped)))).unwrap_err();
        assert_eq!(stopped.status, 500);
        assert!(stopped.message.contains("not running"));

        let timed_out = answer(None).unwrap_err();
        assert_eq!(timed_out.status, 500);
        assert!(
            timed_out.message.contains("timed out after 30000 ms"),
            "{}",
            timed_out.message
        );
    }
}
