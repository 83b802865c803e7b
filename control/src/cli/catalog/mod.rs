//! `proconsul catalog services|nodes|datacenters`: the catalog, printed as
//! `consul catalog ...` prints it.

pub mod datacenters;
pub mod nodes;
pub mod services;

use std::collections::BTreeMap;

use super::client::Query;
use super::Io;

const USAGE: &str = "Usage: proconsul catalog <subcommand> [options] [args]

  Interact with the catalog of nodes and services.

Subcommands:
    datacenters    Lists all known datacenters
    nodes          Lists all nodes in the given datacenter
    services       Lists all registered services in a datacenter
";

/// Adds Consul's `node-meta=key:value` query pairs.
pub fn node_meta_query(query: &mut Query, meta: &std::collections::BTreeMap<String, String>) {
    for (key, value) in meta {
        query.pair("node-meta", &format!("{key}:{value}"));
    }
}

/// `prefix` followed by one path segment, escaped as Go's `net/url` escapes
/// a path (`:` and `@` stay as they are, so `host:port` reads naturally),
/// and `/` escaped too, so the segment stays one segment.
pub fn path_with_segment(prefix: &str, segment: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + segment.len());
    out.push_str(prefix);
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$&+,:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What `catalog nodes` and `catalog services` start with: their flags
/// parsed (no positionals), `-node-meta` as a map, and a client; or the
/// exit code after the usage or error was printed.
pub(super) fn start(
    flags: &[crate::cli::flags::FlagSpec],
    args: &[String],
    usage: &str,
    io: &mut Io<'_>,
) -> Result<
    (
        crate::cli::flags::ParsedArgs,
        BTreeMap<String, String>,
        crate::cli::http_client::Client,
    ),
    i32,
> {
    let table = crate::cli::client::flag_table(flags, true);
    let parsed = crate::cli::parse_or_usage(&table, args, usage, io)?;
    crate::cli::client::no_positionals(&parsed, usage, io)?;
    let node_meta = crate::cli::map_flag::map_flag(&parsed, "node-meta")
        .map_err(|e| crate::cli::client::usage_error(&e.to_string(), usage, io))?;
    let client = crate::cli::client::connect_or_complain(&parsed, io)?;
    Ok((parsed, node_meta, client))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    crate::cli::subcommand::dispatch(
        args,
        io,
        USAGE,
        &[
            ("services", services::run),
            ("nodes", nodes::run),
            ("datacenters", datacenters::run),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::run_cmd;

    #[test]
    fn subcommands() {
        assert_eq!(run_cmd(&["catalog"]).code, 1);
        assert_eq!(run_cmd(&["catalog", "frob"]).code, 1);
        let r = run_cmd(&["catalog", "-h"]);
        assert_eq!(r.code, 0);
        assert!(r.err.contains("datacenters"));
    }

    #[test]
    fn query_helpers() {
        let mut q = Query::default();
        let meta = [
            ("rack".to_string(), "r 1".to_string()),
            ("env".to_string(), "x".to_string()),
        ]
        .into_iter()
        .collect();
        node_meta_query(&mut q, &meta);
        assert_eq!(
            q.on("/v1/catalog/nodes"),
            "/v1/catalog/nodes?node-meta=env%3Ax&node-meta=rack%3Ar%201"
        );
        assert_eq!(
            path_with_segment("/v1/catalog/node/", "a b/c"),
            "/v1/catalog/node/a%20b%2Fc"
        );
        assert_eq!(
            path_with_segment("/v1/agent/join/", "[::1]:8301"),
            "/v1/agent/join/%5B::1%5D:8301"
        );
    }
}
