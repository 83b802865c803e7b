//! HTTP/1.1 for the public API port: connection IO at the edge, sans-IO
//! protocol pieces inside.
//!
//! * [`parse`] + [`chunked`]: request framing (httparse heads,
//!   `Content-Length` and chunked bodies, every limit in [`limits`]).
//! * [`target`] + [`query`]: path decoding and Go-compatible query parsing.
//! * [`response`] + [`date`]: response bytes.
//! * [`dispatch`]: runs a request through `crate::api` (forwarding and
//!   blocking reads need the core).
//! * [`conn`]: the per-connection read–answer–write loop.
//!
//! The runtime must build its monoio runtimes with timers enabled (idle,
//! read and write timeouts use `monoio::time`).

pub mod chunked;
pub mod conn;
pub mod date;
pub mod dispatch;
pub mod limits;
pub mod parse;
pub mod query;
pub mod response;
pub mod target;

use std::net::SocketAddr;
use std::rc::Rc;

use crate::core::Core;

/// Serves one accepted TCP connection until the peer closes it, it sends
/// something we refuse, or it stays idle past the keep-alive timeout.
pub async fn serve_connection(core: Rc<Core>, stream: monoio::net::TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    tracing::trace!(%peer, "http connection");
    conn::serve(&core, stream, conn::Timeouts::default()).await;
}

#[cfg(test)]
mod tests;
