//! The Proconsul control plane and the `proconsul` binary's commands.
//!
//! * [`cli`]: the Consul-compatible command line (one file per verb).
//! * [`config`]: flags, config files, merge, defaults.
//! * [`agent`]: agent start-up and shutdown, the local node.
//! * [`raft`]: openraft type config, log storage (memory and WAL), state
//!   machine, network.
//! * [`publish`]: the shared-memory publisher (delta ring, snapshots).
//! * [`rpc`]: the unix-socket server the data plane talks to.
//! * [`supervise`]: starting, adopting and restarting the data plane.

pub mod agent;
pub mod checks;
pub mod cli;
pub mod client_replica;
pub mod config;
pub mod gossip;
pub mod http_api;
pub mod publish;
pub mod raft;
pub mod rpc;
pub mod session;
pub mod supervise;
