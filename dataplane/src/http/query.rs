//! Query strings and percent-decoding, as Go's `net/url` does them:
//! `URL.Query()` semantics (repeated keys kept in order, `Get` returns the
//! first value, pairs that fail to decode or contain `;` are dropped) and
//! `Values.Encode()` for messages that echo the query back.
//!
//! In a query `+` means a space (Go's `QueryUnescape`); in a path it is a
//! literal `+` (Go's `PathUnescape`), which matters for KV keys.

use std::borrow::Cow;
use std::fmt;

use super::limits::QUERY_PARAMS_MAX;

/// Why a query string or path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// More than [`QUERY_PARAMS_MAX`] parameters.
    TooManyParams,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::TooManyParams => write!(f, "Too many query parameters (max {QUERY_PARAMS_MAX})"),
        }
    }
}

/// Why a path did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8 (our keys and names are strings).
    NotUtf8,
}

/// Parsed query parameters, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    /// An empty query.
    pub fn empty() -> Query<'static> {
        Query { pairs: Vec::new() }
    }

    /// Parses a raw query string (without the `?`).
    pub fn parse(raw: &'a str) -> Result<Query<'a>, QueryError> {
        let mut pairs = Vec::new();
        for part in raw.split('&') {
            if part.is_empty() {
                continue;
            }
            // Go 1.17+ refuses `;` as a separator and drops the pair.
            if part.contains(';') {
                continue;
            }
            let (raw_key, raw_value) = part.split_once('=').unwrap_or((part, ""));
            let (Some(key), Some(value)) = (decode_query_component(raw_key), decode_query_component(raw_value)) else {
                continue;
            };
            if pairs.len() == QUERY_PARAMS_MAX {
                return Err(QueryError::TooManyParams);
            }
            pairs.push((key, value));
        }
        Ok(Query { pairs })
    }

    /// Builds a query from decoded pairs (tests and internal callers).
    pub fn from_pairs(pairs: &[(&'a str, &'a str)]) -> Query<'a> {
        Query {
            pairs: pairs
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .collect(),
        }
    }

    /// Whether the key is present, whatever its value (Consul's
    /// presence-only flags: `?recurse=false` still recurses).
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The first value of `key` (Go's `Values.Get`); `None` when absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Go's `Values.Encode()`: keys sorted, values in request order,
    /// `QueryEscape`d, joined with `&`.
    pub fn encode(&self) -> String {
        let mut order: Vec<usize> = (0..self.pairs.len()).collect();
        // Stable: values of one key keep their order.
        order.sort_by(|&a, &b| self.pairs[a].0.cmp(&self.pairs[b].0));
        let mut out = String::new();
        for i in order {
            if !out.is_empty() {
                out.push('&');
            }
            query_escape_into(&mut out, &self.pairs[i].0);
            out.push('=');
            query_escape_into(&mut out, &self.pairs[i].1);
        }
        out
    }
}

/// Decodes one query key or value: `%XX` and `+` as space. `None` for a
/// malformed escape (Go drops such a pair). Bytes that are not UTF-8 are
/// replaced with U+FFFD.
fn decode_query_component(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = percent_decode_bytes(raw, true)?;
    Some(match String::from_utf8(bytes) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

/// Decodes a request path: `%XX` escapes, `+` stays a `+`.
pub fn decode_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.as_bytes().contains(&b'%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = percent_decode_bytes(raw, false).ok_or(PathError::BadEscape)?;
    String::from_utf8(bytes).map(Cow::Owned).map_err(|_| PathError::NotUtf8)
}

fn percent_decode_bytes(raw: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`,
/// everything else `%XX` (upper-case hex).
fn query_escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_flags_and_values() {
        let q = Query::parse("recurse=false&keys&separator=%2F&index=5").unwrap();
        assert!(q.has("recurse"));
        assert_eq!(q.get("recurse"), Some("false"));
        assert!(q.has("keys"));
        assert_eq!(q.get("keys"), Some(""));
        assert_eq!(q.get("separator"), Some("/"));
        assert_eq!(q.get("index"), Some("5"));
        assert!(!q.has("raw"));
        assert_eq!(q.get("raw"), None);
    }

    #[test]
    fn repeated_params_keep_order_and_get_returns_first() {
        let q = Query::parse("tag=a&tag=b&x=1&tag=c").unwrap();
        assert_eq!(q.get("tag"), Some("a"));
        assert_eq!(q.get_all("tag").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn query_decoding_follows_go() {
        let q = Query::parse("a=x+y&b=%41%2b&c=%zz&d=%4&e=ok&f;g=1&&h=%E2%82%AC").unwrap();
        assert_eq!(q.get("a"), Some("x y"), "+ is a space in a query");
        assert_eq!(q.get("b"), Some("A+"));
        assert!(!q.has("c"), "bad escape drops the pair");
        assert!(!q.has("d"), "truncated escape drops the pair");
        assert!(!q.has("f;g"), "semicolons drop the pair");
        assert_eq!(q.get("e"), Some("ok"));
        assert_eq!(q.get("h"), Some("€"));
        let lossy = Query::parse("v=%ff").unwrap();
        assert_eq!(lossy.get("v"), Some("\u{fffd}"));
    }

    #[test]
    fn empty_query() {
        assert!(Query::parse("").unwrap().is_empty());
        assert!(Query::parse("&&").unwrap().is_empty());
    }

    #[test]
    fn too_many_params_is_refused() {
        let raw = vec!["p=1"; QUERY_PARAMS_MAX].join("&");
        assert_eq!(Query::parse(&raw).unwrap().get_all("p").count(), QUERY_PARAMS_MAX);
        let raw = vec!["p=1"; QUERY_PARAMS_MAX + 1].join("&");
        assert_eq!(Query::parse(&raw), Err(QueryError::TooManyParams));
        assert_eq!(
            QueryError::TooManyParams.to_string(),
            format!("Too many query parameters (max {QUERY_PARAMS_MAX})")
        );
    }

    #[test]
    fn encode_matches_go_values_encode() {
        let q = Query::parse("release=s+1&cas=0&acquire=x%2Fy&cas=2&flag").unwrap();
        assert_eq!(q.encode(), "acquire=x%2Fy&cas=0&cas=2&flag=&release=s+1");
    }

    #[test]
    fn path_decoding_keeps_plus() {
        assert_eq!(decode_path("/v1/kv/a+b").unwrap(), "/v1/kv/a+b");
        assert_eq!(decode_path("/v1/kv/a%2Fb%20c").unwrap(), "/v1/kv/a/b c");
        assert!(matches!(decode_path("/v1/kv/plain").unwrap(), Cow::Borrowed(_)));
        assert_eq!(decode_path("/v1/kv/%zz"), Err(PathError::BadEscape));
        assert_eq!(decode_path("/v1/kv/%2"), Err(PathError::BadEscape));
        assert_eq!(decode_path("/v1/kv/%ff"), Err(PathError::NotUtf8));
    }
}
