//! Library parts of the load and correctness tooling that tests elsewhere
//! in the workspace use.
//!
//! * [`linearizability`]: a checker for histories of KV reads, writes and
//!   CAS (the cluster tests feed it histories taken under leader kills).

pub mod linearizability;
