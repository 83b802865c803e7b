//! Consul's JSON shape of a `PreparedQuery` (field order as Consul's
//! struct; empty lists and maps render `null`, as Go's nil ones do).

use std::collections::BTreeMap;

use proconsul_shared::state::PreparedQuery;

use crate::api::json::JsonWriter;
use crate::api::shapes::write_string_map;

/// Writes one query object.
pub fn write_query(w: &mut JsonWriter<'_>, q: &PreparedQuery) {
    w.begin_object();
    for (key, value) in [
        ("ID", &q.id),
        ("Name", &q.name),
        ("Session", &q.session),
        ("Token", &q.token),
    ] {
        w.key(key);
        w.string(value);
    }
    w.key("Template");
    w.begin_object();
    w.key("Type");
    w.string(&q.template.template_type);
    w.key("Regexp");
    w.string(&q.template.regexp);
    w.key("RemoveEmptyTags");
    w.bool(q.template.remove_empty_tags);
    w.end_object();
    let s = &q.service;
    w.key("Service");
    w.begin_object();
    w.key("Service");
    w.string(&s.service);
    w.key("Failover");
    w.begin_object();
    w.key("NearestN");
    w.i64(s.failover.nearest_n);
    w.key("Datacenters");
    strings_or_null(w, &s.failover.datacenters);
    w.key("Targets");
    if s.failover.targets.is_empty() {
        w.null();
    } else {
        w.begin_array();
        for t in &s.failover.targets {
            w.begin_object();
            w.key("Peer");
            w.string(&t.peer);
            w.key("Datacenter");
            w.string(&t.datacenter);
            w.end_object();
        }
        w.end_array();
    }
    w.end_object();
    w.key("OnlyPassing");
    w.bool(s.only_passing);
    w.key("IgnoreCheckIDs");
    strings_or_null(w, &s.ignore_check_ids);
    w.key("Near");
    w.string(&s.near);
    w.key("Tags");
    strings_or_null(w, &s.tags);
    w.key("NodeMeta");
    map_or_null(w, &s.node_meta);
    w.key("ServiceMeta");
    map_or_null(w, &s.service_meta);
    w.key("Peer");
    w.string(&s.peer);
    w.key("Connect");
    w.begin_object();
    w.key("Enabled");
    w.bool(s.connect);
    w.end_object();
    w.end_object();
    w.key("DNS");
    write_dns(w, &q.dns_ttl);
    w.key("CreateIndex");
    w.u64(q.create_index);
    w.key("ModifyIndex");
    w.u64(q.modify_index);
    w.end_object();
}

/// `{"TTL": ttl}`.
pub fn write_dns(w: &mut JsonWriter<'_>, ttl: &str) {
    w.begin_object();
    w.key("TTL");
    w.string(ttl);
    w.end_object();
}

fn strings_or_null(w: &mut JsonWriter<'_>, items: &[String]) {
    if items.is_empty() {
        w.null();
    } else {
        w.string_array(items.iter().map(String::as_str));
    }
}

/// A Go map that is `nil` when empty: `null`, else the shapes' writer.
fn map_or_null(w: &mut JsonWriter<'_>, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        w.null();
    } else {
        write_string_map(w, map);
    }
}
