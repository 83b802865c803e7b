//! Push-pull: the full-state exchange over TCP on the gossip port, used to
//! join and to heal. A frame is `b"PCG1"`, a big-endian u32 length, then
//! the postcard encoding of a `Vec<WireMember>`. Both sides send their
//! state, then read the other's.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::core::WireMember;

/// Frame magic: "Proconsul Gossip", version 1.
pub const FRAME_MAGIC: [u8; 4] = *b"PCG1";
/// Magic plus length.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Why a push-pull exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum PushPullError {
    /// The peer does not speak our push-pull.
    #[error("push-pull: bad frame magic")]
    BadMagic,
    /// A payload over `push_pull_bytes_max`.
    #[error("push-pull: payload of {bytes} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Announced or produced size.
        bytes: usize,
        /// Configured limit.
        max: usize,
    },
    /// More members than the table may hold.
    #[error("push-pull: {count} members exceed the limit of {max}")]
    TooManyMembers {
        /// Members received.
        count: usize,
        /// Configured limit.
        max: usize,
    },
    /// The payload does not decode.
    #[error("push-pull: malformed payload: {0}")]
    Malformed(String),
    /// The exchange took longer than the deadline.
    #[error("push-pull: timed out after {0} ms")]
    TimedOut(u64),
    /// Socket error.
    #[error("push-pull: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes our state as one frame.
pub fn encode_frame(members: &[WireMember], bytes_max: usize) -> Result<Vec<u8>, PushPullError> {
    let payload = postcard::to_allocvec(members).map_err(|e| PushPullError::Malformed(e.to_string()))?;
    if payload.len() > bytes_max {
        return Err(PushPullError::TooLarge {
            bytes: payload.len(),
            max: bytes_max,
        });
    }
    let length = u32::try_from(payload.len()).map_err(|_| PushPullError::TooLarge {
        bytes: payload.len(),
        max: bytes_max,
    })?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Checks a frame header and returns the payload length.
pub fn decode_header(header: [u8; FRAME_HEADER_BYTES], bytes_max: usize) -> Result<usize, PushPullError> {
    if header[..4] != FRAME_MAGIC {
        return Err(PushPullError::BadMagic);
    }
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if length > bytes_max {
        return Err(PushPullError::TooLarge {
            bytes: length,
            max: bytes_max,
        });
    }
    Ok(length)
}

/// Decodes a payload, refusing more than `members_max` entries.
pub fn decode_payload(payload: &[u8], members_max: usize) -> Result<Vec<WireMember>, PushPullError> {
    let members: Vec<WireMember> =
        postcard::from_bytes(payload).map_err(|e| PushPullError::Malformed(e.to_string()))?;
    if members.len() > members_max {
        return Err(PushPullError::TooManyMembers {
            count: members.len(),
            max: members_max,
        });
    }
    Ok(members)
}

/// Limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLimits {
    /// Largest payload either way.
    pub bytes_max: usize,
    /// Most members accepted from the peer.
    pub members_max: usize,
    /// Deadline of the whole exchange.
    pub timeout_ms: u64,
}

/// Sends `ours` and reads the peer's state, within the deadline.
pub async fn exchange<S>(
    stream: &mut S,
    ours: &[WireMember],
    limits: ExchangeLimits,
) -> Result<Vec<WireMember>, PushPullError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = encode_frame(ours, limits.bytes_max)?;
    let work = async {
        stream.write_all(&frame).await?;
        stream.flush().await?;
        read_frame(stream, limits).await
    };
    tokio::time::timeout(Duration::from_millis(limits.timeout_ms), work)
        .await
        .map_err(|_| PushPullError::TimedOut(limits.timeout_ms))?
}

/// Reads the peer's state first (server side), within the deadline.
pub async fn read_state<S>(stream: &mut S, limits: ExchangeLimits) -> Result<Vec<WireMember>, PushPullError>
where
    S: AsyncRead + Unpin,
{
    tokio::time::timeout(Duration::from_millis(limits.timeout_ms), read_frame(stream, limits))
        .await
        .map_err(|_| PushPullError::TimedOut(limits.timeout_ms))?
}

/// Writes our state (server side), within the deadline.
pub async fn write_state<S>(stream: &mut S, ours: &[WireMember], limits: ExchangeLimits) -> Result<(), PushPullError>
where
    S: AsyncWrite + Unpin,
{
    let frame = encode_frame(ours, limits.bytes_max)?;
    let work = async {
        stream.write_all(&frame).await?;
        stream.flush().await
    };
    tokio::time::timeout(Duration::from_millis(limits.timeout_ms), work)
        .await
        .map_err(|_| PushPullError::TimedOut(limits.timeout_ms))?
        .map_err(PushPullError::Io)
}

async fn read_frame<S>(stream: &mut S, limits: ExchangeLimits) -> Result<Vec<WireMember>, PushPullError>
where
    S: AsyncRead + Unpin,
{
    let mut header = [0u8; FRAME_HEADER_BYTES];
    stream.read_exact(&mut header).await?;
    let length = decode_header(header, limits.bytes_max)?;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await?;
    decode_payload(&payload, limits.members_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::identity::NodeIdentity;
    use std::collections::BTreeMap;

    fn members(count: usize) -> Vec<WireMember> {
        (0..count)
            .map(|i| {
                let addr = format!("127.0.0.{}:8301", i % 250 + 1).parse().unwrap();
                WireMember::alive(NodeIdentity::new(&format!("node-{i}"), addr, 1, BTreeMap::new()).unwrap())
            })
            .collect()
    }

    const LIMITS: ExchangeLimits = ExchangeLimits {
        bytes_max: 64 * 1024,
        members_max: 100,
        timeout_ms: 1_000,
    };

    #[test]
    fn frame_round_trips() {
        let frame = encode_frame(&members(3), 4096).unwrap();
        let length = decode_header(frame[..8].try_into().unwrap(), 4096).unwrap();
        assert_eq!(length, frame.len() - 8);
        assert_eq!(decode_payload(&frame[8..], 10).unwrap(), members(3));
    }

    #[test]
    fn oversized_payloads_are_refused_both_ways() {
        assert!(matches!(
            encode_frame(&members(50), 100),
            Err(PushPullError::TooLarge { max: 100, .. })
        ));
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&FRAME_MAGIC);
        header[4..].copy_from_slice(&(1_000_000u32).to_be_bytes());
        assert!(matches!(
            decode_header(header, 4096),
            Err(PushPullError::TooLarge { bytes: 1_000_000, .. })
        ));
    }

    #[test]
    fn bad_magic_and_garbage_are_errors_not_panics() {
        assert!(matches!(
            decode_header(*b"GET / HT", 4096),
            Err(PushPullError::BadMagic)
        ));
        assert!(matches!(
            decode_payload(&[0xff, 0xff, 0xff], 10),
            Err(PushPullError::Malformed(_))
        ));
    }

    #[test]
    fn too_many_members_are_refused() {
        let frame = encode_frame(&members(5), 4096).unwrap();
        assert!(matches!(
            decode_payload(&frame[8..], 4),
            Err(PushPullError::TooManyMembers { count: 5, max: 4 })
        ));
    }

    #[tokio::test]
    async fn exchange_over_a_duplex_pipe() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            let theirs = read_state(&mut server, LIMITS).await.unwrap();
            write_state(&mut server, &members(2), LIMITS).await.unwrap();
            theirs
        });
        let got = exchange(&mut client, &members(4), LIMITS).await.unwrap();
        assert_eq!(got, members(2));
        assert_eq!(serve.await.unwrap(), members(4));
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let (mut client, _server) = tokio::io::duplex(64 * 1024);
        let limits = ExchangeLimits {
            timeout_ms: 50,
            ..LIMITS
        };
        assert!(matches!(
            exchange(&mut client, &members(1), limits).await,
            Err(PushPullError::TimedOut(50))
        ));
    }
}
