//! `proconsul reload`: asks the agent to re-read its configuration files.

use super::client::{call_ok, connect_or_complain, flag_table, no_positionals};
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul reload [options]

  Causes the agent to reload configurations. This can be used instead
  of sending the SIGHUP signal to the agent.
";

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(&[], false);
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
    match call_ok(&client, "PUT", "/v1/agent/reload", b"", "Error reloading", io) {
        Ok(_) => {
            io.say("Configuration reload triggered");
            0
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    #[test]
    fn puts_reload_and_reports() {
        let (addr, seen) = serve_canned(vec![ok_json(200, ""), ok_json(500, "Failed reloading services: bad")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["reload", &flag]);
        assert_eq!((r.code, r.out.as_str()), (0, "Configuration reload triggered\n"));
        assert!(seen.recv().unwrap().starts_with("PUT /v1/agent/reload HTTP/1.1"));
        let r = run_cmd(&["reload", &flag]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error reloading: Unexpected response code: 500 (Failed reloading services: bad)\n"
        );
        assert_eq!(run_cmd(&["reload", "now"]).code, 1);
    }
}
