//! Request framing, sans-IO: bytes in, one complete request (or "need
//! more", or a refusal) out. Heads are parsed by `httparse`; bodies are
//! framed by `Content-Length` or `Transfer-Encoding: chunked`.
//!
//! The body limit depends on the endpoint, so the caller passes a function
//! from method and target to the limit; a declared `Content-Length` above it
//! is refused before any body byte is read.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use super::chunked::{self, ChunkError, ChunkScan};
use super::limits::{HEADERS_COUNT_MAX, HEAD_BYTES_MAX};

/// One complete request, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'b> {
    /// The method as sent (`GET`, `PUT`, ...).
    pub method: &'b str,
    /// The request target as sent (`/v1/kv/a?recurse`).
    pub target: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The decoded body.
    pub body: Cow<'b, [u8]>,
    /// The ACL token from `X-Consul-Token`, else `Authorization: Bearer`.
    pub token: Option<&'b str>,
}

/// What the bytes received so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'b> {
    /// A full request that spans `consumed` bytes.
    Complete { request: Request<'b>, consumed: usize },
    /// More bytes are needed. `expects_continue`: the head is complete and
    /// asked for `100 Continue` before sending its body.
    Partial { expects_continue: bool },
}

/// Why a request is refused; the connection answers and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Malformed request line, header or body framing → `400`.
    BadRequest,
    /// Head over [`HEAD_BYTES_MAX`] or too many headers → `431`.
    HeadTooLarge,
    /// A transfer coding other than `chunked` → `501`.
    UnsupportedTransferEncoding,
    /// The body exceeds the endpoint's limit → `413`. `body_bytes` is the
    /// declared length (or what the chunks added up to).
    BodyTooLarge { body_bytes: u64, limit_bytes: usize },
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// What the head says beyond httparse's fields.
struct HeadFacts {
    framing: Framing,
    keep_alive: bool,
    expects_continue: bool,
}

/// Parses the request at the start of `buf`. `body_limit(method, target)`
/// gives the endpoint's body limit in bytes.
pub fn parse_request<'b>(buf: &'b [u8], body_limit: impl Fn(&str, &str) -> usize) -> Result<Parsed<'b>, Reject> {
    // Uninitialised header slots: no 3 KiB memset per request.
    let mut headers = [const { MaybeUninit::<httparse::Header<'b>>::uninit() }; HEADERS_COUNT_MAX];
    let mut head = httparse::Request::new(&mut []);
    let head_len = match head.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= HEAD_BYTES_MAX {
                return Err(Reject::HeadTooLarge);
            }
            return Ok(Parsed::Partial {
                expects_continue: false,
            });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeadTooLarge),
        Err(_) => return Err(Reject::BadRequest),
    };
    if head_len > HEAD_BYTES_MAX {
        return Err(Reject::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version_minor)) = (head.method, head.path, head.version) else {
        return Err(Reject::BadRequest);
    };
    let facts = head_facts(head.headers, version_minor)?;
    let token = token_header(head.headers);
    let limit_bytes = body_limit(method, target);
    let rest = &buf[head_len..];
    let (body, body_wire_bytes) = match facts.framing {
        Framing::Length(declared) => {
            if declared > limit_bytes as u64 {
                return Err(Reject::BodyTooLarge {
                    body_bytes: declared,
                    limit_bytes,
                });
            }
            let len = declared as usize;
            if rest.len() < len {
                return Ok(Parsed::Partial {
                    expects_continue: facts.expects_continue && rest.is_empty(),
                });
            }
            (Cow::Borrowed(&rest[..len]), len)
        }
        Framing::Chunked => match chunked::scan(rest, limit_bytes) {
            Ok(ChunkScan::Complete { consumed, .. }) => (Cow::Owned(chunked::decode(&rest[..consumed])), consumed),
            Ok(ChunkScan::Incomplete) => {
                return Ok(Parsed::Partial {
                    expects_continue: facts.expects_continue && rest.is_empty(),
                })
            }
            Err(ChunkError::Malformed) => return Err(Reject::BadRequest),
            Err(ChunkError::TooLarge { decoded_bytes }) => {
                return Err(Reject::BodyTooLarge {
                    body_bytes: decoded_bytes as u64,
                    limit_bytes,
                })
            }
        },
    };
    Ok(Parsed::Complete {
        request: Request {
            method,
            target,
            version_minor,
            keep_alive: facts.keep_alive,
            body,
            token,
        },
        consumed: head_len + body_wire_bytes,
    })
}

fn head_facts(headers: &[httparse::Header<'_>], version_minor: u8) -> Result<HeadFacts, Reject> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expects_continue = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = parse_content_length(h.value)?;
            if content_length.is_some_and(|v| v != value) {
                return Err(Reject::BadRequest);
            }
            content_length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Go ignores Transfer-Encoding on HTTP/1.0 requests.
            if version_minor == 0 {
                continue;
            }
            if saw_transfer_encoding || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(Reject::UnsupportedTransferEncoding);
            }
            saw_transfer_encoding = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expects_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    if chunked && content_length.is_some() {
        // Both framings at once is how requests get smuggled.
        return Err(Reject::BadRequest);
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        Framing::Length(content_length.unwrap_or(0))
    };
    let keep_alive = if version_minor == 0 {
        keep_alive_token && !close
    } else {
        !close
    };
    Ok(HeadFacts {
        framing,
        keep_alive,
        expects_continue: expects_continue && version_minor >= 1,
    })
}

/// Consul's `parseTokenFromHeaders`: the first `X-Consul-Token` when not
/// empty, else an `Authorization: Bearer <token>` (scheme case-insensitive,
/// exactly two space-separated parts).
fn token_header<'b>(headers: &[httparse::Header<'b>]) -> Option<&'b str> {
    let first = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    if let Some(token) = first("x-consul-token").filter(|t| !t.is_empty()) {
        return Some(token);
    }
    let authorization = first("authorization")?;
    let mut parts = authorization.split(' ');
    let (Some(scheme), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (scheme.eq_ignore_ascii_case("bearer") && !value.is_empty()).then_some(value)
}

fn parse_content_length(value: &[u8]) -> Result<u64, Reject> {
    let value = trim(value);
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Reject::BadRequest);
    }
    value
        .iter()
        .try_fold(0u64, |acc, &b| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
        .ok_or(Reject::BadRequest)
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024;

    fn limit(_: &str, _: &str) -> usize {
        LIMIT
    }

    fn parse(buf: &[u8]) -> Result<Parsed<'_>, Reject> {
        parse_request(buf, limit)
    }

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse(buf) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn token_headers() {
        let (req, _) = complete(b"GET / HTTP/1.1\r\nX-Consul-Token: abc\r\nAuthorization: Bearer xyz\r\n\r\n");
        assert_eq!(req.token, Some("abc"), "X-Consul-Token wins");
        let (req, _) = complete(b"GET / HTTP/1.1\r\nauthorization: bEaReR xyz\r\n\r\n");
        assert_eq!(req.token, Some("xyz"));
        let (req, _) = complete(b"GET / HTTP/1.1\r\nAuthorization: Basic xyz\r\n\r\n");
        assert_eq!(req.token, None);
        let (req, _) = complete(b"GET / HTTP/1.1\r\nAuthorization: Bearer a b\r\n\r\n");
        assert_eq!(req.token, None);
        let (req, _) = complete(b"GET / HTTP/1.1\r\nX-Consul-Token: \r\nAuthorization: Bearer t\r\n\r\n");
        assert_eq!(req.token, Some("t"), "an empty X-Consul-Token is skipped");
        assert_eq!(complete(b"GET / HTTP/1.1\r\n\r\n").0.token, None);
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /v1/kv/a?raw HTTP/1.1\r\nHost: x\r\n\r\n";
        let (req, consumed) = complete(buf);
        assert_eq!(consumed, buf.len());
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/v1/kv/a?raw");
        assert_eq!(req.version_minor, 1);
        assert!(req.keep_alive);
        assert!(req.body.is_empty());
    }

    #[test]
    fn pipelined_requests_parse_one_at_a_time() {
        let buf =
            b"GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\n\r\nGET /d";
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Parsed::Complete { request, consumed } = parse(&buf[pos..]).unwrap() {
            seen.push((request.target.to_string(), request.body.to_vec()));
            pos += consumed;
        }
        assert_eq!(
            seen,
            [
                ("/a".to_string(), vec![]),
                ("/b".to_string(), b"xyz".to_vec()),
                ("/c".to_string(), vec![])
            ]
        );
        assert_eq!(&buf[pos..], b"GET /d");
    }

    #[test]
    fn split_reads_are_partial_until_complete() {
        let buf = b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..buf.len() {
            assert_eq!(
                parse(&buf[..cut]),
                Ok(Parsed::Partial {
                    expects_continue: false
                }),
                "cut at {cut}"
            );
        }
        assert_eq!(complete(buf).0.body.as_ref(), b"hello");
    }

    #[test]
    fn chunked_body_is_decoded() {
        let buf = b"PUT /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET";
        let (req, consumed) = complete(buf);
        assert_eq!(req.body.as_ref(), b"abcde");
        assert_eq!(&buf[consumed..], b"GET");
        let cut = buf.len() - 6;
        assert!(matches!(parse(&buf[..cut]), Ok(Parsed::Partial { .. })));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(complete(b"GET / HTTP/1.1\r\n\r\n").0.keep_alive);
        assert!(!complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").0.keep_alive);
        assert!(
            !complete(b"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        let (req, _) = complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(req.keep_alive);
        assert_eq!(req.version_minor, 0);
    }

    #[test]
    fn head_limit_answers_431() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < HEAD_BYTES_MAX {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        // Still no end of head at the limit.
        assert_eq!(parse(&big), Err(Reject::HeadTooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=HEADERS_COUNT_MAX {
            many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(Reject::HeadTooLarge));
        // Just under the limits is fine.
        let mut ok = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..HEADERS_COUNT_MAX {
            ok.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        ok.extend_from_slice(b"\r\n");
        complete(&ok);
    }

    #[test]
    fn body_limit_answers_413_before_the_body_arrives() {
        let head = format!("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {}\r\n\r\n", LIMIT + 1);
        assert_eq!(
            parse(head.as_bytes()),
            Err(Reject::BodyTooLarge {
                body_bytes: LIMIT as u64 + 1,
                limit_bytes: LIMIT
            })
        );
        let at_limit = format!("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {LIMIT}\r\n\r\n");
        assert!(matches!(parse(at_limit.as_bytes()), Ok(Parsed::Partial { .. })));
        let chunked = b"PUT /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n";
        assert_eq!(
            parse(chunked),
            Err(Reject::BodyTooLarge {
                body_bytes: 0x401,
                limit_bytes: LIMIT
            })
        );
    }

    #[test]
    fn the_limit_depends_on_the_endpoint() {
        let by_path = |_: &str, target: &str| if target.starts_with("/small") { 2 } else { 100 };
        let small = b"PUT /small HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        assert!(matches!(
            parse_request(small, by_path),
            Err(Reject::BodyTooLarge { .. })
        ));
        let large = b"PUT /large HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        assert!(matches!(parse_request(large, by_path), Ok(Parsed::Complete { .. })));
    }

    #[test]
    fn expect_continue_is_reported_while_the_body_is_missing() {
        let head = b"PUT /v1/kv/k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(parse(head), Ok(Parsed::Partial { expects_continue: true }));
        let mut with_body = head.to_vec();
        with_body.extend_from_slice(b"ab");
        assert_eq!(
            parse(&with_body),
            Ok(Parsed::Partial {
                expects_continue: false
            })
        );
    }

    #[test]
    fn malformed_requests_answer_400() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(Reject::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let same_twice = b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert!(matches!(parse(same_twice), Ok(Parsed::Complete { .. })));
    }

    #[test]
    fn unknown_transfer_coding_answers_501() {
        let gzip = b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(parse(gzip), Err(Reject::UnsupportedTransferEncoding));
        // HTTP/1.0 has no transfer codings: ignored, the body is empty.
        let old = b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(complete(old).0.body.is_empty());
    }

    /// A tiny deterministic PRNG (xorshift64*) for the robustness tests.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn mutated_requests_never_panic() {
        let base: &[&[u8]] = &[
            b"PUT /v1/kv/a?cas=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"PUT /v1/txn HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"GET /v1/kv/?keys&separator=%2F HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            let mut buf = base[round % base.len()].to_vec();
            for _ in 0..1 + next(&mut seed) % 4 {
                let at = (next(&mut seed) as usize) % buf.len();
                match next(&mut seed) % 3 {
                    0 => buf[at] = next(&mut seed) as u8,
                    1 => {
                        buf.remove(at);
                    }
                    _ => {
                        let interesting = b"\r\n:;% 0f";
                        buf.insert(at, interesting[(next(&mut seed) % interesting.len() as u64) as usize]);
                    }
                }
                if buf.is_empty() {
                    break;
                }
            }
            let _ = parse(&buf);
            if let Ok(text) = std::str::from_utf8(&buf) {
                let _ = crate::http::target::parse_target(text.split(' ').nth(1).unwrap_or(""));
            }
        }
    }
}
