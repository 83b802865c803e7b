//! HTTP/1.1 keep-alive load.
//!
//! * [`request`]: request paths and the request bytes (pure).
//! * [`response`]: an incremental response reader (pure, sans-IO).
//! * [`conn`]: one connection's closed loop: pipeline, latencies (pure).
//! * [`stats`]: counters of a generator thread (pure).
//! * [`driver`]: one thread's epoll loop over many connections (IO).
//! * [`run`]: threads, warm-up, metering and the summary.
//! * [`bulk_write`]: numbered writes over blocking keep-alive connections.
//! * [`prepare_kv`]: writes keys through the KV API.
//! * [`prepare_catalog`]: registers services through the catalog API.

pub mod bulk_write;
pub mod conn;
pub mod driver;
pub mod prepare_catalog;
pub mod prepare_kv;
pub mod request;
pub mod response;
pub mod run;
pub mod stats;
