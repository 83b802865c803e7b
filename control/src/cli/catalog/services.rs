//! `proconsul catalog services [-tags] [-node=N] [-node-meta=k=v]`: service
//! names, sorted, one per line; `-tags` adds their tags.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{node_meta_query, path_with_segment};
use crate::cli::client::{get_ok, Query};
use crate::cli::columnize::tabwrite_pairs;
use crate::cli::flags::FlagSpec;
use crate::cli::Io;

const USAGE: &str = "Usage: proconsul catalog services [options]

  Retrieves the list services registered in a given datacenter. By default, the
  datacenter of the local agent is queried.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::value("node", "Node `id or name` for which to list services."),
    FlagSpec::list(
        "node-meta",
        "Metadata to filter nodes with the given `key=value` pairs. May be repeated.",
    ),
    FlagSpec::boolean(
        "tags",
        "Display each service's tags as a comma-separated list beside each service entry.",
    ),
];

/// Service name → tags, as `/v1/catalog/services` answers. Pure.
pub fn from_catalog(body: &[u8]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let services: BTreeMap<String, Option<Vec<String>>> =
        serde_json::from_slice(body).map_err(|e| format!("invalid response: {e}"))?;
    Ok(services
        .into_iter()
        .map(|(name, tags)| (name, tags.unwrap_or_default()))
        .collect())
}

/// Service name → tags of every instance on one node, from
/// `/v1/catalog/node/<n>` (`null` for an unknown node: no services). Pure.
pub fn from_node(body: &[u8]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let root: Value = serde_json::from_slice(body).map_err(|e| format!("invalid response: {e}"))?;
    let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(Value::Object(instances)) = root.get("Services") else {
        return Ok(services);
    };
    for instance in instances.values() {
        let Some(name) = instance.get("Service").and_then(Value::as_str) else {
            return Err("invalid response: a service without a name".into());
        };
        let tags = services.entry(name.to_string()).or_default();
        if let Some(Value::Array(list)) = instance.get("Tags") {
            tags.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    Ok(services)
}

/// The output: names sorted, one per line, or with `-tags` a second
/// column of sorted, comma-joined tags. Pure.
pub fn render(services: &BTreeMap<String, Vec<String>>, with_tags: bool) -> String {
    if !with_tags {
        return services.keys().map(|name| format!("{name}\n")).collect();
    }
    let rows: Vec<(String, String)> = services
        .iter()
        .map(|(name, tags)| {
            let mut tags = tags.clone();
            tags.sort();
            (name.clone(), tags.join(","))
        })
        .collect();
    tabwrite_pairs(&rows)
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let (parsed, node_meta, client) = match super::start(FLAGS, args, USAGE, io) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let mut query = Query::default();
    query.reads(&parsed);
    node_meta_query(&mut query, &node_meta);
    let node = parsed.value("node").filter(|n| !n.is_empty());
    let (path, context) = match node {
        Some(n) => (
            path_with_segment("/v1/catalog/node/", n),
            "Error listing services for node",
        ),
        None => ("/v1/catalog/services".to_string(), "Error listing services"),
    };
    let response = match get_ok(&client, &query.on(&path), context, io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let services = match node {
        Some(_) => from_node(&response.body),
        None => from_catalog(&response.body),
    };
    let services = match services {
        Ok(s) => s,
        Err(e) => {
            io.complain(&format!("{context}: {e}"));
            return 1;
        }
    };
    if services.is_empty() {
        io.complain("No services match the given query - try expanding your search.");
        return 0;
    }
    let _ = io.out.write_all(render(&services, parsed.flag("tags")).as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const CATALOG: &str = r#"{"consul":[],"web":["v2","rails"],"db":null}"#;
    const NODE: &str = r#"{"Node":{"Node":"n1","Address":"10.0.0.1"},"Services":{
        "web-1":{"ID":"web-1","Service":"web","Tags":["b"],"Port":80},
        "web-2":{"ID":"web-2","Service":"web","Tags":["a"],"Port":81},
        "db":{"ID":"db","Service":"db","Tags":null,"Port":5432}}}"#;

    #[test]
    fn names_sorted_one_per_line() {
        let s = from_catalog(CATALOG.as_bytes()).unwrap();
        assert_eq!(render(&s, false), "consul\ndb\nweb\n");
    }

    #[test]
    fn tags_column_is_sorted_and_padded_like_tabwriter() {
        let s = from_catalog(CATALOG.as_bytes()).unwrap();
        assert_eq!(render(&s, true), "consul      \ndb          \nweb         rails,v2\n");
    }

    #[test]
    fn node_services_merge_tags_per_name() {
        let s = from_node(NODE.as_bytes()).unwrap();
        assert_eq!(s["web"], vec!["b".to_string(), "a".to_string()]);
        assert_eq!(render(&s, true), "db       \nweb      a,b\n");
        assert!(from_node(b"null").unwrap().is_empty());
        assert!(from_node(br#"{"Services":{"x":{"Tags":[]}}}"#).is_err());
        assert!(from_catalog(b"[1]").is_err());
    }

    #[test]
    fn queries_catalog_or_node_with_filters() {
        let (addr, seen) = serve_canned(vec![
            ok_json(200, CATALOG),
            ok_json(200, NODE),
            ok_json(200, "null"),
            ok_json(500, "no leader"),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["catalog", "services", &flag, "-node-meta=rack=r1", "-datacenter=dc2"]);
        assert_eq!((r.code, r.out.as_str()), (0, "consul\ndb\nweb\n"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/catalog/services?dc=dc2&node-meta=rack%3Ar1 HTTP/1.1"));
        let r = run_cmd(&["catalog", "services", &flag, "-node=n1", "-tags"]);
        assert_eq!((r.code, r.out.as_str()), (0, "db       \nweb      a,b\n"));
        assert!(seen.recv().unwrap().starts_with("GET /v1/catalog/node/n1 HTTP/1.1"));
        let r = run_cmd(&["catalog", "services", &flag, "-node=ghost"]);
        assert_eq!(r.code, 0);
        assert_eq!(r.out, "");
        assert_eq!(
            r.err,
            "No services match the given query - try expanding your search.\n"
        );
        let r = run_cmd(&["catalog", "services", &flag]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error listing services: Unexpected response code: 500 (no leader)\n"
        );
    }

    #[test]
    fn bad_usage_prints_usage_and_fails() {
        let r = run_cmd(&["catalog", "services", "extra"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Too many arguments (expected 0, got 1)\nUsage: proconsul catalog services"));
        let r = run_cmd(&["catalog", "services", "-node-meta=nokey"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("Missing \"=\" value in argument: nokey"), "{}", r.err);
        assert!(r.err.contains("Usage: proconsul catalog services"));
    }
}
