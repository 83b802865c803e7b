//! The request target: path and query split, path decoded, query parsed.

use std::borrow::Cow;

use super::query::{decode_path, PathError, Query, QueryError};

/// A decoded request target.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The percent-decoded path (`+` kept).
    pub path: Cow<'a, str>,
    pub query: Query<'a>,
    /// The query string as sent (without `?`).
    pub raw_query: &'a str,
}

/// Why a target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    Path(PathError),
    Query(QueryError),
    /// A path with control characters (Go's `PrintablePathCheckHandler`
    /// answers these with an empty `400`).
    Unprintable,
}

/// Splits and decodes `target` (origin form `/p?q`, absolute form
/// `http://host/p?q`, or `*`).
pub fn parse_target(target: &str) -> Result<Target<'_>, TargetError> {
    let target = strip_scheme_and_authority(target);
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = decode_path(raw_path).map_err(TargetError::Path)?;
    if path.chars().any(char::is_control) {
        return Err(TargetError::Unprintable);
    }
    let query = Query::parse(raw_query).map_err(TargetError::Query)?;
    Ok(Target { path, query, raw_query })
}

fn strip_scheme_and_authority(target: &str) -> &str {
    let Some(after_scheme) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    else {
        return target;
    };
    // The path starts at the first `/` after the authority; none means `/`.
    match after_scheme.find(['/', '?']) {
        Some(at) if after_scheme.as_bytes()[at] == b'/' => &after_scheme[at..],
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form() {
        let t = parse_target("/v1/kv/a%2Fb+c?recurse&separator=%2F").unwrap();
        assert_eq!(t.path, "/v1/kv/a/b+c");
        assert!(t.query.has("recurse"));
        assert_eq!(t.query.get("separator"), Some("/"));
        assert_eq!(t.raw_query, "recurse&separator=%2F");
    }

    #[test]
    fn absolute_form_and_fragment() {
        assert_eq!(
            parse_target("http://127.0.0.1:8500/v1/kv/x?raw").unwrap().path,
            "/v1/kv/x"
        );
        assert_eq!(parse_target("http://host").unwrap().path, "/");
        assert_eq!(parse_target("/v1/kv/x#frag").unwrap().path, "/v1/kv/x");
        assert_eq!(parse_target("*").unwrap().path, "*");
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_target("/v1/kv/%zz"), Err(TargetError::Path(PathError::BadEscape)));
        assert_eq!(parse_target("/v1/kv/a%0ab"), Err(TargetError::Unprintable));
        assert_eq!(parse_target("/v1/kv/%ff"), Err(TargetError::Path(PathError::NotUtf8)));
    }
}
