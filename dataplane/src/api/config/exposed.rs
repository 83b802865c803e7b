//! Which ingress gateways expose a service: the `ingress-gateway` config
//! entries with a listener service that names it (any case) or is the
//! wildcard `*`, which (as in Consul, where a wildcard expands to the
//! registered services) covers every service that has instances except
//! `consul` itself. Shared by `.ingress` DNS and
//! `/v1/health/ingress/<service>`.

use std::sync::Arc;

use proconsul_shared::state::{ConfigEntry, ServiceInstance, INGRESS_WILDCARD, KIND_INGRESS_GATEWAY};
use proconsul_shared::State;

/// The service a wildcard never exposes.
const CONSUL_SERVICE: &str = "consul";

/// The `ingress-gateway` entries exposing `service`, by gateway name.
pub fn exposing_gateways<'s>(state: &'s State, service: &'s str) -> impl Iterator<Item = &'s ConfigEntry> + 's {
    let registered = !service.eq_ignore_ascii_case(CONSUL_SERVICE)
        && state.catalog.instances(service).is_some_and(|i| !i.is_empty());
    state
        .config_entries
        .of_kind(KIND_INGRESS_GATEWAY)
        .map(|e| &**e)
        .filter(move |entry| {
            entry
                .ingress_listeners
                .iter()
                .flat_map(|l| l.services.iter())
                .any(|s| s.name.eq_ignore_ascii_case(service) || (s.name == INGRESS_WILDCARD && registered))
        })
}

/// The `ingress-gateway` instances registered under `gateway` (a typical
/// service that shares the name is not one).
pub fn gateway_instances<'s>(state: &'s State, gateway: &str) -> impl Iterator<Item = &'s Arc<ServiceInstance>> + 's {
    state
        .catalog
        .instances(gateway)
        .into_iter()
        .flat_map(|instances| instances.values())
        .filter(|i| i.kind == KIND_INGRESS_GATEWAY)
}

/// The index that governs what gateways expose `service` and their
/// instances (Consul's index for `/v1/health/ingress/<service>`): the
/// largest of the config entry table's, the service's (whether a wildcard
/// covers it) and each of `gateways`' service indexes. Raft indexes only
/// grow and every change stamps the current one, so it moves exactly when
/// one of those does.
pub fn exposure_index<'g>(state: &State, service: &str, gateways: impl Iterator<Item = &'g str>) -> u64 {
    gateways
        .map(|g| state.catalog.service_index(g))
        .fold(state.catalog.service_index(service), u64::max)
        .max(state.config_entries.table_index())
}
