//! `proconsul catalog nodes [-detailed] [-service=S] [-near=N]
//! [-node-meta=k=v] [-filter=EXPR]`: the nodes, columnized as `consul
//! catalog nodes` prints them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{node_meta_query, path_with_segment};
use crate::cli::client::{get_ok, Query};
use crate::cli::columnize::columnize;
use crate::cli::flags::FlagSpec;
use crate::cli::map_flag::load_data_source;
use crate::cli::Io;

const USAGE: &str = "Usage: proconsul catalog nodes [options]

  Retrieves the list nodes registered in a given datacenter. By default, the
  datacenter of the local agent is queried.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean(
        "detailed",
        "Output detailed information about the nodes including their addresses and metadata.",
    ),
    FlagSpec::value("filter", "Filter to use with the request (@file and - read it)."),
    FlagSpec::value(
        "near",
        "Node name to sort the node list by estimated round-trip time from; \"_agent\" is this agent.",
    ),
    FlagSpec::list(
        "node-meta",
        "Metadata to filter nodes with the given `key=value` pairs. May be repeated.",
    ),
    FlagSpec::value("service", "Service `id or name` to filter nodes."),
];

/// One row: a node of `/v1/catalog/nodes`, or the node of an instance of
/// `/v1/catalog/service/<s>` (whose node meta is `NodeMeta`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeRow {
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub datacenter: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty", alias = "NodeMeta")]
    pub meta: BTreeMap<String, String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// Parses a node list or a service instance list. Pure.
pub fn parse_rows(body: &[u8]) -> Result<Vec<NodeRow>, String> {
    let rows: Option<Vec<NodeRow>> = serde_json::from_slice(body).map_err(|e| format!("invalid response: {e}"))?;
    Ok(rows.unwrap_or_default())
}

/// `k=v, k=v`, keys sorted.
fn map_to_kv(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table: `Node  ID  Address  DC` with the ID cut at its first `-`, or
/// with `-detailed` the whole ID plus `TaggedAddresses` and `Meta`. Pure.
pub fn render(rows: &[NodeRow], detailed: bool) -> String {
    let header: &[&str] = if detailed {
        &["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
    } else {
        &["Node", "ID", "Address", "DC"]
    };
    let mut table = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for row in rows {
        if detailed {
            table.push(vec![
                row.node.clone(),
                row.id.clone(),
                row.address.clone(),
                row.datacenter.clone(),
                map_to_kv(&row.tagged_addresses),
                map_to_kv(&row.meta),
            ]);
        } else {
            let short_id = match row.id.find('-') {
                Some(i) if i > 0 => &row.id[..i],
                _ => row.id.as_str(),
            };
            table.push(vec![
                row.node.clone(),
                short_id.to_string(),
                row.address.clone(),
                row.datacenter.clone(),
            ]);
        }
    }
    columnize(&table)
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let (parsed, node_meta, client) = match super::start(FLAGS, args, USAGE, io) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let filter = match parsed.value("filter").filter(|f| !f.is_empty()) {
        None => None,
        Some(source) => match load_data_source(source, io.stdin) {
            Ok(text) => Some(text),
            Err(e) => {
                io.complain(&format!("Could not process filter argument: {e}"));
                return 1;
            }
        },
    };
    let mut query = Query::default();
    query.reads(&parsed);
    if let Some(near) = parsed.value("near").filter(|n| !n.is_empty()) {
        query.pair("near", near);
    }
    node_meta_query(&mut query, &node_meta);
    if let Some(filter) = &filter {
        query.pair("filter", filter);
    }
    let service = parsed.value("service").filter(|s| !s.is_empty());
    let (path, context) = match service {
        Some(s) => (
            path_with_segment("/v1/catalog/service/", s),
            "Error listing nodes for service",
        ),
        None => ("/v1/catalog/nodes".to_string(), "Error listing nodes"),
    };
    let response = match get_ok(&client, &query.on(&path), context, io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rows = match parse_rows(&response.body) {
        Ok(r) => r,
        Err(e) => {
            io.complain(&format!("{context}: {e}"));
            return 1;
        }
    };
    if rows.is_empty() {
        io.complain("No nodes match the given query - try expanding your search.");
        return 0;
    }
    let _ = io.out.write_all(render(&rows, parsed.flag("detailed")).as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::{run_cmd, run_with};

    const NODES: &str = r#"[
        {"ID":"e8b3a1c2-7f6d-4c1e-9a51-2b7c0f3d4e5a","Node":"node-a","Address":"127.0.0.10","Datacenter":"dc1",
         "TaggedAddresses":{"wan":"10.1.0.1","lan":"127.0.0.10"},"Meta":{"rack":"r1","consul-network-segment":""},
         "CreateIndex":5,"ModifyIndex":6},
        {"ID":"","Node":"b","Address":"10.0.0.2","Datacenter":"dc1","TaggedAddresses":null,"Meta":null}
    ]"#;

    #[test]
    fn standard_table_shortens_ids() {
        let rows = parse_rows(NODES.as_bytes()).unwrap();
        assert_eq!(
            render(&rows, false),
            "Node    ID        Address     DC\nnode-a  e8b3a1c2  127.0.0.10  dc1\nb                 10.0.0.2    dc1\n"
        );
    }

    #[test]
    fn detailed_table_lists_addresses_and_meta() {
        let rows = parse_rows(NODES.as_bytes()).unwrap();
        let text = render(&rows, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Node    ID                                    Address     DC   TaggedAddresses               Meta"
        );
        assert_eq!(
            lines[1],
            "node-a  e8b3a1c2-7f6d-4c1e-9a51-2b7c0f3d4e5a  127.0.0.10  dc1  lan=127.0.0.10, wan=10.1.0.1  consul-network-segment=, rack=r1"
        );
        // Empty cells still take their width and glue, trailing spaces kept.
        assert_eq!(
            lines[2],
            format!("b{}10.0.0.2    dc1{}", " ".repeat(45), " ".repeat(32))
        );
    }

    #[test]
    fn service_instances_carry_node_meta() {
        let rows = parse_rows(
            br#"[{"ID":"abc","Node":"n","Address":"1.2.3.4","Datacenter":"dc1","NodeMeta":{"k":"v"},"ServiceID":"web"}]"#,
        )
        .unwrap();
        assert_eq!(rows[0].meta.get("k").map(String::as_str), Some("v"));
        assert!(parse_rows(b"null").unwrap().is_empty());
        assert!(parse_rows(b"{}").is_err());
    }

    #[test]
    fn queries_nodes_or_a_service_with_every_filter() {
        let (addr, seen) = serve_canned(vec![ok_json(200, NODES), ok_json(200, "[]"), ok_json(403, "denied")]);
        let flag = format!("-http-addr={addr}");
        let r = run_with(
            &[
                "catalog",
                "nodes",
                &flag,
                "-near=_agent",
                "-filter=-",
                "-node-meta=rack=r1",
                "-stale",
            ],
            b"Node == \"b\"",
            &[],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(r.out.lines().count(), 3);
        let request = seen.recv().unwrap();
        assert!(
            request.starts_with(
                "GET /v1/catalog/nodes?stale&near=_agent&node-meta=rack%3Ar1&filter=Node%20%3D%3D%20%22b%22 HTTP/1.1"
            ),
            "{request}"
        );
        let r = run_cmd(&["catalog", "nodes", &flag, "-service=web"]);
        assert_eq!(r.code, 0);
        assert_eq!(r.err, "No nodes match the given query - try expanding your search.\n");
        assert!(seen.recv().unwrap().starts_with("GET /v1/catalog/service/web HTTP/1.1"));
        let r = run_cmd(&["catalog", "nodes", &flag, "-service=web"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error listing nodes for service: Unexpected response code: 403 (denied)\n"
        );
        let r = run_cmd(&["catalog", "nodes", &flag, "-filter=@/nonexistent/filter"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Could not process filter argument: Failed to read file"));
    }
}
