//! What every client command shares: the HTTP flags (`-http-addr`,
//! `-token`, `-token-file`, and for reads `-datacenter`, `-stale`), their
//! environment fallbacks (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`,
//! `CONSUL_HTTP_TOKEN_FILE`), and the query-string builder.

use super::flags::{FlagSpec, ParsedArgs};
use super::http_client::{parse_address, percent_encode_query, Client};

/// The agent address when nothing else is given.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8500";
/// Largest token file read.
const TOKEN_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Flags every client command accepts.
pub const HTTP_FLAGS: &[FlagSpec] = &[
    FlagSpec::value(
        "http-addr",
        "The address of the agent's HTTP API (host:port, http://host:port or unix:///path). Also CONSUL_HTTP_ADDR. Default 127.0.0.1:8500.",
    ),
    FlagSpec::value("token", "ACL token for the request. Also CONSUL_HTTP_TOKEN."),
    FlagSpec::value("token-file", "File holding the ACL token. Also CONSUL_HTTP_TOKEN_FILE."),
];

/// Flags of commands that read from servers.
pub const READ_FLAGS: &[FlagSpec] = &[
    FlagSpec::value("datacenter", "Datacenter to query. Defaults to the agent's."),
    FlagSpec::boolean("stale", "Let any server answer, even a stale one."),
];

/// A command's flag table: its own flags plus the shared ones.
pub fn flag_table(own: &[FlagSpec], reads: bool) -> Vec<FlagSpec> {
    let mut all = own.to_vec();
    all.extend_from_slice(HTTP_FLAGS);
    if reads {
        all.extend_from_slice(READ_FLAGS);
    }
    all
}

/// Reads an environment variable (injected for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// [`client_from`], printing Consul's error and giving the exit code 1 when
/// the address or token is unusable.
pub fn connect_or_complain(args: &ParsedArgs, io: &mut super::Io<'_>) -> Result<Client, i32> {
    client_from(args, io.env).map_err(|e| {
        io.complain(&format!("Error connecting to Consul agent: {e}"));
        1
    })
}

/// `GET path` that must answer 200. Anything else prints `<context>: <why>`
/// (Consul's wording, e.g. `Error querying agent: Unexpected response code:
/// 500 (...)`) and gives exit code 1.
pub fn get_ok(
    client: &Client,
    path: &str,
    context: &str,
    io: &mut super::Io<'_>,
) -> Result<super::http_client::Response, i32> {
    match client.request("GET", path, b"") {
        Ok(r) if r.status == 200 => Ok(r),
        Ok(r) => {
            io.complain(&format!("{context}: {}", super::http_client::unexpected_status(&r)));
            Err(1)
        }
        Err(e) => {
            io.complain(&format!("{context}: {e}"));
            Err(1)
        }
    }
}

/// `method path` with `body` that must answer 200 (a write: Go's
/// `requireOK`). Anything else prints `<context>: <why>` and gives exit
/// code 1.
pub fn call_ok(
    client: &Client,
    method: &str,
    path: &str,
    body: &[u8],
    context: &str,
    io: &mut super::Io<'_>,
) -> Result<super::http_client::Response, i32> {
    match client.request(method, path, body) {
        Ok(r) if r.status == 200 => Ok(r),
        Ok(r) => {
            io.complain(&format!("{context}: {}", super::http_client::unexpected_status(&r)));
            Err(1)
        }
        Err(e) => {
            io.complain(&format!("{context}: {e}"));
            Err(1)
        }
    }
}

/// Prints `message` and the usage on stderr for a misused command; gives
/// exit code 1.
pub fn usage_error(message: &str, usage: &str, io: &mut super::Io<'_>) -> i32 {
    io.complain(message);
    let _ = io.err.write_all(usage.as_bytes());
    1
}

/// Fails with Go's `Too many arguments (expected 0, got N)` (and the usage)
/// when a command that takes no arguments got some.
pub fn no_positionals(args: &ParsedArgs, usage: &str, io: &mut super::Io<'_>) -> Result<(), i32> {
    match args.positionals.len() {
        0 => Ok(()),
        n => Err(usage_error(
            &format!("Too many arguments (expected 0, got {n})"),
            usage,
            io,
        )),
    }
}

/// Builds the client from the flags, falling back to the environment.
pub fn client_from(args: &ParsedArgs, env: Env<'_>) -> Result<Client, String> {
    let addr = args
        .value("http-addr")
        .map(str::to_string)
        .or_else(|| env("CONSUL_HTTP_ADDR").filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_string());
    let address = parse_address(&addr)?;
    let token = match args.value("token") {
        Some(t) => Some(t.to_string()),
        None => match args
            .value("token-file")
            .map(str::to_string)
            .or_else(|| env("CONSUL_HTTP_TOKEN_FILE").filter(|v| !v.is_empty()))
        {
            Some(path) => Some(read_token_file(&path)?),
            None => env("CONSUL_HTTP_TOKEN").filter(|v| !v.is_empty()),
        },
    };
    Ok(Client::new(address, token))
}

fn read_token_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("Error loading token file: {e}"))?;
    let mut text = String::new();
    file.take(TOKEN_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|e| format!("Error loading token file: {e}"))?;
    Ok(text.trim().to_string())
}

/// A query string under construction (`?a&b=c`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    parts: Vec<String>,
}

impl Query {
    /// Adds a presence flag (`?recurse`).
    pub fn flag(&mut self, name: &str) -> &mut Query {
        self.parts.push(name.to_string());
        self
    }

    /// Adds `name=value` (value percent-encoded).
    pub fn pair(&mut self, name: &str, value: &str) -> &mut Query {
        self.parts.push(format!("{name}={}", percent_encode_query(value)));
        self
    }

    /// Adds the read flags (`dc`, `stale`) given on the command line.
    pub fn reads(&mut self, args: &ParsedArgs) -> &mut Query {
        if let Some(dc) = args.value("datacenter").filter(|d| !d.is_empty()) {
            self.pair("dc", dc);
        }
        if args.flag("stale") {
            self.flag("stale");
        }
        self
    }

    /// `path` with the query appended.
    pub fn on(&self, path: &str) -> String {
        if self.parts.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.parts.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::parse;

    fn args(table: &[FlagSpec], list: &[&str]) -> ParsedArgs {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse(table, &list).unwrap()
    }

    #[test]
    fn address_and_token_precedence() {
        let table = flag_table(&[], true);
        let env = |name: &str| match name {
            "CONSUL_HTTP_ADDR" => Some("http://127.0.0.1:18500".to_string()),
            "CONSUL_HTTP_TOKEN" => Some("env-token".to_string()),
            _ => None,
        };
        let c = client_from(&args(&table, &[]), &env).unwrap();
        assert_eq!(c.url("/x"), "http://127.0.0.1:18500/x");
        let c = client_from(&args(&table, &["-http-addr=127.0.0.2:1"]), &env).unwrap();
        assert_eq!(c.url("/x"), "http://127.0.0.2:1/x");
        let none = |_: &str| None;
        let c = client_from(&args(&table, &[]), &none).unwrap();
        assert_eq!(c.url("/"), "http://127.0.0.1:8500/");
        assert!(client_from(&args(&table, &["-http-addr", "https://x:1"]), &none).is_err());
    }

    #[test]
    fn token_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "secret\n").unwrap();
        let table = flag_table(&[], false);
        let none = |_: &str| None;
        let a = args(&table, &["-token-file", path.to_str().unwrap()]);
        assert!(client_from(&a, &none).is_ok());
        assert_eq!(read_token_file(path.to_str().unwrap()).unwrap(), "secret");
        let a = args(&table, &["-token-file=/nonexistent/tok"]);
        assert!(client_from(&a, &none)
            .unwrap_err()
            .starts_with("Error loading token file"));
    }

    #[test]
    fn query_strings() {
        let table = flag_table(&[], true);
        let a = args(&table, &["-datacenter=dc2", "-stale"]);
        let mut q = Query::default();
        q.flag("keys").pair("separator", "/").reads(&a);
        assert_eq!(q.on("/v1/kv/a"), "/v1/kv/a?keys&separator=%2F&dc=dc2&stale");
        assert_eq!(Query::default().on("/v1/kv/a"), "/v1/kv/a");
    }
}
