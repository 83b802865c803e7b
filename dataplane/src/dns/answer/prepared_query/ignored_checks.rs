//! The `.query` answer set of a query with `Service.IgnoreCheckIDs`: an
//! instance critical only through an ignored check is answered, as HTTP
//! execute returns it, and its health (passing or warning, and so its SRV
//! weight and `only_passing` membership) is judged without the ignored
//! checks ([`service_cache::build_judged`] with the query's own judgement).
//! Built only when the set is rebuilt, never per answer.

use std::sync::Arc;

use proconsul_shared::state::{CheckStatus, ServiceInstance, ServiceQuery};
use proconsul_shared::State;

use crate::dns::service_cache::{self, CachedService};
use crate::query_exec::counted_status;

/// `selected` (the instances `query` keeps, none critical by the checks
/// it counts) as a cached set at `version`.
pub fn build_ignoring_checks(
    state: &State,
    query: &ServiceQuery,
    version: u64,
    selected: &[&Arc<ServiceInstance>],
) -> CachedService {
    let built = service_cache::build_judged(state, version, selected.iter().map(|i| &***i), |inst| {
        counted_status(state, query, inst)
    });
    debug_assert!(
        built.instances.iter().all(|i| i.status != CheckStatus::Critical),
        "the selection keeps no critical instance"
    );
    built
}
