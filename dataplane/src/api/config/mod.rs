//! `/v1/config`: config entries. Reads are answered from the replica
//! ([`read`]); `PUT /v1/config` and `DELETE /v1/config/<kind>/<name>` are
//! forwarded whole to the control plane, which validates and replicates
//! them. [`render`] writes an entry as Consul does; [`gateway_services`](mod@gateway_services)
//! lists what an ingress gateway exposes.

pub mod exposed;
pub mod gateway_services;
pub mod read;
pub mod render;

pub use gateway_services::gateway_services;
pub use read::{get_or_list, CONSUL_KINDS};
