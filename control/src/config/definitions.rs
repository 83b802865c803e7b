//! `service`, `services`, `check` and `checks` blocks of config files.
//!
//! The blocks are kept as the JSON values they were written as (HCL files
//! are converted to the same JSON first) and decoded by the agent with the
//! same decoder as `PUT /v1/agent/service/register`, so a definition means
//! the same thing from a file and from the API. Each block may be one
//! object or a list of them (HCL turns repeated blocks into lists). Pure.

use serde_json::Value;

use super::file;
use super::flags::ConfigPath;
use super::partial::PartialConfig;
use super::ConfigError;

/// Most service or check definitions across all config files.
pub const FILE_DEFINITIONS_MAX: usize = 4096;

fn objects(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Object(_) => Ok(vec![v.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(_) => Ok(item.clone()),
                _ => Err("expected an object or a list of objects".to_string()),
            })
            .collect(),
        _ => Err("expected an object or a list of objects".to_string()),
    }
}

fn push_bounded(list: &mut Vec<Value>, more: Vec<Value>) -> Result<(), String> {
    if list.len() + more.len() > FILE_DEFINITIONS_MAX {
        return Err(format!("more than {FILE_DEFINITIONS_MAX} definitions"));
    }
    list.extend(more);
    Ok(())
}

/// Setter of `service` and `services`.
pub fn set_services(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    push_bounded(&mut c.service_definitions, objects(v)?)
}

/// Setter of `check` and `checks`.
pub fn set_checks(c: &mut PartialConfig, v: &Value) -> Result<(), String> {
    push_bounded(&mut c.check_definitions, objects(v)?)
}

/// Re-reads the `service`/`check` definitions of the config files and
/// directories (what a reload applies; other settings need a restart).
pub fn read_definitions(paths: &[ConfigPath]) -> Result<(Vec<Value>, Vec<Value>), ConfigError> {
    let mut merged = PartialConfig::default();
    for path in paths {
        let files = match path {
            ConfigPath::File(f) => vec![f.clone()],
            ConfigPath::Dir(d) => file::read_dir(d)?.0,
        };
        for f in files {
            merged.merge(file::read_file(&f)?.config);
        }
    }
    Ok((merged.service_definitions, merged.check_definitions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_object_or_a_list() {
        let mut c = PartialConfig::default();
        set_services(&mut c, &json!({"name": "a"})).unwrap();
        set_services(&mut c, &json!([{"name": "b"}, {"name": "c"}])).unwrap();
        assert_eq!(c.service_definitions.len(), 3);
        set_checks(&mut c, &json!({"name": "x", "ttl": "1s"})).unwrap();
        assert_eq!(c.check_definitions.len(), 1);
        assert!(set_services(&mut c, &json!("web")).is_err());
        assert!(set_checks(&mut c, &json!([1])).is_err());
    }

    #[test]
    fn definitions_are_read_again_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), r#"{"service":{"name":"a"}}"#).unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"services":[{"name":"b"}],"checks":[{"name":"c","ttl":"1s"}]}"#,
        )
        .unwrap();
        let (services, checks) = read_definitions(&[ConfigPath::Dir(dir.path().to_path_buf())]).unwrap();
        assert_eq!(services, vec![json!({"name": "a"}), json!({"name": "b"})]);
        assert_eq!(checks.len(), 1);
        std::fs::write(dir.path().join("c.json"), "{").unwrap();
        assert!(read_definitions(&[ConfigPath::Dir(dir.path().to_path_buf())]).is_err());
    }

    #[test]
    fn definitions_are_bounded() {
        let mut c = PartialConfig::default();
        let many = Value::Array(vec![json!({"name": "a"}); FILE_DEFINITIONS_MAX]);
        set_services(&mut c, &many).unwrap();
        let e = set_services(&mut c, &json!({"name": "one-more"})).unwrap_err();
        assert_eq!(e, format!("more than {FILE_DEFINITIONS_MAX} definitions"));
    }
}
