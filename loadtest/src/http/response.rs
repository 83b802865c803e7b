//! An incremental HTTP/1.1 response reader. Sans-IO: it is given the bytes
//! received so far (starting at the first unconsumed byte) and says whether
//! they hold a whole response and how many bytes it took. Bodies are framed
//! by `Content-Length` or `Transfer-Encoding: chunked`; a response that
//! could only end at connection close is refused, as keep-alive load
//! cannot use it.

use std::ops::Range;

use crate::limits::{RESPONSE_BODY_BYTES_MAX, RESPONSE_HEADERS_MAX, RESPONSE_HEAD_BYTES_MAX};

/// One complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Bytes the response took on the wire (head, body, chunk framing).
    pub wire_bytes: usize,
    /// Body bytes (without chunk framing).
    pub body_bytes: usize,
    /// Where the body lies in the buffer, when it is contiguous (not chunked).
    pub body: Option<Range<usize>>,
    /// The server said `Connection: close`: it will close after this response.
    pub connection_close: bool,
}

/// Why the bytes are not a response we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// httparse refused the head.
    Malformed(String),
    /// The head grew past [`RESPONSE_HEAD_BYTES_MAX`] without ending.
    HeadTooLarge,
    /// The body is larger than [`RESPONSE_BODY_BYTES_MAX`].
    BodyTooLarge(u64),
    /// `Content-Length` is not a number, or appears twice with different values.
    BadContentLength,
    /// A transfer coding other than `chunked`, or a body delimited by close.
    UnsupportedFraming(String),
    /// A chunk size line or a chunk's trailing CRLF is wrong.
    BadChunk,
    /// An interim (1xx) response, which a GET never asked for.
    Informational(u16),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::Malformed(e) => write!(f, "malformed response head: {e}"),
            ResponseError::HeadTooLarge => write!(f, "response head exceeds {RESPONSE_HEAD_BYTES_MAX} bytes"),
            ResponseError::BodyTooLarge(n) => {
                write!(f, "response body of {n} bytes exceeds {RESPONSE_BODY_BYTES_MAX}")
            }
            ResponseError::BadContentLength => write!(f, "invalid Content-Length"),
            ResponseError::UnsupportedFraming(e) => write!(f, "unsupported body framing: {e}"),
            ResponseError::BadChunk => write!(f, "invalid chunked encoding"),
            ResponseError::Informational(s) => write!(f, "unexpected interim response {s}"),
        }
    }
}

impl std::error::Error for ResponseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    /// Chunked; `next_chunk` is the offset (from the response start) of the
    /// next chunk-size line, `body_bytes` the data seen so far.
    Chunked {
        next_chunk: usize,
        body_bytes: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    head_bytes: usize,
    framing: Framing,
    connection_close: bool,
}

/// Reads one response after another from a connection's byte stream.
#[derive(Debug, Default)]
pub struct ResponseReader {
    /// The head of the response being read, once it was parsed.
    head: Option<Head>,
}

impl ResponseReader {
    /// A reader at the start of a response.
    pub fn new() -> ResponseReader {
        ResponseReader::default()
    }

    /// Looks for a complete response at the start of `buf`. `Ok(None)`:
    /// more bytes are needed (call again with `buf` extended). After
    /// `Ok(Some(r))` the caller drops `r.wire_bytes` from the front.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<Response>, ResponseError> {
        let mut head = match self.head {
            Some(h) => h,
            None => match parse_head(buf)? {
                Some(h) => h,
                None => return Ok(None),
            },
        };
        let done = match &mut head.framing {
            Framing::Length(len) => {
                let end = head.head_bytes + *len;
                (buf.len() >= end).then_some(Response {
                    status: head.status,
                    wire_bytes: end,
                    body_bytes: *len,
                    body: Some(head.head_bytes..end),
                    connection_close: head.connection_close,
                })
            }
            Framing::Chunked { next_chunk, body_bytes } => {
                scan_chunks(buf, next_chunk, body_bytes)?.map(|end| Response {
                    status: head.status,
                    wire_bytes: end,
                    body_bytes: *body_bytes,
                    body: None,
                    connection_close: head.connection_close,
                })
            }
        };
        self.head = if done.is_some() { None } else { Some(head) };
        Ok(done)
    }

    /// Forgets a half-read response (the connection is being reopened).
    pub fn reset(&mut self) {
        self.head = None;
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_bytes = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > RESPONSE_HEAD_BYTES_MAX {
                return Err(ResponseError::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(e) => return Err(ResponseError::Malformed(e.to_string())),
    };
    if head_bytes > RESPONSE_HEAD_BYTES_MAX {
        return Err(ResponseError::HeadTooLarge);
    }
    let status = parsed.code.unwrap_or(0);
    if (100..200).contains(&status) {
        return Err(ResponseError::Informational(status));
    }
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut connection_close = parsed.version == Some(0);
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(ResponseError::BadContentLength)?;
            if content_length.is_some_and(|prev| prev != v) {
                return Err(ResponseError::BadContentLength);
            }
            content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            if !v.trim().eq_ignore_ascii_case("chunked") {
                return Err(ResponseError::UnsupportedFraming(format!("Transfer-Encoding: {v}")));
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value);
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                connection_close = true;
            } else if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive")) {
                connection_close = false;
            }
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked {
            next_chunk: head_bytes,
            body_bytes: 0,
        }
    } else {
        match content_length {
            Some(n) if n > RESPONSE_BODY_BYTES_MAX as u64 => return Err(ResponseError::BodyTooLarge(n)),
            Some(n) => Framing::Length(n as usize),
            None => {
                return Err(ResponseError::UnsupportedFraming(
                    "no Content-Length and not chunked (body ends at close)".into(),
                ))
            }
        }
    };
    Ok(Some(Head {
        status,
        head_bytes,
        framing,
        connection_close,
    }))
}

/// Walks the chunks from `*next_chunk`. Returns the end of the response
/// once the last chunk and the trailer section are in `buf`.
fn scan_chunks(buf: &[u8], next_chunk: &mut usize, body_bytes: &mut usize) -> Result<Option<usize>, ResponseError> {
    loop {
        let rest = &buf[*next_chunk..];
        let (size_line, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => {
                if rest.len() > RESPONSE_HEAD_BYTES_MAX {
                    return Err(ResponseError::BadChunk);
                }
                return Ok(None);
            }
            Err(_) => return Err(ResponseError::BadChunk),
        };
        if size == 0 {
            // Trailer section: header lines, then an empty line.
            let trailers = &rest[size_line..];
            return match find_empty_line(trailers) {
                Some(n) => Ok(Some(*next_chunk + size_line + n)),
                None if trailers.len() > RESPONSE_HEAD_BYTES_MAX => Err(ResponseError::BadChunk),
                None => Ok(None),
            };
        }
        let total = (*body_bytes as u64).saturating_add(size);
        if total > RESPONSE_BODY_BYTES_MAX as u64 {
            return Err(ResponseError::BodyTooLarge(total));
        }
        let size = size as usize;
        let need = size_line + size + 2;
        if rest.len() < need {
            return Ok(None);
        }
        if &rest[size_line + size..need] != b"\r\n" {
            return Err(ResponseError::BadChunk);
        }
        *body_bytes += size;
        *next_chunk += need;
    }
}

/// Length up to and including the first empty line (`\r\n` at a line start).
fn find_empty_line(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    while line_start + 2 <= bytes.len() {
        if &bytes[line_start..line_start + 2] == b"\r\n" {
            return Some(line_start + 2);
        }
        let nl = bytes[line_start..].windows(2).position(|w| w == b"\r\n")?;
        line_start += nl + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KV_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 7\r\n\
Content-Length: 5\r\n\r\n[{}]\n";

    #[test]
    fn content_length_response_in_one_piece_and_pipelined() {
        let mut r = ResponseReader::new();
        let mut two = KV_RESPONSE.to_vec();
        two.extend_from_slice(KV_RESPONSE);
        let first = r.next(&two).unwrap().unwrap();
        assert_eq!(first.status, 200);
        assert_eq!(first.wire_bytes, KV_RESPONSE.len());
        assert_eq!(first.body_bytes, 5);
        assert_eq!(&two[first.body.clone().unwrap()], b"[{}]\n");
        assert!(!first.connection_close);
        let second = r.next(&two[first.wire_bytes..]).unwrap().unwrap();
        assert_eq!(second, first);
    }

    #[test]
    fn every_split_point_gives_the_same_response() {
        for cut in 0..KV_RESPONSE.len() {
            let mut r = ResponseReader::new();
            assert_eq!(r.next(&KV_RESPONSE[..cut]).unwrap(), None, "cut at {cut}");
            let done = r.next(KV_RESPONSE).unwrap().unwrap();
            assert_eq!(done.wire_bytes, KV_RESPONSE.len());
        }
    }

    #[test]
    fn chunked_body_with_split_chunks_and_trailers() {
        let wire =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = wire.len() - 4;
        for cut in 0..end {
            let mut r = ResponseReader::new();
            assert_eq!(r.next(&wire[..cut]).unwrap(), None, "cut at {cut}");
            let done = r.next(wire).unwrap().unwrap();
            assert_eq!(done.wire_bytes, end, "cut at {cut}");
            assert_eq!(done.body_bytes, 5);
            assert_eq!(done.body, None);
        }
    }

    #[test]
    fn status_without_body_and_connection_close() {
        let mut r = ResponseReader::new();
        let wire = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let done = r.next(wire).unwrap().unwrap();
        assert_eq!(done.status, 404);
        assert!(done.connection_close);
        let wire = b"HTTP/1.1 304 Not Modified\r\n\r\n";
        assert_eq!(r.next(wire).unwrap().unwrap().wire_bytes, wire.len());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut r = ResponseReader::new();
        assert!(matches!(
            r.next(b"HTTP/1.1 abc\r\n\r\n"),
            Err(ResponseError::Malformed(_))
        ));
        assert_eq!(
            r.next(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            r.next(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ResponseError::BadContentLength)
        );
        assert!(matches!(
            r.next(b"HTTP/1.1 200 OK\r\n\r\nbody"),
            Err(ResponseError::UnsupportedFraming(_))
        ));
        assert!(matches!(
            r.next(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(ResponseError::UnsupportedFraming(_))
        ));
        assert_eq!(
            r.next(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Err(ResponseError::Informational(100))
        );
        assert_eq!(
            r.next(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY"),
            Err(ResponseError::BadChunk)
        );
        assert_eq!(
            r.next(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ResponseError::BadChunk)
        );
    }

    #[test]
    fn size_limits_are_enforced() {
        let mut r = ResponseReader::new();
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            RESPONSE_BODY_BYTES_MAX + 1
        );
        assert_eq!(
            r.next(big.as_bytes()),
            Err(ResponseError::BodyTooLarge(RESPONSE_BODY_BYTES_MAX as u64 + 1))
        );
        let endless_head = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(RESPONSE_HEAD_BYTES_MAX));
        assert_eq!(r.next(endless_head.as_bytes()), Err(ResponseError::HeadTooLarge));
        let huge_chunk = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            RESPONSE_BODY_BYTES_MAX + 1
        );
        assert!(matches!(
            r.next(huge_chunk.as_bytes()),
            Err(ResponseError::BodyTooLarge(_))
        ));
    }
}
