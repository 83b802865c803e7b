//! The index of a watched item in a state: a blocking query whose items
//! already moved past the client's index must not park at all.

use proconsul_shared::State;

use crate::blocking::watch::{WatchItem, WatchSet};

/// The index that governs `item` in `state` (what `X-Consul-Index` would
/// report for a query on that item alone).
pub fn item_index(state: &State, item: &WatchItem) -> u64 {
    match item {
        WatchItem::KvKey(key) => state.kv.key_index(key),
        WatchItem::KvPrefix(prefix) => state.kv.prefix_index(prefix),
        WatchItem::Nodes => state.nodes.table_index(),
        WatchItem::Service(name) => state.catalog.service_index(name),
        WatchItem::Services => state.catalog.services_table_index(),
        WatchItem::Checks => state.catalog.checks_table_index(),
        WatchItem::Events => state.events.table_index(),
        WatchItem::Everything => state.index(),
        WatchItem::Connect(name) => state.catalog.connect_index(name),
        WatchItem::Sessions => state.sessions.table_index(),
        WatchItem::PreparedQueries => state.prepared_queries.table_index(),
        WatchItem::ConfigEntries => state.config_entries.table_index(),
    }
}

/// The highest index over the items of `watch` (an empty set watches
/// everything).
pub fn watch_set_index(state: &State, watch: &WatchSet) -> u64 {
    if watch.items.is_empty() {
        return state.index();
    }
    watch.items.iter().map(|i| item_index(state, i)).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::Command;

    #[test]
    fn indexes_follow_the_state() {
        let mut s = State::default();
        s.apply_command(
            3,
            &Command::KvSet {
                key: "a/x".into(),
                value: vec![],
                flags: 0,
            },
        );
        s.apply_noop(4);
        s.apply_command(
            5,
            &Command::KvSet {
                key: "b".into(),
                value: vec![],
                flags: 0,
            },
        );
        assert_eq!(item_index(&s, &WatchItem::KvKey("a/x".into())), 3);
        assert_eq!(item_index(&s, &WatchItem::KvKey("missing".into())), 5, "table index");
        assert_eq!(item_index(&s, &WatchItem::KvPrefix("a/".into())), 3);
        assert_eq!(item_index(&s, &WatchItem::Everything), 5);
        assert_eq!(item_index(&s, &WatchItem::Nodes), 0);
        let set = WatchSet {
            items: vec![WatchItem::KvKey("a/x".into()), WatchItem::KvKey("b".into())],
        };
        assert_eq!(watch_set_index(&s, &set), 5);
        assert_eq!(watch_set_index(&s, &WatchSet::default()), 5);
    }

    #[test]
    fn catalog_items_follow_their_indexes() {
        use proconsul_shared::command::CatalogRegistration;
        use proconsul_shared::state::{HealthCheck, ServiceInstance};
        use proconsul_shared::test_fixtures::node_registration;
        let mut s = State::default();
        let register = |id: &str, name: &str, check: bool| {
            Command::CatalogRegister(CatalogRegistration {
                service: Some(ServiceInstance {
                    id: id.into(),
                    service: name.into(),
                    ..ServiceInstance::default()
                }),
                checks: if check {
                    vec![HealthCheck {
                        check_id: format!("{id}-check"),
                        service_id: id.into(),
                        ..HealthCheck::default()
                    }]
                } else {
                    Vec::new()
                },
                ..node_registration("n1", "10.0.0.1")
            })
        };
        s.apply_command(3, &register("web-1", "Web", true));
        s.apply_command(4, &register("db-1", "db", false));
        assert_eq!(item_index(&s, &WatchItem::Service("web".into())), 3);
        assert_eq!(item_index(&s, &WatchItem::Service("db".into())), 4);
        assert_eq!(item_index(&s, &WatchItem::Services), 4);
        assert_eq!(item_index(&s, &WatchItem::Checks), 3);
        assert_eq!(item_index(&s, &WatchItem::Nodes), 3);
        assert_eq!(
            item_index(&s, &WatchItem::Service("missing".into())),
            4,
            "an unknown service reports the services table"
        );
        let mut native = register("api-1", "api", false);
        if let Command::CatalogRegister(reg) = &mut native {
            if let Some(service) = reg.service.as_mut() {
                service.connect.native = true;
            }
        }
        s.apply_command(5, &native);
        assert_eq!(item_index(&s, &WatchItem::Connect("api".into())), 5);
        assert_eq!(
            item_index(&s, &WatchItem::Connect("web".into())),
            5,
            "no Connect instance: the services table"
        );
    }
}
