//! Config files: JSON and HCL documents read into a [`PartialConfig`], and
//! config directories (every `*.json` and `*.hcl` directly inside, in
//! lexical order).
//!
//! [`parse_json`], [`parse_hcl`] and [`select_config_files`] are pure; [`read_file`] and
//! [`read_dir`] do the IO around them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::keys;
use super::partial::PartialConfig;

/// Largest config file we read.
pub const CONFIG_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Most files one config directory may contribute.
pub const CONFIG_DIR_FILES_MAX: usize = 1024;

/// A parsed file: its settings and the warnings it produced (unknown keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFile {
    pub config: PartialConfig,
    pub warnings: Vec<String>,
}

/// Parses one JSON config document. `label` names the file in messages.
pub fn parse_json(label: &str, text: &str) -> Result<ParsedFile, ConfigError> {
    let parse_error = |reason: String| ConfigError::Parse {
        path: label.to_string(),
        reason,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    parse_value(label, root)
}

/// Parses one HCL config document: converted to the JSON value the same
/// file would hold in JSON (repeated blocks become lists), then read like
/// JSON. `label` names the file in messages.
pub fn parse_hcl(label: &str, text: &str) -> Result<ParsedFile, ConfigError> {
    let root: Value = hcl::from_str(text).map_err(|e| ConfigError::Parse {
        path: label.to_string(),
        reason: e.to_string(),
    })?;
    parse_value(label, root)
}

fn parse_value(label: &str, root: Value) -> Result<ParsedFile, ConfigError> {
    let parse_error = |reason: String| ConfigError::Parse {
        path: label.to_string(),
        reason,
    };
    let Value::Object(root) = root else {
        return Err(parse_error("the top level must be a JSON object".into()));
    };
    let mut parsed = ParsedFile::default();
    walk(label, "", &root, &mut parsed).map_err(parse_error)?;
    Ok(parsed)
}

fn walk(label: &str, prefix: &str, object: &Map<String, Value>, out: &mut ParsedFile) -> Result<(), String> {
    for (key, value) in object {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(set) = keys::setter(&path) {
            set(&mut out.config, value).map_err(|e| format!("{path}: {e}"))?;
        } else if keys::is_block(&path) {
            match value {
                Value::Object(inner) => walk(label, &path, inner, out)?,
                _ => return Err(format!("{path}: expected an object")),
            }
        } else {
            out.warnings
                .push(format!("config: unknown key \"{path}\" in {label} (ignored)"));
        }
    }
    Ok(())
}

/// Reads and parses one config file.
pub fn read_file(path: &Path) -> Result<ParsedFile, ConfigError> {
    let label = path.display().to_string();
    let read_error = |reason: String| ConfigError::Read {
        path: label.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?;
    if meta.len() > CONFIG_FILE_BYTES_MAX {
        return Err(read_error(format!(
            "file is {} bytes, over the {CONFIG_FILE_BYTES_MAX}-byte limit",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    if path.extension().is_some_and(|e| e == "hcl") {
        return parse_hcl(&label, &text);
    }
    parse_json(&label, &text)
}

/// Which directory entries are config files: `*.json` and `*.hcl`, sorted
/// lexically. Returns the chosen names and warnings (none so far).
pub fn select_config_files(mut names: Vec<String>) -> (Vec<String>, Vec<String>) {
    names.sort();
    let warnings = Vec::new();
    let mut chosen = Vec::new();
    for name in names {
        if name.ends_with(".json") || name.ends_with(".hcl") {
            chosen.push(name);
        }
    }
    (chosen, warnings)
}

/// Lists the config files of a directory (non-recursive).
pub fn read_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), ConfigError> {
    let label = dir.display().to_string();
    let read_error = |reason: String| ConfigError::Read {
        path: label.clone(),
        reason,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_error(e.to_string()))? {
        let entry = entry.map_err(|e| read_error(e.to_string()))?;
        let is_file = entry
            .file_type()
            .map(|t| t.is_file() || t.is_symlink())
            .unwrap_or(false);
        if !is_file {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
        if names.len() > CONFIG_DIR_FILES_MAX {
            return Err(read_error(format!(
                "more than {CONFIG_DIR_FILES_MAX} files in a config directory"
            )));
        }
    }
    let (chosen, warnings) = select_config_files(names);
    Ok((chosen.into_iter().map(|n| dir.join(n)).collect(), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys_and_nested_blocks() {
        let p = parse_json(
            "a.json",
            r#"{"datacenter":"East","ports":{"http":8501,"dns":-1},
                "limits":{"http_max_conns_per_client":50},"node_meta":{"rack":"r1"},
                "server":true,"default_query_time":"30s"}"#,
        )
        .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let c = p.config;
        assert_eq!(c.datacenter.as_deref(), Some("East"));
        assert_eq!(c.ports.http, Some(8501));
        assert_eq!(c.ports.dns, Some(-1));
        assert_eq!(c.http_max_conns_per_client, Some(50));
        assert_eq!(c.node_meta.get("rack").map(String::as_str), Some("r1"));
        assert_eq!(c.server, Some(true));
        assert_eq!(c.default_query_time.as_deref(), Some("30s"));
    }

    #[test]
    fn unknown_keys_warn_and_are_ignored() {
        let p = parse_json(
            "b.json",
            r#"{"ui":true,"ports":{"http":1,"sidecar_min_port":2},"datacenter":"x"}"#,
        )
        .unwrap();
        assert_eq!(p.config.datacenter.as_deref(), Some("x"));
        assert_eq!(p.config.ports.http, Some(1));
        assert_eq!(
            p.warnings,
            vec![
                "config: unknown key \"ports.sidecar_min_port\" in b.json (ignored)".to_string(),
                "config: unknown key \"ui\" in b.json (ignored)".to_string(),
            ]
        );
    }

    #[test]
    fn bad_json_names_the_file() {
        let e = parse_json("/etc/consul.d/bad.json", "{\"datacenter\": ").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("Error parsing /etc/consul.d/bad.json: "), "{text}");
        let e = parse_json("c.json", "[1]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error parsing c.json: the top level must be a JSON object"
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = parse_json("d.json", r#"{"ports":{"http":"8500"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error parsing d.json: ports.http: expected an integer, got a string"
        );
        let e = parse_json("d.json", r#"{"ports":8500}"#).unwrap_err();
        assert_eq!(e.to_string(), "Error parsing d.json: ports: expected an object");
    }

    #[test]
    fn config_dir_takes_json_and_hcl_in_lexical_order() {
        let (chosen, warnings) = select_config_files(vec![
            "extra_config.json".into(),
            "README.md".into(),
            "10-web.json".into(),
            "00-base.hcl".into(),
            "basic_config.json".into(),
        ]);
        assert_eq!(
            chosen,
            vec!["00-base.hcl", "10-web.json", "basic_config.json", "extra_config.json"]
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn hcl_reads_like_json() {
        let p = parse_hcl(
            "a.hcl",
            r#"
            datacenter = "east"
            ports { http = 8501 }
            service {
              name = "web"
              port = 80
              check { ttl = "10s" }
            }
            service { name = "db" }
            services = [{ name = "cache" }]
            "#,
        )
        .unwrap();
        assert_eq!(p.config.datacenter.as_deref(), Some("east"));
        assert_eq!(p.config.ports.http, Some(8501));
        let names: Vec<_> = p.config.service_definitions.iter().map(|s| s["name"].clone()).collect();
        assert_eq!(names, vec!["web", "db", "cache"]);
        assert_eq!(p.config.service_definitions[0]["check"]["ttl"], "10s");
        let e = parse_hcl("b.hcl", "service {").unwrap_err();
        assert!(e.to_string().starts_with("Error parsing b.hcl: "), "{e}");
    }

    #[test]
    fn read_dir_and_file_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), r#"{"node_name":"b"}"#).unwrap();
        std::fs::write(dir.path().join("a.json"), r#"{"node_name":"a"}"#).unwrap();
        std::fs::create_dir(dir.path().join("sub.json")).unwrap();
        let (files, _) = read_dir(dir.path()).unwrap();
        assert_eq!(files, vec![dir.path().join("a.json"), dir.path().join("b.json")]);
        assert_eq!(read_file(&files[1]).unwrap().config.node_name.as_deref(), Some("b"));

        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(CONFIG_FILE_BYTES_MAX + 1).unwrap();
        let e = read_file(&big).unwrap_err();
        assert!(e.to_string().contains("over the 4194304-byte limit"), "{e}");

        let e = read_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn too_many_files_in_a_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=CONFIG_DIR_FILES_MAX {
            std::fs::write(dir.path().join(format!("{i:05}.json")), "{}").unwrap();
        }
        let e = read_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("more than 1024 files"), "{e}");
    }
}
