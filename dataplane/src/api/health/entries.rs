//! The row loop of the health reads that answer `ServiceEntry` rows
//! (`/v1/health/service`, `/connect`, `/ingress`): Consul's selectors
//! (`tag`, `node-meta`, `passing`, `filter`) applied to each instance with
//! its node and its checks, then the row written.

use std::sync::Arc;

use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance};
use proconsul_shared::State;

use crate::api::json::JsonWriter;
use crate::api::row_filter::{keeps_entry, RowFilter};
use crate::api::selectors::{NodeMetaFilter, TagFilter};
use crate::api::shapes::write_service_entry;

/// The selectors of one health read, parsed from its query.
pub struct EntrySelectors<'q> {
    pub tags: TagFilter<'q>,
    pub meta: NodeMetaFilter<'q>,
    /// `?passing`: drop every instance with a check that is not passing.
    pub passing_only: bool,
    pub filter: Option<RowFilter>,
}

/// Writes the row of every instance the selectors keep, at most
/// `rows_max`. An instance whose node is gone is skipped, as Consul does.
pub fn write_entries<'a>(
    w: &mut JsonWriter<'_>,
    state: &State,
    instances: impl Iterator<Item = &'a ServiceInstance>,
    selectors: &EntrySelectors<'_>,
    rows_max: usize,
) {
    let mut checks: Vec<&HealthCheck> = Vec::new();
    let mut rows = 0;
    for instance in instances {
        if rows >= rows_max {
            break;
        }
        if !selectors.tags.matches(instance) {
            continue;
        }
        let Some(node) = state.nodes.get(&instance.node) else {
            continue;
        };
        if !selectors.meta.matches_meta(&node.meta) {
            continue;
        }
        checks.clear();
        checks.extend(state.catalog.instance_checks(instance).map(Arc::as_ref));
        if selectors.passing_only && checks.iter().any(|c| c.status != CheckStatus::Passing) {
            continue;
        }
        if !keeps_entry(selectors.filter.as_ref(), node, instance, &checks) {
            continue;
        }
        write_service_entry(w, node, instance, &checks);
        rows += 1;
    }
}
