//! One connection's closed loop, without the socket: the driver hands it
//! the bytes it read and writes the bytes it asks for. Each response
//! releases the next request, so `depth` requests stay outstanding.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::http::response::{ResponseError, ResponseReader};
use crate::http::stats::HttpStats;
use crate::limits::{RESPONSE_BODY_BYTES_MAX, RESPONSE_HEAD_BYTES_MAX};

/// Free space offered to each read, in bytes.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// The read buffer never grows past one largest response plus one read.
pub const READ_BUFFER_BYTES_MAX: usize = RESPONSE_HEAD_BYTES_MAX + RESPONSE_BODY_BYTES_MAX + READ_CHUNK_BYTES;

/// What the driver does after handing over bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRead {
    /// Keep going: write what [`ConnCore::to_write`] holds.
    Continue,
    /// The server announced it closes: reopen the connection.
    Reopen,
}

/// The server sent something that is not an HTTP/1.1 response we can frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnFault(pub ResponseError);

/// The state of one connection, from the client's side.
#[derive(Debug)]
pub struct ConnCore {
    /// Prebuilt request bytes, one per path, shared by every connection.
    requests: Arc<[Vec<u8>]>,
    next_request: usize,
    depth: usize,
    /// When each outstanding request was queued, oldest first.
    sent_at_ns: VecDeque<u64>,
    reader: ResponseReader,
    read_buf: Vec<u8>,
    read_start: usize,
    read_end: usize,
    write_buf: Vec<u8>,
    write_pos: usize,
}

impl ConnCore {
    /// A connection that will cycle through `requests` starting at
    /// `first_request`, keeping `depth` outstanding.
    pub fn new(requests: Arc<[Vec<u8>]>, first_request: usize, depth: usize) -> ConnCore {
        assert!(!requests.is_empty(), "at least one request to send");
        assert!(depth >= 1, "pipeline depth is at least 1");
        ConnCore {
            next_request: first_request % requests.len(),
            requests,
            depth,
            sent_at_ns: VecDeque::with_capacity(depth),
            reader: ResponseReader::new(),
            read_buf: vec![0; READ_CHUNK_BYTES * 2],
            read_start: 0,
            read_end: 0,
            write_buf: Vec::new(),
            write_pos: 0,
        }
    }

    /// The socket is connected (again): forget the old stream and queue
    /// the first `depth` requests.
    pub fn open(&mut self, now_ns: u64) {
        self.sent_at_ns.clear();
        self.reader.reset();
        self.read_start = 0;
        self.read_end = 0;
        self.write_buf.clear();
        self.write_pos = 0;
        for _ in 0..self.depth {
            self.queue_request(now_ns);
        }
    }

    /// Requests outstanding (queued or written, not yet answered).
    pub fn outstanding(&self) -> usize {
        self.sent_at_ns.len()
    }

    /// When the oldest outstanding request was queued.
    pub fn oldest_sent_ns(&self) -> Option<u64> {
        self.sent_at_ns.front().copied()
    }

    /// Bytes waiting to be written.
    pub fn to_write(&self) -> &[u8] {
        &self.write_buf[self.write_pos..]
    }

    /// `n` bytes of [`ConnCore::to_write`] went out.
    pub fn wrote(&mut self, n: usize) {
        assert!(self.write_pos + n <= self.write_buf.len(), "wrote more than was queued");
        self.write_pos += n;
        if self.write_pos == self.write_buf.len() {
            self.write_buf.clear();
            self.write_pos = 0;
        }
    }

    /// Room for the next read (at least [`READ_CHUNK_BYTES`]).
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.read_buf.len() - self.read_end < READ_CHUNK_BYTES {
            self.read_buf.copy_within(self.read_start..self.read_end, 0);
            self.read_end -= self.read_start;
            self.read_start = 0;
        }
        if self.read_buf.len() - self.read_end < READ_CHUNK_BYTES {
            let grown = (self.read_buf.len() * 2).min(READ_BUFFER_BYTES_MAX);
            assert!(
                grown - self.read_end >= READ_CHUNK_BYTES,
                "unconsumed bytes exceed one largest response: the reader bounds it"
            );
            self.read_buf.resize(grown, 0);
        }
        &mut self.read_buf[self.read_end..]
    }

    /// `n` bytes were read into [`ConnCore::read_space`]: count the
    /// responses they complete and queue a request for each.
    pub fn received(&mut self, n: usize, now_ns: u64, stats: &mut HttpStats) -> Result<AfterRead, ConnFault> {
        assert!(self.read_end + n <= self.read_buf.len(), "read past the offered space");
        self.read_end += n;
        loop {
            let pending = &self.read_buf[self.read_start..self.read_end];
            let response = match self.reader.next(pending) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(AfterRead::Continue),
                Err(e) => return Err(ConnFault(e)),
            };
            // Every answer releases a request and only `Reopen` stops that,
            // so `depth` requests are outstanding whenever bytes arrive.
            let sent_ns = self
                .sent_at_ns
                .pop_front()
                .expect("closed loop: a request is outstanding whenever a response arrives");
            stats.record_response(
                response.status,
                response.wire_bytes,
                response.body_bytes,
                now_ns.saturating_sub(sent_ns),
            );
            self.read_start += response.wire_bytes;
            if response.connection_close {
                return Ok(AfterRead::Reopen);
            }
            self.queue_request(now_ns);
        }
    }

    fn queue_request(&mut self, now_ns: u64) {
        assert!(
            self.sent_at_ns.len() < self.depth,
            "never more than `depth` outstanding"
        );
        self.write_buf.extend_from_slice(&self.requests[self.next_request]);
        self.next_request = (self.next_request + 1) % self.requests.len();
        self.sent_at_ns.push_back(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn requests() -> Arc<[Vec<u8>]> {
        vec![b"A".to_vec(), b"B".to_vec(), b"C".to_vec()].into()
    }

    fn feed(c: &mut ConnCore, bytes: &[u8], now_ns: u64, stats: &mut HttpStats) -> Result<AfterRead, ConnFault> {
        let space = c.read_space();
        space[..bytes.len()].copy_from_slice(bytes);
        c.received(bytes.len(), now_ns, stats)
    }

    #[test]
    fn pipeline_keeps_depth_outstanding_and_measures_latency() {
        let mut c = ConnCore::new(requests(), 1, 2);
        let mut stats = HttpStats::default();
        c.open(1_000);
        assert_eq!(c.to_write(), b"BC");
        assert_eq!(c.outstanding(), 2);
        c.wrote(1);
        assert_eq!(c.to_write(), b"C");
        c.wrote(1);
        assert_eq!(c.to_write(), b"");
        // One response, split in two reads.
        assert_eq!(feed(&mut c, &OK[..10], 5_000, &mut stats), Ok(AfterRead::Continue));
        assert_eq!(stats.responses, 0);
        assert_eq!(feed(&mut c, &OK[10..], 9_000, &mut stats), Ok(AfterRead::Continue));
        assert_eq!(stats.responses, 1);
        assert_eq!(stats.status_counts[&200], 1);
        assert_eq!(
            c.to_write(),
            b"A",
            "the answered request released the next path, wrapping around"
        );
        assert_eq!(c.outstanding(), 2);
        assert_eq!(c.oldest_sent_ns(), Some(1_000));
        // Second response: latency 8,000 ns from its queueing at 1,000.
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        assert_eq!(feed(&mut c, &two, 9_000, &mut stats), Ok(AfterRead::Continue));
        assert_eq!(stats.responses, 3);
        assert_eq!(c.to_write(), b"ABC");
        let max_us = stats.latency.summary().max_us;
        assert!(
            (max_us - 8.0).abs() < 0.01,
            "max latency {max_us} µs (3 significant digits)"
        );
    }

    #[test]
    fn malformed_response_is_a_fault() {
        let mut c = ConnCore::new(requests(), 0, 1);
        let mut stats = HttpStats::default();
        c.open(0);
        assert!(matches!(
            feed(&mut c, b"SMTP ready\r\n\r\n", 1, &mut stats),
            Err(ConnFault(ResponseError::Malformed(_)))
        ));
        assert_eq!(stats.responses, 0);
    }

    #[test]
    fn connection_close_asks_for_reopen_and_open_resets() {
        let mut c = ConnCore::new(requests(), 0, 1);
        let mut stats = HttpStats::default();
        c.open(0);
        let close = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(feed(&mut c, close, 1, &mut stats), Ok(AfterRead::Reopen));
        assert_eq!(c.outstanding(), 0);
        assert_eq!(stats.responses, 1);
        c.open(5);
        assert_eq!(c.outstanding(), 1);
        assert_eq!(c.to_write(), b"B", "unwritten bytes of the old connection are dropped");
    }

    #[test]
    fn read_buffer_compacts_and_grows_for_big_bodies() {
        let mut c = ConnCore::new(requests(), 0, 1);
        let mut stats = HttpStats::default();
        c.open(0);
        let body = vec![b'x'; 100_000];
        let mut wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        let mut fed = 0;
        let mut reads = 0;
        while fed < wire.len() {
            let space = c.read_space();
            assert!(space.len() >= READ_CHUNK_BYTES);
            let n = space.len().min(wire.len() - fed).min(7_000);
            space[..n].copy_from_slice(&wire[fed..fed + n]);
            c.received(n, 10, &mut stats).unwrap();
            fed += n;
            reads += 1;
            assert!(reads < 1_000, "bounded");
        }
        assert_eq!(stats.responses, 1);
        assert_eq!(stats.body_bytes, 100_000);
    }
}
