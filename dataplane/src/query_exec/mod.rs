//! Executing prepared queries, shared by HTTP (`/v1/query/<q>/execute`,
//! `/explain`) and DNS (`<q>.query.consul`):
//!
//! * [`prepare`]: resolve an ID or name (ID, exact name, longest template
//!   prefix) and render a template for the name;
//! * [`template`]: template checks and rendering;
//! * [`select`]: the instances a query answers with, in order.

pub mod select;
pub mod template;

#[cfg(test)]
pub(crate) mod test_support;

use std::sync::Arc;

use proconsul_shared::state::{PreparedQuery, Resolved, TEMPLATE_BY_ID_ERROR};
use proconsul_shared::State;

pub use select::{counted_status, matching, select, Source};

/// Consul's text for an unknown query (`404` over HTTP).
pub const QUERY_NOT_FOUND: &str = "Query not found";

/// Why a query could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// No query has that ID or name, and no template prefixes it.
    NotFound,
    /// Found but not executable (a template by ID, a template that no
    /// longer renders): Consul answers `500` with the text.
    Failed(String),
}

/// The query `id_or_name` names, templates rendered for that name.
pub fn prepare(state: &State, id_or_name: &str) -> Result<Arc<PreparedQuery>, PrepareError> {
    match state.prepared_queries.resolve(id_or_name) {
        Resolved::Query(q) => Ok(q.clone()),
        Resolved::Template(t) => template::render(t, id_or_name)
            .map(Arc::new)
            .map_err(PrepareError::Failed),
        Resolved::TemplateById => Err(PrepareError::Failed(TEMPLATE_BY_ID_ERROR.into())),
        Resolved::NotFound => Err(PrepareError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::{QueryTemplate, ServiceQuery, TEMPLATE_TYPE_NAME_PREFIX_MATCH};
    use proconsul_shared::Command;

    #[test]
    fn prepare_finds_queries_and_renders_templates() {
        let mut state = State::default();
        let plain = PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: "web-query".into(),
            service: ServiceQuery {
                service: "web".into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        };
        let tmpl = PreparedQuery {
            id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            name: "svc-".into(),
            template: QueryTemplate {
                template_type: TEMPLATE_TYPE_NAME_PREFIX_MATCH.into(),
                ..QueryTemplate::default()
            },
            service: ServiceQuery {
                service: "${name.suffix}".into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        };
        state.apply_command(1, &Command::PreparedQueryCreate(plain.clone()));
        state.apply_command(2, &Command::PreparedQueryCreate(tmpl.clone()));
        assert_eq!(prepare(&state, "WEB-QUERY").unwrap().service.service, "web");
        assert_eq!(prepare(&state, &plain.id).unwrap().name, "web-query");
        assert_eq!(prepare(&state, "svc-redis").unwrap().service.service, "redis");
        assert_eq!(prepare(&state, "nope"), Err(PrepareError::NotFound));
        assert_eq!(
            prepare(&state, &tmpl.id),
            Err(PrepareError::Failed(TEMPLATE_BY_ID_ERROR.into()))
        );
    }
}
