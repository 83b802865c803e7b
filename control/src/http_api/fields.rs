//! Case-insensitive access to the fields of a decoded JSON body, the way
//! Consul's decoders see them: `EnableTagOverride`, `enableTagOverride`,
//! `enable_tag_override` and `ENABLETAGOVERRIDE` all name the same field.
//!
//! Only the *schema's* keys are matched loosely; the keys of user maps
//! (`Meta`, `NodeMeta`, `TaggedAddresses`, `Header`) are read verbatim by
//! [`Fields::string_map`] and friends. Every type error is a
//! [`DecodeError`] whose text follows Go's `encoding/json`. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a body did not decode; rendered as `Request decode failed: <text>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field name with case and underscores removed.
fn canonical(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Go's name for a JSON value's type in unmarshal errors.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(value: &Value, field: &str, go_type: &str) -> DecodeError {
    let shown = match value {
        Value::Number(n) => format!("number {n}"),
        other => json_kind(other).to_string(),
    };
    DecodeError(format!(
        "json: cannot unmarshal {shown} into Go struct field .{field} of type {go_type}"
    ))
}

/// One JSON object of a known schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'v> {
    object: &'v Map<String, Value>,
    /// Go struct name for error texts (`ServiceDefinition`, ...).
    pub struct_name: &'static str,
}

impl<'v> Fields<'v> {
    /// Views `value` as an object; anything else is a decode error.
    pub fn of(value: &'v Value, struct_name: &'static str) -> Result<Fields<'v>, DecodeError> {
        match value {
            Value::Object(object) => Ok(Fields { object, struct_name }),
            other => Err(DecodeError(format!(
                "json: cannot unmarshal {} into Go value of type structs.{struct_name}",
                json_kind(other)
            ))),
        }
    }

    /// A copy of the whole object.
    pub fn clone_object(&self) -> Map<String, Value> {
        self.object.clone()
    }

    /// The first of `names` present (any case, `_` ignored) and not null.
    pub fn get(&self, names: &[&str]) -> Option<&'v Value> {
        for name in names {
            let wanted = canonical(name);
            for (key, value) in self.object {
                if canonical(key) == wanted && !value.is_null() {
                    return Some(value);
                }
            }
        }
        None
    }

    /// A string field; absent = empty.
    pub fn string(&self, names: &[&str]) -> Result<String, DecodeError> {
        match self.get(names) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(type_error(other, names[0], "string")),
        }
    }

    /// A boolean field; absent = false.
    pub fn bool(&self, names: &[&str]) -> Result<bool, DecodeError> {
        match self.get(names) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(type_error(other, names[0], "bool")),
        }
    }

    /// An integer field within `[min, max]`; absent = `None`.
    pub fn int(&self, names: &[&str], min: i64, max: i64, go_type: &str) -> Result<Option<i64>, DecodeError> {
        match self.get(names) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
                _ => Err(type_error(v, names[0], go_type)),
            },
            Some(other) => Err(type_error(other, names[0], go_type)),
        }
    }

    /// A list of strings; absent = empty.
    pub fn strings(&self, names: &[&str]) -> Result<Vec<String>, DecodeError> {
        match self.get(names) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(type_error(other, names[0], "string")),
                })
                .collect(),
            Some(other) => Err(type_error(other, names[0], "[]string")),
        }
    }

    /// A user map of strings, keys verbatim; absent = empty.
    pub fn string_map(&self, names: &[&str]) -> Result<BTreeMap<String, String>, DecodeError> {
        match self.get(names) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(type_error(other, names[0], "string")),
                })
                .collect(),
            Some(other) => Err(type_error(other, names[0], "map[string]string")),
        }
    }

    /// A user map of string lists (HTTP `Header`), keys verbatim.
    pub fn string_list_map(&self, names: &[&str]) -> Result<BTreeMap<String, Vec<String>>, DecodeError> {
        match self.get(names) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    let list = match v {
                        Value::Array(items) => items
                            .iter()
                            .map(|item| match item {
                                Value::String(s) => Ok(s.clone()),
                                other => Err(type_error(other, names[0], "string")),
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                        other => return Err(type_error(other, names[0], "[]string")),
                    };
                    out.insert(k.clone(), list);
                }
                Ok(out)
            }
            Some(other) => Err(type_error(other, names[0], "map[string][]string")),
        }
    }

    /// A nested object of a known schema; absent = `None`.
    pub fn object(&self, names: &[&str], struct_name: &'static str) -> Result<Option<Fields<'v>>, DecodeError> {
        match self.get(names) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Fields::of(v, struct_name).map(Some),
            Some(other) => Err(type_error(other, names[0], struct_name)),
        }
    }

    /// A list of nested objects; absent = empty.
    pub fn objects(&self, names: &[&str], struct_name: &'static str) -> Result<Vec<Fields<'v>>, DecodeError> {
        match self.get(names) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|item| Fields::of(item, struct_name)).collect(),
            Some(other) => Err(type_error(other, names[0], struct_name)),
        }
    }

    /// The raw user-map object (keys verbatim) of a field, if present.
    pub fn raw_map(&self, names: &[&str]) -> Result<Option<&'v Map<String, Value>>, DecodeError> {
        match self.get(names) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(type_error(other, names[0], "map")),
        }
    }

    /// A Go duration: a string (`"10s"`) or a number of nanoseconds.
    /// Absent = 0. Negative durations count as 0 (Consul ignores them).
    pub fn duration_ns(&self, names: &[&str]) -> Result<u64, DecodeError> {
        match self.get(names) {
            None => Ok(0),
            Some(Value::String(s)) if s.is_empty() => Ok(0),
            Some(Value::String(s)) => proconsul_dataplane::api::duration::parse_go_duration_ns(s)
                .map(|ns| ns.max(0) as u64)
                .map_err(|_| DecodeError(format!("time: invalid duration \"{s}\""))),
            Some(v @ Value::Number(n)) => match n.as_i64() {
                Some(ns) => Ok(ns.max(0) as u64),
                None => Err(type_error(v, names[0], "time.Duration")),
            },
            Some(other) => Err(type_error(other, names[0], "time.Duration")),
        }
    }
}

/// Parses a request body as JSON; an empty body is an empty object.
pub fn parse_body(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| DecodeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_in_any_case_and_snake_case() {
        let v = json!({"enable_tag_override": true, "NAME": "web", "taggedAddresses": {}});
        let f = Fields::of(&v, "ServiceDefinition").unwrap();
        assert!(f.bool(&["EnableTagOverride"]).unwrap());
        assert_eq!(f.string(&["Name"]).unwrap(), "web");
        assert!(f.raw_map(&["TaggedAddresses"]).unwrap().is_some());
        assert_eq!(f.string(&["Address"]).unwrap(), "", "absent is empty");
    }

    #[test]
    fn user_map_keys_stay_verbatim() {
        let v = json!({"Meta": {"Some_Key": "v", "UPPER": "x"}});
        let f = Fields::of(&v, "ServiceDefinition").unwrap();
        let meta = f.string_map(&["Meta"]).unwrap();
        assert_eq!(meta["Some_Key"], "v");
        assert_eq!(meta["UPPER"], "x");
    }

    #[test]
    fn type_errors_read_like_go() {
        let v = json!({"Port": 70000, "Name": 5, "Tags": "x"});
        let f = Fields::of(&v, "ServiceDefinition").unwrap();
        let e = f.int(&["Port"], 0, 65535, "int").unwrap_err();
        assert_eq!(
            e.0,
            "json: cannot unmarshal number 70000 into Go struct field .Port of type int"
        );
        assert!(f.string(&["Name"]).unwrap_err().0.contains("number 5"));
        assert!(f
            .strings(&["Tags"])
            .unwrap_err()
            .0
            .contains("string into Go struct field .Tags"));
        let not_object = json!([1]);
        assert!(Fields::of(&not_object, "X").is_err());
    }

    #[test]
    fn durations_accept_strings_and_nanoseconds() {
        let v = json!({"Interval": "10s", "Timeout": 1500000000u64, "TTL": "bogus", "Neg": "-5s"});
        let f = Fields::of(&v, "CheckType").unwrap();
        assert_eq!(f.duration_ns(&["Interval"]).unwrap(), 10_000_000_000);
        assert_eq!(f.duration_ns(&["Timeout"]).unwrap(), 1_500_000_000);
        assert_eq!(f.duration_ns(&["Neg"]).unwrap(), 0);
        assert_eq!(
            f.duration_ns(&["TTL"]).unwrap_err().0,
            "time: invalid duration \"bogus\""
        );
    }

    #[test]
    fn bodies_parse_or_fail_cleanly() {
        assert_eq!(parse_body(b"").unwrap(), json!({}));
        assert!(parse_body(b"{not json").is_err());
    }
}
