//! `proconsul kv put [-flags=N] [-cas -modify-index=N] [-acquire|-release
//! -session=ID] [-base64] KEY [DATA|@file|-]`.

use std::io::Read;

use base64::Engine;
use proconsul_shared::limits::KV_VALUE_BYTES_MAX;

use super::super::client::{connect_or_complain, flag_table, Query};
use super::super::flags::FlagSpec;
use super::super::http_client::unexpected_status;
use super::super::{parse_or_usage, Io};
use super::kv_path;

const USAGE: &str = "Usage: proconsul kv put [options] KEY [DATA]

  Writes the data to the given path in the key-value store. DATA may be
  given inline, read from a file (@path) or from stdin (-).
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::boolean("acquire", "Obtain a lock on the key (requires -session)."),
    FlagSpec::boolean("base64", "Treat the data as base64-encoded."),
    FlagSpec::boolean("cas", "Check-and-set: write only if -modify-index matches."),
    FlagSpec::value("flags", "Unsigned integer flags to store with the key."),
    FlagSpec::value(
        "modify-index",
        "The ModifyIndex a -cas write expects (0 = create only).",
    ),
    FlagSpec::boolean("release", "Release a lock on the key (requires -session)."),
    FlagSpec::value("session", "Session ID for -acquire or -release."),
];

/// Reads at most `KV_VALUE_BYTES_MAX` bytes; more is an error.
fn read_bounded(source: &mut dyn Read, what: &str) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    source
        .take(KV_VALUE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("Failed to read {what}: {e}"))?;
    if data.len() > KV_VALUE_BYTES_MAX {
        return Err(format!(
            "Failed to read {what}: the value is over the {KV_VALUE_BYTES_MAX}-byte limit"
        ));
    }
    Ok(data)
}

/// The key and the data from the arguments (Consul's `dataFromArgs`).
fn data_from_args(args: &[String], stdin: &mut dyn Read) -> Result<(String, Vec<u8>), String> {
    match args {
        [] => Err("Missing KEY argument".into()),
        [key] => Ok((key.clone(), Vec::new())),
        [key, data] => {
            let bytes = match data.as_bytes().first() {
                None => Vec::new(),
                Some(b'@') => {
                    let mut file = std::fs::File::open(&data[1..]).map_err(|e| format!("Failed to read file: {e}"))?;
                    read_bounded(&mut file, "file")?
                }
                Some(b'-') if data.len() == 1 => read_bounded(stdin, "stdin")?,
                Some(_) => data.as_bytes().to_vec(),
            };
            Ok((key.clone(), bytes))
        }
        more => Err(format!("Too many arguments (expected 1 or 2, got {})", more.len())),
    }
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (key, mut data) = match data_from_args(&parsed.positionals, io.stdin) {
        Ok(kd) => kd,
        Err(e) => {
            io.complain(&format!("Error! {e}"));
            return 1;
        }
    };
    let numbers = parsed
        .parsed::<u64>("flags")
        .and_then(|f| parsed.parsed::<u64>("modify-index").map(|m| (f, m)));
    let (flags, modify_index) = match numbers {
        Ok((f, m)) => (f.unwrap_or(0), m.unwrap_or(0)),
        Err(e) => {
            io.complain(&e.to_string());
            return 1;
        }
    };
    let (acquire, release, cas) = (parsed.flag("acquire"), parsed.flag("release"), parsed.flag("cas"));
    let session = parsed.value("session").unwrap_or("");
    if (acquire || release) && session.is_empty() {
        io.complain("Error! Missing -session (required with -acquire and -release)");
        return 1;
    }
    if cas && !parsed.is_set("modify-index") {
        io.complain("Must specify -modify-index with -cas!");
        return 1;
    }
    if parsed.flag("base64") {
        match base64::engine::general_purpose::STANDARD.decode(&data) {
            Ok(decoded) => data = decoded,
            Err(e) => {
                io.complain(&format!("Error! Cannot base 64 decode data: {e}"));
                return 1;
            }
        }
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut query = Query::default();
    if flags != 0 {
        query.pair("flags", &flags.to_string());
    }
    if cas {
        query.pair("cas", &modify_index.to_string());
    } else if acquire {
        query.pair("acquire", session);
    } else if release {
        query.pair("release", session);
    }
    let failed = |io: &mut Io<'_>, why: String| {
        let text = if cas {
            format!("Error! Did not write to {key}: {why}")
        } else {
            format!("Error! Failed writing data: {why}")
        };
        io.complain(&text);
        1
    };
    let response = match client.request("PUT", &query.on(&kv_path(&key)), &data) {
        Ok(r) => r,
        Err(e) => return failed(io, e.to_string()),
    };
    if response.status != 200 {
        return failed(io, unexpected_status(&response));
    }
    let written = response.text() == "true";
    match (written, cas, acquire, release) {
        (true, _, true, _) => io.say(&format!("Success! Lock acquired on: {key}")),
        (true, _, _, true) => io.say(&format!("Success! Lock released on: {key}")),
        (true, ..) => io.say(&format!("Success! Data written to: {key}")),
        (false, true, ..) => {
            io.complain(&format!("Error! Did not write to {key}: CAS failed"));
            return 1;
        }
        (false, _, true, _) => {
            io.complain("Error! Did not acquire lock");
            return 1;
        }
        (false, _, _, true) => {
            io.complain("Error! Did not release lock");
            return 1;
        }
        (false, ..) => {
            io.complain(&format!(
                "Error! Failed writing data: the agent answered {:?}",
                response.text()
            ));
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::{run_cmd, run_with};
    use proconsul_shared::limits::KV_VALUE_BYTES_MAX;

    fn body_of(request: &str) -> &str {
        request.split("\r\n\r\n").nth(1).unwrap_or("")
    }

    #[test]
    fn inline_file_and_stdin_data() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "true"); 4]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["kv", "put", &flag, "a b", "hello"]);
        assert_eq!((r.code, r.out.as_str()), (0, "Success! Data written to: a b\n"));
        let req = seen.recv().unwrap();
        assert!(req.starts_with("PUT /v1/kv/a%20b HTTP/1.1"));
        assert_eq!(body_of(&req), "hello");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.txt");
        std::fs::write(&file, "from file").unwrap();
        let at = format!("@{}", file.display());
        assert_eq!(run_cmd(&["kv", "put", &flag, "k", &at]).code, 0);
        assert_eq!(body_of(&seen.recv().unwrap()), "from file");

        let r = run_with(&["kv", "put", &flag, "k", "-"], b"piped", &[]);
        assert_eq!(r.code, 0);
        assert_eq!(body_of(&seen.recv().unwrap()), "piped");

        let r = run_cmd(&["kv", "put", &flag, "k", "-negative"]);
        assert_eq!(r.code, 0, "data starting with - is data");
        assert_eq!(body_of(&seen.recv().unwrap()), "-negative");
    }

    #[test]
    fn flags_cas_and_their_failures() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "true"), ok_json(200, "false")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["kv", "put", &flag, "-flags=42", "-cas", "-modify-index=0", "k", "v"]);
        assert_eq!(r.code, 0);
        assert!(seen.recv().unwrap().starts_with("PUT /v1/kv/k?flags=42&cas=0 HTTP/1.1"));
        let r = run_cmd(&["kv", "put", &flag, "-cas", "-modify-index", "7", "k", "v"]);
        assert_eq!((r.code, r.err.as_str()), (1, "Error! Did not write to k: CAS failed\n"));
        assert!(seen.recv().unwrap().starts_with("PUT /v1/kv/k?cas=7 HTTP/1.1"));
    }

    #[test]
    fn locks() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "true"), ok_json(200, "false")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["kv", "put", &flag, "-acquire", "-session=s1", "k", "v"]);
        assert_eq!(r.out, "Success! Lock acquired on: k\n");
        assert!(seen.recv().unwrap().starts_with("PUT /v1/kv/k?acquire=s1 HTTP/1.1"));
        let r = run_cmd(&["kv", "put", &flag, "-release", "-session=s1", "k"]);
        assert_eq!((r.code, r.err.as_str()), (1, "Error! Did not release lock\n"));
        let r = run_cmd(&["kv", "put", "-acquire", "k"]);
        assert_eq!(r.err, "Error! Missing -session (required with -acquire and -release)\n");
    }

    #[test]
    fn argument_errors() {
        assert_eq!(run_cmd(&["kv", "put"]).err, "Error! Missing KEY argument\n");
        assert_eq!(
            run_cmd(&["kv", "put", "a", "b", "c"]).err,
            "Error! Too many arguments (expected 1 or 2, got 3)\n"
        );
        assert_eq!(
            run_cmd(&["kv", "put", "-cas", "k", "v"]).err,
            "Must specify -modify-index with -cas!\n"
        );
        assert!(run_cmd(&["kv", "put", "-flags=x", "k"])
            .err
            .contains("invalid value \"x\" for flag -flags"));
        assert!(run_cmd(&["kv", "put", "-base64", "k", "!!"])
            .err
            .starts_with("Error! Cannot base 64 decode data"));
        assert!(run_cmd(&["kv", "put", "k", "@/nonexistent/file"])
            .err
            .starts_with("Error! Failed to read file:"));
    }

    #[test]
    fn oversized_stdin_is_refused_before_sending() {
        let big = vec![b'x'; KV_VALUE_BYTES_MAX + 1];
        let r = run_with(&["kv", "put", "-http-addr=127.0.0.1:1", "k", "-"], &big, &[]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("over the 524288-byte limit"), "{}", r.err);
    }

    #[test]
    fn http_errors() {
        let (addr, _) = serve_canned(vec![ok_json(413, "Value exceeds 524288 byte limit")]);
        let r = run_cmd(&["kv", "put", &format!("-http-addr={addr}"), "k", "v"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error! Failed writing data: Unexpected response code: 413 (Value exceeds 524288 byte limit)\n"
        );
    }
}
