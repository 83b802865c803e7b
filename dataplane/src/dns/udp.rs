//! The DNS UDP server of one core: receive a batch, answer it from the
//! core's view, send the batch ([`UdpBatch`]: one `recvmmsg` and one
//! `sendmmsg` per up to 32 queries, buffers reused). When the socket is
//! empty the task waits for readiness; after each batch it yields so HTTP
//! and DNS-over-TCP on the same core are served between batches.
//! Names for the recursors are forwarded by spawned tasks (at most
//! [`RECURSIONS_IN_FLIGHT_MAX`] at once; beyond that SERVFAIL).

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::net::udp::UdpSocket;

use crate::core::Core;
use crate::dns::answer::cname::upstream;
use crate::dns::answer::write_servfail;
use crate::dns::recursor::{chase, forward_udp, RECURSIONS_IN_FLIGHT_MAX};
use crate::dns::udp_batch::{enlarge_socket_buffers, UdpBatch};
use crate::dns::{unix_now_s, Outcome, Responder, Transport};

/// Pause after a receive error so a persistent one cannot spin the core.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Send attempts for one batch (waiting for writability between them)
/// before its remaining answers are dropped, as a full socket buffer
/// drops datagrams anyway.
const SEND_ATTEMPTS_MAX: usize = 4;

/// Serves `socket` until the task is dropped.
pub async fn serve(core: Rc<Core>, socket: UdpSocket) {
    let socket = Rc::new(socket);
    let fd = socket.as_raw_fd();
    match enlarge_socket_buffers(fd) {
        Ok(bytes) => tracing::debug!(receive_buffer_bytes = bytes, "dns udp socket buffers"),
        Err(e) => tracing::debug!(error = %e, "dns udp socket buffers left at their default"),
    }
    let in_flight = Rc::new(Cell::new(0usize));
    let mut responder = Responder::default();
    let mut batch = UdpBatch::default();
    loop {
        let received = match batch.recv(fd) {
            Ok(0) => {
                if let Err(e) = socket.readable(false).await {
                    tracing::debug!(error = %e, "dns udp readiness wait failed");
                    monoio::time::sleep(RECV_ERROR_PAUSE).await;
                }
                continue;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "dns udp receive failed");
                monoio::time::sleep(RECV_ERROR_PAUSE).await;
                continue;
            }
        };
        core.inner().count_dns_datagrams(received);
        answer_batch(&core, &socket, &in_flight, &mut responder, &mut batch, received);
        send_batch(&socket, &mut batch).await;
        YieldNow(false).await;
    }
}

/// Answers the `received` queries of `batch`, queueing their responses.
fn answer_batch(
    core: &Core,
    socket: &Rc<UdpSocket>,
    in_flight: &Rc<Cell<usize>>,
    responder: &mut Responder,
    batch: &mut UdpBatch,
    received: usize,
) {
    let view = core.view();
    let now_unix_s = unix_now_s();
    // Every probe of the batch in flight at once, before the first answer.
    for slot in 0..received {
        responder.prefetch(batch.query(slot).0);
    }
    for slot in 0..received {
        let peer = batch.peer(slot);
        let (query, _truncated, out) = batch.query_and_response(slot);
        let send = match responder.respond(query, Transport::Udp, &view, now_unix_s, out) {
            Outcome::Drop => false,
            Outcome::Send => true,
            Outcome::Chase => {
                let zone = responder.zone().expect("a zone after answering");
                match peer {
                    Some(peer) if in_flight.get() < RECURSIONS_IN_FLIGHT_MAX => {
                        monoio::spawn(chase_and_send(
                            socket.clone(),
                            in_flight.clone(),
                            out.clone(),
                            zone.recursors.clone(),
                            Duration::from_millis(zone.recursor_timeout_ms),
                            peer,
                        ));
                        false
                    }
                    // No room to chase: the CNAME alone.
                    _ => true,
                }
            }
            Outcome::Recurse => {
                let zone = responder.zone().expect("a zone after answering");
                match peer {
                    Some(peer) if in_flight.get() < RECURSIONS_IN_FLIGHT_MAX => {
                        let timeout = Duration::from_millis(zone.recursor_timeout_ms);
                        monoio::spawn(recurse(
                            socket.clone(),
                            in_flight.clone(),
                            query.to_vec(),
                            zone.recursors.clone(),
                            timeout,
                            peer,
                        ));
                        false
                    }
                    _ => {
                        tracing::debug!(limit = RECURSIONS_IN_FLIGHT_MAX, "dns recursions at their limit");
                        out.clear();
                        write_servfail(query, out)
                    }
                }
            }
        };
        if send {
            batch.queue_response(slot);
        }
    }
}

/// Sends the queued responses, waiting for writability a bounded number
/// of times; what is left after that is dropped, like any datagram a full
/// socket buffer refuses.
async fn send_batch(socket: &UdpSocket, batch: &mut UdpBatch) {
    let fd = socket.as_raw_fd();
    for _ in 0..SEND_ATTEMPTS_MAX {
        match batch.send(fd) {
            Ok(sent) if sent.pending == 0 => return,
            Ok(_) => {
                if socket.writable(false).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "dns udp send failed; dropping that answer");
                batch.drop_oldest_queued();
            }
        }
    }
    if batch.queued() > 0 {
        tracing::debug!(dropped = batch.queued(), "dns udp socket stayed full; answers dropped");
        while batch.queued() > 0 {
            batch.drop_oldest_queued();
        }
    }
}

/// Lets every other ready task on the core run once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Completes a chased answer with the recursors' records and sends it
/// to `peer` (unchanged when the chase fails).
async fn chase_and_send(
    socket: Rc<UdpSocket>,
    in_flight: Rc<Cell<usize>>,
    response: Vec<u8>,
    recursors: Vec<SocketAddr>,
    timeout: Duration,
    peer: SocketAddr,
) {
    in_flight.set(in_flight.get() + 1);
    let size_max = upstream::udp_size_max(&response);
    let answer = chase(response, &recursors, timeout, size_max).await;
    debug_assert!(in_flight.get() > 0, "in-flight count underflow");
    in_flight.set(in_flight.get().saturating_sub(1));
    let (sent, _) = socket.send_to(answer, peer).await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, %peer, "dns udp send failed");
    }
}

/// Forwards one query and sends the upstream answer (or SERVFAIL) to `peer`.
async fn recurse(
    socket: Rc<UdpSocket>,
    in_flight: Rc<Cell<usize>>,
    request: Vec<u8>,
    recursors: Vec<SocketAddr>,
    timeout: Duration,
    peer: SocketAddr,
) {
    in_flight.set(in_flight.get() + 1);
    let reply = match forward_udp(&request, &recursors, timeout).await {
        Some(reply) => Some(reply),
        None => {
            let mut out = Vec::new();
            write_servfail(&request, &mut out).then_some(out)
        }
    };
    debug_assert!(in_flight.get() > 0, "in-flight count underflow");
    in_flight.set(in_flight.get().saturating_sub(1));
    if let Some(reply) = reply {
        let (sent, _) = socket.send_to(reply, peer).await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, %peer, "dns udp send failed");
        }
    }
}
