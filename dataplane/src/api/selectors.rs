//! The legacy row selectors of catalog and health reads: `?node-meta=k:v`
//! (repeatable, every pair must match), `?tag=t` (repeatable, the instance
//! must carry every tag, compared case-insensitively as Consul does) and
//! `?passing` (presence, or a Go `ParseBool` value).

use std::collections::BTreeMap;

use proconsul_shared::state::{Node, ServiceInstance};

use super::response::Response;
use crate::http::query::Query;

/// `?node-meta=k:v` pairs; a pair without `:` has an empty value (Go's
/// `strings.SplitN(v, ":", 2)`).
#[derive(Debug, Default)]
pub struct NodeMetaFilter<'q> {
    pairs: Vec<(&'q str, &'q str)>,
}

impl<'q> NodeMetaFilter<'q> {
    /// The pairs given in `query`.
    pub fn from_query(query: &'q Query<'_>) -> NodeMetaFilter<'q> {
        let pairs = query
            .get_all("node-meta")
            .map(|pair| pair.split_once(':').unwrap_or((pair, "")))
            .collect();
        NodeMetaFilter { pairs }
    }

    /// Whether no pair was given (every node matches).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether `meta` holds every pair.
    pub fn matches_meta(&self, meta: &BTreeMap<String, String>) -> bool {
        self.pairs
            .iter()
            .all(|(k, v)| meta.get(*k).is_some_and(|have| have == v))
    }

    /// Whether `node` matches; a missing node matches only an empty filter.
    pub fn matches(&self, node: Option<&Node>) -> bool {
        match node {
            Some(n) => self.matches_meta(&n.meta),
            None => self.is_empty(),
        }
    }
}

/// `?tag=` values: an instance must carry all of them.
#[derive(Debug, Default)]
pub struct TagFilter<'q> {
    tags: Vec<&'q str>,
}

impl<'q> TagFilter<'q> {
    /// The tags given in `query`.
    pub fn from_query(query: &'q Query<'_>) -> TagFilter<'q> {
        TagFilter {
            tags: query.get_all("tag").collect(),
        }
    }

    /// Whether `instance` carries every tag (case-insensitive).
    pub fn matches(&self, instance: &ServiceInstance) -> bool {
        self.tags
            .iter()
            .all(|want| instance.tags.iter().any(|t| t.eq_ignore_ascii_case(want)))
    }
}

/// `?passing`: absent → false; present and empty → true; else Go's
/// `strconv.ParseBool`, with Consul's `400` for anything else.
pub fn parse_passing(query: &Query<'_>) -> Result<bool, Response> {
    let Some(value) = query.get("passing") else {
        return Ok(false);
    };
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Response::text(400, "Invalid value for ?passing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(tags: &[&str]) -> ServiceInstance {
        ServiceInstance {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..ServiceInstance::default()
        }
    }

    #[test]
    fn node_meta_pairs_must_all_match() {
        let q = Query::parse("node-meta=rack:r1&node-meta=os:linux").unwrap();
        let f = NodeMetaFilter::from_query(&q);
        let mut meta = BTreeMap::from([("rack".to_string(), "r1".to_string())]);
        assert!(!f.matches_meta(&meta));
        meta.insert("os".into(), "linux".into());
        assert!(f.matches_meta(&meta));
        meta.insert("os".into(), "bsd".into());
        assert!(!f.matches_meta(&meta));
        assert!(!f.matches(None));
    }

    #[test]
    fn node_meta_without_colon_means_empty_value() {
        let q = Query::parse("node-meta=flag").unwrap();
        let f = NodeMetaFilter::from_query(&q);
        assert!(f.matches_meta(&BTreeMap::from([("flag".to_string(), String::new())])));
        assert!(!f.matches_meta(&BTreeMap::new()));
        let none = Query::parse("").unwrap();
        assert!(NodeMetaFilter::from_query(&none).matches(None));
    }

    #[test]
    fn every_tag_must_match_case_insensitively() {
        let q = Query::parse("tag=v1&tag=Primary").unwrap();
        let f = TagFilter::from_query(&q);
        assert!(f.matches(&instance(&["primary", "v1", "x"])));
        assert!(!f.matches(&instance(&["v1"])));
        let none = Query::parse("").unwrap();
        assert!(TagFilter::from_query(&none).matches(&instance(&[])));
    }

    #[test]
    fn passing_accepts_presence_and_go_bools() {
        let parse = |raw: &str| parse_passing(&Query::parse(raw).unwrap());
        assert!(!parse("").unwrap());
        assert!(parse("passing").unwrap());
        assert!(parse("passing=").unwrap());
        assert!(parse("passing=true").unwrap());
        assert!(parse("passing=1").unwrap());
        assert!(!parse("passing=false").unwrap());
        assert!(!parse("passing=F").unwrap());
        let refused = parse("passing=yes").unwrap_err();
        assert_eq!(
            (refused.status, refused.body),
            (400, b"Invalid value for ?passing".to_vec())
        );
    }
}
