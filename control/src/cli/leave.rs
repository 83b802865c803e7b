//! `proconsul leave`: ask the agent to leave and shut down.

use super::client::{connect_or_complain, flag_table};
use super::http_client::unexpected_status;
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul leave [options]

  Causes the agent to gracefully leave the cluster and shut down.
";

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(&[], false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !parsed.positionals.is_empty() {
        io.complain(&format!("Error found unexpected args: {:?}", parsed.positionals));
        let _ = io.err.write_all(USAGE.as_bytes());
        return 1;
    }
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match client.request("PUT", "/v1/agent/leave", b"") {
        Ok(r) if r.status == 200 => {
            io.say("Graceful leave complete");
            0
        }
        Ok(r) => {
            io.complain(&format!("Error leaving: {}", unexpected_status(&r)));
            1
        }
        Err(e) => {
            io.complain(&format!("Error leaving: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::{run_cmd, run_with};

    #[test]
    fn leave_puts_and_reports() {
        let (addr, seen) = serve_canned(vec![ok_json(200, ""), ok_json(403, "Permission denied")]);
        let r = run_with(&["leave"], b"", &[("CONSUL_HTTP_ADDR", &addr)]);
        assert_eq!((r.code, r.out.as_str()), (0, "Graceful leave complete\n"));
        assert!(seen.recv().unwrap().starts_with("PUT /v1/agent/leave HTTP/1.1"));
        let r = run_cmd(&["leave", &format!("-http-addr=http://{addr}")]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error leaving: Unexpected response code: 403 (Permission denied)\n"
        );
        let r = run_cmd(&["leave", "now"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Error found unexpected args"));
    }
}
