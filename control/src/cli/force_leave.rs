//! `proconsul force-leave [-prune] [-wan] NODE`: forces a member into the
//! `left` state (and with `-prune` out of the member list). Silent on
//! success.

use super::catalog::path_with_segment;
use super::client::{call_ok, connect_or_complain, flag_table, usage_error, Query};
use super::flags::FlagSpec;
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul force-leave [options] name

  Forces a member of the cluster to enter the \"left\" state. Note
  that if the member is still actually alive, it will eventually rejoin
  the cluster. This command is most useful for cleaning out \"failed\" nodes
  that are never coming back.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("prune", "Remove agent forcibly from list of members"),
    FlagSpec::boolean("wan", "Exclusively leave the agent from the WAN serf pool."),
];

/// The request path for a node. Pure.
pub fn force_leave_path(node: &str, prune: bool, wan: bool) -> String {
    let mut query = Query::default();
    if prune {
        query.pair("prune", "1");
    }
    if wan {
        query.pair("wan", "1");
    }
    query.on(&path_with_segment("/v1/agent/force-leave/", node))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let [node] = parsed.positionals.as_slice() else {
        return usage_error("A single node name must be specified to force leave.\n", USAGE, io);
    };
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = force_leave_path(node, parsed.flag("prune"), parsed.flag("wan"));
    match call_ok(&client, "PUT", &path, b"", "Error force leaving", io) {
        Ok(_) => 0,
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    #[test]
    fn paths() {
        assert_eq!(force_leave_path("n1", false, false), "/v1/agent/force-leave/n1");
        assert_eq!(
            force_leave_path("n1", true, true),
            "/v1/agent/force-leave/n1?prune=1&wan=1"
        );
    }

    #[test]
    fn silent_on_success_and_reports_errors() {
        let (addr, seen) = serve_canned(vec![
            ok_json(200, ""),
            ok_json(500, "agent: No node found with name 'x'"),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["force-leave", &flag, "-prune", "gone"]);
        assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/force-leave/gone?prune=1 HTTP/1.1"));
        let r = run_cmd(&["force-leave", &flag, "x"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error force leaving: Unexpected response code: 500 (agent: No node found with name 'x')\n"
        );
    }

    #[test]
    fn exactly_one_node() {
        for args in [vec!["force-leave"], vec!["force-leave", "a", "b"]] {
            let r = run_cmd(&args);
            assert_eq!(r.code, 1);
            assert!(r
                .err
                .starts_with("A single node name must be specified to force leave.\n\nUsage:"));
        }
    }
}
