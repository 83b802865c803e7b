//! `proconsul operator raft list-peers|remove-peer`: the raft peer set.

pub mod list_peers;
pub mod remove_peer;

use super::Io;

const USAGE: &str = "Usage: proconsul operator <subcommand> [options]

  Provides cluster-level tools for operators.

Subcommands:
    raft    Provides cluster-level tools for the Raft peer set
";

const RAFT_USAGE: &str = "Usage: proconsul operator raft <subcommand> [options]

  Inspects and modifies the servers of the Raft peer set.

Subcommands:
    list-peers     Display the current Raft peer configuration
    remove-peer    Remove a server from the Raft configuration
";

fn help_or_fail(args: &[String], usage: &str, io: &mut Io<'_>) -> i32 {
    let _ = io.err.write_all(usage.as_bytes());
    match args.first().map(String::as_str) {
        Some("-h" | "-help" | "--help") => 0,
        _ => 1,
    }
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    match args.first().map(String::as_str) {
        Some("raft") => {
            let raft_args = &args[1..];
            let rest = raft_args.get(1..).unwrap_or(&[]);
            match raft_args.first().map(String::as_str) {
                Some("list-peers") => list_peers::run(rest, io),
                Some("remove-peer") => remove_peer::run(rest, io),
                _ => help_or_fail(raft_args, RAFT_USAGE, io),
            }
        }
        _ => help_or_fail(args, USAGE, io),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::tests::run_cmd;

    #[test]
    fn subcommands() {
        assert_eq!(run_cmd(&["operator"]).code, 1);
        assert_eq!(run_cmd(&["operator", "-h"]).code, 0);
        let r = run_cmd(&["operator", "raft"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("list-peers"));
        assert_eq!(run_cmd(&["operator", "raft", "--help"]).code, 0);
        assert_eq!(run_cmd(&["operator", "raft", "snapshot"]).code, 1);
    }
}
