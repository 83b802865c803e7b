//! Write benchmarks against a cluster (Proconsul or etcd).
//!
//! * [`protocol`]: the bytes of a KV write per API and what acknowledges it (pure).
//! * [`client`]: one blocking keep-alive connection (IO, bounded by timeouts).
//! * [`targets`]: checks on server addresses (pure).
//! * [`meter`]: CPU of several server process trees at once.
//! * [`put`]: `put`, closed-loop writes from C clients: throughput and latency.
//! * [`visibility`]: `visibility`, a write on the leader until a client agent shows it (HTTP, DNS).
//! * [`dns_probe`]: polls a DNS name until it has an answer.
//! * [`leader`]: which server leads (Consul or etcd).
//! * [`failover`]: `failover`, kill the leader under writes; time to the next acknowledged write.
//! * [`check_flip`]: `check-flip`, a check's result on an agent until its DNS changes.
//! * [`output`]: the JSON result line.

pub mod check_flip;
pub mod client;
pub mod dns_probe;
pub mod failover;
pub mod leader;
pub mod meter;
pub mod output;
pub mod protocol;
pub mod put;
pub mod targets;
pub mod visibility;
