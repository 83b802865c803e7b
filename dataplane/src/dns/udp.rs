//! The DNS UDP server of one core: receive, answer from the core's view,
//! send. Buffers are owned by the loop and reused for every datagram.

use std::rc::Rc;
use std::time::Duration;

use monoio::net::udp::UdpSocket;

use crate::core::Core;
use crate::dns::wire::UDP_PAYLOAD_BYTES_MAX;
use crate::dns::{unix_now_s, Responder, Transport};

/// Pause after a receive error so a persistent one cannot spin the core.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Serves `socket` until the task is dropped.
pub async fn serve(core: Rc<Core>, socket: UdpSocket) {
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
        if !responder.respond(&request, Transport::Udp, &view, unix_now_s(), &mut response) {
            continue;
        }
        drop(view);
        let (sent, buf) = socket.send_to(response, peer).await;
        response = buf;
        if let Err(e) = sent {
            tracing::debug!(error = %e, %peer, "dns udp send failed");
        }
    }
}
