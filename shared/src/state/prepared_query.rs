//! Prepared queries (`/v1/query`): stored service queries executed by ID,
//! by name, or (templates) by the longest name prefix.
//!
//! The table keeps each query by ID, a lower-cased name index (Consul's
//! memdb name index is case-insensitive) and a lower-cased index of the
//! templates' names for the prefix lookup. The integrity rules Consul's
//! state store enforces (a name is unique, a name never aliases another
//! query's ID, one catch-all template at most) are checked here, at apply
//! time, so every replica refuses the same writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::events::uuid_halves;

/// Most prepared queries kept; a create beyond it is refused.
pub const PREPARED_QUERIES_MAX: usize = 4096;
/// Largest prepared query, in bytes of [`PreparedQuery::size_bytes`]
/// (also the largest `/v1/query` request body).
pub const PREPARED_QUERY_BYTES_MAX: usize = 64 * 1024;
/// The only template type Consul knows.
pub const TEMPLATE_TYPE_NAME_PREFIX_MATCH: &str = "name_prefix_match";

/// `Template` of a query: when `template_type` is set the query is a
/// template, rendered for the name it is executed by.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct QueryTemplate {
    /// `Type`: `""` (not a template) or `name_prefix_match`.
    pub template_type: String,
    /// `Regexp`: matched against the full name; `${match(N)}` are its groups.
    pub regexp: String,
    /// `RemoveEmptyTags`: drop tags that render empty.
    pub remove_empty_tags: bool,
}

/// One entry of `Failover.Targets`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct FailoverTarget {
    pub peer: String,
    pub datacenter: String,
}

/// `Service.Failover`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct QueryFailover {
    /// `NearestN`: how many other datacenters to try by RTT (>= 0).
    pub nearest_n: i64,
    pub datacenters: Vec<String>,
    pub targets: Vec<FailoverTarget>,
}

/// `Service`: what the query selects.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ServiceQuery {
    /// The service name (required).
    pub service: String,
    pub failover: QueryFailover,
    /// Checks whose status never excludes an instance.
    pub ignore_check_ids: Vec<String>,
    /// Drop instances with a warning check too.
    pub only_passing: bool,
    /// `_agent`, `_ip`, or a node name: that node first.
    pub near: String,
    /// Required tags; `!tag` excludes instances with `tag`.
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_meta: BTreeMap<String, String>,
    /// `Connect.Enabled`.
    pub connect: bool,
    pub peer: String,
}

/// A prepared query (Consul's `PreparedQuery`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct PreparedQuery {
    /// A UUID chosen by the control plane at create time.
    pub id: String,
    /// Optional; unique (case-insensitively) among queries.
    pub name: String,
    pub session: String,
    pub token: String,
    pub template: QueryTemplate,
    pub service: ServiceQuery,
    /// `DNS.TTL`: a Go duration, or `""` for the agent's `service_ttl`.
    pub dns_ttl: String,
    /// Set by the state machine; ignored in a write.
    pub create_index: u64,
    pub modify_index: u64,
}

/// Bytes counted per field beside its text (framing, numbers, flags).
const FIELD_OVERHEAD_BYTES: usize = 8;

impl PreparedQuery {
    /// Whether the query is a template (Consul: `Template.Type` is set).
    pub fn is_template(&self) -> bool {
        !self.template.template_type.is_empty()
    }

    /// The query's size as [`PREPARED_QUERY_BYTES_MAX`] counts it: every
    /// text field plus a fixed overhead per field.
    pub fn size_bytes(&self) -> usize {
        let text = |s: &String| s.len() + FIELD_OVERHEAD_BYTES;
        let list = |l: &Vec<String>| l.iter().map(text).sum::<usize>();
        let map = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| text(k) + text(v)).sum::<usize>();
        let s = &self.service;
        [&self.id, &self.name, &self.session, &self.token, &self.dns_ttl]
            .into_iter()
            .map(text)
            .sum::<usize>()
            + text(&self.template.template_type)
            + text(&self.template.regexp)
            + text(&s.service)
            + text(&s.near)
            + text(&s.peer)
            + list(&s.ignore_check_ids)
            + list(&s.tags)
            + list(&s.failover.datacenters)
            + s.failover
                .targets
                .iter()
                .map(|t| text(&t.peer) + text(&t.datacenter))
                .sum::<usize>()
            + map(&s.node_meta)
            + map(&s.service_meta)
            + 8 * FIELD_OVERHEAD_BYTES
    }
}

/// What an ID or name resolves to ([`PreparedQueryTable::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// A plain query, by ID or exact name.
    Query(&'a Arc<PreparedQuery>),
    /// A template (by exact name or longest prefix), to render for the name.
    Template(&'a Arc<PreparedQuery>),
    /// A template named by its ID: Consul refuses to render those.
    TemplateById,
    NotFound,
}

/// Consul's answer when a template is executed by its ID.
pub const TEMPLATE_BY_ID_ERROR: &str = "prepared query templates can only be resolved up by name, not by ID";

/// Every prepared query.
#[derive(Debug, Clone, Default)]
pub struct PreparedQueryTable {
    by_id: OrdMap<String, Arc<PreparedQuery>>,
    /// Lower-cased non-empty name → ID.
    by_name: OrdMap<String, String>,
    /// Lower-cased template name (possibly empty) → ID.
    templates: OrdMap<String, String>,
    /// Session ID → IDs of the queries bound to it (`Session`), so a
    /// session's invalidation finds its queries without a table walk.
    by_session: OrdMap<String, OrdSet<String>>,
    table_index: u64,
}

impl PreparedQueryTable {
    /// The query with this exact ID.
    pub fn get(&self, id: &str) -> Option<&Arc<PreparedQuery>> {
        self.by_id.get(id)
    }

    /// Every query, by ID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PreparedQuery>> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The index of the last write to the table (deletes included).
    pub fn table_index(&self) -> u64 {
        self.table_index
    }

    /// IDs of the queries bound to session `session_id`, in ID order.
    pub fn bound_to_session<'a>(&'a self, session_id: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.by_session.get(session_id).into_iter().flat_map(|ids| ids.iter())
    }

    /// Consul's lookup order: an ID (a template by ID is refused), then an
    /// exact name (case-insensitive), then the template with the longest
    /// name that prefixes `id_or_name`. An empty input finds nothing.
    pub fn resolve(&self, id_or_name: &str) -> Resolved<'_> {
        if id_or_name.is_empty() {
            return Resolved::NotFound;
        }
        if uuid_halves(id_or_name).is_some() {
            if let Some(q) = self.by_id.get(id_or_name) {
                return if q.is_template() {
                    Resolved::TemplateById
                } else {
                    Resolved::Query(q)
                };
            }
        }
        let lower = id_or_name.to_lowercase();
        if let Some(q) = self.by_name.get(&lower).and_then(|id| self.by_id.get(id)) {
            return if q.is_template() {
                Resolved::Template(q)
            } else {
                Resolved::Query(q)
            };
        }
        let ends = (0..=lower.len()).rev().filter(|&end| lower.is_char_boundary(end));
        for end in ends {
            if let Some(q) = self.templates.get(&lower[..end]).and_then(|id| self.by_id.get(id)) {
                return Resolved::Template(q);
            }
        }
        Resolved::NotFound
    }

    /// Consul's integrity rules for storing `query` (its ID already set):
    /// `Err` carries Consul's message.
    pub fn check_set(&self, query: &PreparedQuery) -> Result<(), String> {
        let same = |other_id: &String| *other_id == query.id;
        let lower = query.name.to_lowercase();
        if !query.name.is_empty() {
            if self.by_name.get(&lower).is_some_and(|id| !same(id)) {
                return Err(format!("name '{}' aliases an existing query name", query.name));
            }
        } else if query.is_template() && self.templates.get("").is_some_and(|id| !same(id)) {
            return Err("a query template with an empty name already exists".into());
        }
        if uuid_halves(&query.name).is_some() && self.by_id.contains_key(&query.name) {
            return Err(format!("name '{}' aliases an existing query ID", query.name));
        }
        Ok(())
    }

    /// Stores `query` (indexes set by the caller), replacing the query
    /// with its ID and that query's name entries.
    pub fn put(&mut self, query: PreparedQuery) {
        assert!(
            query.modify_index >= self.table_index,
            "prepared query index must not go back: {} after {}",
            query.modify_index,
            self.table_index
        );
        self.table_index = query.modify_index;
        self.insert(query);
    }

    /// Stores `query` and its name entries, replacing the query with its
    /// ID; the table index is the caller's.
    fn insert(&mut self, query: PreparedQuery) {
        self.unindex(&query.id);
        let lower = query.name.to_lowercase();
        if !query.name.is_empty() {
            self.by_name.insert(lower.clone(), query.id.clone());
        }
        if query.is_template() {
            self.templates.insert(lower, query.id.clone());
        }
        if !query.session.is_empty() {
            self.by_session
                .entry(query.session.clone())
                .or_default()
                .insert(query.id.clone());
        }
        self.by_id.insert(query.id.clone(), Arc::new(query));
    }

    /// Removes the query with `id`; returns whether it existed. The table
    /// index moves either way.
    pub fn delete(&mut self, id: &str, index: u64) -> bool {
        assert!(
            index >= self.table_index,
            "prepared query index must not go back: {index} after {}",
            self.table_index
        );
        self.table_index = index;
        self.unindex(id);
        self.by_id.remove(id).is_some()
    }

    fn unindex(&mut self, id: &str) {
        let Some(old) = self.by_id.get(id) else {
            return;
        };
        let lower = old.name.to_lowercase();
        if self.by_name.get(&lower).is_some_and(|i| i == id) {
            self.by_name.remove(&lower);
        }
        if self.templates.get(&lower).is_some_and(|i| i == id) {
            self.templates.remove(&lower);
        }
        if !old.session.is_empty() {
            let session = old.session.clone();
            if let Some(ids) = self.by_session.get_mut(&session) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_session.remove(&session);
                }
            }
        }
    }

    /// Rebuilds the table from a snapshot.
    pub(crate) fn restore(queries: Vec<PreparedQuery>, table_index: u64) -> PreparedQueryTable {
        let mut table = PreparedQueryTable::default();
        let mut newest = 0;
        for q in queries {
            debug_assert!(
                q.modify_index <= table_index,
                "a snapshot query is newer than its table: {} > {table_index}",
                q.modify_index
            );
            newest = newest.max(q.modify_index);
            table.insert(q);
        }
        table.table_index = table_index.max(newest);
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "11111111-2222-3333-4444-555555555555";
    const ID_B: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    const ID_C: &str = "99999999-8888-7777-6666-555555555555";

    fn query(id: &str, name: &str, index: u64) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            service: ServiceQuery {
                service: "web".into(),
                ..ServiceQuery::default()
            },
            create_index: index,
            modify_index: index,
            ..PreparedQuery::default()
        }
    }

    fn template(id: &str, name: &str, index: u64) -> PreparedQuery {
        PreparedQuery {
            template: QueryTemplate {
                template_type: TEMPLATE_TYPE_NAME_PREFIX_MATCH.into(),
                ..QueryTemplate::default()
            },
            ..query(id, name, index)
        }
    }

    #[test]
    fn resolves_by_id_then_name_then_longest_template_prefix() {
        let mut t = PreparedQueryTable::default();
        t.put(query(ID_A, "Web-Primary", 5));
        t.put(template(ID_B, "geo-", 6));
        t.put(template(ID_C, "geo-eu-", 7));
        assert_eq!(t.resolve(ID_A), Resolved::Query(t.get(ID_A).unwrap()));
        assert_eq!(t.resolve("web-primary"), Resolved::Query(t.get(ID_A).unwrap()));
        assert_eq!(t.resolve("geo-us-web"), Resolved::Template(t.get(ID_B).unwrap()));
        assert_eq!(t.resolve("GEO-EU-web"), Resolved::Template(t.get(ID_C).unwrap()));
        assert_eq!(t.resolve("geo-"), Resolved::Template(t.get(ID_B).unwrap()));
        assert_eq!(t.resolve(ID_B), Resolved::TemplateById);
        assert_eq!(t.resolve("other"), Resolved::NotFound);
        assert_eq!(t.resolve(""), Resolved::NotFound);
        assert_eq!(t.table_index(), 7);
    }

    #[test]
    fn a_catch_all_template_matches_any_name() {
        let mut t = PreparedQueryTable::default();
        t.put(template(ID_A, "", 3));
        assert_eq!(t.resolve("anything.at.all"), Resolved::Template(t.get(ID_A).unwrap()));
        assert_eq!(
            t.check_set(&template(ID_B, "", 4)),
            Err("a query template with an empty name already exists".into())
        );
        assert_eq!(t.check_set(&template(ID_A, "", 4)), Ok(()), "updating itself");
        assert_eq!(
            t.check_set(&query(ID_B, "", 4)),
            Ok(()),
            "unnamed plain queries are fine"
        );
    }

    #[test]
    fn names_are_unique_and_never_alias_an_id() {
        let mut t = PreparedQueryTable::default();
        t.put(query(ID_A, "web", 2));
        assert_eq!(
            t.check_set(&query(ID_B, "WEB", 3)),
            Err("name 'WEB' aliases an existing query name".into())
        );
        assert_eq!(t.check_set(&query(ID_A, "web", 3)), Ok(()));
        assert_eq!(
            t.check_set(&query(ID_B, ID_A, 3)),
            Err(format!("name '{ID_A}' aliases an existing query ID"))
        );
    }

    #[test]
    fn rename_and_delete_keep_the_indexes_consistent() {
        let mut t = PreparedQueryTable::default();
        t.put(template(ID_A, "old-", 2));
        t.put(query(ID_A, "new", 3));
        assert_eq!(t.resolve("old-x"), Resolved::NotFound, "the old template name is gone");
        assert_eq!(t.resolve("new"), Resolved::Query(t.get(ID_A).unwrap()));
        assert!(t.delete(ID_A, 4));
        assert!(!t.delete(ID_A, 5));
        assert_eq!(t.resolve("new"), Resolved::NotFound);
        assert!(t.is_empty());
        assert_eq!(t.table_index(), 5);
    }

    #[test]
    fn restore_rebuilds_every_index() {
        let mut t = PreparedQueryTable::default();
        // IDs in one order, indexes in the other: restore must not care.
        t.put(template(ID_B, "geo-", 2));
        t.put(query(ID_A, "web", 3));
        let copy = PreparedQueryTable::restore(t.iter().map(|q| (**q).clone()).collect(), 9);
        assert_eq!(copy.len(), 2);
        assert_eq!(copy.table_index(), 9);
        assert!(matches!(copy.resolve("geo-x"), Resolved::Template(q) if q.id == ID_B));
        assert!(matches!(copy.resolve("WEB"), Resolved::Query(q) if q.id == ID_A));
    }

    #[test]
    fn size_counts_every_variable_field() {
        let q = query(ID_A, "web", 1);
        let base = q.size_bytes();
        let mut bigger = q.clone();
        bigger.service.tags.push("x".repeat(100));
        bigger.service.node_meta.insert("k".into(), "v".into());
        assert_eq!(
            bigger.size_bytes(),
            base + 100 + FIELD_OVERHEAD_BYTES + 2 + 2 * FIELD_OVERHEAD_BYTES
        );
    }

    #[test]
    #[should_panic(expected = "prepared query index must not go back")]
    fn an_index_going_back_is_a_bug() {
        let mut t = PreparedQueryTable::default();
        t.put(query(ID_A, "a", 5));
        t.put(query(ID_B, "b", 4));
    }
}
