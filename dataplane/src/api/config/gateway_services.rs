//! `GET /v1/catalog/gateway-services/<gateway>`: the services an ingress
//! gateway's config entry exposes, one row per listener service, a
//! wildcard expanded into every registered service (except `consul`,
//! which no wildcard exposes) with `FromWildcard: true`; `[]` for a
//! gateway without an entry. Governed by the larger of the config entry
//! and services table indexes (Consul's gateway-services table moves with
//! the gateway's config entry and with the registration or removal of a
//! service a wildcard expands to), and parked on both.

use proconsul_shared::state::{ConfigEntry, IngressListener, INGRESS_WILDCARD, KIND_INGRESS_GATEWAY};
use proconsul_shared::State;

use crate::api::json::JsonWriter;
use crate::api::read::{json_body, or_answer, read_options, required_name};
use crate::api::response::{QueryMeta, Response};
use crate::api::{read_outcome, ApiRequest, Outcome};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{LeaderStatus, View};

/// Bytes reserved per rendered row.
const ROW_BYTES_ESTIMATE: usize = 256;
/// Rows one answer lists; a wildcard over a huge catalog stops here.
pub const GATEWAY_SERVICES_ROWS_MAX: usize = 10_000;
/// The service a wildcard never exposes.
const CONSUL_SERVICE: &str = "consul";

/// One exposed service.
struct Row<'a> {
    service: &'a str,
    listener: &'a IngressListener,
    hosts: &'a [String],
    from_wildcard: bool,
}

/// Handles `GET /v1/catalog/gateway-services/<gateway>`.
pub fn gateway_services(req: &ApiRequest<'_>, gateway: &str, view: &View, leader: LeaderStatus) -> Outcome {
    let opts = or_answer!(read_options(req, view, leader));
    let gateway = or_answer!(required_name(gateway, "Missing gateway name"));
    let state = &view.state;
    let index = state
        .config_entries
        .table_index()
        .max(state.catalog.services_table_index());
    let pretty = req.pretty(view.agent.pretty_json);
    let watch = || WatchSet {
        items: vec![WatchItem::ConfigEntries, WatchItem::Services],
    };
    read_outcome(req, &opts, index, &view.agent, watch, || {
        let entry = state.config_entries.get(KIND_INGRESS_GATEWAY, gateway);
        let rows = entry.map_or_else(Vec::new, |e| rows(state, e));
        let body = json_body(pretty, ROW_BYTES_ESTIMATE * rows.len() + 2, |w| {
            w.begin_array();
            if let Some(entry) = entry {
                for row in &rows {
                    write_row(w, entry, row);
                }
            }
            w.end_array();
        });
        Response::json(200, body).with_meta(QueryMeta::new(index, leader, opts.consistency))
    })
}

fn rows<'a>(state: &'a State, entry: &'a ConfigEntry) -> Vec<Row<'a>> {
    let mut out = Vec::new();
    for listener in &entry.ingress_listeners {
        for service in &listener.services {
            if service.name != INGRESS_WILDCARD {
                out.push(Row {
                    service: &service.name,
                    listener,
                    hosts: &service.hosts,
                    from_wildcard: false,
                });
                continue;
            }
            let registered = state.catalog.services_by_name().filter_map(|(_, instances)| {
                let typical = instances.values().find(|i| i.kind.is_empty())?;
                (!typical.service.eq_ignore_ascii_case(CONSUL_SERVICE)).then_some(typical.service.as_str())
            });
            out.extend(registered.map(|name| Row {
                service: name,
                listener,
                hosts: &service.hosts,
                from_wildcard: true,
            }));
        }
    }
    out.truncate(GATEWAY_SERVICES_ROWS_MAX);
    out
}

fn write_row(w: &mut JsonWriter<'_>, entry: &ConfigEntry, row: &Row<'_>) {
    w.begin_object();
    w.key("Gateway");
    w.begin_object();
    w.key("Name");
    w.string(&entry.name);
    w.end_object();
    w.key("Service");
    w.begin_object();
    w.key("Name");
    w.string(row.service);
    w.end_object();
    w.key("GatewayKind");
    w.string(KIND_INGRESS_GATEWAY);
    w.key("Port");
    w.u64(row.listener.port as u64);
    w.key("Protocol");
    w.string(&row.listener.protocol);
    w.key("Hosts");
    if row.hosts.is_empty() {
        w.null();
    } else {
        w.string_array(row.hosts.iter().map(String::as_str));
    }
    for key in ["CAFile", "CertFile", "KeyFile", "SNI"] {
        w.key(key);
        w.string("");
    }
    w.key("FromWildcard");
    w.bool(row.from_wildcard);
    w.key("CreateIndex");
    w.u64(entry.create_index);
    w.key("ModifyIndex");
    w.u64(entry.modify_index);
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{agent, leader, request, state_with, view_of};
    use crate::dns::test_support::register_service;
    use crate::replica::fixtures::register_node;
    use proconsul_shared::state::IngressService;
    use proconsul_shared::Command;
    use serde_json::Value;

    fn ingress(services: &[(&str, &[&str])]) -> Command {
        Command::ConfigEntrySet {
            entry: ConfigEntry {
                kind: KIND_INGRESS_GATEWAY.into(),
                name: "gw".into(),
                json: "{}".into(),
                ingress_listeners: vec![IngressListener {
                    port: 8080,
                    protocol: "http".into(),
                    services: services
                        .iter()
                        .map(|(name, hosts)| IngressService {
                            name: name.to_string(),
                            hosts: hosts.iter().map(|h| h.to_string()).collect(),
                        })
                        .collect(),
                }],
                ..Default::default()
            },
            cas: None,
        }
    }

    fn list(state: State, gateway: &str) -> (Value, u64) {
        let view = view_of(state, agent());
        let req = request("GET", "/v1/catalog/gateway-services/gw", "", b"");
        match gateway_services(&req, gateway, &view, leader()) {
            Outcome::Ready(r) => (serde_json::from_slice(&r.body).unwrap(), r.meta.unwrap().index),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn named_and_wildcard_services() {
        let mut state = state_with(&[ingress(&[("api", &["api.example"]), ("*", &[])])]);
        register_node(&mut state, 2, "n1", "10.0.0.1", &[]);
        register_service(&mut state, 3, "n1", "web-1", "web", &[], "", 80);
        register_service(&mut state, 4, "n1", "consul", "consul", &[], "", 8300);
        let (rows, index) = list(state, "gw");
        assert_eq!(index, 4);
        let rows = rows.as_array().unwrap();
        let shown: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r["Service"]["Name"].as_str().unwrap(),
                    r["FromWildcard"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(shown, [("api", false), ("web", true)], "consul is never exposed");
        assert_eq!(rows[0]["Gateway"]["Name"], "gw");
        assert_eq!(rows[0]["Port"], 8080);
        assert_eq!(rows[0]["Hosts"][0], "api.example");
        assert!(rows[1]["Hosts"].is_null());
    }

    #[test]
    fn unknown_gateway_is_an_empty_list() {
        let (rows, _) = list(state_with(&[ingress(&[("api", &[])])]), "other");
        assert_eq!(rows, serde_json::json!([]));
    }

    #[test]
    fn blocks_on_config_entries_and_services() {
        let view = view_of(state_with(&[ingress(&[("api", &[])])]), agent());
        let req = request("GET", "/v1/catalog/gateway-services/gw", "index=1&wait=1s", b"");
        match gateway_services(&req, "gw", &view, leader()) {
            Outcome::Block(block) => {
                assert_eq!(block.min_index, 1);
                assert_eq!(
                    block.watch.items,
                    [WatchItem::ConfigEntries, WatchItem::Services],
                    "the entry, and the services a wildcard expands to"
                );
            }
            other => panic!("expected to block, got {other:?}"),
        }
    }
}
