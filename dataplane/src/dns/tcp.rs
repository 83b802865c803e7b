//! The DNS TCP server of one core: 2-byte length framing (RFC 1035
//! §4.2.2), several queries per connection, an idle timeout, and a cap on
//! connections per core.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::core::Core;
use crate::dns::answer::write_servfail;
use crate::dns::recursor::{chase, forward_tcp, forward_udp, is_truncated};
use crate::dns::wire::TCP_MESSAGE_BYTES_MAX;
use crate::dns::{unix_now_s, Outcome, Responder, Transport};

/// A connection idle (or stalled mid-message) this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(8);
/// Most DNS TCP connections one core serves at once; more are closed on
/// accept.
pub const TCP_CONNECTIONS_PER_CORE_MAX: usize = 1024;
/// Pause after an accept error (EMFILE...) so it cannot spin the core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Counts open connections; a slot is released when dropped.
#[derive(Clone)]
pub struct ConnectionLimit {
    open: Rc<Cell<usize>>,
    max: usize,
}

/// One held connection slot.
pub struct ConnectionSlot {
    open: Rc<Cell<usize>>,
}

impl ConnectionLimit {
    /// A limit of `max` open connections.
    pub fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            open: Rc::new(Cell::new(0)),
            max,
        }
    }

    /// Takes a slot, or `None` at the limit.
    pub fn try_acquire(&self) -> Option<ConnectionSlot> {
        if self.open.get() >= self.max {
            return None;
        }
        self.open.set(self.open.get() + 1);
        Some(ConnectionSlot {
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.get()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let n = self.open.get();
        debug_assert!(n > 0, "connection count underflow");
        self.open.set(n.saturating_sub(1));
    }
}

/// Accepts DNS TCP connections on `listener` until the task is dropped.
pub async fn serve(core: Rc<Core>, listener: TcpListener) {
    let limit = ConnectionLimit::new(TCP_CONNECTIONS_PER_CORE_MAX);
    // One responder per core's listener: its service cache and reverse
    // index serve every connection instead of being rebuilt per connection.
    let responder = Rc::new(RefCell::new(Responder::default()));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match limit.try_acquire() {
                Some(slot) => {
                    monoio::spawn(serve_connection(core.clone(), responder.clone(), stream, slot));
                }
                None => {
                    tracing::warn!(%peer, limit = TCP_CONNECTIONS_PER_CORE_MAX, "dns tcp connection limit reached; closing");
                    drop(stream);
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "dns tcp accept failed");
                monoio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Why a connection ended (for logs).
#[derive(Debug)]
enum End {
    Closed,
    Idle,
    Io(std::io::Error),
    EmptyMessage,
}

async fn serve_connection(
    core: Rc<Core>,
    responder: Rc<RefCell<Responder>>,
    mut stream: TcpStream,
    _slot: ConnectionSlot,
) {
    match serve_messages(&core, &responder, &mut stream).await {
        End::Io(e) => tracing::debug!(error = %e, "dns tcp connection failed"),
        end => tracing::trace!(?end, "dns tcp connection ended"),
    }
}

async fn serve_messages(core: &Core, responder: &RefCell<Responder>, stream: &mut TcpStream) -> End {
    let mut length: Vec<u8> = Vec::with_capacity(2);
    let mut request: Vec<u8> = Vec::with_capacity(TCP_MESSAGE_BYTES_MAX);
    let mut response: Vec<u8> = Vec::with_capacity(TCP_MESSAGE_BYTES_MAX);
    let mut framed: Vec<u8> = Vec::with_capacity(TCP_MESSAGE_BYTES_MAX + 2);
    loop {
        length.clear();
        let slice = SliceMut::new(length, 0, 2);
        length = match monoio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(slice)).await {
            Err(_) => return End::Idle,
            Ok((Ok(_), buf)) => buf.into_inner(),
            Ok((Err(e), _)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return End::Closed,
            Ok((Err(e), _)) => return End::Io(e),
        };
        let message_len = u16::from_be_bytes([length[0], length[1]]) as usize;
        if message_len == 0 {
            return End::EmptyMessage;
        }
        request.clear();
        let slice = SliceMut::new(request, 0, message_len);
        request = match monoio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(slice)).await {
            Err(_) => return End::Idle,
            Ok((Ok(_), buf)) => buf.into_inner(),
            Ok((Err(e), _)) => return End::Io(e),
        };
        debug_assert_eq!(request.len(), message_len);
        let view = core.view();
        // Borrowed only for the (synchronous) answer, never across an await.
        let outcome = responder
            .borrow_mut()
            .respond(&request, Transport::Tcp, &view, unix_now_s(), &mut response);
        drop(view);
        match outcome {
            Outcome::Drop => continue,
            Outcome::Send => frame_message(&response, &mut framed),
            Outcome::Chase => {
                let (recursors, timeout) = {
                    let responder = responder.borrow();
                    let zone = responder.zone().expect("a zone after answering");
                    (zone.recursors.clone(), Duration::from_millis(zone.recursor_timeout_ms))
                };
                let taken = std::mem::take(&mut response);
                response = chase(taken, &recursors, timeout, TCP_MESSAGE_BYTES_MAX).await;
                frame_message(&response, &mut framed)
            }
            Outcome::Recurse => {
                let (recursors, timeout) = {
                    let responder = responder.borrow();
                    let zone = responder.zone().expect("a zone after answering");
                    (zone.recursors.clone(), Duration::from_millis(zone.recursor_timeout_ms))
                };
                // UDP first; a truncated upstream answer is asked again over TCP.
                let reply = match forward_udp(&request, &recursors, timeout).await {
                    Some(cut) if is_truncated(&cut) => forward_tcp(&request, &recursors, timeout).await.or(Some(cut)),
                    reply => reply,
                };
                match reply {
                    Some(reply) => frame_message(&reply, &mut framed),
                    None if write_servfail(&request, &mut response) => frame_message(&response, &mut framed),
                    None => continue,
                }
            }
        }
        let (written, buf) = match monoio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(framed)).await {
            Err(_) => return End::Idle,
            Ok(r) => r,
        };
        framed = buf;
        if let Err(e) = written {
            return End::Io(e);
        }
    }
}

/// `message` with its 2-byte length prefix, into `out` (cleared first).
pub fn frame_message(message: &[u8], out: &mut Vec<u8>) {
    debug_assert!(message.len() <= TCP_MESSAGE_BYTES_MAX);
    out.clear();
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limit_is_enforced_and_released() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.open(), 2);
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn frames_carry_the_length() {
        let mut out = vec![9, 9, 9];
        frame_message(b"abc", &mut out);
        assert_eq!(out, vec![0, 3, b'a', b'b', b'c']);
    }
}
