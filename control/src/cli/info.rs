//! `proconsul info`: the agent's `Stats`, printed as `consul info` does.

use serde_json::Value;

use super::client::{connect_or_complain, flag_table, get_ok};
use super::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul info [options]

  Provides debugging information for operators, from the agent's Stats.
";

/// Renders the `Stats` object of `/v1/agent/self`: each section name and a
/// colon, then its keys sorted, tab-indented as `key = value`. Pure.
pub fn render_stats(self_body: &[u8]) -> Result<String, String> {
    let root: Value = serde_json::from_slice(self_body).map_err(|e| format!("invalid /v1/agent/self response: {e}"))?;
    let Some(Value::Object(stats)) = root.get("Stats") else {
        return Err("agent response did not contain Stats".into());
    };
    let mut out = String::new();
    let mut sections: Vec<&String> = stats.keys().collect();
    sections.sort();
    for name in sections {
        out.push_str(name);
        out.push_str(":\n");
        let Value::Object(values) = &stats[name] else {
            continue;
        };
        let mut keys: Vec<&String> = values.keys().collect();
        keys.sort();
        for key in keys {
            let value = match &values[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("\t{key} = {value}\n"));
        }
    }
    Ok(out)
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(&[], false);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let response = match get_ok(&client, "/v1/agent/self", "Error querying agent", io) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match render_stats(&response.body) {
        Ok(text) => {
            let _ = io.out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            io.complain(&format!("Error querying agent: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const SELF: &str = r#"{"Config":{},"Stats":{
        "raft":{"state":"Leader","applied_index":"12"},
        "agent":{"services":"0","checks":"0"},
        "build":{"version":"1.21.0","prerelease":""}}}"#;

    #[test]
    fn renders_sorted_sections() {
        assert_eq!(
            render_stats(SELF.as_bytes()).unwrap(),
            "agent:\n\tchecks = 0\n\tservices = 0\nbuild:\n\tprerelease = \n\tversion = 1.21.0\nraft:\n\tapplied_index = 12\n\tstate = Leader\n"
        );
        assert!(render_stats(b"{}").is_err());
        assert!(render_stats(b"nope").is_err());
    }

    #[test]
    fn queries_the_agent() {
        let (addr, seen) = serve_canned(vec![ok_json(200, SELF)]);
        let r = run_cmd(&["info", &format!("-http-addr={addr}")]);
        assert_eq!(r.code, 0);
        assert!(r.out.starts_with("agent:\n"));
        assert!(seen.recv().unwrap().starts_with("GET /v1/agent/self HTTP/1.1"));
    }

    #[test]
    fn unreachable_agent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let r = run_cmd(&["info", &format!("-http-addr={addr}")]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Error querying agent: Get \"http://"), "{}", r.err);
        assert!(r.err.contains("connect: connection refused"));
    }
}
