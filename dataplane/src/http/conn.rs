//! One connection's read–answer–write loop.
//!
//! Reads into a reusable buffer, answers every complete request already
//! in it (pipelining: in order, flushing every [`PIPELINED_RESPONSES_MAX`]
//! responses or [`OUTPUT_FLUSH_BYTES`]), writes each batch of responses
//! with one write, and closes on `Connection: close`, HTTP/1.0 without
//! keep-alive, a refused request, an idle or slow peer, or EOF.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::dispatch::{park, respond, Flow, Step};
use super::limits::{
    BUFFER_KEEP_BYTES_MAX, IDLE_TIMEOUT_MS, OUTPUT_FLUSH_BYTES, PIPELINED_RESPONSES_MAX, READ_CHUNK_BYTES,
    READ_FIRST_BYTES, REQUEST_READ_TIMEOUT_MS, WRITE_TIMEOUT_MS,
};
use super::parse::{parse_request, Parsed, Reject};
use super::response::{write_plain_error, write_response, Framing, CONTINUE};
use crate::api;
use crate::core::Core;

/// How long a connection may wait on its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
    /// For the rest of a request once its first bytes arrived.
    pub request_read: Duration,
    /// For one batch of responses to be written.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: Duration::from_millis(IDLE_TIMEOUT_MS),
            request_read: Duration::from_millis(REQUEST_READ_TIMEOUT_MS),
            write: Duration::from_millis(WRITE_TIMEOUT_MS),
        }
    }
}

/// Serves `stream` until it closes.
pub async fn serve(core: &Core, mut stream: TcpStream, timeouts: Timeouts) {
    if let Err(e) = run(core, &mut stream, timeouts).await {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}

async fn run(core: &Core, stream: &mut TcpStream, timeouts: Timeouts) -> io::Result<()> {
    // Both buffers start empty and grow on first use; a parked blocking
    // read releases them (see `release_for_park`).
    let mut input: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut continue_sent = false;
    // When the bytes of the request now at the front began to arrive.
    let mut partial_since: Option<Instant> = None;
    let peer_ip = stream.peer_addr().ok().map(|peer| peer.ip());
    loop {
        let mut consumed = 0;
        let mut answered = 0;
        let mut close = false;
        let mut answered_any = false;
        loop {
            match parse_request(&input[consumed..], api::body_limit) {
                Ok(Parsed::Complete {
                    request,
                    consumed: used,
                }) => {
                    continue_sent = false;
                    answered_any = true;
                    let keep_alive = request.keep_alive;
                    let step = respond(core, &request, peer_ip, &mut out).await;
                    consumed += used;
                    answered += 1;
                    let flow = match step {
                        Step::Answered(flow) => flow,
                        Step::Park(parked) => {
                            // Answer what came before it first: those
                            // clients should not wait for this one.
                            if !out.is_empty() {
                                out = write_out(stream, out, timeouts.write).await?;
                                answered = 1;
                            }
                            let mut pending = release_for_park(&mut input, consumed, &mut out);
                            #[cfg(test)]
                            parked_probe::record(stream, &input, &out, &pending, &parked);
                            let flow = park(core, parked, stream, &mut pending, &mut out, timeouts.idle).await;
                            // Parsing resumes in what followed the parked
                            // request plus what arrived while it waited.
                            input = pending;
                            consumed = 0;
                            flow
                        }
                    };
                    if flow == Flow::Close || !keep_alive {
                        close = true;
                        break;
                    }
                    if answered >= PIPELINED_RESPONSES_MAX || out.len() >= OUTPUT_FLUSH_BYTES {
                        out = write_out(stream, out, timeouts.write).await?;
                        answered = 0;
                    }
                }
                Ok(Parsed::Partial { expects_continue }) => {
                    if expects_continue && !continue_sent {
                        out.extend_from_slice(CONTINUE);
                        continue_sent = true;
                    }
                    break;
                }
                Err(reject) => {
                    write_reject(&mut out, reject, &input[consumed..]);
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            out = write_out(stream, out, timeouts.write).await?;
        }
        if close {
            return Ok(());
        }
        if answered_any {
            partial_since = None;
        }
        input.drain(..consumed);
        shrink(&mut input);
        shrink(&mut out);
        let timeout = if input.is_empty() {
            timeouts.idle
        } else {
            // The whole request must arrive in time, not each read.
            let since = *partial_since.get_or_insert_with(Instant::now);
            let left = timeouts.request_read.saturating_sub(since.elapsed());
            if left.is_zero() {
                return Ok(());
            }
            left
        };
        let (read, returned) = read_more(stream, input, timeout).await;
        input = returned;
        match read {
            Some(Ok(0)) | None => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

/// Reads once into the spare capacity of `input`; `None` on timeout (the
/// in-flight read is cancelled when its future is dropped).
async fn read_more(
    stream: &mut TcpStream,
    mut input: Vec<u8>,
    timeout: Duration,
) -> (Option<io::Result<usize>>, Vec<u8>) {
    reserve_for_read(&mut input);
    let len = input.len();
    let spare = input.slice_mut(len..);
    match within(timeout, stream.read(spare)).await {
        Some((result, spare)) => (Some(result), spare.into_inner()),
        // The connection closes: no buffer is needed any more.
        None => (None, Vec::new()),
    }
}

/// Makes room for the next read: [`READ_FIRST_BYTES`] when waiting for a
/// new request (most requests fit; a connection that waits between
/// requests then pins only that much in its in-flight read, and a larger
/// buffer left by an earlier request is given back), else
/// [`READ_CHUNK_BYTES`] for the rest of a request that did not fit.
fn reserve_for_read(input: &mut Vec<u8>) {
    if input.is_empty() {
        input.shrink_to(READ_FIRST_BYTES);
        input.reserve(READ_FIRST_BYTES);
    } else {
        input.reserve(READ_CHUNK_BYTES);
    }
}

/// Writes all of `out` (one write in the common case) and returns it
/// emptied for reuse. A peer that does not read for `timeout` is dropped.
async fn write_out(stream: &mut TcpStream, out: Vec<u8>, timeout: Duration) -> io::Result<Vec<u8>> {
    match within(timeout, stream.write_all(out)).await {
        Some((Ok(_), mut out)) => {
            out.clear();
            Ok(out)
        }
        Some((Err(e), _)) => Err(e),
        None => Err(io::Error::new(io::ErrorKind::TimedOut, "response write timed out")),
    }
}

/// `io` unless `limit` passes first (`None`; `io` is then dropped, which
/// cancels it). The timer is boxed: monoio's timer entry is large and
/// 128-byte aligned, and inline it would set the size of every
/// connection's task, parked ones included, though no timer runs while a
/// query is parked.
pub(super) async fn within<F: Future>(limit: Duration, io: F) -> Option<F::Output> {
    let mut timer = Box::pin(monoio::time::sleep(limit));
    let mut io = pin!(io);
    poll_fn(|cx| {
        if let Poll::Ready(done) = io.as_mut().poll(cx) {
            return Poll::Ready(Some(done));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Releases the connection's buffers before a blocking read parks: the
/// bytes after the parked request (`input[consumed..]`, a pipelined
/// request; usually none) move to an exact-size buffer, which is returned,
/// and `input` and `out` (both emptied) give their memory back. A parked
/// query then holds only that buffer and its own small copy of the request.
fn release_for_park(input: &mut Vec<u8>, consumed: usize, out: &mut Vec<u8>) -> Vec<u8> {
    debug_assert!(out.is_empty(), "responses before a parked read are flushed first");
    let pending = input[consumed..].to_vec();
    *input = Vec::new();
    *out = Vec::new();
    pending
}

/// Answers a request the framing refused; the connection then closes.
fn write_reject(out: &mut Vec<u8>, reject: Reject, input: &[u8]) {
    let framing = Framing {
        version_minor: 1,
        keep_alive: false,
        head_only: false,
    };
    let date = super::date::now();
    match reject {
        Reject::BadRequest => write_plain_error(out, 400, framing, &date),
        Reject::HeadTooLarge => write_plain_error(out, 431, framing, &date),
        Reject::UnsupportedTransferEncoding => write_plain_error(out, 501, framing, &date),
        Reject::BodyTooLarge {
            body_bytes,
            limit_bytes,
        } => {
            let target = request_target(input).unwrap_or("");
            let response = api::body_too_large(target, body_bytes, limit_bytes);
            write_response(out, &response, framing, &date);
        }
    }
}

/// The target of the request line at the start of `input`, if readable.
fn request_target(input: &[u8]) -> Option<&str> {
    let line_end = input.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&input[..line_end]).ok()?;
    line.split(' ').nth(1)
}

/// Releases a buffer that grew for one large request.
fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > BUFFER_KEEP_BYTES_MAX && buf.len() <= READ_CHUNK_BYTES {
        buf.shrink_to(READ_CHUNK_BYTES);
    }
}

/// Test instrumentation: the heap bytes each parked connection holds at
/// the moment it parks, by client address (tests run in parallel, so each
/// test looks up its own connection).
#[cfg(test)]
pub(crate) mod parked_probe {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use monoio::net::TcpStream;

    use super::super::dispatch::ParkedRequest;

    /// Most records kept; older ones are dropped first.
    const RECORDS_MAX: usize = 1024;

    static HELD_BYTES_BY_PEER: Mutex<Vec<(SocketAddr, usize)>> = Mutex::new(Vec::new());

    /// Records the capacity of every buffer a connection keeps while
    /// `parked` waits (the hang-up read's buffer is counted in dispatch's
    /// own test of its size).
    pub(crate) fn record(
        stream: &TcpStream,
        input: &Vec<u8>,
        out: &Vec<u8>,
        pending: &Vec<u8>,
        parked: &ParkedRequest,
    ) {
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let held = input.capacity() + out.capacity() + pending.capacity() + parked.held_bytes();
        let mut records = HELD_BYTES_BY_PEER.lock().unwrap();
        if records.len() >= RECORDS_MAX {
            records.remove(0);
        }
        records.push((peer, held));
    }

    /// What the connection from `peer` held when it last parked.
    pub(crate) fn held_bytes(peer: SocketAddr) -> Option<usize> {
        let records = HELD_BYTES_BY_PEER.lock().unwrap();
        records.iter().rev().find(|(p, _)| *p == peer).map(|(_, held)| *held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parking_releases_both_buffers_and_keeps_the_pipelined_bytes() {
        let mut input = Vec::with_capacity(READ_CHUNK_BYTES);
        input.extend_from_slice(b"GET /v1/kv/a?index=9 HTTP/1.1\r\n\r\nGET /v1/kv/b HT");
        let consumed = input.len() - b"GET /v1/kv/b HT".len();
        let mut out = Vec::with_capacity(READ_CHUNK_BYTES);
        let pending = release_for_park(&mut input, consumed, &mut out);
        assert_eq!(pending, b"GET /v1/kv/b HT");
        assert_eq!(pending.capacity(), pending.len());
        assert_eq!((input.capacity(), out.capacity()), (0, 0));

        let mut input = b"GET /v1/kv/a?index=9 HTTP/1.1\r\n\r\n".to_vec();
        let consumed = input.len();
        let pending = release_for_park(&mut input, consumed, &mut out);
        assert_eq!(pending.capacity(), 0, "nothing pipelined: nothing held");
        assert_eq!(input.capacity(), 0);
    }

    #[test]
    fn rejects_are_answered_and_close() {
        let mut out = Vec::new();
        write_reject(&mut out, Reject::HeadTooLarge, b"GET / HTTP/1.1\r\n");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.contains("Connection: close\r\n"));

        let mut out = Vec::new();
        write_reject(
            &mut out,
            Reject::BodyTooLarge {
                body_bytes: 600_000,
                limit_bytes: 524_288,
            },
            b"PUT /v1/kv/big?flags=1 HTTP/1.1\r\nContent-Length: 600000\r\n\r\n",
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"));
        assert!(text.ends_with(
            "Request body(600000 bytes) too large, max size: 524288 bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
        ));

        let mut out = Vec::new();
        write_reject(&mut out, Reject::BadRequest, b"garbage");
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n400 Bad Request"));
    }

    #[test]
    fn request_target_of_the_line() {
        assert_eq!(request_target(b"PUT /v1/txn HTTP/1.1\r\n"), Some("/v1/txn"));
        assert_eq!(request_target(b"PUT"), None);
    }

    #[test]
    fn a_new_request_is_read_into_a_small_buffer() {
        let mut input = Vec::new();
        reserve_for_read(&mut input);
        assert!((READ_FIRST_BYTES..2 * READ_FIRST_BYTES).contains(&input.capacity()));
        // A buffer an earlier large request grew is given back when empty.
        let mut input = Vec::with_capacity(BUFFER_KEEP_BYTES_MAX);
        reserve_for_read(&mut input);
        assert!(input.capacity() < 2 * READ_FIRST_BYTES, "{}", input.capacity());
        // The rest of a request that did not fit gets a full chunk.
        let mut input = vec![b'G'; READ_FIRST_BYTES];
        reserve_for_read(&mut input);
        assert!(input.capacity() - input.len() >= READ_CHUNK_BYTES);
        assert_eq!(input, vec![b'G'; READ_FIRST_BYTES]);
    }

    #[test]
    fn grown_buffers_are_released() {
        let mut buf = Vec::with_capacity(BUFFER_KEEP_BYTES_MAX * 4);
        buf.extend_from_slice(b"abc");
        shrink(&mut buf);
        assert!(buf.capacity() <= BUFFER_KEEP_BYTES_MAX);
        assert_eq!(buf, b"abc");
    }
}
