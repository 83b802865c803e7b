//! Length-prefixed postcard frames. [`FrameDecoder`] is sans-IO: feed it
//! bytes, take messages out.

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::limits::IPC_FRAME_BYTES_MAX;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {IPC_FRAME_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("frame does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed")]
    Closed,
}

/// Encodes one message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(msg, vec![0u8; 4])?;
    let len = out.len() - 4;
    if len > IPC_FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Accumulates bytes and yields whole frames.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..4].try_into().unwrap()) as usize;
        if len > IPC_FRAME_BYTES_MAX {
            return Err(FrameError::TooLarge(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let msg = postcard::from_bytes(&avail[4..4 + len])?;
        self.start += 4 + len;
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(msg))
    }
}

/// Blocking read of one frame from a std stream.
pub fn read_blocking<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Closed,
        _ => FrameError::Io(e),
    })?;
    let len = u32::from_le_bytes(len) as usize;
    if len > IPC_FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(postcard::from_bytes(&body)?)
}

/// Blocking write of one frame to a std stream.
pub fn write_blocking<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_split_and_batched_frames() {
        let a = encode(&("hello".to_string(), 1u64)).unwrap();
        let b = encode(&("world".to_string(), 2u64)).unwrap();
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let mut d = FrameDecoder::default();
        for byte in &all[..a.len() - 1] {
            d.push(std::slice::from_ref(byte));
            assert!(d.next_message::<(String, u64)>().unwrap().is_none());
        }
        d.push(&all[a.len() - 1..]);
        assert_eq!(d.next_message::<(String, u64)>().unwrap(), Some(("hello".into(), 1)));
        assert_eq!(d.next_message::<(String, u64)>().unwrap(), Some(("world".into(), 2)));
        assert_eq!(d.next_message::<(String, u64)>().unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_an_error() {
        let mut d = FrameDecoder::default();
        d.push(&((IPC_FRAME_BYTES_MAX as u32) + 1).to_le_bytes());
        assert!(matches!(d.next_message::<u8>(), Err(FrameError::TooLarge(_))));
    }
}
