//! `proconsul operator raft remove-peer -address=IP:PORT|-id=ID`: removes a
//! server from the raft configuration.

use crate::cli::client::{call_ok, connect_or_complain, flag_table, no_positionals, usage_error, Query};
use crate::cli::flags::FlagSpec;
use crate::cli::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul operator raft remove-peer [options]

  Remove the server with given -address (or -id) from the Raft configuration.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::value("address", "The address to remove from the Raft configuration."),
    FlagSpec::value("id", "The ID to remove from the Raft configuration."),
];

/// Which peer to remove: the query parameter (`address` or `id`), its
/// value, and the confirmation line. Pure.
pub fn target<'a>(address: &'a str, id: &'a str) -> Result<(&'static str, &'a str, String), String> {
    match (address.is_empty(), id.is_empty()) {
        (true, true) => Err("an address or id is required for the peer to remove".into()),
        (false, false) => Err("cannot give both an address and id".into()),
        (false, true) => Ok(("address", address, format!("Removed peer with address {address:?}"))),
        (true, false) => Ok(("id", id, format!("Removed peer with id {id:?}"))),
    }
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = no_positionals(&parsed, USAGE, io) {
        return code;
    }
    let (param, value, confirmation) =
        match target(parsed.value("address").unwrap_or(""), parsed.value("id").unwrap_or("")) {
            Ok(t) => t,
            Err(e) => return usage_error(&format!("Error removing peer: {e}"), USAGE, io),
        };
    let mut query = Query::default();
    query.pair(param, value);
    if let Some(dc) = parsed.value("datacenter").filter(|d| !d.is_empty()) {
        query.pair("dc", dc);
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match call_ok(
        &client,
        "DELETE",
        &query.on("/v1/operator/raft/peer"),
        b"",
        "Error removing peer",
        io,
    ) {
        Ok(_) => {
            io.say(&confirmation);
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

    #[test]
    fn targets() {
        assert_eq!(
            target("127.0.0.2:8300", "").unwrap(),
            (
                "address",
                "127.0.0.2:8300",
                "Removed peer with address \"127.0.0.2:8300\"".to_string()
            )
        );
        assert_eq!(target("", "abc").unwrap().2, "Removed peer with id \"abc\"");
        assert_eq!(
            target("", "").unwrap_err(),
            "an address or id is required for the peer to remove"
        );
        assert_eq!(target("a", "b").unwrap_err(), "cannot give both an address and id");
    }

    #[test]
    fn deletes_and_confirms() {
        let (addr, seen) = serve_canned(vec![
            ok_json(200, ""),
            ok_json(500, "id \"x\" was not found in the Raft configuration"),
        ]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["operator", "raft", "remove-peer", &flag, "-id=abc", "-datacenter=dc1"]);
        assert_eq!((r.code, r.out.as_str()), (0, "Removed peer with id \"abc\"\n"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("DELETE /v1/operator/raft/peer?id=abc&dc=dc1 HTTP/1.1"));
        let r = run_cmd(&["operator", "raft", "remove-peer", &flag, "-id=x"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Error removing peer: Unexpected response code: 500"));
        let r = run_cmd(&["operator", "raft", "remove-peer"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Error removing peer: an address or id is required for the peer to remove\nUsage:"));
    }
}
