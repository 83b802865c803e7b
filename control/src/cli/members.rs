//! `proconsul members [-detailed] [-wan]`: the cluster members, columnized
//! as `consul members` prints them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::client::{connect_or_complain, flag_table, get_ok, Query};
use super::columnize::columnize;
use super::flags::FlagSpec;
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul members [options]

  Outputs the members of a running agent's cluster.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("detailed", "Show all the tags of each member."),
    FlagSpec::boolean("wan", "List the WAN members instead of the LAN ones."),
    FlagSpec::value("segment", "Network segment to list (accepted; there is one)."),
];

/// One member as `/v1/agent/members` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    pub name: String,
    pub addr: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub status: u8,
}

fn status_name(status: u8) -> &'static str {
    match status {
        0 => "none",
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "unknown",
    }
}

fn address(m: &Member) -> String {
    match m.addr.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, m.port).to_string(),
        Err(_) => format!("{}:{}", m.addr, m.port),
    }
}

/// Servers first, then by name.
fn sort(members: &mut [Member]) {
    members.sort_by(|a, b| {
        let server = |m: &Member| m.tags.get("role").map(String::as_str) != Some("consul");
        (server(a), &a.name).cmp(&(server(b), &b.name))
    });
}

/// The standard table. Pure.
pub fn standard(members: &[Member]) -> String {
    let mut rows = vec![[
        "Node",
        "Address",
        "Status",
        "Type",
        "Build",
        "Protocol",
        "DC",
        "Partition",
        "Segment",
    ]
    .map(String::from)
    .to_vec()];
    for m in members {
        let tag = |k: &str| m.tags.get(k).cloned().unwrap_or_default();
        let build = match tag("build") {
            b if b.is_empty() => "< 0.3".to_string(),
            b => b.split(':').next().unwrap_or("").to_string(),
        };
        let partition = Some(tag("ap"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".into());
        let (kind, default_segment) = match tag("role").as_str() {
            "consul" => ("server", "<all>"),
            "node" => ("client", "<default>"),
            _ => ("unknown", ""),
        };
        let segment = Some(tag("segment"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default_segment.into());
        rows.push(vec![
            m.name.clone(),
            address(m),
            status_name(m.status).into(),
            kind.into(),
            build,
            tag("vsn"),
            tag("dc"),
            partition,
            segment,
        ]);
    }
    columnize(&rows)
}

/// The `-detailed` table. Pure.
pub fn detailed(members: &[Member]) -> String {
    let mut rows = vec![["Node", "Address", "Status", "Tags"].map(String::from).to_vec()];
    for m in members {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            m.name.clone(),
            address(m),
            status_name(m.status).into(),
            tags.join(","),
        ]);
    }
    columnize(&rows)
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut query = Query::default();
    query.pair("segment", "_all");
    if parsed.flag("wan") {
        query.pair("wan", "1");
    }
    let response = match get_ok(&client, &query.on("/v1/agent/members"), "Error retrieving members", io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // A client agent answers `?wan` with `null` (Consul's nil list).
    let mut members: Vec<Member> = match serde_json::from_slice::<Option<Vec<Member>>>(&response.body) {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            io.complain(&format!("Error retrieving members: invalid response: {e}"));
            return 1;
        }
    };
    if members.is_empty() {
        return 2;
    }
    sort(&mut members);
    let text = if parsed.flag("detailed") {
        detailed(&members)
    } else {
        standard(&members)
    };
    let _ = io.out.write_all(text.as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const MEMBERS: &str = r#"[
        {"Name":"web1","Addr":"10.0.0.7","Port":8301,"Status":1,
         "Tags":{"role":"node","build":"1.21.0:abc","vsn":"2","dc":"dc1"}},
        {"Name":"s1","Addr":"10.0.0.5","Port":8301,"Status":1,
         "Tags":{"role":"consul","build":"1.21.0:abc","vsn":"2","dc":"dc1","port":"8300"}},
        {"Name":"a-gone","Addr":"10.0.0.9","Port":8301,"Status":4,"Tags":{"role":"node"}}
    ]"#;

    #[test]
    fn standard_table_sorts_servers_first() {
        let mut m: Vec<Member> = serde_json::from_str(MEMBERS).unwrap();
        sort(&mut m);
        let text = standard(&m);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Node    Address        Status  Type    Build   Protocol  DC   Partition  Segment"
        );
        assert_eq!(
            lines[1],
            "s1      10.0.0.5:8301  alive   server  1.21.0  2         dc1  default    <all>"
        );
        assert!(lines[2].starts_with("a-gone  10.0.0.9:8301  failed  client  < 0.3"));
        assert!(lines[3].starts_with("web1 "));
        assert!(lines[3].ends_with("<default>"));
    }

    #[test]
    fn detailed_table_lists_sorted_tags() {
        let m: Vec<Member> = serde_json::from_str(MEMBERS).unwrap();
        let text = detailed(&m[1..2]);
        assert_eq!(
            text,
            "Node  Address        Status  Tags\ns1    10.0.0.5:8301  alive   build=1.21.0:abc,dc=dc1,port=8300,role=consul,vsn=2\n"
        );
    }

    #[test]
    fn queries_all_segments_and_exits_2_when_empty() {
        let (addr, seen) = serve_canned(vec![ok_json(200, MEMBERS), ok_json(200, "[]")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["members", &flag]);
        assert_eq!(r.code, 0);
        assert_eq!(r.out.lines().count(), 4);
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/agent/members?segment=_all HTTP/1.1"));
        let r = run_cmd(&["members", "-wan", &flag]);
        assert_eq!(r.code, 2);
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/agent/members?segment=_all&wan=1 HTTP/1.1"));
    }

    #[test]
    fn a_clients_null_wan_list_is_no_members() {
        let (addr, _seen) = serve_canned(vec![ok_json(200, "null")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["members", "-wan", &flag]);
        assert_eq!((r.code, r.err.as_str()), (2, ""));
    }
}
