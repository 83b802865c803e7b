//! `<service>.ingress[.<dc>]` (DNS.md §1): the healthy instances of every
//! ingress gateway whose config entry exposes the service, answered like
//! a `.service` lookup (A/AAAA, or SRV with the gateway's port).
//!
//! Which gateways expose the service is [`exposing_gateways`] (a named
//! listener service or the wildcard `*`). The gateways' instances are
//! built once per version of what the set reads (the config entry table,
//! the asked service, which the wildcard depends on, and each exposing
//! gateway's service) with [`service_cache::build`] into a small per-core
//! cache, so an unrelated write (a KV put) does not rebuild it.

use std::sync::Arc;

use proconsul_shared::state::ServiceInstance;
use proconsul_shared::State;

use crate::api::config::exposed::{exposing_gateways, exposure_index, gateway_instances};
use crate::dns::service_cache::{self, CachedService};
use crate::dns::wire::ResponseWriter;

use super::selection::SelectionCache;
use super::{Ctx, Scratch};

/// Gateway instances considered for one name.
pub const INGRESS_INSTANCES_MAX: usize = 10_000;

/// What an `.ingress` set read besides the config entry table: the names
/// (lower-case) of the gateways exposing the asked service.
#[derive(Debug)]
struct IngressReads {
    service: String,
    gateways: Vec<String>,
}

impl IngressReads {
    /// The largest index over what the set read.
    fn version(&self, state: &State) -> u64 {
        exposure_index(state, &self.service, self.gateways.iter().map(String::as_str))
    }
}

/// Per-core cache of `.ingress` answers' instance sets, by name, at the
/// version of what each read.
#[derive(Debug, Default)]
pub struct IngressCache {
    selections: SelectionCache<(), IngressReads>,
}

impl IngressCache {
    /// The gateway instances exposing `service` (lower-case) in `state`.
    fn get(&mut self, state: &State, service: &str) -> Arc<CachedService> {
        let (built, ()) = self
            .selections
            .get_or_build_from(
                service,
                |reads| reads.version(state),
                || {
                    let reads = IngressReads {
                        service: service.to_string(),
                        gateways: exposing_gateways(state, service)
                            .map(|e| e.name.to_ascii_lowercase())
                            .collect(),
                    };
                    let instances = instances_of(state, &reads.gateways);
                    let built = service_cache::build(state, reads.version(state), instances.into_iter());
                    Some((built, (), reads))
                },
            )
            .expect("an ingress set is always built");
        built
    }

    /// How many sets were built (tests: proves reuse).
    #[cfg(test)]
    pub fn builds(&self) -> u64 {
        self.selections.builds()
    }
}

/// The `ingress-gateway` instances of `gateways`, at most
/// [`INGRESS_INSTANCES_MAX`].
fn instances_of<'s>(state: &'s State, gateways: &[String]) -> Vec<&'s ServiceInstance> {
    gateways
        .iter()
        .flat_map(|g| gateway_instances(state, g))
        .map(|i| &**i)
        .take(INGRESS_INSTANCES_MAX)
        .collect()
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
    use proconsul_shared::command::CatalogRegistration;
    use proconsul_shared::state::{ConfigEntry, IngressListener, IngressService, KIND_INGRESS_GATEWAY};
    use proconsul_shared::test_fixtures::node_registration;
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
            service: Some(ServiceInstance {
                id: format!("{name}-{node}"),
                service: name.into(),
                kind: KIND_INGRESS_GATEWAY.into(),
                port,
                ..Default::default()
            }),
            ..node_registration(node, address)
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
        assert_eq!(cache.builds(), 3, "same version: reused");
        set_check(&mut state, 8, "g1", "gw-named-g1", "chk", "critical");
        assert_eq!(
            ports(&cache.get(&state, "web")),
            [22000],
            "critical gateways are left out"
        );
        assert_eq!(cache.builds(), 4);
        let kv = Command::KvSet {
            key: "unrelated".into(),
            value: Vec::new(),
            flags: 0,
        };
        state.apply_command(9, &kv);
        register_service(&mut state, 10, "n1", "db-1", "db", &[], "", 5432);
        cache.get(&state, "web");
        assert_eq!(cache.builds(), 4, "a KV write or another service: reused");
        set_check(&mut state, 11, "g1", "gw-named-g1", "chk", "passing");
        assert_eq!(
            ports(&cache.get(&state, "web")),
            [21000, 22000],
            "a gateway's check: rebuilt"
        );
        assert_eq!(cache.builds(), 5);
        expose(&mut state, 12, "gw-named", &["db"]);
        assert_eq!(ports(&cache.get(&state, "web")), [22000], "the entry changed: rebuilt");
        assert_eq!(cache.builds(), 6);
    }
}
