//! What a handler answers: status, the few headers Consul varies, body.
//! The HTTP layer turns it into bytes (`crate::http::response`).

use crate::core::LeaderStatus;

/// The `Content-Type` of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// No body, no content type (Go sends none for an empty body).
    None,
    /// `application/json`.
    Json,
    /// `text/plain; charset=utf-8` (Go's sniffed type for error text).
    Text,
    /// `text/plain` plus `X-Content-Type-Options: nosniff` and
    /// `Content-Security-Policy: sandbox` (`GET /v1/kv/<k>?raw`).
    RawValue,
}

/// Which consistency mode answered (`X-Consul-Effective-Consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Leader,
    Stale,
    Consistent,
}

impl Consistency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Leader => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

/// The metadata of an index-backed read (Go's `setMeta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-Consul-Index`; never 0 (see [`QueryMeta::new`]).
    pub index: u64,
    pub leader: LeaderStatus,
    pub consistency: Consistency,
}

impl QueryMeta {
    /// Metadata for a result at `index`, forced to at least 1 as Consul
    /// does: a client echoing `?index=0` back would never block.
    pub fn new(index: u64, leader: LeaderStatus, consistency: Consistency) -> QueryMeta {
        QueryMeta {
            index: index.max(1),
            leader,
            consistency,
        }
    }
}

/// A complete API response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: ContentType,
    /// Index, KnownLeader, LastContact and Effective-Consistency headers.
    pub meta: Option<QueryMeta>,
    /// KnownLeader and LastContact only (read-only transactions).
    pub leader: Option<LeaderStatus>,
    /// The `Allow` header (`OPTIONS` and `405` answers).
    pub allow: Option<&'static str>,
    /// Further headers, as given by the control plane for a forwarded
    /// request (its `Content-Type`, `X-Consul-ContentHash`, ...).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no body and no content type.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: ContentType::None,
            meta: None,
            leader: None,
            allow: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain-text answer (Consul's error bodies). An empty message gives
    /// an empty body without a content type, as Go does.
    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let body = message.into().into_bytes();
        Response {
            content_type: if body.is_empty() {
                ContentType::None
            } else {
                ContentType::Text
            },
            body,
            ..Response::empty(status)
        }
    }

    /// A JSON answer; `body` is already rendered.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            content_type: ContentType::Json,
            body,
            ..Response::empty(status)
        }
    }

    /// Attaches read metadata.
    pub fn with_meta(mut self, meta: QueryMeta) -> Response {
        self.meta = Some(meta);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_never_zero() {
        let leader = LeaderStatus {
            known_leader: true,
            last_contact_ms: 0,
        };
        assert_eq!(QueryMeta::new(0, leader, Consistency::Leader).index, 1);
        assert_eq!(QueryMeta::new(7, leader, Consistency::Stale).index, 7);
    }

    #[test]
    fn empty_text_has_no_content_type() {
        assert_eq!(Response::text(404, "").content_type, ContentType::None);
        assert_eq!(Response::text(400, "x").content_type, ContentType::Text);
    }
}
