//! `proconsul kv get|put|delete`, with Consul's output texts and exit
//! codes.

pub mod delete;
pub mod get;
pub mod pair;
pub mod put;

use super::Io;

const USAGE: &str = "Usage: proconsul kv <subcommand> [options] [args]

  Interact with the key-value store.

Subcommands:
    delete    Removes data from the KV store
    get       Retrieves or lists data from the KV store
    put       Sets or updates data in the KV store
";

/// The one optional KEY argument of `kv get` and `kv delete`, without a
/// leading `/` (keys cannot start with one: be nice and strip it). More than
/// one argument prints Consul's error and gives exit code 1.
pub fn key_argument<'a>(positionals: &'a [String], io: &mut Io<'_>) -> Result<&'a str, i32> {
    let key = match positionals {
        [] => "",
        [k] => k.as_str(),
        more => {
            io.complain(&format!("Too many arguments (expected 1, got {})", more.len()));
            return Err(1);
        }
    };
    Ok(key.strip_prefix('/').unwrap_or(key))
}

/// The `/v1/kv/<key>` path of a key.
pub fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", super::http_client::percent_encode_path(key))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    crate::cli::subcommand::dispatch(
        args,
        io,
        USAGE,
        &[("get", get::run), ("put", put::run), ("delete", delete::run)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::run_cmd;

    #[test]
    fn subcommands() {
        assert_eq!(run_cmd(&["kv"]).code, 1);
        assert_eq!(run_cmd(&["kv", "export"]).code, 1);
        assert_eq!(run_cmd(&["kv", "-h"]).code, 0);
        assert_eq!(kv_path("a b/c"), "/v1/kv/a%20b/c");
    }
}
