//! Consul's `HealthCheck` and its `Definition` (Go's
//! `structs.HealthCheckDefinition` marshalled through its `MarshalJSON`:
//! `Interval`, `Timeout`, `DeregisterCriticalServiceAfter` as Go duration
//! strings first, then the runner fields; every field omitted when empty,
//! so a TTL or serf check has `"Definition":{}`).

use proconsul_shared::state::{CheckDefinition, HealthCheck};

use crate::api::duration_text::GoDurationText;
use crate::api::json::JsonWriter;

/// Writes one check object.
pub fn write_health_check(w: &mut JsonWriter<'_>, check: &HealthCheck) {
    w.begin_object();
    w.key("Node");
    w.string(&check.node);
    w.key("CheckID");
    w.string(&check.check_id);
    w.key("Name");
    w.string(&check.name);
    w.key("Status");
    w.string(check.status.as_str());
    w.key("Notes");
    w.string(&check.notes);
    w.key("Output");
    w.string(&check.output);
    w.key("ServiceID");
    w.string(&check.service_id);
    w.key("ServiceName");
    w.string(&check.service_name);
    w.key("ServiceTags");
    w.string_array(check.service_tags.iter().map(String::as_str));
    w.key("Type");
    w.string(&check.check_type);
    w.key("Interval");
    write_duration_or_empty(w, check.definition.interval_ns);
    w.key("Timeout");
    write_duration_or_empty(w, check.definition.timeout_ns);
    w.key("ExposedPort");
    w.u64(0);
    w.key("Definition");
    write_check_definition(w, &check.definition);
    w.key("CreateIndex");
    w.u64(check.create_index);
    w.key("ModifyIndex");
    w.u64(check.modify_index);
    w.end_object();
}

/// Writes a check's `Definition` object.
pub fn write_check_definition(w: &mut JsonWriter<'_>, d: &CheckDefinition) {
    w.begin_object();
    for (name, ns) in [
        ("Interval", d.interval_ns),
        ("Timeout", d.timeout_ns),
        ("DeregisterCriticalServiceAfter", d.deregister_critical_service_after_ns),
    ] {
        if ns != 0 {
            w.key(name);
            w.string(GoDurationText::new(ns).as_str());
        }
    }
    if !d.http.is_empty() {
        w.key("HTTP");
        w.string(&d.http);
    }
    if !d.tls_server_name.is_empty() {
        w.key("TLSServerName");
        w.string(&d.tls_server_name);
    }
    if d.tls_skip_verify {
        w.key("TLSSkipVerify");
        w.bool(true);
    }
    if !d.header.is_empty() {
        w.key("Header");
        w.begin_object();
        for (name, values) in &d.header {
            w.key(name);
            w.string_array(values.iter().map(String::as_str));
        }
        w.end_object();
    }
    if !d.method.is_empty() {
        w.key("Method");
        w.string(&d.method);
    }
    if !d.body.is_empty() {
        w.key("Body");
        w.string(&d.body);
    }
    if !d.tcp.is_empty() {
        w.key("TCP");
        w.string(&d.tcp);
    }
    w.end_object();
}

/// A Go duration string, or `""` when unset (the top-level `Interval` and
/// `Timeout` of a check).
fn write_duration_or_empty(w: &mut JsonWriter<'_>, ns: u64) {
    if ns == 0 {
        w.string("");
    } else {
        w.string(GoDurationText::new(ns).as_str());
    }
}
