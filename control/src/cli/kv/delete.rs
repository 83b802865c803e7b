//! `proconsul kv delete [-recurse] [-cas -modify-index=N] KEY`.

use super::super::client::{connect_or_complain, flag_table, Query};
use super::super::flags::FlagSpec;
use super::super::http_client::unexpected_status;
use super::super::{parse_or_usage, Io};
use super::kv_path;

const USAGE: &str = "Usage: proconsul kv delete [options] KEY_OR_PREFIX

  Removes the value at the given key. With -recurse, removes every key
  under the prefix.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("cas", "Check-and-set: delete only if -modify-index matches."),
    FlagSpec::value("modify-index", "The ModifyIndex a -cas delete expects."),
    FlagSpec::boolean("recurse", "Delete every key under the prefix."),
];

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let key = match super::key_argument(&parsed.positionals, io) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let (cas, recurse) = (parsed.flag("cas"), parsed.flag("recurse"));
    if key.is_empty() && !recurse {
        io.complain("Error! Missing KEY argument");
        return 1;
    }
    if cas && recurse {
        io.complain("Cannot specify both -cas and -recurse!");
        return 1;
    }
    let modify_index = match parsed.parsed::<u64>("modify-index") {
        Ok(m) => m.unwrap_or(0),
        Err(e) => {
            io.complain(&e.to_string());
            return 1;
        }
    };
    if cas && modify_index == 0 {
        io.complain("Must specify -modify-index with -cas!");
        return 1;
    }
    if modify_index != 0 && !cas {
        io.complain("Cannot specify -modify-index without -cas!");
        return 1;
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut query = Query::default();
    if recurse {
        query.flag("recurse");
    } else if cas {
        query.pair("cas", &modify_index.to_string());
    }
    let failure = |why: String| {
        if recurse {
            format!("Error! Did not delete prefix {key}: {why}")
        } else if cas {
            format!("Error! Did not delete key {key}: {why}")
        } else {
            format!("Error deleting key {key}: {why}")
        }
    };
    let response = match client.request("DELETE", &query.on(&kv_path(key)), b"") {
        Ok(r) => r,
        Err(e) => {
            io.complain(&failure(e.to_string()));
            return 1;
        }
    };
    if response.status != 200 {
        io.complain(&failure(unexpected_status(&response)));
        return 1;
    }
    if recurse {
        io.say(&format!("Success! Deleted keys with prefix: {key}"));
    } else if cas && response.text() != "true" {
        io.complain(&format!("Error! Did not delete key {key}: CAS failed"));
        return 1;
    } else {
        io.say(&format!("Success! Deleted key: {key}"));
    }
    0
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    #[test]
    fn single_recursive_and_cas_deletes() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "true"), ok_json(200, "true"), ok_json(200, "false")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["kv", "delete", &flag, "/a/b"]);
        assert_eq!(r.out, "Success! Deleted key: a/b\n");
        assert!(seen.recv().unwrap().starts_with("DELETE /v1/kv/a/b HTTP/1.1"));
        let r = run_cmd(&["kv", "delete", "-recurse", &flag, "a/"]);
        assert_eq!(r.out, "Success! Deleted keys with prefix: a/\n");
        assert!(seen.recv().unwrap().starts_with("DELETE /v1/kv/a/?recurse HTTP/1.1"));
        let r = run_cmd(&["kv", "delete", "-cas", "-modify-index=9", &flag, "a"]);
        assert_eq!(
            (r.code, r.err.as_str()),
            (1, "Error! Did not delete key a: CAS failed\n")
        );
        assert!(seen.recv().unwrap().starts_with("DELETE /v1/kv/a?cas=9 HTTP/1.1"));
    }

    #[test]
    fn argument_rules() {
        assert_eq!(run_cmd(&["kv", "delete"]).err, "Error! Missing KEY argument\n");
        assert_eq!(
            run_cmd(&["kv", "delete", "-cas", "-recurse", "a"]).err,
            "Cannot specify both -cas and -recurse!\n"
        );
        assert_eq!(
            run_cmd(&["kv", "delete", "-cas", "a"]).err,
            "Must specify -modify-index with -cas!\n"
        );
        assert_eq!(
            run_cmd(&["kv", "delete", "-modify-index=3", "a"]).err,
            "Cannot specify -modify-index without -cas!\n"
        );
    }

    #[test]
    fn server_errors() {
        let (addr, _) = serve_canned(vec![ok_json(500, "No cluster leader")]);
        let r = run_cmd(&["kv", "delete", &format!("-http-addr={addr}"), "a"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error deleting key a: Unexpected response code: 500 (No cluster leader)\n"
        );
    }
}
