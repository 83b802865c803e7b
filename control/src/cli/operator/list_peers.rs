//! `proconsul operator raft list-peers [-stale]`: the raft configuration
//! (`/v1/operator/raft/configuration`) with each server's commit index and
//! lag behind the leader (`/v1/operator/autopilot/health`), columnized as
//! `consul operator raft list-peers` prints it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cli::client::{connect_or_complain, flag_table, get_ok, no_positionals, Query};
use crate::cli::columnize::columnize;
use crate::cli::http_client::unexpected_status;
use crate::cli::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul operator raft list-peers [options]

  Displays the current Raft peer configuration.
";

/// A server of the raft configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServer {
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub leader: bool,
    #[serde(default)]
    pub voter: bool,
    #[serde(default)]
    pub protocol_version: String,
    /// Newer agents report it here too; used when autopilot health is
    /// unavailable.
    #[serde(default)]
    pub last_index: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RaftConfiguration {
    #[serde(default)]
    servers: Vec<RaftServer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServerHealth {
    #[serde(default, rename = "ID")]
    id: String,
    #[serde(default)]
    last_index: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AutopilotHealth {
    #[serde(default)]
    servers: Vec<ServerHealth>,
}

/// The `Trails Leader By` cell: `-` for the leader (or an unknown index),
/// else `N commits` (`1 commit`).
fn trails_text(is_leader: bool, behind: u64) -> String {
    match (is_leader, behind) {
        (true, _) => "-".into(),
        (false, 1) => "1 commit".into(),
        (false, n) => format!("{n} commits"),
    }
}

/// The table from the configuration body and, when the agent gave it, the
/// autopilot health body (else each server's own `LastIndex`). Pure.
pub fn render(configuration_body: &[u8], health_body: Option<&[u8]>) -> Result<String, String> {
    let configuration: RaftConfiguration = serde_json::from_slice(configuration_body)
        .map_err(|e| format!("Failed to retrieve raft configuration: invalid response: {e}"))?;
    let last_index: BTreeMap<String, u64> = match health_body {
        Some(body) => {
            let health: AutopilotHealth = serde_json::from_slice(body)
                .map_err(|e| format!("Failed to retrieve autopilot health: invalid response: {e}"))?;
            health.servers.into_iter().map(|s| (s.id, s.last_index)).collect()
        }
        None => configuration
            .servers
            .iter()
            .filter_map(|s| s.last_index.map(|i| (s.id.clone(), i)))
            .collect(),
    };
    let leader_index = configuration
        .servers
        .iter()
        .filter(|s| s.leader)
        .find_map(|s| last_index.get(&s.id).copied())
        .unwrap_or(0);
    let mut rows = vec![[
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
        "Commit Index",
        "Trails Leader By",
    ]
    .map(String::from)
    .to_vec()];
    for s in &configuration.servers {
        let protocol = if s.protocol_version.is_empty() {
            "<=1".to_string()
        } else {
            s.protocol_version.clone()
        };
        let index = last_index.get(&s.id).copied();
        let trails = match index {
            Some(i) => trails_text(s.leader, leader_index.saturating_sub(i)),
            None => "-".into(),
        };
        rows.push(vec![
            s.node.clone(),
            s.id.clone(),
            s.address.clone(),
            if s.leader { "leader" } else { "follower" }.into(),
            s.voter.to_string(),
            protocol,
            index.unwrap_or(0).to_string(),
            trails,
        ]);
    }
    Ok(columnize(&rows))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(&[], true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = no_positionals(&parsed, USAGE, io) {
        return code;
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut query = Query::default();
    query.reads(&parsed);
    let configuration = match get_ok(
        &client,
        &query.on("/v1/operator/raft/configuration"),
        "Error getting peers: Failed to retrieve raft configuration",
        io,
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Autopilot answers 429 with the same body when the cluster is
    // unhealthy; anything else falls back to the configuration's indexes.
    let health = match client.request("GET", &query.on("/v1/operator/autopilot/health"), b"") {
        Ok(r) if r.status == 200 || r.status == 429 => Some(r.body),
        Ok(r) => {
            tracing::debug!("autopilot health unavailable: {}", unexpected_status(&r));
            None
        }
        Err(e) => {
            tracing::debug!("autopilot health unavailable: {e}");
            None
        }
    };
    match render(&configuration.body, health.as_deref()) {
        Ok(text) => {
            let _ = io.out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            io.complain(&format!("Error getting peers: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const CONFIGURATION: &str = r#"{"Servers":[
        {"ID":"11111111-aaaa","Node":"s1","Address":"127.0.0.1:8300","Leader":true,"Voter":true,"ProtocolVersion":"3"},
        {"ID":"22222222-bbbb","Node":"s2","Address":"127.0.0.2:8300","Leader":false,"Voter":true,"ProtocolVersion":"3"},
        {"ID":"33333333-cccc","Node":"s3","Address":"127.0.0.3:8300","Leader":false,"Voter":false,"ProtocolVersion":""}
    ],"Index":12}"#;
    const HEALTH: &str = r#"{"Healthy":true,"FailureTolerance":1,"Servers":[
        {"ID":"11111111-aaaa","Name":"s1","LastIndex":120},
        {"ID":"22222222-bbbb","Name":"s2","LastIndex":119},
        {"ID":"33333333-cccc","Name":"s3","LastIndex":100}]}"#;

    #[test]
    fn table_with_commit_lag() {
        let text = render(CONFIGURATION.as_bytes(), Some(HEALTH.as_bytes())).unwrap();
        assert_eq!(
            text,
            "Node  ID             Address         State     Voter  RaftProtocol  Commit Index  Trails Leader By\n\
             s1    11111111-aaaa  127.0.0.1:8300  leader    true   3             120           -\n\
             s2    22222222-bbbb  127.0.0.2:8300  follower  true   3             119           1 commit\n\
             s3    33333333-cccc  127.0.0.3:8300  follower  false  <=1           100           20 commits\n"
        );
    }

    #[test]
    fn without_health_uses_the_configurations_indexes_or_dashes() {
        let with_index = r#"{"Servers":[
            {"ID":"a","Node":"s1","Address":"x:1","Leader":true,"Voter":true,"ProtocolVersion":"3","LastIndex":7},
            {"ID":"b","Node":"s2","Address":"y:1","Leader":false,"Voter":true,"ProtocolVersion":"3","LastIndex":7}]}"#;
        let text = render(with_index.as_bytes(), None).unwrap();
        assert!(
            text.lines().nth(2).unwrap().ends_with("7             0 commits"),
            "{text}"
        );
        let bare = r#"{"Servers":[{"ID":"a","Node":"s1","Address":"x:1","Leader":true,"Voter":true}]}"#;
        let text = render(bare.as_bytes(), None).unwrap();
        assert!(
            text.lines().nth(1).unwrap().ends_with("<=1           0             -"),
            "{text}"
        );
        assert!(render(b"nope", None).is_err());
        assert!(render(CONFIGURATION.as_bytes(), Some(b"[")).is_err());
    }

    #[test]
    fn queries_configuration_then_health() {
        let (addr, seen) = serve_canned(vec![
            ok_json(200, CONFIGURATION),
            ok_json(429, HEALTH),
            ok_json(500, "No cluster leader"),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["operator", "raft", "list-peers", &flag, "-stale"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("20 commits"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/operator/raft/configuration?stale HTTP/1.1"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/operator/autopilot/health?stale HTTP/1.1"));
        let r = run_cmd(&["operator", "raft", "list-peers", &flag]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error getting peers: Failed to retrieve raft configuration: Unexpected response code: 500 (No cluster leader)\n"
        );
    }
}
