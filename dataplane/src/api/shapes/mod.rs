//! Consul's catalog and health JSON shapes, written straight into the
//! response buffer with the Go-compatible [`JsonWriter`] (no intermediate
//! values): field names and order as Consul's Go structs marshal them.
//!
//! * [`node`]: `Node` (catalog nodes, `Node` of health entries).
//! * [`service`]: `CatalogService` (flat `Service*` fields) and
//!   `NodeService` (nested, catalog node and health `Service`).
//! * [`check`]: `HealthCheck` with its `Definition`.
//! * [`service_entry`]: `ServiceEntry` (`Node`, `Service`, `Checks`).

mod check;
mod node;
mod service;
mod service_entry;
mod session;

pub use check::{write_check_definition, write_health_check};
pub use node::write_node;
pub use service::{write_catalog_service, write_node_service};
pub use service_entry::write_service_entry;
pub use session::{write_session, SESSION_BYTES_ESTIMATE};

use std::collections::BTreeMap;

use super::json::JsonWriter;

/// A `map[string]string` (Go sorts the keys; so does the `BTreeMap`).
pub fn write_string_map(w: &mut JsonWriter<'_>, map: &BTreeMap<String, String>) {
    w.begin_object();
    for (k, v) in map {
        w.key(k);
        w.string(v);
    }
    w.end_object();
}

#[cfg(test)]
mod tests;
