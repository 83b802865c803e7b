//! `proconsul services register|deregister`: add or remove services of
//! the local agent, with Consul's output texts.

pub mod definition;
pub mod deregister;
pub mod register;

use super::Io;

const USAGE: &str = "Usage: proconsul services <subcommand> [options] [args]

  Register and deregister services with the local agent.

Subcommands:
    deregister    Deregister services with the local agent
    register      Register services with the local agent
";

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    crate::cli::subcommand::dispatch(
        args,
        io,
        USAGE,
        &[("register", register::run), ("deregister", deregister::run)],
    )
}

#[cfg(test)]
mod tests {
    use crate::cli::tests::run_cmd;

    #[test]
    fn subcommands() {
        assert_eq!(run_cmd(&["services"]).code, 1);
        assert_eq!(run_cmd(&["services", "export"]).code, 1);
        assert_eq!(run_cmd(&["services", "--help"]).code, 0);
    }
}
