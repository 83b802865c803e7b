//! Test harness shared by the end-to-end tests in `control/tests/`.
//!
//! * [`agent`]: start an agent on its own loopback address, talk to it,
//!   kill it on drop.
//! * [`http`]: a tiny HTTP/1.1 client (exact bytes in, exact bytes out).
//! * [`dns`]: DNS queries over UDP and TCP.
//! * [`process`]: PIDs, signals, `/proc`.
//! * [`cluster`]: server and client specs for multi-agent clusters.
//! * [`run`]: run the binary to completion with a time bound.
//! * [`raft_peers`]: server clusters seen through raft (peers, addresses).
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod cluster;
pub mod dns;
pub mod fake_recursor;
pub mod http;
pub mod process;
pub mod raft_peers;
pub mod run;

pub use agent::{Agent, AgentSpec};
