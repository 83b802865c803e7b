//! `proconsul catalog datacenters`: the known datacenters, one per line.

use crate::cli::client::{connect_or_complain, flag_table, get_ok, no_positionals};
use crate::cli::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul catalog datacenters [options]

  Retrieves the list of all known datacenters, nearest first.
";

/// One datacenter per line, in the order the agent gave. Pure.
pub fn render(body: &[u8]) -> Result<String, String> {
    let names: Option<Vec<String>> = serde_json::from_slice(body).map_err(|e| format!("invalid response: {e}"))?;
    Ok(names.unwrap_or_default().iter().map(|n| format!("{n}\n")).collect())
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(&[], true);
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
    // Consul sends no read flags on this call: the list is the same from
    // every server.
    let response = match get_ok(&client, "/v1/catalog/datacenters", "Error listing datacenters", io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match render(&response.body) {
        Ok(text) => {
            let _ = io.out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            io.complain(&format!("Error listing datacenters: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    #[test]
    fn one_per_line_in_the_agents_order() {
        assert_eq!(render(br#"["dc2","dc1"]"#).unwrap(), "dc2\ndc1\n");
        assert_eq!(render(b"[]").unwrap(), "");
        assert!(render(b"{}").is_err());
    }

    #[test]
    fn queries_the_agent() {
        let (addr, seen) = serve_canned(vec![ok_json(200, r#"["dc1"]"#), ok_json(500, "boom")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["catalog", "datacenters", &flag]);
        assert_eq!((r.code, r.out.as_str()), (0, "dc1\n"));
        assert!(seen.recv().unwrap().starts_with("GET /v1/catalog/datacenters HTTP/1.1"));
        let r = run_cmd(&["catalog", "datacenters", &flag]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            "Error listing datacenters: Unexpected response code: 500 (boom)\n"
        );
        let r = run_cmd(&["catalog", "datacenters", "x"]);
        assert_eq!(r.code, 1);
    }
}
