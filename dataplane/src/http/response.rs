//! Response bytes: status line, headers and body into one buffer, written
//! with one syscall by the connection.

use crate::api::response::{ContentType, Response};

use super::date::HTTP_DATE_BYTES;

/// How the response is framed on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// 0 → `HTTP/1.0` status line, 1 → `HTTP/1.1`.
    pub version_minor: u8,
    /// Keep the connection open (`Connection: keep-alive` is sent to
    /// HTTP/1.0 clients that asked for it; `Connection: close` otherwise).
    pub keep_alive: bool,
    /// `HEAD` request: headers only, `Content-Length` of the full body.
    pub head_only: bool,
}

impl Framing {
    /// The common case: HTTP/1.1, keep-alive, with body.
    pub fn keep_alive_http11() -> Framing {
        Framing {
            version_minor: 1,
            keep_alive: true,
            head_only: false,
        }
    }
}

/// Go's `http.StatusText`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Appends the full response to `out`.
pub fn write_response(out: &mut Vec<u8>, response: &Response, framing: Framing, date: &[u8; HTTP_DATE_BYTES]) {
    out.reserve(256 + response.body.len());
    status_line(out, framing.version_minor, response.status);
    match response.content_type {
        ContentType::None => {}
        ContentType::Json => out.extend_from_slice(b"Content-Type: application/json\r\n"),
        ContentType::Text => out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n"),
        ContentType::RawValue => out.extend_from_slice(
            b"Content-Security-Policy: sandbox\r\nContent-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\n",
        ),
    }
    if let Some(allow) = response.allow {
        header(out, b"Allow", allow.as_bytes());
    }
    out.extend_from_slice(b"X-Consul-Default-Acl-Policy: allow\r\n");
    for (name, value) in &response.headers {
        if is_passable_header(name, value) {
            header(out, name.as_bytes(), value.as_bytes());
        }
    }
    let mut num = itoa::Buffer::new();
    if let Some(meta) = &response.meta {
        header(
            out,
            b"X-Consul-Effective-Consistency",
            meta.consistency.as_str().as_bytes(),
        );
        header(out, b"X-Consul-Index", num.format(meta.index).as_bytes());
    }
    if let Some(leader) = response.meta.map(|m| m.leader).or(response.leader) {
        header(
            out,
            b"X-Consul-Knownleader",
            if leader.known_leader { b"true" } else { b"false" },
        );
        header(
            out,
            b"X-Consul-Lastcontact",
            num.format(leader.last_contact_ms).as_bytes(),
        );
    }
    header(out, b"Date", date);
    header(out, b"Content-Length", num.format(response.body.len()).as_bytes());
    connection_header(out, framing);
    out.extend_from_slice(b"\r\n");
    if !framing.head_only {
        out.extend_from_slice(&response.body);
    }
}

/// Whether a header given by the control plane may be written: a valid
/// token name, a value without line breaks, and not one the writer sets
/// itself (framing, date, ACL policy).
fn is_passable_header(name: &str, value: &str) -> bool {
    const OWN: [&str; 5] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "x-consul-default-acl-policy",
    ];
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    token && !value.bytes().any(|b| b == b'\r' || b == b'\n') && !OWN.iter().any(|o| name.eq_ignore_ascii_case(o))
}

/// A bare response written by the HTTP layer itself (refused framing,
/// `431`, `501`): Go's `net/http` form, `<code> <reason>` as the body.
pub fn write_plain_error(out: &mut Vec<u8>, status: u16, framing: Framing, date: &[u8; HTTP_DATE_BYTES]) {
    let reason = reason_phrase(status);
    let mut num = itoa::Buffer::new();
    let code = num.format(status);
    status_line(out, framing.version_minor, status);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    header(out, b"Date", date);
    let body_len = code.len() + 1 + reason.len();
    let mut len = itoa::Buffer::new();
    header(out, b"Content-Length", len.format(body_len).as_bytes());
    connection_header(out, framing);
    out.extend_from_slice(b"\r\n");
    if !framing.head_only {
        out.extend_from_slice(code.as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason.as_bytes());
    }
}

/// `HTTP/1.1 100 Continue` for a client that sent `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer to a client over its per-IP connection limit (Consul ≥1.6.3
/// answers `429` with this text instead of resetting the connection), for
/// the accept loop to write before closing.
pub fn too_many_connections(date: &[u8; HTTP_DATE_BYTES]) -> Vec<u8> {
    let response = Response::text(
        429,
        "Your IP is issuing too many concurrent connections, please rate limit your calls\n",
    );
    let mut out = Vec::new();
    let framing = Framing {
        version_minor: 1,
        keep_alive: false,
        head_only: false,
    };
    write_response(&mut out, &response, framing, date);
    out
}

fn status_line(out: &mut Vec<u8>, version_minor: u8, status: u16) {
    out.extend_from_slice(if version_minor == 0 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    let status = if (100..=999).contains(&status) { status } else { 500 };
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn connection_header(out: &mut Vec<u8>, framing: Framing) {
    if !framing.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if framing.version_minor == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::response::{Consistency, QueryMeta};
    use crate::core::LeaderStatus;

    const DATE: &[u8; HTTP_DATE_BYTES] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn render(response: &Response, framing: Framing) -> String {
        let mut out = Vec::new();
        write_response(&mut out, response, framing, DATE);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn forwarded_headers_are_written_and_unsafe_ones_dropped() {
        let response = Response {
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-Consul-Contenthash".into(), "4ecd29c7bc647ca8".into()),
                ("Content-Length".into(), "999".into()),
                ("X-Evil".into(), "a\r\nSet-Cookie: x".into()),
                ("Bad Name".into(), "x".into()),
            ],
            body: b"{}".to_vec(),
            ..Response::empty(200)
        };
        let text = render(&response, Framing::keep_alive_http11());
        assert!(text.contains("X-Consul-Default-Acl-Policy: allow\r\nContent-Type: application/json\r\nX-Consul-Contenthash: 4ecd29c7bc647ca8\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(!text.contains("999") && !text.contains("Set-Cookie") && !text.contains("Bad Name"));
    }

    #[test]
    fn json_read_with_meta() {
        let leader = LeaderStatus {
            known_leader: true,
            last_contact_ms: 0,
        };
        let response = Response::json(200, b"[]".to_vec()).with_meta(QueryMeta::new(7, leader, Consistency::Leader));
        assert_eq!(
            render(&response, Framing::keep_alive_http11()),
            "HTTP/1.1 200 OK\r\n\
             Content-Type: application/json\r\n\
             X-Consul-Default-Acl-Policy: allow\r\n\
             X-Consul-Effective-Consistency: leader\r\n\
             X-Consul-Index: 7\r\n\
             X-Consul-Knownleader: true\r\n\
             X-Consul-Lastcontact: 0\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Length: 2\r\n\
             \r\n\
             []"
        );
    }

    #[test]
    fn raw_value_headers_and_close() {
        let response = Response {
            content_type: ContentType::RawValue,
            body: b"<b>".to_vec(),
            ..Response::empty(200)
        };
        let framing = Framing {
            version_minor: 1,
            keep_alive: false,
            head_only: false,
        };
        let text = render(&response, framing);
        assert!(text.contains("Content-Type: text/plain\r\n"));
        assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(text.contains("Content-Security-Policy: sandbox\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n<b>"));
    }

    #[test]
    fn http10_keep_alive_and_head() {
        let mut response = Response::text(405, "method HEAD not allowed");
        response.allow = Some("OPTIONS,GET");
        let framing = Framing {
            version_minor: 0,
            keep_alive: true,
            head_only: true,
        };
        let text = render(&response, framing);
        assert!(text.starts_with("HTTP/1.0 405 Method Not Allowed\r\n"));
        assert!(text.contains("Allow: OPTIONS,GET\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n"));
        assert!(text.contains("Content-Length: 23\r\n"));
        assert!(text.ends_with("\r\n\r\n"), "HEAD sends no body");
    }

    #[test]
    fn plain_errors_look_like_go() {
        let mut out = Vec::new();
        let framing = Framing {
            version_minor: 1,
            keep_alive: false,
            head_only: false,
        };
        write_plain_error(&mut out, 431, framing, DATE);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n431 Request Header Fields Too Large"));
        assert!(text.contains(&format!(
            "Content-Length: {}\r\n",
            "431 Request Header Fields Too Large".len()
        )));
    }

    #[test]
    fn connection_limit_answer() {
        let text = String::from_utf8(too_many_connections(DATE)).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.ends_with("please rate limit your calls\n"));
        assert!(text.contains("Connection: close\r\n"));
    }
}
