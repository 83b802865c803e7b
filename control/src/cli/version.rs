//! `proconsul version`: our version, and the Consul version whose API we
//! match, in the shape of `consul version`.

use super::flags::FlagSpec;
use super::{parse_or_usage, Io};
use crate::agent::build_info::{BUILD_DATE, CONSUL_COMPAT_VERSION, PROCONSUL_VERSION, REVISION};

const USAGE: &str = "Usage: proconsul version [options]

  Prints the version of this binary and the Consul version it is compatible with.
";

const FLAGS: &[FlagSpec] = &[FlagSpec::value("format", "Output format: pretty (default) or json.")];

/// The protocol line `consul version` prints (scripts look for it).
pub const PROTOCOL_LINE: &str = "Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)";

/// The text output: Consul's four lines with our name, then the Consul
/// version whose API we match.
pub fn pretty() -> String {
    format!(
        "Proconsul v{PROCONSUL_VERSION}\nRevision {REVISION}\nBuild Date {BUILD_DATE}\n{PROTOCOL_LINE}\nCompatible with Consul v{CONSUL_COMPAT_VERSION} (HTTP API, DNS interface and CLI)\n"
    )
}

/// The `-format=json` output (Consul's fields plus the compatibility one).
pub fn json() -> String {
    let v = serde_json::json!({
        "Version": PROCONSUL_VERSION,
        "Revision": REVISION,
        "Prerelease": "",
        "FIPS": "",
        "BuildDate": BUILD_DATE,
        "Protocol": {"Min": 2, "Max": 3, "Current": 2},
        "ConsulCompatVersion": CONSUL_COMPAT_VERSION,
    });
    serde_json::to_string_pretty(&v).expect("a JSON literal serializes") + "\n"
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let parsed = match parse_or_usage(FLAGS, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let text = match parsed.value("format").unwrap_or("pretty") {
        "pretty" => pretty(),
        "json" => json(),
        other => {
            io.complain(&format!("Invalid format: {other}"));
            return 1;
        }
    };
    let _ = io.out.write_all(text.as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use crate::cli::tests::run_cmd;
    use proconsul_shared::agent_info::{CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};

    #[test]
    fn pretty_output_mirrors_consul() {
        let r = run_cmd(&["version"]);
        assert_eq!(r.code, 0);
        let lines: Vec<&str> = r.out.lines().collect();
        assert_eq!(lines[0], format!("Proconsul v{PROCONSUL_VERSION}"));
        assert!(lines[1].starts_with("Revision "));
        assert!(lines[2].starts_with("Build Date "));
        assert!(lines[3].starts_with("Protocol 2 spoken by default"));
        assert!(lines[4].contains(&format!("Consul v{CONSUL_COMPAT_VERSION}")));
        assert_eq!(run_cmd(&["--version"]).out, r.out);
    }

    #[test]
    fn json_output_and_bad_format() {
        let r = run_cmd(&["version", "-format=json"]);
        let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
        assert_eq!(v["Version"], PROCONSUL_VERSION);
        assert_eq!(v["ConsulCompatVersion"], CONSUL_COMPAT_VERSION);
        assert_eq!(v["Protocol"]["Current"], 2);
        let r = run_cmd(&["version", "-format", "xml"]);
        assert_eq!(r.code, 1);
        assert_eq!(r.err, "Invalid format: xml\n");
    }
}
