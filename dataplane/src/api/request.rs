//! What a handler sees of a request: method, decoded path, query, body.

use std::net::IpAddr;

use crate::http::query::Query;

/// The HTTP methods the API distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
    Patch,
    /// Anything else (`TRACE`, `BREW`, ...): allowed nowhere.
    Other,
}

impl Method {
    /// Classifies a method token (case-sensitive, as HTTP and Go are).
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// One API request, borrowing from the connection's buffers.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    pub method: Method,
    /// The method as sent, for `method <M> not allowed`.
    pub method_name: &'a str,
    /// The percent-decoded path (`/v1/kv/a/b`).
    pub path: &'a str,
    pub query: Query<'a>,
    /// The query string as sent (percent-encoded, without `?`), for
    /// requests forwarded whole to the control plane.
    pub raw_query: &'a str,
    /// The `X-Consul-Token` or `Authorization: Bearer` header, if any.
    pub header_token: Option<&'a str>,
    pub body: &'a [u8],
    /// Whether a blocking read may park (`false` once the blocking driver
    /// wants the answer now: the wait timed out or the core is overloaded).
    pub may_block: bool,
    /// The client's address (`near=_ip` in prepared query execution),
    /// when the connection knows it.
    pub peer_ip: Option<IpAddr>,
}

impl<'a> ApiRequest<'a> {
    /// A request as it arrives (may block).
    pub fn new(method_name: &'a str, path: &'a str, query: Query<'a>, body: &'a [u8]) -> ApiRequest<'a> {
        ApiRequest {
            method: Method::parse(method_name),
            method_name,
            path,
            query,
            raw_query: "",
            header_token: None,
            body,
            may_block: true,
            peer_ip: None,
        }
    }

    /// Sets the raw query string and the header token (what a forwarded
    /// request carries beyond the parsed query).
    pub fn with_forwarding(mut self, raw_query: &'a str, header_token: Option<&'a str>) -> ApiRequest<'a> {
        self.raw_query = raw_query;
        self.header_token = header_token;
        self
    }

    /// Sets the client's address.
    pub fn with_peer_ip(mut self, peer_ip: Option<IpAddr>) -> ApiRequest<'a> {
        self.peer_ip = peer_ip;
        self
    }

    /// The request's ACL token: `?token=` wins over the headers, as in Consul.
    pub fn token(&self) -> Option<&str> {
        self.query
            .get("token")
            .filter(|t| !t.is_empty())
            .or(self.header_token.filter(|t| !t.is_empty()))
    }

    /// Whether the response should be indented (`?pretty`, or `-dev`).
    pub fn pretty(&self, agent_pretty: bool) -> bool {
        agent_pretty || self.query.has("pretty")
    }
}
