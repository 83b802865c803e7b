//! The raft transport between servers: TCP on the server port (`-bind`,
//! 8300), length-prefixed postcard frames, one request and one reply at a
//! time per connection.
//!
//! * [`wire`]: the frames and the request/reply enums.
//! * [`client`]: [`TcpTransport`], openraft's network factory.
//! * [`server`]: the listener that feeds peers' RPCs to the local raft.
//! * [`service`]: what a server answers: raft RPCs, hellos, joins and
//!   forwarded writes.
//! * [`stream`]: the state stream a server sends a client agent.
//! * [`faults`]: the isolation switch partition tests use.

pub mod call;
pub mod client;
pub mod faults;
pub mod server;
pub mod service;
pub mod stream;
pub mod wire;

pub use client::TcpTransport;
pub use faults::PeerFaults;
