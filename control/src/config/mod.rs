//! Agent configuration: flags, JSON and HCL config files, merge, defaults,
//! validation.
//!
//! Sources merge in this order, later ones overriding earlier ones: every
//! `-config-file` / `-config-dir` in command-line order (a directory's
//! `*.json` and `*.hcl` files in lexical order), then the command-line
//! flags. Unknown keys are warned about and ignored.
//!
//! * [`flags`]: the `agent` flag table and flags → source.
//! * [`file`]: JSON and HCL files and config directories → source.
//! * [`definitions`]: `service`/`check` blocks (decoded by the agent).
//! * [`keys`]: the one table of known config keys.
//! * [`partial`]: a source (every setting optional) and the merge.
//! * [`resolve`]: defaults and validation → [`Config`].
//! * [`runtime`]: the resolved [`Config`].
//! * [`duration`]: Go duration strings.
//! * [`host`]: hostname and private addresses (the host facts).

pub mod cluster;
pub mod definitions;
pub mod dns;
pub mod duration;
pub mod error;
pub mod file;
pub mod flags;
pub mod host;
pub mod keys;
pub mod partial;
pub mod resolve;
pub mod runtime;

pub use error::ConfigError;
pub use flags::{agent_args, AgentArgs, ConfigPath, AGENT_FLAGS};
pub use partial::PartialConfig;
pub use resolve::{resolve, HostFacts};
pub use runtime::{Config, LogLevel};

use crate::cli::flags::ParsedArgs;

/// Reads every config file the arguments name and merges them under the
/// flags. Returns the sources in merge order and the warnings so far.
pub fn read_sources(args: AgentArgs) -> Result<(Vec<PartialConfig>, Vec<String>), ConfigError> {
    let mut sources = Vec::new();
    let mut warnings = args.warnings;
    for path in &args.config_paths {
        let files = match path {
            ConfigPath::File(f) => vec![f.clone()],
            ConfigPath::Dir(d) => {
                let (files, dir_warnings) = file::read_dir(d)?;
                warnings.extend(dir_warnings);
                files
            }
        };
        for f in files {
            let parsed = file::read_file(&f)?;
            warnings.extend(parsed.warnings);
            sources.push(parsed.config);
        }
    }
    sources.push(args.flags);
    Ok((sources, warnings))
}

/// Loads the agent configuration from its parsed flags: reads the config
/// files, merges, resolves against this host.
pub fn load(args: &ParsedArgs) -> Result<Config, ConfigError> {
    let agent_args = agent_args(args)?;
    let config_paths = agent_args.config_paths.clone();
    let (sources, warnings) = read_sources(agent_args)?;
    let mut config = resolve(PartialConfig::merge_all(sources), &host::host_facts(), warnings)?;
    config.config_paths = config_paths;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::parse;

    fn load_with(list: &[String]) -> Result<Config, ConfigError> {
        load(&parse(AGENT_FLAGS, list).unwrap())
    }

    #[test]
    fn files_merge_in_order_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("consul.d");
        std::fs::create_dir(&conf_d).unwrap();
        std::fs::write(
            conf_d.join("00-base.json"),
            r#"{"datacenter":"base","node_name":"from-dir","ports":{"http":8600,"dns":8700}}"#,
        )
        .unwrap();
        std::fs::write(conf_d.join("10-more.json"), r#"{"datacenter":"more","mystery":1}"#).unwrap();
        let file = dir.path().join("last.json");
        std::fs::write(&file, r#"{"datacenter":"last","ports":{"http":9000}}"#).unwrap();
        let args: Vec<String> = vec![
            format!("-config-dir={}", conf_d.display()),
            format!("-config-file={}", file.display()),
            format!("-data-dir={}", dir.path().display()),
            "-node=from-flag".into(),
        ];
        let c = load_with(&args).unwrap();
        assert_eq!(c.datacenter, "last");
        assert_eq!(c.node_name, "from-flag");
        assert_eq!(c.ports.http, 9000);
        assert_eq!(c.ports.dns, 8700);
        assert!(c.warnings.iter().any(|w| w.contains("\"mystery\"")));
    }

    #[test]
    fn a_bad_file_stops_the_load_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ nope").unwrap();
        let e = load_with(&[format!("-config-file={}", bad.display()), "-dev".into()]).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
    }
}
