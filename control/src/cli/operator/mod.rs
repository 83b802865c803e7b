//! `proconsul operator raft list-peers|remove-peer`: the raft peer set.

pub mod list_peers;
pub mod remove_peer;

use super::subcommand::dispatch;
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

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    dispatch(args, io, USAGE, &[("raft", raft)])
}

fn raft(args: &[String], io: &mut Io<'_>) -> i32 {
    dispatch(
        args,
        io,
        RAFT_USAGE,
        &[("list-peers", list_peers::run), ("remove-peer", remove_peer::run)],
    )
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
