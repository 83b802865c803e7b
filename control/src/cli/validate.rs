//! `proconsul validate [-quiet] FILE_OR_DIRECTORY...`: loads configuration
//! files the way `proconsul agent` would (same reader, merge and rules)
//! without starting anything.

use super::client::usage_error;
use super::flags::{self, FlagSpec};
use super::{parse_or_usage, Io};
use crate::config;

const USAGE: &str = "Usage: proconsul validate [options] FILE_OR_DIRECTORY...

  Performs a basic sanity test on configuration files. For each file
  or directory given, the validate command will attempt to parse the
  contents just as the \"proconsul agent\" command would, and catch any errors.

  Returns 0 if the configuration is valid, or 1 if there are problems.
";

const FLAGS: &[FlagSpec] = &[FlagSpec::boolean(
    "quiet",
    "When given, a successful run will produce no output.",
)];

/// Loads the files and directories as `agent -config-file/-config-dir`
/// would, in order. Returns the warnings, or the error text.
pub fn validate_paths(paths: &[String]) -> Result<Vec<String>, String> {
    let agent_args: Vec<String> = paths
        .iter()
        .map(|p| {
            if std::path::Path::new(p).is_dir() {
                format!("-config-dir={p}")
            } else {
                format!("-config-file={p}")
            }
        })
        .collect();
    let parsed = flags::parse(config::AGENT_FLAGS, &agent_args).map_err(|e| e.to_string())?;
    config::load(&parsed).map(|c| c.warnings).map_err(|e| e.to_string())
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let parsed = match parse_or_usage(FLAGS, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if parsed.positionals.is_empty() {
        return usage_error("Must specify at least one config file or directory", USAGE, io);
    }
    match validate_paths(&parsed.positionals) {
        Ok(warnings) => {
            for w in warnings {
                io.complain(&w);
            }
            if !parsed.flag("quiet") {
                io.say("Configuration is valid!");
            }
            0
        }
        Err(e) => {
            io.complain(&format!("Config validation failed: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::tests::run_cmd;

    #[test]
    fn valid_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        std::fs::write(conf_d.join("00-base.hcl"), "datacenter = \"dc1\"\n").unwrap();
        std::fs::write(conf_d.join("10-web.json"), r#"{"service":{"name":"web","port":80}}"#).unwrap();
        let file = dir.path().join("dir.json");
        std::fs::write(
            &file,
            format!(r#"{{"data_dir":"{}","bind_addr":"127.0.0.1"}}"#, dir.path().display()),
        )
        .unwrap();
        let conf_d = conf_d.display().to_string();
        let file = file.display().to_string();
        let r = run_cmd(&["validate", &conf_d, &file]);
        assert_eq!((r.code, r.out.as_str()), (0, "Configuration is valid!\n"), "{}", r.err);
        let r = run_cmd(&["validate", "-quiet", &conf_d, &file]);
        assert_eq!((r.code, r.out.as_str()), (0, ""));
    }

    #[test]
    fn invalid_configurations_fail_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ nope").unwrap();
        let r = run_cmd(&["validate", &bad.display().to_string()]);
        assert_eq!(r.code, 1);
        assert!(
            r.err.starts_with("Config validation failed: Error parsing "),
            "{}",
            r.err
        );
        let no_data_dir = dir.path().join("empty.json");
        std::fs::write(&no_data_dir, "{}").unwrap();
        let r = run_cmd(&["validate", &no_data_dir.display().to_string()]);
        assert_eq!(r.code, 1);
        assert_eq!(r.err, "Config validation failed: data_dir cannot be empty\n");
        assert!(r.out.is_empty());
        let r = run_cmd(&["validate"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Must specify at least one config file or directory\nUsage:"));
    }
}
