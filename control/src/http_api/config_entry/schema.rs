//! The fields a config entry kind has, checked the way Consul's
//! `DecodeConfigEntry` checks them: mapstructure with weakly typed input
//! (a number or bool where a string goes becomes its text, and so on),
//! Go durations from text, and every key the kind does not have refused
//! (`invalid config key "X"`). A checked value is rewritten in the form
//! Consul stores and renders, so a `GET` answers exactly what is kept.
//!
//! Field names are already canonical (`config_entry::canonical_key`).
//! Pure.

use serde_json::{Map, Number, Value};

use super::super::check_def::Rejection;
use crate::http_api::render::go_duration;

/// Most invalid keys named in one refusal (the rest are counted).
pub const INVALID_KEYS_LISTED_MAX: usize = 16;

/// What one field holds.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Go `string`.
    Text,
    /// Go `bool`.
    Flag,
    /// Go `int`.
    Integer,
    /// Go `time.Duration` the kind renders as text (`"15s"`, its own
    /// `MarshalJSON`).
    DurationText,
    /// Go `time.Duration` rendered as its nanoseconds (plain encoding).
    DurationNs,
    /// `[]string`.
    TextList,
    /// `map[string]string`; keys kept as sent.
    TextMap,
    /// `map[string]interface{}` or a structure this server keeps opaque:
    /// any value, kept as sent.
    Opaque,
    /// A nested structure.
    Object(&'static [Field]),
    /// A list of nested structures.
    ObjectList(&'static [Field]),
    /// A map from a name to a nested structure.
    ObjectMap(&'static [Field]),
}

/// One field of a structure.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
}

/// Shorthand for a field table entry.
pub const fn field(name: &'static str, shape: Shape) -> Field {
    Field { name, shape }
}

/// Keys every kind accepts at the top level besides its own fields.
const COMMON_TOP_LEVEL_KEYS: [&str; 4] = ["Kind", "Name", "CreateIndex", "ModifyIndex"];

/// `400 Request decoding failed: <why>`.
fn decoding_failed(why: impl std::fmt::Display) -> Rejection {
    Rejection::bad_request(format!("Request decoding failed: {why}"))
}

/// mapstructure's error list: `1 error(s) decoding:\n\n* <error>`.
fn mapstructure_error(error: impl std::fmt::Display) -> Rejection {
    decoding_failed(format!("1 error(s) decoding:\n\n* {error}"))
}

/// mapstructure's words for the Go type a JSON value decodes to.
pub fn go_type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "unconvertible type 'nil'",
        Value::Bool(_) => "unconvertible type 'bool'",
        Value::Number(_) => "unconvertible type 'float64'",
        Value::String(_) => "unconvertible type 'string'",
        Value::Array(_) => "unconvertible type '[]interface {}'",
        Value::Object(_) => "unconvertible type 'map[string]interface {}'",
    }
}

fn type_error(path: &str, want: &str, value: &Value) -> Rejection {
    mapstructure_error(format!("'{path}' expected type '{want}', got {}", go_type_of(value)))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks the top-level object of an entry against `fields`, rewriting
/// values to their stored form.
pub fn check_entry(object: &mut Map<String, Value>, fields: &'static [Field]) -> Result<(), Rejection> {
    check_object(object, fields, "", &COMMON_TOP_LEVEL_KEYS)
}

fn check_object(
    object: &mut Map<String, Value>,
    fields: &'static [Field],
    path: &str,
    also_allowed: &[&str],
) -> Result<(), Rejection> {
    let mut unknown: Vec<String> = Vec::new();
    for (key, value) in object.iter_mut() {
        if also_allowed.contains(&key.as_str()) {
            continue;
        }
        let Some(f) = fields.iter().find(|f| f.name == key) else {
            unknown.push(join(path, key));
            continue;
        };
        if value.is_null() {
            continue;
        }
        check_value(value, f.shape, &join(path, key))?;
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(invalid_keys(&unknown))
}

/// Consul's `validateUnusedKeys` as a go-multierror list.
fn invalid_keys(unknown: &[String]) -> Rejection {
    let noun = if unknown.len() == 1 { "error" } else { "errors" };
    let mut text = format!("{} {noun} occurred:\n", unknown.len());
    for key in unknown.iter().take(INVALID_KEYS_LISTED_MAX) {
        let last = key.rsplit('.').next().unwrap_or(key);
        if last.to_ascii_lowercase().ends_with("namespace") {
            text.push_str(&format!(
                "\t* invalid config key {key:?}, namespaces are a consul enterprise feature\n"
            ));
        } else {
            text.push_str(&format!("\t* invalid config key {key:?}\n"));
        }
    }
    if unknown.len() > INVALID_KEYS_LISTED_MAX {
        text.push_str(&format!(
            "\t* ... and {} more invalid keys\n",
            unknown.len() - INVALID_KEYS_LISTED_MAX
        ));
    }
    text.push('\n');
    decoding_failed(text)
}

fn check_value(value: &mut Value, shape: Shape, path: &str) -> Result<(), Rejection> {
    match shape {
        Shape::Text => *value = Value::String(weak_text(value, path)?),
        Shape::Flag => *value = Value::Bool(weak_flag(value, path)?),
        Shape::Integer => *value = Value::Number(Number::from(weak_integer(value, path)?)),
        Shape::DurationText => *value = Value::String(duration_text(duration_ns(value, path)?)),
        Shape::DurationNs => *value = Value::Number(Number::from(duration_ns(value, path)?)),
        Shape::TextList => {
            let items = list_items(value, path)?;
            for (i, item) in items.iter_mut().enumerate() {
                *item = Value::String(weak_text(item, &format!("{path}[{i}]"))?);
            }
        }
        Shape::TextMap => {
            let Value::Object(map) = value else {
                return Err(type_error(path, "map[string]string", value));
            };
            for (key, item) in map.iter_mut() {
                *item = Value::String(weak_text(item, &format!("{path}[{key}]"))?);
            }
        }
        Shape::Opaque => {}
        Shape::Object(fields) => {
            let Value::Object(map) = value else {
                return Err(mapstructure_error(format!(
                    "'{path}' expected a map, got '{}'",
                    kind_name(value)
                )));
            };
            check_object(map, fields, path, &[])?;
        }
        Shape::ObjectList(fields) => {
            let items = list_items(value, path)?;
            for (i, item) in items.iter_mut().enumerate() {
                let item_path = format!("{path}[{i}]");
                let Value::Object(map) = item else {
                    return Err(mapstructure_error(format!(
                        "'{item_path}' expected a map, got '{}'",
                        kind_name(item)
                    )));
                };
                check_object(map, fields, &item_path, &[])?;
            }
        }
        Shape::ObjectMap(fields) => {
            let Value::Object(map) = value else {
                return Err(mapstructure_error(format!(
                    "'{path}' expected a map, got '{}'",
                    kind_name(value)
                )));
            };
            for (key, item) in map.iter_mut() {
                let item_path = format!("{path}[{key}]");
                match item {
                    Value::Null => {}
                    Value::Object(inner) => check_object(inner, fields, &item_path, &[])?,
                    other => {
                        return Err(mapstructure_error(format!(
                            "'{item_path}' expected a map, got '{}'",
                            kind_name(other)
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// A list, or a single value where a list goes (mapstructure's weak
/// "lift to a one-element slice").
fn list_items<'v>(value: &'v mut Value, path: &str) -> Result<&'v mut Vec<Value>, Rejection> {
    if value.is_object() {
        return Err(mapstructure_error(format!(
            "'{path}': source data must be an array or slice, got map"
        )));
    }
    if !value.is_array() {
        let single = value.take();
        *value = Value::Array(vec![single]);
    }
    match value {
        Value::Array(items) => Ok(items),
        _ => unreachable!("made an array above"),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` for a JSON number.
fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    n.to_string()
}

fn weak_text(value: &Value, path: &str) -> Result<String, Rejection> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => Ok(number_text(n)),
        other => Err(type_error(path, "string", other)),
    }
}

fn weak_flag(value: &Value, path: &str) -> Result<bool, Rejection> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) if s.is_empty() => Ok(false),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(mapstructure_error(format!(
                "cannot parse '{path}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
            ))),
        },
        other => Err(type_error(path, "bool", other)),
    }
}

fn weak_integer(value: &Value, path: &str) -> Result<i64, Rejection> {
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
            _ => Err(type_error(path, "int", value)),
        },
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse::<i64>().map_err(|_| {
            mapstructure_error(format!(
                "cannot parse '{path}' as int: strconv.ParseInt: parsing {s:?}: invalid syntax"
            ))
        }),
        other => Err(type_error(path, "int", other)),
    }
}

/// A `time.Duration` field: Go duration text or nanoseconds.
fn duration_ns(value: &Value, path: &str) -> Result<i64, Rejection> {
    match value {
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => proconsul_dataplane::api::duration::parse_go_duration_ns(s)
            .map_err(|_| mapstructure_error(format!("error decoding '{path}': time: invalid duration {s:?}"))),
        other => weak_integer(other, path),
    }
}

/// Go's `time.Duration.String()`, negative durations included.
pub fn duration_text(ns: i64) -> String {
    if ns < 0 {
        format!("-{}", go_duration(ns.unsigned_abs()))
    } else {
        go_duration(ns.unsigned_abs())
    }
}

/// The nanoseconds of a stored `DurationText` value (`0` when absent).
pub fn stored_duration_ns(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::String(s)) => proconsul_dataplane::api::duration::parse_go_duration_ns(s).unwrap_or(0),
        _ => 0,
    }
}

/// A stored text field (`""` when absent); valid after [`check_entry`].
pub fn text_of<'v>(object: &'v Map<String, Value>, key: &str) -> &'v str {
    object.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A stored nested structure, if present.
pub fn object_of<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Map<String, Value>> {
    object.get(key).and_then(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INNER: &[Field] = &[field("Mode", Shape::Text)];
    const FIELDS: &[Field] = &[
        field("Protocol", Shape::Text),
        field("Flag", Shape::Flag),
        field("Count", Shape::Integer),
        field("Timeout", Shape::DurationText),
        field("Interval", Shape::DurationNs),
        field("Names", Shape::TextList),
        field("Meta", Shape::TextMap),
        field("Config", Shape::Opaque),
        field("MeshGateway", Shape::Object(INNER)),
        field("Items", Shape::ObjectList(INNER)),
        field("Subsets", Shape::ObjectMap(INNER)),
    ];

    fn check(v: Value) -> Result<Value, Rejection> {
        let Value::Object(mut map) = v else { panic!("an object") };
        check_entry(&mut map, FIELDS)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn weak_input_is_stored_in_its_go_form() {
        let out = check(json!({
            "Kind": "k", "Name": "n", "Protocol": 5, "Flag": "true", "Count": "7",
            "Timeout": 1_500_000_000u64, "Interval": "2s", "Names": "one",
            "Meta": {"a": 1}, "Config": {"any": [1, {"x": null}]},
            "MeshGateway": {"Mode": "local"}, "Items": [{"Mode": true}], "Subsets": {"v1": {"Mode": "x"}}
        }))
        .unwrap();
        assert_eq!(out["Protocol"], "5");
        assert_eq!(out["Flag"], true);
        assert_eq!(out["Count"], 7);
        assert_eq!(out["Timeout"], "1.5s");
        assert_eq!(out["Interval"], 2_000_000_000u64);
        assert_eq!(out["Names"], json!(["one"]));
        assert_eq!(out["Meta"]["a"], "1");
        assert_eq!(out["Config"], json!({"any": [1, {"x": null}]}));
        assert_eq!(out["Items"][0]["Mode"], "1");
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        let e = check(json!({"Nope": 1, "MeshGateway": {"Mode": "local"}})).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                400,
                "Request decoding failed: 1 error occurred:\n\t* invalid config key \"Nope\"\n\n"
            )
        );
        let e = check(json!({"MeshGateway": {"Other": 1}})).unwrap_err();
        assert!(
            e.message.contains("invalid config key \"MeshGateway.Other\""),
            "{}",
            e.message
        );
        let e = check(json!({"Subsets": {"v1": {"Filter2": ""}}})).unwrap_err();
        assert!(e.message.contains("\"Subsets[v1].Filter2\""), "{}", e.message);
        let e = check(json!({"Namespace": "ns"})).unwrap_err();
        assert!(
            e.message.contains("namespaces are a consul enterprise feature"),
            "{}",
            e.message
        );
        let many: Map<String, Value> = (0..40).map(|i| (format!("K{i:02}"), json!(1))).collect();
        let e = check(Value::Object(many)).unwrap_err();
        assert!(e.message.starts_with("Request decoding failed: 40 errors occurred:"));
        assert!(e.message.contains("and 24 more invalid keys"), "{}", e.message);
    }

    #[test]
    fn bad_values_get_mapstructure_texts() {
        let cases = [
            (
                json!({"Protocol": {}}),
                "'Protocol' expected type 'string', got unconvertible type 'map[string]interface {}'",
            ),
            (json!({"Flag": "maybe"}), "cannot parse 'Flag' as bool"),
            (json!({"Count": "x"}), "cannot parse 'Count' as int"),
            (
                json!({"Timeout": "soon"}),
                "error decoding 'Timeout': time: invalid duration \"soon\"",
            ),
            (
                json!({"MeshGateway": "local"}),
                "'MeshGateway' expected a map, got 'string'",
            ),
            (
                json!({"Items": {"Mode": "x"}}),
                "'Items': source data must be an array or slice",
            ),
            (json!({"Subsets": {"v1": 3}}), "'Subsets[v1]' expected a map"),
            (json!({"Meta": {"a": []}}), "'Meta[a]' expected type 'string'"),
        ];
        for (body, want) in cases {
            let e = check(body.clone()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert!(
                e.message
                    .starts_with("Request decoding failed: 1 error(s) decoding:\n\n* "),
                "{}",
                e.message
            );
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }

    #[test]
    fn durations_render_like_go() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(90_000_000_000), "1m30s");
        assert_eq!(duration_text(-1_000_000_000), "-1s");
        assert_eq!(stored_duration_ns(Some(&json!("-1s"))), -1_000_000_000);
    }
}
