//! The health endpoints, `/v1/health/*` (HTTP.md §4), answered from the
//! replica.
//!
//! * [`checks`]: `node/<n>`, `checks/<s>`, `state/<state>` (lists of checks).
//! * [`service`]: `service/<s>` (node, instance and the checks that decide
//!   its health: its node's checks and its own).
//! * [`ingress`](mod@ingress): `ingress/<s>` (the same entries for the
//!   ingress gateways exposing the service).
//!
//! Index per endpoint (never 0): checks and service → that service's
//! index; node → the higher of the checks and node tables; state → the
//! checks table.

mod checks;
mod entries;
mod ingress;
mod service;

pub use checks::{node_checks, service_checks, state_checks};
pub use ingress::ingress;
pub use service::{connect, service};

#[cfg(test)]
mod tests;
