//! A request channel (`Hello::Requests`): control requests in, responses
//! out, matched by id, many in flight at once and answered in completion
//! order.

use std::sync::Arc;

use proconsul_shared::ipc::frame::{self, FrameDecoder};
use proconsul_shared::ipc::messages::{ControlError, ControlRequest, ControlResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Semaphore};

use super::dispatch::{dispatch, too_many_outstanding, AfterReply, ControlBackend};

/// Most requests one connection may have in flight; beyond it a request is
/// answered 429 at once.
pub const INFLIGHT_PER_CONNECTION_MAX: usize = 1024;
/// Responses waiting to be written on one connection.
const RESPONSE_QUEUE_DEPTH: usize = INFLIGHT_PER_CONNECTION_MAX + 64;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Most bytes of responses coalesced into one socket write.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

struct Outgoing {
    response: ControlResponse,
    after: AfterReply,
}

/// Serves one request channel until the data plane closes it or sends a
/// frame that does not decode. `decoder` holds any bytes read past the hello.
pub async fn serve_requests<B: ControlBackend>(
    stream: UnixStream,
    mut decoder: FrameDecoder,
    backend: Arc<B>,
    core: u32,
) {
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(RESPONSE_QUEUE_DEPTH);
    let writer_task = tokio::spawn(write_responses(writer, rx, backend.clone()));
    let inflight = Arc::new(Semaphore::new(INFLIGHT_PER_CONNECTION_MAX));
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    'connection: loop {
        loop {
            let request = match decoder.next_message::<ControlRequest>() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(target: "agent.rpc", "closing request channel of core {core}: {e}");
                    break 'connection;
                }
            };
            match inflight.clone().try_acquire_owned() {
                Ok(permit) => {
                    let backend = backend.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let (response, after) = dispatch(&*backend, request).await;
                        let _ = tx.send(Outgoing { response, after }).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    let out = Outgoing {
                        response: too_many_outstanding(request.id),
                        after: AfterReply::Nothing,
                    };
                    if tx.send(out).await.is_err() {
                        break 'connection;
                    }
                }
            }
        }
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) => {
                tracing::debug!(target: "agent.rpc", "request channel of core {core} failed: {e}");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

fn encode_response(response: &ControlResponse) -> Vec<u8> {
    match frame::encode(response) {
        Ok(bytes) => bytes,
        Err(e) => {
            let fallback = ControlResponse {
                id: response.id,
                result: Err(ControlError {
                    status: 500,
                    message: format!("response could not be sent: {e}"),
                }),
            };
            frame::encode(&fallback).expect("a short error response always encodes")
        }
    }
}

async fn write_responses<B: ControlBackend>(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    backend: Arc<B>,
) {
    let mut peer_gone = false;
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut leave = first.after == AfterReply::Leave;
        batch.clear();
        batch.extend_from_slice(&encode_response(&first.response));
        while batch.len() < WRITE_BATCH_BYTES_MAX {
            let Ok(next) = rx.try_recv() else { break };
            leave |= next.after == AfterReply::Leave;
            batch.extend_from_slice(&encode_response(&next.response));
        }
        if !peer_gone && writer.write_all(&batch).await.is_err() {
            // Keep draining: in-flight writes still finish, and a Leave
            // still leaves.
            peer_gone = true;
        }
        if leave {
            backend.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::dispatch::tests::FakeBackend;
    use proconsul_shared::command::{Command, CommandResult};
    use proconsul_shared::ipc::messages::{ControlOp, ControlReply};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    async fn read_responses(stream: &mut UnixStream, count: usize) -> Vec<ControlResponse> {
        let mut decoder = FrameDecoder::default();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while out.len() < count {
            while let Some(r) = decoder.next_message::<ControlResponse>().unwrap() {
                out.push(r);
            }
            if out.len() >= count {
                break;
            }
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("responses arrive in time")
                .unwrap();
            assert!(n > 0, "connection closed after {} responses", out.len());
            decoder.push(&buf[..n]);
        }
        out
    }

    fn set(id: u64, key: &str) -> Vec<u8> {
        frame::encode(&ControlRequest {
            id,
            op: ControlOp::Write(Command::KvSet {
                key: key.into(),
                value: b"v".to_vec(),
                flags: 0,
            }),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn answers_every_request_by_id() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let backend = Arc::new(FakeBackend::default());
        let task = tokio::spawn(serve_requests(server, FrameDecoder::default(), backend.clone(), 0));
        let mut bytes = Vec::new();
        for id in 1..=3 {
            bytes.extend(set(id, &format!("k{id}")));
        }
        bytes.extend(
            frame::encode(&ControlRequest {
                id: 4,
                op: ControlOp::Stats,
            })
            .unwrap(),
        );
        client.write_all(&bytes).await.unwrap();
        let mut responses = read_responses(&mut client, 4).await;
        responses.sort_by_key(|r| r.id);
        let ids: Vec<u64> = responses.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        for r in &responses[..3] {
            assert!(matches!(
                r.result,
                Ok(ControlReply::Written {
                    result: CommandResult::Bool(true),
                    ..
                })
            ));
        }
        assert!(matches!(responses[3].result, Ok(ControlReply::Stats(_))));
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn bytes_read_with_the_hello_are_not_lost() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut decoder = FrameDecoder::default();
        decoder.push(&set(5, "early"));
        let backend = Arc::new(FakeBackend::default());
        tokio::spawn(serve_requests(server, decoder, backend, 0));
        let r = read_responses(&mut client, 1).await;
        assert_eq!(r[0].id, 5);
    }

    #[tokio::test]
    async fn requests_beyond_the_inflight_bound_get_429() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let backend = Arc::new(FakeBackend {
            write_delay_ms: 500,
            ..Default::default()
        });
        tokio::spawn(serve_requests(server, FrameDecoder::default(), backend, 0));
        let extra = 5;
        let total = INFLIGHT_PER_CONNECTION_MAX + extra;
        let mut bytes = Vec::new();
        for id in 0..total as u64 {
            bytes.extend(set(id, "k"));
        }
        client.write_all(&bytes).await.unwrap();
        let responses = read_responses(&mut client, total).await;
        let rejected: Vec<&ControlResponse> = responses
            .iter()
            .filter(|r| matches!(&r.result, Err(e) if e.status == 429))
            .collect();
        assert_eq!(rejected.len(), extra);
        assert!(rejected.iter().all(|r| r.id >= INFLIGHT_PER_CONNECTION_MAX as u64));
        assert_eq!(
            rejected[0].result.as_ref().unwrap_err().message,
            "Too many outstanding requests"
        );
    }

    #[tokio::test]
    async fn a_bad_frame_closes_the_connection() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let backend = Arc::new(FakeBackend::default());
        let task = tokio::spawn(serve_requests(server, FrameDecoder::default(), backend, 0));
        client.write_all(&[2, 0, 0, 0, 0xff, 0xff]).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "the agent closed the channel");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn leave_is_answered_before_the_agent_leaves() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let backend = Arc::new(FakeBackend::default());
        tokio::spawn(serve_requests(server, FrameDecoder::default(), backend.clone(), 0));
        client
            .write_all(
                &frame::encode(&ControlRequest {
                    id: 1,
                    op: ControlOp::Leave,
                })
                .unwrap(),
            )
            .await
            .unwrap();
        let r = read_responses(&mut client, 1).await;
        assert_eq!(r[0].result, Ok(ControlReply::Done));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while backend.leaves.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(backend.leaves.load(Ordering::SeqCst), 1);
    }
}
