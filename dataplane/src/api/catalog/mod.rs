//! The catalog endpoints, `/v1/catalog/*` (HTTP.md §3), answered from the
//! replica; `register` and `deregister` are forwarded whole to the control
//! plane.
//!
//! * [`lists`]: `datacenters`, `nodes`, `services`.
//! * [`service`]: `service/<name>` (`tag`, `node-meta`).
//! * [`node`]: `node/<name>` and `node-services/<name>`.
//!
//! Index per endpoint (never 0, see `QueryMeta::new`): nodes → the node
//! table; services → the services table; service → that service's index;
//! node and node-services → the higher of the node and services tables.

mod connect;
mod lists;
mod node;
mod service;

pub use connect::{connect, Selection};
pub use lists::{datacenters, nodes, services};
pub use node::{node, node_services};
pub use service::service;

#[cfg(test)]
pub(crate) mod tests;
