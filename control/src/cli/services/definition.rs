//! Service definitions for `services register|deregister`: read from
//! config files (JSON or HCL, their `service`/`services` blocks, through
//! the agent's own config reader) or built from flags, as the JSON body
//! `PUT /v1/agent/service/register` takes. The agent decodes snake_case
//! and PascalCase keys alike, so file blocks are sent as written.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::config::file;

/// Most services one command registers or deregisters.
pub const SERVICES_PER_COMMAND_MAX: usize = 4096;

/// A field of a definition, whatever the case of its key (`name`, `Name`).
pub fn field<'a>(definition: &'a Value, name: &str) -> Option<&'a str> {
    definition
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// The service definitions in config files or directories (a directory's
/// `*.json`/`*.hcl` files, lexically), and the warnings reading them gave.
pub fn from_files(paths: &[String]) -> Result<(Vec<Value>, Vec<String>), String> {
    let mut definitions = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let path = Path::new(path);
        let files = if path.is_dir() {
            let (files, dir_warnings) = file::read_dir(path).map_err(|e| e.to_string())?;
            warnings.extend(dir_warnings);
            files
        } else {
            vec![path.to_path_buf()]
        };
        for f in files {
            let parsed = file::read_file(&f).map_err(|e| e.to_string())?;
            warnings.extend(parsed.warnings);
            if definitions.len() + parsed.config.service_definitions.len() > SERVICES_PER_COMMAND_MAX {
                return Err(format!("more than {SERVICES_PER_COMMAND_MAX} service definitions"));
            }
            definitions.extend(parsed.config.service_definitions);
        }
    }
    Ok((definitions, warnings))
}

/// The flag form of a registration (`-name -id -address -port -socket
/// -tag -meta -tagged-address -kind`); empty fields are left out, as Go's
/// `omitempty` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagService {
    pub kind: String,
    pub id: String,
    pub name: String,
    pub address: String,
    pub port: i64,
    pub socket_path: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub tagged_addresses: BTreeMap<String, String>,
}

/// Consul's `api.ParseServiceAddr`: `host:port`, `[v6]:port`, or a bare
/// host (port 0).
pub fn parse_service_addr(text: &str) -> Result<(String, u16), String> {
    let split = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once("]:").map(|(h, p)| (h.to_string(), p))
    } else if text.matches(':').count() == 1 {
        text.split_once(':').map(|(h, p)| (h.to_string(), p))
    } else {
        None
    };
    match split {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|e| format!("failed to parse port {port:?}: {e}"))?;
            Ok((host, port))
        }
        None => Ok((text.to_string(), 0)),
    }
}

impl FlagService {
    /// The registration body. Fails on a tagged address that does not
    /// parse.
    pub fn to_json(&self) -> Result<Value, String> {
        let mut body = Map::new();
        let mut put_str = |key: &str, value: &str| {
            if !value.is_empty() {
                body.insert(key.to_string(), Value::String(value.to_string()));
            }
        };
        put_str("Kind", &self.kind);
        put_str("ID", &self.id);
        put_str("Name", &self.name);
        put_str("Address", &self.address);
        put_str("SocketPath", &self.socket_path);
        if self.port != 0 {
            body.insert("Port".into(), Value::from(self.port));
        }
        if !self.tags.is_empty() {
            body.insert("Tags".into(), Value::from(self.tags.clone()));
        }
        if !self.meta.is_empty() {
            let meta: Map<String, Value> = self
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            body.insert("Meta".into(), Value::Object(meta));
        }
        if !self.tagged_addresses.is_empty() {
            let mut tagged = Map::new();
            for (tag, text) in &self.tagged_addresses {
                let (address, port) = parse_service_addr(text).map_err(|e| format!("Invalid Tagged Address: {e}"))?;
                let mut entry = Map::new();
                entry.insert("Address".into(), Value::String(address));
                entry.insert("Port".into(), Value::from(port));
                tagged.insert(tag.clone(), Value::Object(entry));
            }
            body.insert("TaggedAddresses".into(), Value::Object(tagged));
        }
        Ok(Value::Object(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_found_in_any_case() {
        let d = json!({"Name": "web", "id": "web-1", "port": 80});
        assert_eq!(field(&d, "name"), Some("web"));
        assert_eq!(field(&d, "ID"), Some("web-1"));
        assert_eq!(field(&d, "port"), None, "not a string");
        assert_eq!(field(&json!("x"), "name"), None);
    }

    #[test]
    fn files_give_their_service_blocks_json_and_hcl() {
        let dir = tempfile::tempdir().unwrap();
        let json_file = dir.path().join("web.json");
        std::fs::write(
            &json_file,
            r#"{"service":{"name":"web","port":80,"check":{"ttl":"10s"}}}"#,
        )
        .unwrap();
        let hcl_file = dir.path().join("db.hcl");
        std::fs::write(&hcl_file, "services {\n  name = \"db\"\n  port = 5432\n}\n").unwrap();
        let paths = vec![json_file.display().to_string(), hcl_file.display().to_string()];
        let (defs, warnings) = from_files(&paths).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0]["check"]["ttl"], "10s");
        assert_eq!(field(&defs[1], "name"), Some("db"));
        assert_eq!(defs[1]["port"], 5432);
        let (from_dir, _) = from_files(&[dir.path().display().to_string()]).unwrap();
        assert_eq!(from_dir.len(), 2, "a directory gives every config file in it");
        let e = from_files(&["/nonexistent/web.json".to_string()]).unwrap_err();
        assert!(e.contains("/nonexistent/web.json"), "{e}");
        std::fs::write(&json_file, "{ nope").unwrap();
        assert!(from_files(&paths).is_err());
    }

    #[test]
    fn flag_form_leaves_out_empty_fields() {
        let s = FlagService {
            name: "web".into(),
            port: 80,
            tags: vec!["a".into(), "b".into()],
            meta: [("env".to_string(), "prod".to_string())].into_iter().collect(),
            tagged_addresses: [("lan".to_string(), "10.0.0.1:8080".to_string())].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(
            s.to_json().unwrap(),
            json!({"Name":"web","Port":80,"Tags":["a","b"],"Meta":{"env":"prod"},
                   "TaggedAddresses":{"lan":{"Address":"10.0.0.1","Port":8080}}})
        );
        let bare = FlagService {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(bare.to_json().unwrap(), json!({"Name":"x"}));
    }

    #[test]
    fn service_addresses_parse_like_consul() {
        assert_eq!(parse_service_addr("10.0.0.1:80").unwrap(), ("10.0.0.1".into(), 80));
        assert_eq!(parse_service_addr("[::1]:80").unwrap(), ("::1".into(), 80));
        assert_eq!(parse_service_addr("example.com").unwrap(), ("example.com".into(), 0));
        assert_eq!(parse_service_addr("::1").unwrap(), ("::1".into(), 0));
        assert!(parse_service_addr("h:99999").is_err());
        let bad = FlagService {
            tagged_addresses: [("wan".to_string(), "h:x".to_string())].into_iter().collect(),
            ..Default::default()
        };
        assert!(bad
            .to_json()
            .unwrap_err()
            .starts_with("Invalid Tagged Address: failed to parse port"));
    }
}
