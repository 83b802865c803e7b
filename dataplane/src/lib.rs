//! The Proconsul data plane: one monoio thread per core, each with its own
//! `SO_REUSEPORT` HTTP and DNS sockets, answering reads from a local replica
//! of the state that the control plane streams over shared memory.
//!
//! Layout (pure cores apart from the IO around them):
//! * [`replica`]: attach to the control plane, map the snapshot, apply the
//!   delta ring, hand each new version to every core (IO: one applier thread).
//! * [`core`]: what one serving thread shares between its tasks: the current
//!   view, request forwarding, blocking-query parking.
//! * [`blocking`]: watch sets and the per-core index from watched items to
//!   parked queries (pure).
//! * [`http`]: connection IO, request parsing (httparse), response writing.
//! * [`api`]: pure handlers: request + view → response.
//! * [`dns`]: name parsing and answer building (pure) and the UDP/TCP servers.
//! * [`filter`]: Consul's `?filter=` expression language (pure).
//! * [`forward`]: per-core request channel to the control plane.
//! * [`read_barrier`]: the raft read-index barrier of `?consistent` reads.
//! * [`runtime`]: threads, sockets, the epoll fallback.

pub mod api;
pub mod blocking;
pub mod core;
pub mod dns;
pub mod filter;
pub mod forward;
pub mod http;
pub mod query_exec;
pub mod read_barrier;
pub mod replica;
pub mod runtime;

pub use runtime::run;
