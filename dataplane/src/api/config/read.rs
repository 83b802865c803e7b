//! `GET /v1/config/<kind>` (the entries of a kind, by name) and
//! `GET /v1/config/<kind>/<name>` (one entry, `404` when missing), both
//! at the config entry table's index and blocking on it
//! ([`WatchItem::ConfigEntries`]: only a config entry write wakes them).

use crate::api::read::{json_body, or_answer, read_options};
use crate::api::response::{QueryMeta, Response};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

use super::render::write_entry;

/// Every kind Consul (≤1.18) knows: reading a kind this agent does not
/// store gives an empty list or a `404`, not an error.
pub const CONSUL_KINDS: [&str; 17] = [
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "inline-certificate",
    "http-route",
    "tcp-route",
    "jwt-provider",
];

/// Bytes reserved per rendered entry.
const ENTRY_BYTES_ESTIMATE: usize = 512;

/// Handles `GET /v1/config/<rest>`: `<kind>` lists, `<kind>/<name>` reads
/// one entry.
pub fn get_or_list(req: &ApiRequest<'_>, rest: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let (kind, name) = match rest.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (rest, None),
    };
    if kind.is_empty() || name.is_some_and(str::is_empty) {
        return Outcome::Ready(Response::text(404, "Must provide either a kind or both kind and name"));
    }
    if !CONSUL_KINDS.contains(&kind) {
        return Outcome::Ready(Response::text(500, format!("invalid config entry kind: {kind}")));
    }
    let table = &view.state.config_entries;
    let index = table.table_index();
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet::one(WatchItem::ConfigEntries);
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let meta = QueryMeta::new(index, leader, opts.consistency);
        match name {
            Some(name) => match table.get(kind, name) {
                Some(entry) => Response::json(200, json_body(pretty, ENTRY_BYTES_ESTIMATE, |w| write_entry(w, entry)))
                    .with_meta(meta),
                None => Response::text(404, format!("Config entry not found for {kind:?} / {name:?}")).with_meta(meta),
            },
            None => {
                let entries: Vec<_> = table.of_kind(kind).collect();
                let body = json_body(pretty, ENTRY_BYTES_ESTIMATE * entries.len() + 2, |w| {
                    w.begin_array();
                    for entry in &entries {
                        write_entry(w, entry);
                    }
                    w.end_array();
                });
                Response::json(200, body).with_meta(meta)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{leader, request, view_with, wakes};
    use crate::blocking::{WatchItem, WatchSet};
    use proconsul_shared::state::ConfigEntry;
    use proconsul_shared::Command;
    use serde_json::Value;

    fn set(kind: &str, name: &str) -> Command {
        Command::ConfigEntrySet {
            entry: ConfigEntry {
                kind: kind.into(),
                name: name.into(),
                json: format!(r#"{{"Kind":"{kind}","Name":"{name}"}}"#),
                ..Default::default()
            },
            cas: None,
        }
    }

    fn ready(outcome: Outcome) -> Response {
        match outcome {
            Outcome::Ready(r) => r,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn gets_lists_and_misses() {
        let view = view_with(&[
            set("service-defaults", "web"),
            set("service-defaults", "api"),
            set("ingress-gateway", "gw"),
        ]);
        let r = ready(get_or_list(
            &request("GET", "/v1/config/service-defaults/web", "", b""),
            "service-defaults/web",
            &view,
            leader(),
        ));
        assert_eq!(r.status, 200);
        let one: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (one["Name"].as_str(), one["CreateIndex"].as_u64()),
            (Some("web"), Some(1))
        );
        assert_eq!(r.meta.unwrap().index, 3, "the table index governs every read");

        let r = ready(get_or_list(
            &request("GET", "/v1/config/service-defaults", "", b""),
            "service-defaults",
            &view,
            leader(),
        ));
        let list: Value = serde_json::from_slice(&r.body).unwrap();
        let names: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api", "web"]);

        let r = ready(get_or_list(
            &request("GET", "/v1/config/mesh", "", b""),
            "mesh",
            &view,
            leader(),
        ));
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"[]".as_slice()),
            "a known kind with no entry"
        );

        let r = ready(get_or_list(
            &request("GET", "", "", b""),
            "service-defaults/nope",
            &view,
            leader(),
        ));
        assert_eq!(r.status, 404);
        assert_eq!(r.body, br#"Config entry not found for "service-defaults" / "nope""#);

        let r = ready(get_or_list(&request("GET", "", "", b""), "bogus", &view, leader()));
        assert_eq!(
            (r.status, r.body.as_slice()),
            (500, b"invalid config entry kind: bogus".as_slice())
        );
        assert_eq!(
            ready(get_or_list(&request("GET", "", "", b""), "", &view, leader())).status,
            404
        );
    }

    #[test]
    fn blocks_until_the_table_moves() {
        let view = view_with(&[set("service-defaults", "web")]);
        let req = request("GET", "/v1/config/service-defaults", "index=1&wait=1s", b"");
        match get_or_list(&req, "service-defaults", &view, leader()) {
            Outcome::Block(block) => {
                assert_eq!(block.min_index, 1, "parked at the client's index");
                assert_eq!(block.watch, WatchSet::one(WatchItem::ConfigEntries));
                let kv_write = Command::KvSet {
                    key: "unrelated".into(),
                    value: b"v".to_vec(),
                    flags: 0,
                };
                assert!(
                    !wakes(&block.watch, &view.state, &kv_write),
                    "a KV write does not wake it"
                );
                assert!(
                    wakes(&block.watch, &view.state, &set("service-defaults", "api")),
                    "a config entry write does"
                );
            }
            other => panic!("expected to block, got {other:?}"),
        }
        let req = request("GET", "/v1/config/service-defaults", "index=0", b"");
        assert_eq!(
            ready(get_or_list(&req, "service-defaults", &view, leader())).status,
            200
        );
    }
}
