//! The `proconsul` command line, Consul-style: `proconsul <verb> [flags]`.
//!
//! One file per verb: [`agent`], [`version`], [`kv`] (`get`, `put`,
//! `delete`), [`leave`], [`info`], [`members`], [`catalog`] (`services`,
//! `nodes`, `datacenters`), [`services`] (`register`, `deregister`),
//! [`reload`], [`maint`], [`join`], [`force_leave`], [`operator`] (`raft
//! list-peers`, `raft remove-peer`), [`validate`], and the hidden
//! [`dataplane`] (`__dataplane`, how the agent starts its data plane).
//! [`columnize`] lays out Go-style tables; [`map_flag`] parses `k=v` flags.
//! [`flags`] parses Go-style flags; client verbs talk HTTP to the agent
//! through [`http_client`] with the shared options of [`client`].
//!
//! Every verb runs against an [`Io`] (stdout, stderr, stdin, environment),
//! so its behaviour is tested without a terminal.

pub mod agent;
pub mod catalog;
pub mod client;
pub mod columnize;
pub mod dataplane;
pub mod flags;
pub mod force_leave;
pub mod http_client;
pub mod info;
pub mod join;
pub mod kv;
pub mod leave;
pub mod maint;
pub mod map_flag;
pub mod members;
pub mod operator;
pub mod reload;
pub mod services;
pub mod subcommand;
pub mod validate;
pub mod version;

use std::io::{Read, Write};

use flags::{FlagError, FlagSpec, ParsedArgs};

/// The process's standard streams and environment, injectable for tests.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn Read,
    pub env: client::Env<'a>,
}

impl Io<'_> {
    /// Writes a line to stdout (a closed stdout is not an error worth more).
    pub fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Writes a line to stderr.
    pub fn complain(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }
}

const USAGE: &str = "Usage: proconsul [--version] [--help] <command> [<args>]

Available commands are:
    agent          Runs a Proconsul agent
    catalog        Interact with the catalog
    force-leave    Forces a member of the cluster to enter the \"left\" state
    info           Provides debugging information for operators
    join           Tell the agent to join the cluster
    kv             Interact with the key-value store
    leave          Gracefully leaves the cluster and shuts down
    maint          Controls node or service maintenance mode
    members        Lists the members of the cluster
    operator       Provides cluster-level tools (raft peers)
    reload         Triggers the agent to reload configuration files
    services       Register and deregister services with the local agent
    validate       Validate config files/directories
    version        Prints the Proconsul version
";

/// Parses a verb's flags. On `-h` prints the usage and yields exit code 0;
/// on a bad flag prints the error and the usage and yields 1.
pub fn parse_or_usage(table: &[FlagSpec], args: &[String], usage: &str, io: &mut Io<'_>) -> Result<ParsedArgs, i32> {
    match flags::parse(table, args) {
        Ok(parsed) => Ok(parsed),
        Err(e) => {
            let code = if e == FlagError::HelpRequested {
                0
            } else {
                io.complain(&e.to_string());
                1
            };
            let _ = write!(io.err, "{usage}\n{}", flags::usage(table));
            Err(code)
        }
    }
}

/// Runs a command line (without the program name).
pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let Some(verb) = args.first() else {
        let _ = write!(io.err, "{USAGE}");
        return 1;
    };
    let rest = &args[1..];
    match verb.as_str() {
        "agent" => agent::run(rest, io),
        "catalog" => catalog::run(rest, io),
        "force-leave" => force_leave::run(rest, io),
        "info" => info::run(rest, io),
        "join" => join::run(rest, io),
        "kv" => kv::run(rest, io),
        "leave" => leave::run(rest, io),
        "maint" => maint::run(rest, io),
        "members" => members::run(rest, io),
        "operator" => operator::run(rest, io),
        "reload" => reload::run(rest, io),
        "services" => services::run(rest, io),
        "validate" => validate::run(rest, io),
        "version" | "-v" | "-version" | "--version" => version::run(rest, io),
        "-h" | "-help" | "--help" | "help" => {
            let _ = write!(io.err, "{USAGE}");
            0
        }
        dataplane::VERB => dataplane::run(rest, io),
        other => {
            io.complain(&format!("Unknown command: {other:?}\n"));
            let _ = write!(io.err, "{USAGE}");
            1
        }
    }
}

/// The binary's entry point. Returns the exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env = |name: &str| std::env::var(name).ok();
    // Unlocked handles: the agent logs from other threads while this one
    // waits in `agent::run`, so no lock may be held across the call.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut input = std::io::stdin();
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        stdin: &mut input,
        env: &env,
    };
    let code = run(&args, &mut io);
    let _ = io.out.flush();
    code
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Captured output of one command run.
    pub(crate) struct Ran {
        pub code: i32,
        pub out: String,
        pub err: String,
    }

    /// Runs a command line with the given stdin and environment.
    pub(crate) fn run_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Ran {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env_map: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |name: &str| env_map.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input = stdin;
        let code = run(
            &args,
            &mut Io {
                out: &mut out,
                err: &mut err,
                stdin: &mut input,
                env: &lookup,
            },
        );
        Ran {
            code,
            out: String::from_utf8_lossy(&out).into_owned(),
            err: String::from_utf8_lossy(&err).into_owned(),
        }
    }

    pub(crate) fn run_cmd(args: &[&str]) -> Ran {
        run_with(args, b"", &[])
    }

    #[test]
    fn no_verb_and_unknown_verbs_print_usage_and_fail() {
        let r = run_cmd(&[]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Usage: proconsul"));
        let r = run_cmd(&["frobnicate"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("Unknown command: \"frobnicate\""));
        assert!(r.err.contains("Available commands are:"));
        let r = run_cmd(&["--help"]);
        assert_eq!(r.code, 0);
        assert!(r.out.is_empty());
    }

    #[test]
    fn bad_flags_print_the_error_and_usage() {
        let r = run_cmd(&["kv", "get", "-nope", "k"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("flag provided but not defined: -nope\n"), "{}", r.err);
        assert!(r.err.contains("-recurse"));
        let r = run_cmd(&["kv", "get", "-h"]);
        assert_eq!(r.code, 0);
        assert!(r.err.contains("Usage: proconsul kv get"));
    }
}
