//! `proconsul maint [-enable|-disable] [-reason=R] [-service=ID]`: turns
//! node or service maintenance on or off, or lists what is in maintenance
//! (from the `_node_maintenance` and `_service_maintenance:<id>` checks).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::catalog::path_with_segment;
use super::client::{call_ok, connect_or_complain, flag_table, get_ok, no_positionals, usage_error, Query};
use super::flags::FlagSpec;
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul maint [options]

  Places a node or service into maintenance mode. During maintenance mode,
  the node or service will be excluded from all queries through the DNS
  or API interfaces. If no arguments are given, the agent's maintenance
  status will be shown (blank if nothing is under maintenance).
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("disable", "Disable maintenance mode."),
    FlagSpec::boolean("enable", "Enable maintenance mode."),
    FlagSpec::value("reason", "Text describing the maintenance reason."),
    FlagSpec::value("service", "Control maintenance mode for a specific service ID."),
];

/// Check id of node maintenance.
const NODE_CHECK_ID: &str = "_node_maintenance";
/// Check id prefix of service maintenance.
const SERVICE_CHECK_PREFIX: &str = "_service_maintenance:";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Check {
    #[serde(default, rename = "CheckID")]
    check_id: String,
    #[serde(default, rename = "ServiceID")]
    service_id: String,
    #[serde(default)]
    notes: String,
}

/// List mode: a `Node:` block for node maintenance, a `Service:` block per
/// service in maintenance, each followed by a blank line; checks in id
/// order. `checks_body` is `/v1/agent/checks`. Pure.
pub fn render_list(node_name: &str, checks_body: &[u8]) -> Result<String, String> {
    let checks: BTreeMap<String, Check> =
        serde_json::from_slice(checks_body).map_err(|e| format!("invalid response: {e}"))?;
    let mut out = String::new();
    for check in checks.values() {
        if check.check_id == NODE_CHECK_ID {
            out.push_str(&format!("Node:\n  Name:   {node_name}\n  Reason: {}\n\n", check.notes));
        } else if check.check_id.starts_with(SERVICE_CHECK_PREFIX) {
            out.push_str(&format!(
                "Service:\n  ID:     {}\n  Reason: {}\n\n",
                check.service_id, check.notes
            ));
        }
    }
    Ok(out)
}

/// The node name in `/v1/agent/self` (`Config.NodeName`). Pure.
pub fn node_name(self_body: &[u8]) -> Result<String, String> {
    let root: Value = serde_json::from_slice(self_body).map_err(|e| format!("invalid response: {e}"))?;
    root.pointer("/Config/NodeName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "agent response did not contain Config.NodeName".to_string())
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = no_positionals(&parsed, USAGE, io) {
        return code;
    }
    let enable = parsed.flag("enable");
    let disable = parsed.flag("disable");
    let reason = parsed.value("reason").unwrap_or("");
    let service = parsed.value("service").unwrap_or("");
    if enable && disable {
        return usage_error("Only one of -enable or -disable may be provided", USAGE, io);
    }
    if !enable && !reason.is_empty() {
        return usage_error("Reason may only be provided with -enable", USAGE, io);
    }
    if !enable && !disable && !service.is_empty() {
        return usage_error("Service requires either -enable or -disable", USAGE, io);
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let self_response = match get_ok(&client, "/v1/agent/self", "Error querying Consul agent", io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let node = match node_name(&self_response.body) {
        Ok(n) => n,
        Err(e) => {
            io.complain(&format!("Error querying Consul agent: {e}"));
            return 1;
        }
    };
    if !enable && !disable {
        let checks = match get_ok(&client, "/v1/agent/checks", "Error getting checks", io) {
            Ok(r) => r,
            Err(code) => return code,
        };
        return match render_list(&node, &checks.body) {
            Ok(text) => {
                let _ = io.out.write_all(text.as_bytes());
                0
            }
            Err(e) => {
                io.complain(&format!("Error getting checks: {e}"));
                1
            }
        };
    }
    let mut query = Query::default();
    query.pair("enable", if enable { "true" } else { "false" });
    if enable {
        query.pair("reason", reason);
    }
    let verb = if enable { "enabl" } else { "disabl" };
    let (path, context, done) = if service.is_empty() {
        (
            "/v1/agent/maintenance".to_string(),
            format!("Error {verb}ing node maintenance"),
            format!("Node maintenance is now {verb}ed"),
        )
    } else {
        (
            path_with_segment("/v1/agent/service/maintenance/", service),
            format!("Error {verb}ing service maintenance"),
            format!("Service maintenance is now {verb}ed for {service:?}"),
        )
    };
    match call_ok(&client, "PUT", &query.on(&path), b"", &context, io) {
        Ok(_) => {
            io.say(&done);
            0
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const SELF: &str = r#"{"Config":{"NodeName":"node-1","Datacenter":"dc1"}}"#;
    const CHECKS: &str = r#"{
        "_service_maintenance:web":{"CheckID":"_service_maintenance:web","ServiceID":"web","Notes":"deploying","Status":"critical"},
        "serfHealth":{"CheckID":"serfHealth","Notes":"","Status":"passing"},
        "_node_maintenance":{"CheckID":"_node_maintenance","Notes":"patching","Status":"critical"}}"#;

    #[test]
    fn list_mode_blocks() {
        assert_eq!(
            render_list("node-1", CHECKS.as_bytes()).unwrap(),
            "Node:\n  Name:   node-1\n  Reason: patching\n\nService:\n  ID:     web\n  Reason: deploying\n\n"
        );
        assert_eq!(render_list("n", b"{}").unwrap(), "");
        assert!(render_list("n", b"[]").is_err());
        assert_eq!(node_name(SELF.as_bytes()).unwrap(), "node-1");
        assert!(node_name(b"{}").is_err());
    }

    #[test]
    fn enable_and_disable_node_and_service() {
        let (addr, seen) = serve_canned(vec![
            ok_json(200, SELF),
            ok_json(200, ""),
            ok_json(200, SELF),
            ok_json(200, ""),
            ok_json(200, SELF),
            ok_json(404, "Unknown service ID \"db\""),
            ok_json(200, SELF),
            ok_json(200, CHECKS),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["maint", &flag, "-enable", "-reason=patch day"]);
        assert_eq!((r.code, r.out.as_str()), (0, "Node maintenance is now enabled\n"));
        assert!(seen.recv().unwrap().starts_with("GET /v1/agent/self "));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/maintenance?enable=true&reason=patch%20day HTTP/1.1"));
        let r = run_cmd(&["maint", &flag, "-disable", "-service=web"]);
        assert_eq!(
            (r.code, r.out.as_str()),
            (0, "Service maintenance is now disabled for \"web\"\n")
        );
        seen.recv().unwrap();
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/service/maintenance/web?enable=false HTTP/1.1"));
        let r = run_cmd(&["maint", &flag, "-enable", "-service=db"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error enabling service maintenance: Unexpected response code: 404 (Unknown service ID \"db\")\n"
        );
        let r = run_cmd(&["maint", &flag]);
        assert_eq!(r.code, 0);
        assert!(r.out.starts_with("Node:\n  Name:   node-1\n"));
    }

    #[test]
    fn conflicting_flags() {
        for (args, text) in [
            (
                vec!["maint", "-enable", "-disable"],
                "Only one of -enable or -disable may be provided",
            ),
            (vec!["maint", "-reason=x"], "Reason may only be provided with -enable"),
            (
                vec!["maint", "-service=web"],
                "Service requires either -enable or -disable",
            ),
        ] {
            let r = run_cmd(&args);
            assert_eq!(r.code, 1);
            assert!(
                r.err.starts_with(&format!("{text}\nUsage: proconsul maint")),
                "{}",
                r.err
            );
        }
    }
}
