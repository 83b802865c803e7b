//! The DNS UDP server of one core: receive, answer from the core's view,
//! send. Buffers are owned by the loop and reused for every datagram.
//! Names for the recursors are forwarded by spawned tasks (at most
//! [`RECURSIONS_IN_FLIGHT_MAX`] at once; beyond that SERVFAIL).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::net::udp::UdpSocket;

use crate::core::Core;
use crate::dns::answer::write_servfail;
use crate::dns::recursor::{forward_udp, RECURSIONS_IN_FLIGHT_MAX};
use crate::dns::wire::UDP_PAYLOAD_BYTES_MAX;
use crate::dns::{unix_now_s, Outcome, Responder, Transport};

/// Pause after a receive error so a persistent one cannot spin the core.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Serves `socket` until the task is dropped.
pub async fn serve(core: Rc<Core>, socket: UdpSocket) {
    let socket = Rc::new(socket);
    let in_flight = Rc::new(Cell::new(0usize));
    let mut responder = Responder::default();
    let mut request: Vec<u8> = Vec::with_capacity(UDP_PAYLOAD_BYTES_MAX);
    let mut response: Vec<u8> = Vec::with_capacity(UDP_PAYLOAD_BYTES_MAX);
    loop {
        request.clear();
        let (received, buf) = socket.recv_from(request).await;
        request = buf;
        let peer = match received {
            Ok((_, peer)) => peer,
            Err(e) => {
                tracing::debug!(error = %e, "dns udp receive failed");
                monoio::time::sleep(RECV_ERROR_PAUSE).await;
                continue;
            }
        };
        let view = core.view();
        let outcome = responder.respond(&request, Transport::Udp, &view, unix_now_s(), &mut response);
        drop(view);
        match outcome {
            Outcome::Drop => continue,
            Outcome::Send => {}
            Outcome::Recurse => {
                let zone = responder.zone().expect("a zone after answering");
                if in_flight.get() < RECURSIONS_IN_FLIGHT_MAX {
                    let timeout = Duration::from_millis(zone.recursor_timeout_ms);
                    monoio::spawn(recurse(
                        socket.clone(),
                        in_flight.clone(),
                        request.clone(),
                        zone.recursors.clone(),
                        timeout,
                        peer,
                    ));
                    continue;
                }
                tracing::debug!(limit = RECURSIONS_IN_FLIGHT_MAX, "dns recursions at their limit");
                if !write_servfail(&request, &mut response) {
                    continue;
                }
            }
        }
        let (sent, buf) = socket.send_to(response, peer).await;
        response = buf;
        if let Err(e) = sent {
            tracing::debug!(error = %e, %peer, "dns udp send failed");
        }
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
