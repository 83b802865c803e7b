//! `<service>.connect[.<dc>]` (DNS.md §1): the Connect-capable instances
//! for a service (its `connect-proxy` instances and its Connect-native
//! ones), healthy ones only, answered like a `.service` lookup: A/AAAA of
//! each instance's address, or SRV with its port (a proxy's own port).
//! No tag form; the local datacenter only; the service's TTL.
//!
//! The instance set is built with [`service_cache::build`] into a small
//! per-core cache keyed by the lower-cased name and the service's Connect
//! index (which moves with every change to those instances, their checks
//! and their nodes), so steady-state answers do not rebuild.

use std::sync::Arc;

use proconsul_shared::State;

use crate::dns::service_cache::{self, CachedService};
use crate::dns::wire::ResponseWriter;

use super::selection::SelectionCache;
use super::{Ctx, Scratch};

/// Per-core cache of `.connect` instance sets, by name, at the service's
/// Connect index.
#[derive(Debug, Default)]
pub struct ConnectCache {
    selections: SelectionCache<()>,
}

impl ConnectCache {
    /// The Connect instances for `service` (lower-case) in `state`.
    fn get(&mut self, state: &State, service: &str) -> Arc<CachedService> {
        let index = state.catalog.connect_index(service);
        let (built, ()) = self
            .selections
            .get_or_build(service, index, || {
                let instances = state.catalog.connect_instances(service);
                let built = service_cache::build(
                    state,
                    index,
                    instances.into_iter().flat_map(|i| i.values()).map(|i| &**i),
                );
                Some((built, ()))
            })
            .expect("a connect set is always built");
        built
    }
}

impl Ctx<'_> {
    /// Answers `<service>.connect`: the rcode, and whether answers were
    /// cut for room.
    pub(super) fn connect(
        &self,
        w: &mut ResponseWriter<'_>,
        qtype: u16,
        service: &str,
        scratch: &mut Scratch,
    ) -> (u8, bool) {
        // `service` comes from the parsed question, already lower-case.
        let cached = scratch.connect.get(self.state, service);
        self.answer_service_set(w, qtype, service, &cached, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::test_support::set_check;
    use crate::replica::fixtures::register_node;
    use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
    use proconsul_shared::state::{ServiceConnect, ServiceInstance, ServiceProxy, KIND_CONNECT_PROXY};
    use proconsul_shared::Command;

    fn register(state: &mut State, index: u64, node: &str, service: ServiceInstance) {
        let reg = CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: node.into(),
                address: String::new(),
                datacenter: "dc1".into(),
                tagged_addresses: Default::default(),
                meta: Default::default(),
            },
            skip_node_update: true,
            service: Some(service),
            checks: Vec::new(),
        };
        state.apply_command(index, &Command::CatalogRegister(reg));
    }

    fn proxy(id: &str, destination: &str, port: u16) -> ServiceInstance {
        ServiceInstance {
            id: id.into(),
            service: format!("{destination}-sidecar-proxy"),
            kind: KIND_CONNECT_PROXY.into(),
            port,
            proxy: ServiceProxy {
                destination_service_name: destination.into(),
                ..ServiceProxy::default()
            },
            ..ServiceInstance::default()
        }
    }

    fn ports(cached: &CachedService) -> Vec<u16> {
        cached.instances.iter().map(|i| i.port).collect()
    }

    fn state() -> State {
        let mut state = State::default();
        register_node(&mut state, 1, "n1", "10.0.0.1", &[]);
        register_node(&mut state, 2, "n2", "10.0.0.2", &[]);
        let web = ServiceInstance {
            id: "web".into(),
            service: "web".into(),
            port: 80,
            ..ServiceInstance::default()
        };
        register(&mut state, 3, "n1", web);
        register(&mut state, 4, "n1", proxy("web-proxy-1", "web", 21000));
        register(&mut state, 5, "n2", proxy("web-proxy-2", "web", 21001));
        let native = ServiceInstance {
            id: "web-native".into(),
            service: "web".into(),
            port: 8443,
            connect: ServiceConnect { native: true },
            ..ServiceInstance::default()
        };
        register(&mut state, 6, "n2", native);
        state
    }

    #[test]
    fn proxies_and_native_instances_but_not_the_plain_service() {
        let state = state();
        let mut cache = ConnectCache::default();
        assert_eq!(ports(&cache.get(&state, "web")), [21000, 8443, 21001]);
        assert!(cache.get(&state, "web-sidecar-proxy").instances.is_empty());
        assert!(cache.get(&state, "nothing").instances.is_empty());
    }

    #[test]
    fn steady_state_reuses_and_a_critical_proxy_drops_out() {
        let mut state = state();
        let mut cache = ConnectCache::default();
        cache.get(&state, "web");
        cache.get(&state, "web");
        let write = Command::KvSet {
            key: "k".into(),
            value: vec![],
            flags: 0,
        };
        state.apply_command(7, &write);
        cache.get(&state, "web");
        assert_eq!(
            cache.selections.builds(),
            1,
            "an unrelated write keeps the Connect index: reused"
        );
        set_check(&mut state, 8, "n1", "", "c0", "passing");
        cache.get(&state, "web");
        assert_eq!(cache.selections.builds(), 2, "a node check on a proxy's node rebuilds");
        set_check(&mut state, 9, "n2", "web-proxy-2", "c1", "critical");
        assert_eq!(ports(&cache.get(&state, "web")), [21000, 8443]);
    }
}
