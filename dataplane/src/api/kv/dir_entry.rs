//! Consul's `DirEntry` JSON, rendered by hand (the KV read hot path):
//! `{"LockIndex":0,"Key":"k","Flags":0,"Value":"dg==","Session":"s","CreateIndex":1,"ModifyIndex":2}`
//! with `Session` omitted when unlocked and `Value` `null` when empty.

use proconsul_shared::state::KvEntry;

use crate::api::json::JsonWriter;

/// Writes one entry; `with_value: false` writes `"Value":null` (transaction
/// results of non-read verbs).
pub fn write_dir_entry(w: &mut JsonWriter<'_>, entry: &KvEntry, with_value: bool) {
    w.begin_object();
    w.key("LockIndex");
    w.u64(entry.lock_index);
    w.key("Key");
    w.string(&entry.key);
    w.key("Flags");
    w.u64(entry.flags);
    w.key("Value");
    if with_value {
        w.base64_or_null(&entry.value);
    } else {
        w.null();
    }
    if let Some(session) = entry.session.as_deref().filter(|s| !s.is_empty()) {
        w.key("Session");
        w.string(session);
    }
    w.key("CreateIndex");
    w.u64(entry.create_index);
    w.key("ModifyIndex");
    w.u64(entry.modify_index);
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &[u8], session: Option<&str>) -> KvEntry {
        KvEntry {
            key: "zip".into(),
            value: value.to_vec(),
            flags: 0x2ddccbc058a50c18,
            lock_index: 1,
            session: session.map(str::to_string),
            create_index: 100,
            modify_index: 200,
        }
    }

    fn render(e: &KvEntry, with_value: bool, pretty: bool) -> String {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, pretty);
        write_dir_entry(&mut w, e, with_value);
        w.finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn field_order_and_full_u64_flags() {
        assert_eq!(
            render(&entry(b"test", None), true, false),
            r#"{"LockIndex":1,"Key":"zip","Flags":3304740253564472344,"Value":"dGVzdA==","CreateIndex":100,"ModifyIndex":200}"#
        );
    }

    #[test]
    fn session_is_shown_only_when_held() {
        let s = render(&entry(b"x", Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e")), true, false);
        assert!(s.contains(r#""Value":"eA==","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","CreateIndex""#));
        assert!(!render(&entry(b"x", Some("")), true, false).contains("Session"));
    }

    #[test]
    fn empty_and_hidden_values_are_null() {
        assert!(render(&entry(b"", None), true, false).contains(r#""Value":null"#));
        assert!(render(&entry(b"data", None), false, false).contains(r#""Value":null"#));
    }

    #[test]
    fn pretty_form() {
        let expected = "{\n    \"LockIndex\": 1,\n    \"Key\": \"zip\",\n    \"Flags\": 3304740253564472344,\n    \"Value\": \"dGVzdA==\",\n    \"CreateIndex\": 100,\n    \"ModifyIndex\": 200\n}\n";
        assert_eq!(render(&entry(b"test", None), true, true), expected);
    }
}
