//! Whether a user event is for this agent: Consul applies an event's
//! node, service and tag filters (Go regular expressions, unanchored) on
//! the receiving agent. A filter that does not compile matches nothing.

use std::collections::HashMap;

use proconsul_shared::state::UserEvent;
use proconsul_shared::State;
use regex::Regex;

/// Compiled size limit of one filter expression.
pub const FILTER_REGEX_BYTES_MAX: usize = 64 * 1024;

/// Compiles filters once per distinct expression (events usually share
/// theirs) for one list request.
#[derive(Default)]
pub struct FilterCache {
    compiled: HashMap<String, Option<Regex>>,
}

impl FilterCache {
    fn regex(&mut self, expr: &str) -> Option<&Regex> {
        self.compiled
            .entry(expr.to_string())
            .or_insert_with(|| compile(expr).ok())
            .as_ref()
    }
}

/// Compiles one filter with the size limit.
pub fn compile(expr: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(expr)
        .size_limit(FILTER_REGEX_BYTES_MAX)
        .build()
}

/// Whether `event` passes its filters on the agent `node` of `state`.
pub fn is_for_agent(event: &UserEvent, node: &str, state: &State, cache: &mut FilterCache) -> bool {
    if !event.node_filter.is_empty() {
        match cache.regex(&event.node_filter) {
            Some(re) if re.is_match(node) => {}
            _ => return false,
        }
    }
    if event.service_filter.is_empty() {
        return true;
    }
    let Some(service_re) = cache.regex(&event.service_filter).cloned() else {
        return false;
    };
    let tag_re = if event.tag_filter.is_empty() {
        None
    } else {
        match cache.regex(&event.tag_filter) {
            Some(re) => Some(re.clone()),
            None => return false,
        }
    };
    state.catalog.node_services(node).any(|s| {
        service_re.is_match(&s.service)
            && match &tag_re {
                None => true,
                Some(re) => s.tags.iter().any(|t| re.is_match(t)),
            }
    })
}
