//! `proconsul kv get [-recurse|-keys] [-detailed] [-base64] [-separator] KEY`.

use super::super::client::{connect_or_complain, flag_table, Query};
use super::super::flags::FlagSpec;
use super::super::http_client::unexpected_status;
use super::super::{parse_or_usage, Io};
use super::kv_path;
use super::pair::{detailed, parse_pairs, printable_value};

const USAGE: &str = "Usage: proconsul kv get [options] [KEY_OR_PREFIX]

  Retrieves the value from the key-value store at the given key name. If no
  key exists with that name, an error is returned. With -recurse every key
  under the prefix is printed as key:value; with -keys only the key names.
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("base64", "Base64-encode the value."),
    FlagSpec::boolean("detailed", "Print all the metadata of each pair."),
    FlagSpec::boolean("keys", "List the keys under the prefix instead of values."),
    FlagSpec::boolean("recurse", "Print every key under the prefix."),
    FlagSpec::value(
        "separator",
        "With -keys, list only up to this separator. Default \"/\"; \"\" for no limit.",
    ),
];

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let key = match super::key_argument(&parsed.positionals, io) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let (keys, recurse) = (parsed.flag("keys"), parsed.flag("recurse"));
    if key.is_empty() && !(keys || recurse) {
        io.complain("Error! Missing KEY argument");
        return 1;
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let base64 = parsed.flag("base64");
    let mut query = Query::default();
    if keys {
        query.flag("keys");
        let separator = parsed.value("separator").unwrap_or("/");
        if !separator.is_empty() {
            query.pair("separator", separator);
        }
    } else if recurse {
        query.flag("recurse");
    }
    query.reads(&parsed);
    let response = match client.request("GET", &query.on(&kv_path(key)), b"") {
        Ok(r) => r,
        Err(e) => {
            io.complain(&format!("Error querying Consul agent: {e}"));
            return 1;
        }
    };
    match response.status {
        200 => {}
        404 if keys || recurse => return 0,
        404 => {
            io.complain(&format!("Error! No key exists at: {key}"));
            return 1;
        }
        _ => {
            io.complain(&format!(
                "Error querying Consul agent: {}",
                unexpected_status(&response)
            ));
            return 1;
        }
    }
    let printed = if keys {
        print_keys(&response.body, io)
    } else {
        print_pairs(&response.body, recurse, parsed.flag("detailed"), base64, io)
    };
    match printed {
        Ok(()) => 0,
        Err(e) => {
            io.complain(&format!("Error querying Consul agent: {e}"));
            1
        }
    }
}

fn print_keys(body: &[u8], io: &mut Io<'_>) -> Result<(), String> {
    let keys: Vec<String> = serde_json::from_slice(body).map_err(|e| format!("invalid keys response: {e}"))?;
    for k in keys {
        io.say(&k);
    }
    Ok(())
}

fn print_pairs(body: &[u8], recurse: bool, detailed_view: bool, base64: bool, io: &mut Io<'_>) -> Result<(), String> {
    let pairs = parse_pairs(body)?;
    if !recurse {
        let Some(pair) = pairs.first() else {
            return Err("empty KV response".into());
        };
        let mut out = if detailed_view {
            detailed(pair, base64)?
        } else {
            printable_value(pair, base64)?
        };
        out.push(b'\n');
        let _ = io.out.write_all(&out);
        return Ok(());
    }
    for (i, pair) in pairs.iter().enumerate() {
        let mut out = Vec::new();
        if detailed_view {
            out.extend(detailed(pair, base64)?);
            out.push(b'\n');
            if i + 1 < pairs.len() {
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(pair.key.as_bytes());
            out.push(b':');
            out.extend(printable_value(pair, base64)?);
            out.push(b'\n');
        }
        let _ = io.out.write_all(&out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;
    use std::time::Duration;

    const FOO: &str = r#"[{"LockIndex":0,"Key":"foo","Flags":0,"Value":"YmFy","CreateIndex":5,"ModifyIndex":6}]"#;

    fn addr_flag(addr: &str) -> String {
        format!("-http-addr={addr}")
    }

    #[test]
    fn prints_the_raw_value() {
        let (addr, seen) = serve_canned(vec![ok_json(200, FOO)]);
        let r = run_cmd(&["kv", "get", &addr_flag(&addr), "/foo"]);
        assert_eq!((r.code, r.out.as_str()), (0, "bar\n"));
        let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(req.starts_with("GET /v1/kv/foo HTTP/1.1"), "leading / stripped: {req}");
    }

    #[test]
    fn missing_key_is_exit_1() {
        let (addr, _) = serve_canned(vec![ok_json(404, "")]);
        let r = run_cmd(&["kv", "get", &addr_flag(&addr), "nope"]);
        assert_eq!(r.code, 1);
        assert_eq!(r.err, "Error! No key exists at: nope\n");
        assert!(r.out.is_empty());
    }

    #[test]
    fn recurse_keys_and_detailed() {
        let two = r#"[{"Key":"a/1","Value":"eA==","CreateIndex":1,"ModifyIndex":1},
                      {"Key":"a/2","Value":null,"CreateIndex":2,"ModifyIndex":2}]"#;
        let (addr, seen) = serve_canned(vec![
            ok_json(200, two),
            ok_json(200, r#"["a/1","a/sub/"]"#),
            ok_json(200, two),
            ok_json(404, ""),
        ]);
        let r = run_cmd(&["kv", "get", "-recurse", &addr_flag(&addr), "a/"]);
        assert_eq!(r.out, "a/1:x\na/2:\n");
        assert!(seen.recv().unwrap().starts_with("GET /v1/kv/a/?recurse HTTP/1.1"));
        let r = run_cmd(&["kv", "get", "-keys", &addr_flag(&addr), "a/"]);
        assert_eq!(r.out, "a/1\na/sub/\n");
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/kv/a/?keys&separator=%2F HTTP/1.1"));
        let r = run_cmd(&["kv", "get", "-recurse", "-detailed", &addr_flag(&addr), "a/"]);
        assert!(
            r.out.contains("Value            x\n\nCreateIndex      2\n"),
            "{}",
            r.out
        );
        assert!(r.out.ends_with("Value            \n"));
        seen.recv().unwrap();
        let r = run_cmd(&["kv", "get", "-recurse", &addr_flag(&addr), "none/"]);
        assert_eq!((r.code, r.out.as_str()), (0, ""), "an empty prefix is not an error");
    }

    #[test]
    fn keys_without_separator_and_read_flags() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "[]")]);
        let r = run_cmd(&[
            "kv",
            "get",
            "-keys",
            "-separator=",
            "-stale",
            "-datacenter=dc2",
            &addr_flag(&addr),
        ]);
        assert_eq!(r.code, 0);
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/kv/?keys&dc=dc2&stale HTTP/1.1"));
    }

    #[test]
    fn argument_and_server_errors() {
        let r = run_cmd(&["kv", "get"]);
        assert_eq!((r.code, r.err.as_str()), (1, "Error! Missing KEY argument\n"));
        let r = run_cmd(&["kv", "get", "a", "b"]);
        assert_eq!(
            (r.code, r.err.as_str()),
            (1, "Too many arguments (expected 1, got 2)\n")
        );
        let (addr, _) = serve_canned(vec![ok_json(500, "No cluster leader")]);
        let r = run_cmd(&["kv", "get", &addr_flag(&addr), "k"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error querying Consul agent: Unexpected response code: 500 (No cluster leader)\n"
        );
    }
}
