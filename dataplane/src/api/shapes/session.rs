//! Consul's JSON shape of a `Session` (`structs.Session`), field order as
//! Consul's struct: `ID`, `Name`, `Node`, `LockDelay` (a Go
//! `time.Duration`, so an integer of nanoseconds), `Behavior`, `TTL`,
//! `NodeChecks`, `ServiceChecks`, `CreateIndex`, `ModifyIndex`. Empty
//! check lists render `null`, as Go's nil slices do (the default
//! `NodeChecks` is `["serfHealth"]`, so it is rarely empty).

use proconsul_shared::state::Session;

use crate::api::json::JsonWriter;

/// Writes one session object.
pub fn write_session(w: &mut JsonWriter<'_>, s: &Session) {
    w.begin_object();
    w.key("ID");
    w.string(&s.id);
    w.key("Name");
    w.string(&s.name);
    w.key("Node");
    w.string(&s.node);
    w.key("LockDelay");
    w.u64(s.lock_delay_ns);
    w.key("Behavior");
    w.string(s.behavior.as_str());
    w.key("TTL");
    w.string(&s.ttl);
    w.key("NodeChecks");
    if s.node_checks.is_empty() {
        w.null();
    } else {
        w.string_array(s.node_checks.iter().map(String::as_str));
    }
    w.key("ServiceChecks");
    if s.service_checks.is_empty() {
        w.null();
    } else {
        w.begin_array();
        for check in &s.service_checks {
            w.begin_object();
            w.key("ID");
            w.string(&check.id);
            w.key("Namespace");
            w.string(&check.namespace);
            w.end_object();
        }
        w.end_array();
    }
    w.key("CreateIndex");
    w.u64(s.create_index);
    w.key("ModifyIndex");
    w.u64(s.modify_index);
    w.end_object();
}

/// Bytes reserved per rendered session (a UUID, a node name, one check).
pub const SESSION_BYTES_ESTIMATE: usize = 320;

#[cfg(test)]
mod tests {
    use proconsul_shared::state::{SessionBehavior, SessionServiceCheck};

    use super::*;

    fn render(s: &Session, pretty: bool) -> String {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, pretty);
        write_session(&mut w, s);
        w.finish();
        String::from_utf8(out).expect("the writer emits UTF-8")
    }

    fn session() -> Session {
        Session {
            id: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
            name: "test-session".into(),
            node: "node1".into(),
            lock_delay_ns: 15_000_000_000,
            behavior: SessionBehavior::Release,
            ttl: "30s".into(),
            node_checks: vec!["serfHealth".into()],
            service_checks: Vec::new(),
            create_index: 1086449,
            modify_index: 1086450,
        }
    }

    #[test]
    fn consuls_field_order_lock_delay_in_ns_and_null_service_checks() {
        assert_eq!(
            render(&session(), false),
            r#"{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"test-session","Node":"node1","LockDelay":15000000000,"Behavior":"release","TTL":"30s","NodeChecks":["serfHealth"],"ServiceChecks":null,"CreateIndex":1086449,"ModifyIndex":1086450}"#
        );
    }

    #[test]
    fn service_checks_behavior_delete_and_empty_node_checks() {
        let s = Session {
            behavior: SessionBehavior::Delete,
            ttl: String::new(),
            lock_delay_ns: 0,
            node_checks: Vec::new(),
            service_checks: vec![SessionServiceCheck {
                id: "web-check".into(),
                namespace: String::new(),
            }],
            ..session()
        };
        assert_eq!(
            render(&s, false),
            r#"{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"test-session","Node":"node1","LockDelay":0,"Behavior":"delete","TTL":"","NodeChecks":null,"ServiceChecks":[{"ID":"web-check","Namespace":""}],"CreateIndex":1086449,"ModifyIndex":1086450}"#
        );
    }

    #[test]
    fn pretty_prints_with_four_spaces() {
        let text = render(&session(), true);
        assert!(text.contains("\n    \"ID\": \"adf4238a"), "{text}");
        assert!(
            text.contains("\n    \"NodeChecks\": [\n        \"serfHealth\"\n    ]"),
            "{text}"
        );
    }
}
