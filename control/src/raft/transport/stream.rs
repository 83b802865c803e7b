//! The server side of a client agent's state stream: a snapshot when the
//! client is too far behind (or new), then every delta after it, in order,
//! as they are applied; a heartbeat naming the leader when idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::wire::{write_frame, StreamFrame, WireError};
use crate::publish::recent::Since;
use crate::publish::Publisher;

/// Most deltas in one frame.
pub const STREAM_DELTAS_PER_FRAME_MAX: usize = 1_024;
/// Pause between heartbeats on an idle stream.
pub const STREAM_HEARTBEAT_MS: u64 = 200;

/// Streams the state after `from_index` until the client goes or `stop`.
pub async fn serve_stream(
    out: &mut (impl AsyncWrite + Unpin),
    from_index: u64,
    publisher: &Arc<Publisher>,
    leader: impl Fn() -> Option<String>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WireError> {
    let mut applied = publisher.applied();
    let mut cursor = from_index;
    loop {
        // Mark the current value seen before reading, so a change that lands
        // after the read wakes the wait below.
        applied.borrow_and_update();
        match publisher.deltas_since(cursor, STREAM_DELTAS_PER_FRAME_MAX) {
            Since::TooOld => {
                let (state, index) = publisher.state_with_index();
                let bytes = proconsul_shared::snapshot::encode(&state).to_vec();
                write_frame(out, &StreamFrame::Snapshot { index, bytes }).await?;
                cursor = index;
                continue;
            }
            Since::Deltas(deltas) if !deltas.is_empty() => {
                cursor = deltas.last().expect("non-empty").0;
                let frame = StreamFrame::Deltas(deltas.into_iter().map(|(i, b)| (i, b.to_vec())).collect());
                write_frame(out, &frame).await?;
                continue;
            }
            Since::Deltas(_) => {}
        }
        // (The guard `wait_for` yields is dropped inside the async block:
        // it must not live across the heartbeat's write.)
        let stopped = async {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            _ = stopped => return Ok(()),
            changed = applied.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(STREAM_HEARTBEAT_MS)) => {
                write_frame(out, &StreamFrame::Heartbeat { leader: leader() }).await?;
            }
        }
    }
}
