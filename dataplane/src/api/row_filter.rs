//! `?filter=` on catalog and health reads (HTTP.md §12): the expression is
//! parsed once per request with [`crate::filter::Filter`] and tested
//! against each row through the [`Selectable`] views below, which name
//! fields as Consul's JSON does:
//!
//! * [`NodeRow`]: a catalog node (`/v1/catalog/nodes`).
//! * [`ServiceRow`]: a `CatalogService` (`/v1/catalog/service/<s>`,
//!   `/v1/catalog/services`).
//! * [`NodeServiceRow`]: a `NodeService` (`Services` of `/v1/catalog/node/<n>`).
//! * [`EntryRow`]: a health entry (`Node`, `Service`, `Checks`).
//! * [`CheckRow`]: a `HealthCheck` (health check lists).
//!
//! A refused expression answers `400` with Consul's
//! `Failed to create boolean expression evaluator: ...`.

use proconsul_shared::state::{HealthCheck, Node, ServiceInstance};

use super::response::Response;
use crate::filter::{error_body, FieldValue, Filter, Selectable};
use crate::http::query::Query;

/// A compiled `?filter=` expression.
#[derive(Debug)]
pub struct RowFilter(Filter);

impl RowFilter {
    /// The filter of `query`: `None` when absent or blank (Consul applies
    /// no filter for `?filter=`).
    pub fn from_query(query: &Query<'_>) -> Result<Option<RowFilter>, Response> {
        match query.get("filter") {
            None => Ok(None),
            Some(expression) if expression.trim().is_empty() => Ok(None),
            Some(expression) => Filter::parse(expression)
                .map(|f| Some(RowFilter(f)))
                .map_err(|e| Response::text(400, error_body(&e))),
        }
    }
}

/// Whether `filter` keeps a catalog node.
pub fn keeps_node(filter: Option<&RowFilter>, node: &Node) -> bool {
    filter.is_none_or(|f| f.0.matches(&NodeRow(node)))
}

/// Whether `filter` keeps a service instance as a `CatalogService`.
pub fn keeps_service(filter: Option<&RowFilter>, node: Option<&Node>, instance: &ServiceInstance) -> bool {
    filter.is_none_or(|f| f.0.matches(&ServiceRow { node, instance }))
}

/// Whether `filter` keeps a service instance as a `NodeService`.
pub fn keeps_node_service(filter: Option<&RowFilter>, instance: &ServiceInstance) -> bool {
    filter.is_none_or(|f| f.0.matches(&NodeServiceRow(instance)))
}

/// Whether `filter` keeps a health entry (node, instance, its checks).
pub fn keeps_entry(
    filter: Option<&RowFilter>,
    node: &Node,
    instance: &ServiceInstance,
    checks: &[&HealthCheck],
) -> bool {
    let Some(f) = filter else {
        return true;
    };
    let checks: Vec<CheckRow<'_>> = checks.iter().map(|c| CheckRow(c)).collect();
    f.0.matches(&EntryRow {
        node,
        instance,
        checks: &checks,
    })
}

/// Whether `filter` keeps a check.
pub fn keeps_check(filter: Option<&RowFilter>, check: &HealthCheck) -> bool {
    filter.is_none_or(|f| f.0.matches(&CheckRow(check)))
}

/// A catalog node.
pub struct NodeRow<'a>(pub &'a Node);

impl Selectable for NodeRow<'_> {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        node_field(self.0, path)
    }
}

fn node_field<'a>(node: &'a Node, path: &[&str]) -> FieldValue<'a> {
    let (first, rest) = path.split_first().expect("selector paths are never empty");
    match *first {
        "ID" => FieldValue::leaf_str(&node.id, rest),
        "Node" => FieldValue::leaf_str(&node.node, rest),
        "Address" => FieldValue::leaf_str(&node.address, rest),
        "Datacenter" => FieldValue::leaf_str(&node.datacenter, rest),
        "TaggedAddresses" => FieldValue::from_map(&node.tagged_addresses, rest),
        "Meta" => FieldValue::from_map(&node.meta, rest),
        _ => FieldValue::Invalid,
    }
}

/// A `CatalogService`: node fields, then flat `Service*` fields.
pub struct ServiceRow<'a> {
    pub node: Option<&'a Node>,
    pub instance: &'a ServiceInstance,
}

impl Selectable for ServiceRow<'_> {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        let (first, rest) = path.split_first().expect("selector paths are never empty");
        let s = self.instance;
        match (*first, self.node) {
            ("ID" | "Address" | "Datacenter" | "TaggedAddresses", Some(node)) => node_field(node, path),
            ("Node", _) => FieldValue::leaf_str(&s.node, rest),
            ("NodeMeta", Some(node)) => FieldValue::from_map(&node.meta, rest),
            ("ID" | "Address" | "Datacenter" | "TaggedAddresses" | "NodeMeta", None) => FieldValue::Missing,
            ("ServiceKind", _) => FieldValue::leaf_str(&s.kind, rest),
            ("ServiceID", _) => FieldValue::leaf_str(&s.id, rest),
            ("ServiceName", _) => FieldValue::leaf_str(&s.service, rest),
            ("ServiceTags", _) => leaf(FieldValue::StrList(&s.tags), rest),
            ("ServiceAddress", _) => FieldValue::leaf_str(&s.address, rest),
            ("ServiceTaggedAddresses", _) => leaf(tagged_address_keys(s), rest),
            ("ServiceWeights", _) => weights_field(s, rest),
            ("ServiceMeta", _) => FieldValue::from_map(&s.meta, rest),
            ("ServicePort", _) => leaf(FieldValue::Int(i64::from(s.port)), rest),
            ("ServiceSocketPath", _) => FieldValue::leaf_str(&s.socket_path, rest),
            ("ServiceEnableTagOverride", _) => leaf(FieldValue::Bool(s.enable_tag_override), rest),
            _ => FieldValue::Invalid,
        }
    }
}

/// A `NodeService`.
pub struct NodeServiceRow<'a>(pub &'a ServiceInstance);

impl Selectable for NodeServiceRow<'_> {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        node_service_field(self.0, path)
    }
}

fn node_service_field<'a>(s: &'a ServiceInstance, path: &[&str]) -> FieldValue<'a> {
    let (first, rest) = path.split_first().expect("selector paths are never empty");
    {
        match *first {
            "Kind" => FieldValue::leaf_str(&s.kind, rest),
            "ID" => FieldValue::leaf_str(&s.id, rest),
            "Service" => FieldValue::leaf_str(&s.service, rest),
            "Tags" => leaf(FieldValue::StrList(&s.tags), rest),
            "Address" => FieldValue::leaf_str(&s.address, rest),
            "TaggedAddresses" => leaf(tagged_address_keys(s), rest),
            "Meta" => FieldValue::from_map(&s.meta, rest),
            "Port" => leaf(FieldValue::Int(i64::from(s.port)), rest),
            "SocketPath" => FieldValue::leaf_str(&s.socket_path, rest),
            "Weights" => weights_field(s, rest),
            "EnableTagOverride" => leaf(FieldValue::Bool(s.enable_tag_override), rest),
            _ => FieldValue::Invalid,
        }
    }
}

/// A health entry: `Node.*`, `Service.*`, `Checks.*` (any check).
pub struct EntryRow<'a> {
    pub node: &'a Node,
    pub instance: &'a ServiceInstance,
    pub checks: &'a [CheckRow<'a>],
}

impl Selectable for EntryRow<'_> {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        let (first, rest) = path.split_first().expect("selector paths are never empty");
        match *first {
            "Node" if !rest.is_empty() => node_field(self.node, rest),
            "Service" if !rest.is_empty() => node_service_field(self.instance, rest),
            "Checks" => FieldValue::from_objects(self.checks, rest),
            _ => FieldValue::Invalid,
        }
    }
}

/// A `HealthCheck`.
pub struct CheckRow<'a>(pub &'a HealthCheck);

impl Selectable for CheckRow<'_> {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        let (first, rest) = path.split_first().expect("selector paths are never empty");
        let c = self.0;
        match *first {
            "Node" => FieldValue::leaf_str(&c.node, rest),
            "CheckID" => FieldValue::leaf_str(&c.check_id, rest),
            "Name" => FieldValue::leaf_str(&c.name, rest),
            "Status" => FieldValue::leaf_str(c.status.as_str(), rest),
            "Notes" => FieldValue::leaf_str(&c.notes, rest),
            "Output" => FieldValue::leaf_str(&c.output, rest),
            "ServiceID" => FieldValue::leaf_str(&c.service_id, rest),
            "ServiceName" => FieldValue::leaf_str(&c.service_name, rest),
            "ServiceTags" => leaf(FieldValue::StrList(&c.service_tags), rest),
            "Type" => FieldValue::leaf_str(&c.check_type, rest),
            "ExposedPort" => leaf(FieldValue::Int(0), rest),
            _ => FieldValue::Invalid,
        }
    }
}

/// `value` when the selector stops here, else `Invalid`.
fn leaf<'a>(value: FieldValue<'a>, rest: &[&str]) -> FieldValue<'a> {
    if rest.is_empty() {
        value
    } else {
        FieldValue::Invalid
    }
}

fn tagged_address_keys(s: &ServiceInstance) -> FieldValue<'_> {
    FieldValue::Keys(s.tagged_addresses.keys().map(String::as_str).collect())
}

fn weights_field<'a>(s: &'a ServiceInstance, rest: &[&str]) -> FieldValue<'a> {
    match rest {
        ["Passing"] => FieldValue::Int(i64::from(s.weights.passing)),
        ["Warning"] => FieldValue::Int(i64::from(s.weights.warning)),
        _ => FieldValue::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proconsul_shared::state::CheckStatus;

    use super::*;

    fn filter(expression: &str) -> RowFilter {
        let raw = format!("filter={}", expression.replace(' ', "%20").replace('"', "%22"));
        RowFilter::from_query(&Query::parse(&raw).unwrap())
            .unwrap()
            .expect("a filter")
    }

    fn node() -> Node {
        Node {
            id: "id-1".into(),
            node: "n1".into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: BTreeMap::new(),
            meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
            create_index: 1,
            modify_index: 1,
        }
    }

    fn instance() -> ServiceInstance {
        ServiceInstance {
            node: "n1".into(),
            id: "web-1".into(),
            service: "web".into(),
            tags: vec!["primary".into(), "v1".into()],
            meta: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            port: 8080,
            ..ServiceInstance::default()
        }
    }

    fn check(status: CheckStatus) -> HealthCheck {
        HealthCheck {
            node: "n1".into(),
            check_id: "c".into(),
            status,
            ..HealthCheck::default()
        }
    }

    #[test]
    fn absent_or_blank_filter_keeps_everything() {
        for raw in ["", "filter=", "filter=%20%20"] {
            let q = Query::parse(raw).unwrap();
            assert!(RowFilter::from_query(&q).unwrap().is_none(), "{raw:?}");
        }
        assert!(keeps_check(None, &HealthCheck::default()));
    }

    #[test]
    fn bad_expressions_are_400_with_consuls_prefix() {
        let q = Query::parse("filter=Service.Tags%20contains").unwrap();
        let refused = RowFilter::from_query(&q).unwrap_err();
        assert_eq!(refused.status, 400);
        let body = String::from_utf8(refused.body).unwrap();
        assert!(
            body.starts_with("Failed to create boolean expression evaluator: "),
            "{body}"
        );
    }

    #[test]
    fn nodes_and_catalog_services() {
        let n = node();
        assert!(keeps_node(Some(&filter(r#"Meta.rack == "r1""#)), &n));
        assert!(!keeps_node(Some(&filter(r#"Node == "n2""#)), &n));
        let i = instance();
        let keeps = |e: &str| keeps_service(Some(&filter(e)), Some(&n), &i);
        assert!(keeps(r#"ServiceTags contains "primary""#));
        assert!(keeps(r#"ServiceMeta.env == "prod" and NodeMeta.rack == "r1""#));
        assert!(keeps("ServicePort == 8080"));
        assert!(!keeps(r#""v2" in ServiceTags"#));
        assert!(keeps(r#"Address == "10.0.0.1""#));
        assert!(!keeps("ServiceWeights.Passing == 3"));
    }

    #[test]
    fn node_services_and_checks() {
        let i = instance();
        assert!(keeps_node_service(Some(&filter(r#"Tags contains "v1""#)), &i));
        assert!(!keeps_node_service(Some(&filter(r#"Service != "web""#)), &i));
        let c = check(CheckStatus::Warning);
        assert!(keeps_check(Some(&filter(r#"Status == "warning""#)), &c));
        assert!(!keeps_check(Some(&filter(r#"Status == "passing""#)), &c));
    }

    #[test]
    fn health_entries_see_node_service_and_any_check() {
        let (n, i) = (node(), instance());
        let passing = check(CheckStatus::Passing);
        let critical = check(CheckStatus::Critical);
        let keeps = |e: &str, checks: &[&HealthCheck]| keeps_entry(Some(&filter(e)), &n, &i, checks);
        assert!(keeps(r#"Service.Tags contains "primary""#, &[&passing]));
        assert!(keeps(r#"Node.Meta.rack == "r1""#, &[]));
        assert!(keeps(r#"Checks.Status == "critical""#, &[&passing, &critical]));
        assert!(!keeps(r#"Checks.Status == "critical""#, &[&passing]));
        assert!(keeps("Checks is empty", &[]));
        assert!(!keeps(r#"Service.ID == "web-2""#, &[&passing]));
    }
}
