//! `<service>.ingress[.<dc>]` (DNS.md §1): the healthy instances of every
//! ingress gateway whose config entry exposes the service, answered like
//! a `.service` lookup (A/AAAA, or SRV with the gateway's port).
//!
//! A listener service names the service, or is the wildcard `*`, which
//! (as in Consul, where a wildcard expands to the registered services)
//! exposes every service that has instances, except `consul` itself.
//! The gateways' instances are built once per state version per name
//! with [`service_cache::build`] into a small per-core cache.

use std::sync::Arc;

use proconsul_shared::state::{ServiceInstance, INGRESS_WILDCARD, KIND_INGRESS_GATEWAY};
use proconsul_shared::State;

use crate::dns::service_cache::{self, CachedService};
use crate::dns::wire::ResponseWriter;

use super::selection::SelectionCache;
use super::{Ctx, Scratch};

/// Gateway instances considered for one name.
pub const INGRESS_INSTANCES_MAX: usize = 10_000;
/// The service the wildcard never exposes.
const CONSUL_SERVICE: &str = "consul";

/// Per-core cache of `.ingress` answers' instance sets, by name, at the
/// state index.
#[derive(Debug, Default)]
pub struct IngressCache {
    selections: SelectionCache<()>,
}

impl IngressCache {
    /// The gateway instances exposing `service` (lower-case) in `state`.
    fn get(&mut self, state: &State, service: &str) -> Arc<CachedService> {
        let state_index = state.index();
        let (built, ()) = self
            .selections
            .get_or_build(service, state_index, || {
                let instances = gateway_instances(state, service);
                Some((service_cache::build(state, state_index, instances.into_iter()), ()))
            })
            .expect("an ingress set is always built");
        built
    }
}

/// The `ingress-gateway` instances of every gateway exposing `service`.
fn gateway_instances<'s>(state: &'s State, service: &str) -> Vec<&'s ServiceInstance> {
    let registered = service != CONSUL_SERVICE && state.catalog.instances(service).is_some_and(|i| !i.is_empty());
    let mut out = Vec::new();
    for entry in state.config_entries.of_kind(KIND_INGRESS_GATEWAY) {
        let exposed = entry
            .ingress_listeners
            .iter()
            .flat_map(|l| l.services.iter())
            .any(|s| s.name.eq_ignore_ascii_case(service) || (s.name == INGRESS_WILDCARD && registered));
        if !exposed {
            continue;
        }
        let Some(instances) = state.catalog.instances(&entry.name) else {
            continue;
        };
        let gateways = instances.values().filter(|i| i.kind == KIND_INGRESS_GATEWAY);
        out.extend(gateways.map(|i| &**i).take(INGRESS_INSTANCES_MAX - out.len()));
        if out.len() >= INGRESS_INSTANCES_MAX {
            break;
        }
    }
    out
}

impl Ctx<'_> {
    /// Answers `<service>.ingress`: the rcode, and whether answers were
    /// cut for room.
    pub(super) fn ingress(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        service: &str,
        scratch: &mut Scratch,
    ) -> (u8, bool) {
        // `service` comes from the parsed question, already lower-case.
        let cached = scratch.ingress.get(self.state, service);
        self.answer_service_set(w, qtype, service, &cached, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::test_support::{register_service, set_check};
    use crate::replica::fixtures::register_node;
    use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
    use proconsul_shared::state::{ConfigEntry, IngressListener, IngressService};
    use proconsul_shared::Command;

    fn expose(state: &mut State, index: u64, gateway: &str, services: &[&str]) {
        let entry = ConfigEntry {
            kind: KIND_INGRESS_GATEWAY.into(),
            name: gateway.into(),
            json: "{}".into(),
            ingress_listeners: vec![IngressListener {
                port: 8080,
                protocol: "http".into(),
                services: services
                    .iter()
                    .map(|s| IngressService {
                        name: s.to_string(),
                        hosts: Vec::new(),
                    })
                    .collect(),
            }],
            ..Default::default()
        };
        state.apply_command(index, &Command::ConfigEntrySet { entry, cas: None });
    }

    fn register_gateway(state: &mut State, index: u64, node: &str, address: &str, name: &str, port: u16) {
        let reg = CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: node.into(),
                address: address.into(),
                datacenter: "dc1".into(),
                tagged_addresses: Default::default(),
                meta: Default::default(),
            },
            skip_node_update: false,
            service: Some(ServiceInstance {
                id: format!("{name}-{node}"),
                service: name.into(),
                kind: KIND_INGRESS_GATEWAY.into(),
                port,
                ..Default::default()
            }),
            checks: Vec::new(),
        };
        state.apply_command(index, &Command::CatalogRegister(reg));
    }

    fn ports(cached: &CachedService) -> Vec<u16> {
        cached.instances.iter().map(|i| i.port).collect()
    }

    #[test]
    fn gateways_listing_the_service_or_the_wildcard() {
        let mut state = State::default();
        register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
        register_service(&mut state, 2, "n1", "web-1", "web", &[], "", 80);
        register_gateway(&mut state, 3, "g1", "10.0.1.1", "gw-named", 21000);
        register_gateway(&mut state, 4, "g2", "10.0.1.2", "gw-wild", 22000);
        // A typical service that happens to share the gateway's name is not a gateway.
        register_service(&mut state, 5, "n1", "gw-named-typical", "gw-named", &[], "", 9);
        expose(&mut state, 6, "gw-named", &["Web"]);
        expose(&mut state, 7, "gw-wild", &["*"]);
        let mut cache = IngressCache::default();
        assert_eq!(ports(&cache.get(&state, "web")), [21000, 22000]);
        assert_eq!(ports(&cache.get(&state, "consul")), Vec::<u16>::new(), "never consul");
        assert_eq!(
            ports(&cache.get(&state, "unregistered")),
            Vec::<u16>::new(),
            "the wildcard exposes registered services only"
        );
        cache.get(&state, "web");
        assert_eq!(cache.selections.builds(), 3, "same version: reused");
        set_check(&mut state, 8, "g1", "gw-named-g1", "chk", "critical");
        assert_eq!(
            ports(&cache.get(&state, "web")),
            [22000],
            "critical gateways are left out"
        );
        assert_eq!(cache.selections.builds(), 4);
    }
}
