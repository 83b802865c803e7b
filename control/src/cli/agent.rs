//! `proconsul agent`: parse the flags, load the configuration, run.

use super::{parse_or_usage, Io};
use crate::config::{self, AGENT_FLAGS};

const USAGE: &str = "Usage: proconsul agent [options]

  Starts the Proconsul agent and runs until an interrupt is received or
  the agent is asked to leave. -dev runs an in-memory single-node server.
";

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let parsed = match parse_or_usage(AGENT_FLAGS, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match config::load(&parsed) {
        Ok(config) => {
            let _ = io.out.flush();
            crate::agent::run(config)
        }
        Err(e) => {
            io.complain(&format!("==> {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::tests::run_cmd;

    #[test]
    fn config_errors_use_consul_texts() {
        let r = run_cmd(&["agent", "-node=n1"]);
        assert_eq!(r.code, 1);
        assert_eq!(r.err, "==> data_dir cannot be empty\n");
        let r = run_cmd(&["agent", "-dev", "-datacenter", "d c"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("datacenter can only contain"));
        let r = run_cmd(&["agent", "-dev", "-http-port=99999"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("ports.http: invalid port 99999"));
    }

    #[test]
    fn bad_config_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broken.json");
        std::fs::write(&f, "{").unwrap();
        let flag = format!("-config-file={}", f.display());
        let r = run_cmd(&["agent", "-dev", &flag]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("==> Error parsing "), "{}", r.err);
        assert!(r.err.contains("broken.json"));
    }

    #[test]
    fn unknown_agent_flag() {
        let r = run_cmd(&["agent", "-dev", "-encrypt=abc"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("flag provided but not defined: -encrypt"));
    }
}
