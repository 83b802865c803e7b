//! UDP DNS load.
//!
//! * [`query_file`]: `name TYPE` lines to query messages (pure).
//! * [`reply`]: the header fields of a reply and question matching (pure).
//! * [`inflight`]: outstanding queries by message id, timeouts (pure).
//! * [`pacer`]: the send schedule of fixed-rate mode (pure).
//! * [`stats`]: counters (pure).
//! * [`batch`]: `sendmmsg`/`recvmmsg` over preallocated buffers (IO).
//! * [`driver`]: the send/receive loop over a few UDP sockets (IO).
//! * [`run`]: metering and the summary.

pub mod batch;
pub mod driver;
pub mod inflight;
pub mod pacer;
pub mod query_file;
pub mod reply;
pub mod run;
pub mod stats;
