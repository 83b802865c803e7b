//! Building [`HttpAnswer`]s and reading query strings. Pure.

use proconsul_shared::ipc::messages::HttpAnswer;
use serde_json::Value;

use super::check_def::Rejection;
use super::render;

/// `Content-Type` of plain-text error bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `Content-Type` of JSON bodies.
pub const APPLICATION_JSON: &str = "application/json";
/// Longest query string read, in bytes (the rest is ignored).
pub const QUERY_BYTES_MAX: usize = 8192;

/// `200` with an empty body (what agent writes answer).
pub fn empty_ok() -> HttpAnswer {
    HttpAnswer {
        status: 200,
        ..HttpAnswer::default()
    }
}

/// A plain-text answer.
pub fn text(status: u16, message: impl Into<String>) -> HttpAnswer {
    HttpAnswer {
        status,
        content_type: TEXT_PLAIN.into(),
        body: message.into().into_bytes(),
        ..HttpAnswer::default()
    }
}

/// A JSON answer.
pub fn json(status: u16, value: &Value, pretty: bool) -> HttpAnswer {
    HttpAnswer {
        status,
        content_type: APPLICATION_JSON.into(),
        body: render::to_bytes(value, pretty),
        ..HttpAnswer::default()
    }
}

/// The answer to a rejected request.
pub fn rejected(r: Rejection) -> HttpAnswer {
    text(r.status, r.message)
}

/// `404` for a path nobody serves (the data plane's text).
pub fn not_found() -> HttpAnswer {
    text(404, "Invalid URL path: not a recognized HTTP API endpoint")
}

/// `405 method <M> not allowed` with `Allow`; `OPTIONS` gets `200` and
/// the same header.
pub fn method_not_allowed(method: &str, allow: &str) -> HttpAnswer {
    let mut a = if method == "OPTIONS" {
        empty_ok()
    } else {
        text(405, format!("method {method} not allowed"))
    };
    a.headers.push(("Allow".into(), allow.into()));
    a
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a query component (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of query parameter `name` (`Some("")` when present
/// without a value).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let query = &query[..floor_boundary(query, QUERY_BYTES_MAX)];
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = "pretty&note=all%20good+now&enable=true&x=%zz";
        assert_eq!(query_param(q, "pretty"), Some(String::new()));
        assert_eq!(query_param(q, "note").unwrap(), "all good now");
        assert_eq!(query_param(q, "enable").unwrap(), "true");
        assert_eq!(query_param(q, "x").unwrap(), "%zz", "bad escapes stay literal");
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(query_param(&"a=1&".repeat(QUERY_BYTES_MAX), "zz"), None);
    }

    #[test]
    fn answers() {
        let a = method_not_allowed("POST", "OPTIONS,PUT");
        assert_eq!(
            (a.status, a.body.as_slice()),
            (405, b"method POST not allowed".as_slice())
        );
        assert_eq!(a.headers, vec![("Allow".to_string(), "OPTIONS,PUT".to_string())]);
        assert_eq!(method_not_allowed("OPTIONS", "OPTIONS,PUT").status, 200);
        assert_eq!(not_found().status, 404);
        assert_eq!(empty_ok().body, b"");
        assert_eq!(json(200, &serde_json::json!({}), true).body, b"{}\n");
    }
}
