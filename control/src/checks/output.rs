//! Bounded check output. Pure.
//!
//! Consul captures probe output in a circular buffer (`circbuf`): it keeps
//! the *last* `OutputMaxSize` bytes and counts everything written. HTTP
//! checks show the tail as is; script checks prefix it with
//! `Captured <kept> of <total> bytes\n...\n` when something was dropped; TTL
//! updates keep the *first* bytes and append ` ... (captured <kept> of
//! <total> bytes)`.

use std::collections::VecDeque;

/// The last `capacity` bytes written, and how many were written in all.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    capacity: usize,
    kept: VecDeque<u8>,
    total_written: u64,
}

impl TailBuffer {
    /// An empty buffer keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        TailBuffer {
            capacity,
            kept: VecDeque::with_capacity(capacity.min(64 * 1024)),
            total_written: 0,
        }
    }

    /// Appends `bytes`, dropping the oldest beyond the capacity.
    pub fn write(&mut self, bytes: &[u8]) {
        self.total_written = self.total_written.saturating_add(bytes.len() as u64);
        let tail = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (self.kept.len() + tail.len()).saturating_sub(self.capacity);
        self.kept.drain(..overflow);
        self.kept.extend(tail);
        debug_assert!(self.kept.len() <= self.capacity, "tail buffer over its capacity");
    }

    /// Bytes written in all, kept or not.
    pub fn total_written(&self) -> u64 {
        self.total_written
    }

    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total_written > self.kept.len() as u64
    }

    /// The kept bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let (a, b) = self.kept.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A script check's output: the tail, with Consul's `Captured` prefix
    /// when bytes were dropped.
    pub fn script_output(&self) -> String {
        let text = self.text();
        if self.truncated() {
            format!(
                "Captured {} of {} bytes\n...\n{}",
                self.capacity, self.total_written, text
            )
        } else {
            text
        }
    }
}

/// A TTL check's output as Consul's `CheckTTL.SetStatus` stores it: the
/// first `max_bytes` bytes, then ` ... (captured <max> of <total> bytes)`.
/// Cuts on a character boundary at or below `max_bytes`.
pub fn ttl_output(output: &str, max_bytes: usize) -> String {
    if output.len() <= max_bytes {
        return output.to_string();
    }
    let mut cut = max_bytes;
    while !output.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} ... (captured {} of {} bytes)",
        &output[..cut],
        max_bytes,
        output.len()
    )
}

/// What a TTL check says when it expires (`getExpiredOutput`).
pub fn ttl_expired_output(last_output: &str) -> String {
    const PREFIX: &str = "TTL expired";
    if last_output.is_empty() {
        PREFIX.to_string()
    } else {
        format!("{PREFIX} (last output before timeout follows): {last_output}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_capacity() {
        let mut b = TailBuffer::new(8);
        b.write(b"abc");
        b.write(b"de");
        assert_eq!(b.text(), "abcde");
        assert!(!b.truncated());
        assert_eq!(b.script_output(), "abcde");
    }

    #[test]
    fn keeps_the_last_bytes_like_circbuf() {
        let mut b = TailBuffer::new(4);
        b.write(b"abc");
        b.write(b"defg");
        assert_eq!(b.text(), "defg");
        b.write(b"0123456789");
        assert_eq!(b.text(), "6789");
        assert_eq!(b.total_written(), 17);
        assert_eq!(b.script_output(), "Captured 4 of 17 bytes\n...\n6789");
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_counts() {
        let mut b = TailBuffer::new(0);
        b.write(b"abc");
        assert_eq!(b.text(), "");
        assert_eq!(b.total_written(), 3);
        assert_eq!(b.script_output(), "Captured 0 of 3 bytes\n...\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_a_panic() {
        let mut b = TailBuffer::new(3);
        b.write("é".as_bytes());
        b.write(b"xy");
        // The cut split "é": its second byte is kept and replaced.
        assert_eq!(b.text(), "\u{fffd}xy");
    }

    #[test]
    fn ttl_output_keeps_the_head() {
        assert_eq!(ttl_output("short", 10), "short");
        assert_eq!(ttl_output("0123456789", 4), "0123 ... (captured 4 of 10 bytes)");
        // Never cuts inside a character.
        assert_eq!(ttl_output("aé", 2), "a ... (captured 2 of 3 bytes)");
    }

    #[test]
    fn ttl_expired_text() {
        assert_eq!(ttl_expired_output(""), "TTL expired");
        assert_eq!(
            ttl_expired_output("ok"),
            "TTL expired (last output before timeout follows): ok"
        );
    }
}
