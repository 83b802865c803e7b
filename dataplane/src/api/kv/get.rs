//! `GET /v1/kv/<key>`: one key, `?recurse`, `?raw`, `?keys[&separator=]`.

use proconsul_shared::state::{KvEntry, KvTable};

use super::dir_entry::write_dir_entry;
use crate::api::json::JsonWriter;
use crate::api::params::QueryOptions;
use crate::api::response::{Consistency, ContentType, QueryMeta, Response};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// `GET /v1/kv/<key>[?recurse][&raw]`.
pub fn entries(req: &ApiRequest<'_>, key: &str, opts: &QueryOptions<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    let recurse = req.query.has("recurse");
    if !recurse && key.is_empty() {
        return Outcome::Ready(Response::text(400, "Missing key name"));
    }
    if let Err(refused) = opts.check_serving(&view.agent, leader) {
        return Outcome::Ready(refused);
    }
    let kv = &view.state.kv;
    let pretty = req.pretty(view.agent.pretty_json);
    if recurse {
        let index = kv.prefix_index(key);
        let watch = || WatchSet::one(WatchItem::KvPrefix(key.to_string()));
        return read_outcome(req, opts, index, &view.agent, watch, || {
            render_tree(kv, key, pretty, QueryMeta::new(index, leader, opts.consistency))
        });
    }
    // One lookup serves both the index and the body.
    let entry = kv.get(key);
    let index = entry.map_or_else(|| kv.table_index(), |e| e.modify_index);
    debug_assert_eq!(index, kv.key_index(key));
    let raw = req.query.has("raw");
    let watch = || WatchSet::one(WatchItem::KvKey(key.to_string()));
    read_outcome(req, opts, index, &view.agent, watch, || {
        render_entry(
            entry.map(|e| &**e),
            raw,
            pretty,
            QueryMeta::new(index, leader, opts.consistency),
        )
    })
}

/// Every entry under `prefix` (404 when none), at `meta.index`.
pub fn render_tree(kv: &KvTable, prefix: &str, pretty: bool, meta: QueryMeta) -> Response {
    let mut found = kv.range_prefix(prefix).peekable();
    if found.peek().is_none() {
        return Response::empty(404).with_meta(meta);
    }
    let mut body = Vec::new();
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_array();
    for entry in found {
        write_dir_entry(&mut w, entry, true);
    }
    w.end_array();
    w.finish();
    Response::json(200, body).with_meta(meta)
}

/// One entry (404 when missing), as a one-element array or `?raw` bytes.
pub fn render_entry(entry: Option<&KvEntry>, raw: bool, pretty: bool, meta: QueryMeta) -> Response {
    let Some(entry) = entry else {
        return Response::empty(404).with_meta(meta);
    };
    if raw {
        return Response {
            content_type: ContentType::RawValue,
            body: entry.value.clone(),
            ..Response::empty(200)
        }
        .with_meta(meta);
    }
    let mut body = Vec::with_capacity(128 + entry.key.len() + entry.value.len() * 4 / 3);
    let mut w = JsonWriter::new(&mut body, pretty);
    w.begin_array();
    write_dir_entry(&mut w, entry, true);
    w.end_array();
    w.finish();
    Response::json(200, body).with_meta(meta)
}

/// The plain single-key read every benchmark measures: no parameters.
pub fn render_plain_get(kv: &KvTable, key: &str, pretty: bool, leader: LeaderStatus) -> Response {
    let entry = kv.get(key);
    let index = entry.map_or_else(|| kv.table_index(), |e| e.modify_index);
    render_entry(
        entry.map(|e| &**e),
        false,
        pretty,
        QueryMeta::new(index, leader, Consistency::Leader),
    )
}

/// `GET /v1/kv/<prefix>?keys[&separator=<s>]`.
pub fn keys(req: &ApiRequest<'_>, prefix: &str, opts: &QueryOptions<'_>, view: &View, leader: LeaderStatus) -> Outcome {
    if let Err(refused) = opts.check_serving(&view.agent, leader) {
        return Outcome::Ready(refused);
    }
    // Consul reads the misspelt `seperator` first; `separator` wins.
    let separator = req
        .query
        .get("separator")
        .or_else(|| req.query.get("seperator"))
        .unwrap_or("");
    let kv = &view.state.kv;
    let index = kv.prefix_index(prefix);
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::KvPrefix(prefix.to_string()));
    read_outcome(req, opts, index, &view.agent, watch, || {
        let meta = QueryMeta::new(index, leader, opts.consistency);
        let listed = list_keys(kv, prefix, separator);
        if listed.is_empty() && !prefix.is_empty() {
            return Response::empty(404).with_meta(meta);
        }
        let mut body = Vec::new();
        let mut w = JsonWriter::new(&mut body, pretty);
        w.string_array(listed);
        w.finish();
        Response::json(200, body).with_meta(meta)
    })
}

/// Consul's `KVSListKeys`: keys under `prefix`; with a separator, each key
/// is cut after the first separator following the prefix and consecutive
/// duplicates are folded (`web/sub/` stands for a folder).
pub fn list_keys<'k>(kv: &'k KvTable, prefix: &'k str, separator: &str) -> Vec<&'k str> {
    let mut keys: Vec<&'k str> = Vec::new();
    for entry in kv.range_prefix(prefix) {
        let key = entry.key.as_str();
        if !separator.is_empty() {
            if let Some(at) = key[prefix.len()..].find(separator) {
                let folder = &key[..prefix.len() + at + separator.len()];
                if keys.last() != Some(&folder) {
                    keys.push(folder);
                }
                continue;
            }
        }
        keys.push(key);
    }
    keys
}
