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
//! * [`direct_send`]: the woken parked query's answer sent from its task.
//! * [`shared_render`]: one rendering shared by identical woken parked
//!   queries.
//!
//! The runtime must build its monoio runtimes with timers enabled (idle,
//! read and write timeouts use `monoio::time`).

pub mod chunked;
pub mod conn;
pub mod date;
pub mod direct_send;
pub mod dispatch;
pub mod limits;
pub mod parse;
pub mod query;
pub mod response;
pub mod shared_render;
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

/// Answers a connection over `limits.http_max_conns_per_client` with 429
/// and closes it. The request (if any) is drained for a bounded time and
/// size after the answer so closing does not reset the connection before
/// the client read the 429.
pub async fn refuse_connection(mut stream: monoio::net::TcpStream) {
    use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
    let timeout = std::time::Duration::from_millis(limits::REFUSED_LINGER_MS);
    let answer = response::too_many_connections(&date::now());
    let wrote = monoio::time::timeout(timeout, stream.write_all(answer)).await;
    if !matches!(wrote, Ok((Ok(_), _))) {
        return;
    }
    let _ = monoio::time::timeout(timeout, stream.shutdown()).await;
    let deadline = monoio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(limits::REFUSED_DRAIN_BYTES_MAX);
    let mut drained = 0;
    while drained < limits::REFUSED_DRAIN_BYTES_MAX {
        buf.clear();
        match monoio::time::timeout_at(deadline, stream.read(buf)).await {
            Ok((Ok(n), returned)) if n > 0 => {
                drained += n;
                buf = returned;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests;
