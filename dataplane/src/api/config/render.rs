//! Rendering a stored config entry: its JSON object (kept as text by the
//! state) re-emitted through the Go-compatible writer, so `?pretty` and
//! escaping match every other response, with `CreateIndex` and
//! `ModifyIndex` appended as Consul does.

use proconsul_shared::state::ConfigEntry;
use serde_json::Value;

use crate::api::json::{JsonWriter, DEPTH_MAX};

/// Writes one entry (an object) with its indexes.
pub fn write_entry(w: &mut JsonWriter<'_>, entry: &ConfigEntry) {
    w.begin_object();
    // The control plane stored a JSON object; anything else (a corrupt
    // entry) renders as its kind and name alone rather than failing.
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&entry.json) {
        for (key, value) in &fields {
            w.key(key);
            write_value(w, value, 1);
        }
    } else {
        w.key("Kind");
        w.string(&entry.kind);
        w.key("Name");
        w.string(&entry.name);
    }
    w.key("CreateIndex");
    w.u64(entry.create_index);
    w.key("ModifyIndex");
    w.u64(entry.modify_index);
    w.end_object();
}

/// Writes any JSON value at nesting `depth`; containers near the writer's
/// depth limit (an entry may sit inside a list) are
/// written as `null` (the control plane refuses such entries anyway).
pub fn write_value(w: &mut JsonWriter<'_>, value: &Value, depth: u32) {
    match value {
        Value::Null => w.null(),
        Value::Bool(b) => w.bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => w.u64(u),
            (None, Some(i), _) => w.i64(i),
            (None, None, Some(f)) => w.f64(f),
            (None, None, None) => w.null(),
        },
        Value::String(s) => w.string(s),
        Value::Array(_) | Value::Object(_) if depth + 2 >= DEPTH_MAX => w.null(),
        Value::Array(items) => {
            w.begin_array();
            for item in items {
                write_value(w, item, depth + 1);
            }
            w.end_array();
        }
        Value::Object(fields) => {
            w.begin_object();
            for (key, item) in fields {
                w.key(key);
                write_value(w, item, depth + 1);
            }
            w.end_object();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::read::json_body;

    #[test]
    fn appends_indexes_and_keeps_values() {
        let entry = ConfigEntry {
            kind: "service-defaults".into(),
            name: "web".into(),
            json: r#"{"Kind":"service-defaults","Name":"web","Meta":{"a<b":"x"},"N":-2,"F":1.5,"L":[true,null]}"#
                .into(),
            create_index: 3,
            modify_index: 9,
            ..Default::default()
        };
        let body = json_body(false, 64, |w| write_entry(w, &entry));
        let text = String::from_utf8(body).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["Meta"]["a<b"], "x");
        assert!(text.contains("a\\u003cb"), "Go's escaping: {text}");
        assert_eq!((parsed["N"].as_i64(), parsed["F"].as_f64()), (Some(-2), Some(1.5)));
        assert_eq!(parsed["L"], serde_json::json!([true, null]));
        assert_eq!(
            (parsed["CreateIndex"].as_u64(), parsed["ModifyIndex"].as_u64()),
            (Some(3), Some(9))
        );
        assert!(text.ends_with(r#""CreateIndex":3,"ModifyIndex":9}"#));
    }

    #[test]
    fn a_corrupt_entry_renders_kind_and_name() {
        let entry = ConfigEntry {
            kind: "service-defaults".into(),
            name: "web".into(),
            json: "[not an object".into(),
            ..Default::default()
        };
        let body = json_body(false, 64, |w| write_entry(w, &entry));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"Kind":"service-defaults","Name":"web","CreateIndex":0,"ModifyIndex":0}"#
        );
    }
}
