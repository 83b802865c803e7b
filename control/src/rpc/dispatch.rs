//! What each control request does, apart from the socket it came on.
//!
//! [`dispatch`] maps a [`ControlRequest`] to its [`ControlResponse`] through
//! a [`ControlBackend`] (raft writes, stats), so it is tested with a fake
//! backend and no IO.

use std::future::Future;

use proconsul_shared::command::{Command, CommandResult};
use proconsul_shared::ipc::messages::{
    ControlError, ControlOp, ControlReply, ControlRequest, ControlResponse, HttpAnswer, HttpCall,
};

use super::stats::Stats;
use super::validate::validate;

/// What answering a request needs from the agent.
pub trait ControlBackend: Send + Sync + 'static {
    /// Replicates a write; answers once it is applied and published.
    fn write(&self, command: Command) -> impl Future<Output = Result<(u64, CommandResult), ControlError>> + Send;
    /// The `Stats` section of `/v1/agent/self`.
    fn stats(&self) -> Stats;
    /// A `?consistent` read's barrier: the raft read index (confirmed by a
    /// quorum), once this agent's own replica has applied it.
    fn read_barrier(&self) -> impl Future<Output = Result<u64, ControlError>> + Send;
    /// Starts the agent's shutdown (after a `Leave` was answered).
    fn leave(&self);
    /// Answers an HTTP request the control plane serves itself (agent
    /// endpoints, catalog writes). The default serves none of them.
    fn http(&self, call: HttpCall) -> impl Future<Output = Result<HttpAnswer, ControlError>> + Send {
        async move {
            Err(ControlError {
                status: 404,
                message: format!("Invalid URL path: {} is not served here", call.path),
            })
        }
    }
}

/// What the connection must do once the response is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterReply {
    Nothing,
    /// `Leave`: shut the agent down.
    Leave,
}

/// Answers one request.
pub async fn dispatch<B: ControlBackend>(backend: &B, request: ControlRequest) -> (ControlResponse, AfterReply) {
    let (result, after) = match request.op {
        ControlOp::Write(command) => {
            let written = match validate(&command) {
                Ok(()) => backend
                    .write(command)
                    .await
                    .map(|(index, result)| ControlReply::Written { index, result }),
                Err(e) => Err(e),
            };
            (written, AfterReply::Nothing)
        }
        ControlOp::Leave => (Ok(ControlReply::Done), AfterReply::Leave),
        ControlOp::Stats => (Ok(ControlReply::Stats(backend.stats())), AfterReply::Nothing),
        ControlOp::Http(call) => (backend.http(call).await.map(ControlReply::Http), AfterReply::Nothing),
        ControlOp::ReadBarrier => (
            backend.read_barrier().await.map(ControlReply::ReadIndex),
            AfterReply::Nothing,
        ),
    };
    (ControlResponse { id: request.id, result }, after)
}

/// The answer when a connection already has its maximum of requests in
/// flight.
pub fn too_many_outstanding(id: u64) -> ControlResponse {
    ControlResponse {
        id,
        result: Err(ControlError {
            status: 429,
            message: "Too many outstanding requests".into(),
        }),
    }
}

/// The answer on an agent that has no servers to write to.
pub fn no_known_servers() -> ControlError {
    ControlError {
        status: 500,
        message: "No known Consul servers".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// A backend that applies KV writes to an in-memory state, optionally
    /// slowly, and counts leaves.
    #[derive(Default)]
    pub(crate) struct FakeBackend {
        pub state: Mutex<proconsul_shared::State>,
        pub next_index: AtomicU64,
        pub leaves: AtomicUsize,
        pub write_delay_ms: u64,
        pub fail_with: Option<ControlError>,
    }

    impl ControlBackend for FakeBackend {
        async fn write(&self, command: Command) -> Result<(u64, CommandResult), ControlError> {
            if self.write_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.write_delay_ms)).await;
            }
            if let Some(e) = &self.fail_with {
                return Err(e.clone());
            }
            let index = self.next_index.fetch_add(1, Ordering::SeqCst) + 10;
            let (result, _) = self.state.lock().unwrap().apply_command(index, &command);
            Ok((index, result))
        }

        async fn read_barrier(&self) -> Result<u64, ControlError> {
            if let Some(e) = &self.fail_with {
                return Err(e.clone());
            }
            Ok(self.state.lock().unwrap().index())
        }

        fn stats(&self) -> Stats {
            let mut s = Stats::new();
            s.insert(
                "agent".into(),
                BTreeMap::from([("services".to_string(), "0".to_string())]),
            );
            s
        }

        fn leave(&self) {
            self.leaves.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn request(id: u64, op: ControlOp) -> ControlRequest {
        ControlRequest { id, op }
    }

    #[tokio::test]
    async fn write_is_applied_and_answered_with_its_index() {
        let b = FakeBackend::default();
        let cmd = Command::KvSet {
            key: "a".into(),
            value: b"1".to_vec(),
            flags: 0,
        };
        let (resp, after) = dispatch(&b, request(7, ControlOp::Write(cmd))).await;
        assert_eq!(after, AfterReply::Nothing);
        assert_eq!(resp.id, 7);
        assert_eq!(
            resp.result,
            Ok(ControlReply::Written {
                index: 10,
                result: CommandResult::Bool(true)
            })
        );
        assert_eq!(b.state.lock().unwrap().kv.get("a").unwrap().value, b"1");
    }

    #[tokio::test]
    async fn invalid_writes_never_reach_the_backend() {
        let b = FakeBackend::default();
        let cmd = Command::KvSet {
            key: String::new(),
            value: vec![],
            flags: 0,
        };
        let (resp, _) = dispatch(&b, request(1, ControlOp::Write(cmd))).await;
        assert_eq!(resp.result.unwrap_err().status, 400);
        assert_eq!(b.next_index.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn backend_errors_pass_through() {
        let b = FakeBackend {
            fail_with: Some(no_known_servers()),
            ..Default::default()
        };
        let cmd = Command::KvDelete { key: "a".into() };
        let (resp, _) = dispatch(&b, request(2, ControlOp::Write(cmd))).await;
        assert_eq!(resp.result, Err(no_known_servers()));
    }

    #[tokio::test]
    async fn leave_answers_done_then_asks_for_shutdown() {
        let b = FakeBackend::default();
        let (resp, after) = dispatch(&b, request(3, ControlOp::Leave)).await;
        assert_eq!(resp.result, Ok(ControlReply::Done));
        assert_eq!(after, AfterReply::Leave);
        assert_eq!(b.leaves.load(Ordering::SeqCst), 0, "dispatch itself does not leave");
    }

    #[tokio::test]
    async fn stats_come_from_the_backend() {
        let b = FakeBackend::default();
        let (resp, _) = dispatch(&b, request(4, ControlOp::Stats)).await;
        match resp.result {
            Ok(ControlReply::Stats(s)) => assert_eq!(s["agent"]["services"], "0"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn read_barrier_answers_the_backend_read_index_or_its_error() {
        let b = FakeBackend::default();
        let cmd = Command::KvDelete { key: "a".into() };
        dispatch(&b, request(1, ControlOp::Write(cmd))).await;
        let (resp, after) = dispatch(&b, request(2, ControlOp::ReadBarrier)).await;
        assert_eq!(
            (resp.result, after),
            (Ok(ControlReply::ReadIndex(10)), AfterReply::Nothing)
        );
        let b = FakeBackend {
            fail_with: Some(ControlError::no_leader()),
            ..Default::default()
        };
        let (resp, _) = dispatch(&b, request(3, ControlOp::ReadBarrier)).await;
        assert_eq!(resp.result, Err(ControlError::no_leader()));
    }

    #[test]
    fn error_texts() {
        let r = too_many_outstanding(9);
        assert_eq!(r.id, 9);
        assert_eq!(r.result.unwrap_err().status, 429);
        assert_eq!(no_known_servers().message, "No known Consul servers");
    }
}
