//! `proconsul join [-wan] ADDR...`: asks the agent to join a cluster
//! through each address.

use super::catalog::path_with_segment;
use super::client::{connect_or_complain, flag_table, usage_error};
use super::flags::FlagSpec;
use super::http_client::unexpected_status;
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul join [options] address ...

  Tells a running agent to join the cluster by specifying at least one
  existing member.
";

const FLAGS: &[FlagSpec] = &[FlagSpec::boolean(
    "wan",
    "Joins a server to another server in the WAN pool.",
)];

/// Most addresses one command joins.
pub const JOIN_ADDRESSES_MAX: usize = 256;

/// The summary line after `joined` successful joins. Pure.
pub fn summary(joined: usize) -> Result<String, String> {
    if joined == 0 {
        return Err("Failed to join any nodes.".into());
    }
    Ok(format!("Successfully joined cluster by contacting {joined} nodes."))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let addresses = &parsed.positionals;
    if addresses.is_empty() {
        return usage_error("At least one address to join must be specified.\n", USAGE, io);
    }
    if addresses.len() > JOIN_ADDRESSES_MAX {
        return usage_error(
            &format!("At most {JOIN_ADDRESSES_MAX} addresses may be joined at once.\n"),
            USAGE,
            io,
        );
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let wan = if parsed.flag("wan") { "?wan=1" } else { "" };
    let mut joined = 0;
    for address in addresses {
        let path = format!("{}{wan}", path_with_segment("/v1/agent/join/", address));
        match client.request("PUT", &path, b"") {
            Ok(r) if r.status == 200 => joined += 1,
            Ok(r) => io.complain(&format!("Error joining address '{address}': {}", unexpected_status(&r))),
            Err(e) => io.complain(&format!("Error joining address '{address}': {e}")),
        }
    }
    match summary(joined) {
        Ok(line) => {
            io.say(&line);
            0
        }
        Err(line) => {
            io.complain(&line);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    #[test]
    fn summaries() {
        assert_eq!(
            summary(2).unwrap(),
            "Successfully joined cluster by contacting 2 nodes."
        );
        assert_eq!(summary(0).unwrap_err(), "Failed to join any nodes.");
    }

    #[test]
    fn joins_each_address_and_counts_successes() {
        let (addr, seen) = serve_canned(vec![
            ok_json(500, "dial tcp 127.0.0.9:8301: connect: connection refused"),
            ok_json(200, ""),
            ok_json(500, "no route"),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["join", &flag, "-wan", "127.0.0.9", "127.0.0.8:8302"]);
        assert_eq!(r.code, 0);
        assert_eq!(r.out, "Successfully joined cluster by contacting 1 nodes.\n");
        assert_eq!(
            r.err,
            "Error joining address '127.0.0.9': Unexpected response code: 500 (dial tcp 127.0.0.9:8301: connect: connection refused)\n"
        );
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/join/127.0.0.9?wan=1 HTTP/1.1"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/join/127.0.0.8:8302?wan=1 HTTP/1.1"));
        let r = run_cmd(&["join", &flag, "127.0.0.7"]);
        assert_eq!(r.code, 1);
        assert!(r.err.ends_with("Failed to join any nodes.\n"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/join/127.0.0.7 HTTP/1.1"));
    }

    #[test]
    fn needs_an_address() {
        let r = run_cmd(&["join"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("At least one address to join must be specified.\n\nUsage: proconsul join"));
    }
}
