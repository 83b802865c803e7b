//! The KV store endpoint, `/v1/kv/<key>` (HTTP.md §1).
//!
//! Reads are answered from the view; writes are validated here and
//! forwarded. [`render_get_response`] is the hot path benchmarked against
//! nginx: view + key → the complete HTTP response bytes.

mod dir_entry;
mod get;
mod write;

pub use dir_entry::write_dir_entry;
pub use get::list_keys;
pub use write::bool_response;

use super::params::parse_query_options;
use super::request::Method;
use super::response::Response;
use super::{ApiRequest, Outcome};
use crate::core::{LeaderStatus, View};
use crate::http::response::{write_response, Framing};

/// Longest key accepted (Consul has no limit; we bound it).
pub const KEY_BYTES_MAX: usize = proconsul_shared::limits::KV_KEY_BYTES_MAX;

/// Handles any method on `/v1/kv/<key>` (`key` is already decoded).
pub fn handle(req: &ApiRequest<'_>, key: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = match parse_query_options(&req.query) {
        Ok(opts) => opts,
        Err(refused) => return Outcome::Ready(refused),
    };
    if key.len() > KEY_BYTES_MAX {
        return Outcome::Ready(Response::text(
            400,
            format!("Key too long ({} > {KEY_BYTES_MAX} bytes)", key.len()),
        ));
    }
    match req.method {
        Method::Get if req.query.has("keys") => get::keys(req, key, &opts, view, leader),
        Method::Get => get::entries(req, key, &opts, view, leader),
        Method::Put => write::put(req, key, &opts, view, leader),
        Method::Delete => write::delete(req, key, &opts, view, leader),
        _ => Outcome::Ready(super::method_not_allowed(req, "OPTIONS,GET,PUT,DELETE")),
    }
}

/// Renders the complete HTTP/1.1 keep-alive response to a plain
/// `GET /v1/kv/<key>` into `out`: exactly the bytes the server writes.
pub fn render_get_response(view: &View, leader: LeaderStatus, key: &str, out: &mut Vec<u8>) {
    let response = get::render_plain_get(&view.state.kv, key, view.agent.pretty_json, leader);
    write_response(out, &response, Framing::keep_alive_http11(), &crate::http::date::now());
}

#[cfg(test)]
mod tests;
