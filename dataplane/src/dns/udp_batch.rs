//! Batched UDP IO for the DNS server: up to [`UDP_BATCH_DATAGRAMS_MAX`]
//! queries received with one `recvmmsg` and their answers sent with one
//! `sendmmsg`, both non-blocking, into buffers owned by the batch and
//! reused for every datagram (no allocation in steady state).
//!
//! This is the edge of the sans-IO answer core: the batch only moves bytes
//! between the socket and its slots; the caller fills responses. One
//! syscall pair per batch instead of one io_uring round trip per datagram
//! is what the canned responder of the peer kit does, and it is most of
//! the per-query cost left outside answer building.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

/// Datagrams received (and answered) per `recvmmsg` call.
pub const UDP_BATCH_DATAGRAMS_MAX: usize = 32;

/// Bytes of one query slot. A query longer than this is cut by the kernel
/// and reported as truncated (DNS queries are a few dozen bytes; the
/// classic limit is 512 and EDNS queries carry only small options).
pub const UDP_QUERY_BYTES_MAX: usize = 4096;

/// Receive and send buffer asked for on a DNS UDP socket (the peer kit's
/// canned responder asks the same; the kernel caps it at `rmem_max` /
/// `wmem_max`). The default ~208 KiB holds only ~300 queued queries, so a
/// burst from many clients overflows it while a batch is being answered.
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Asks for [`UDP_SOCKET_BUFFER_BYTES`] of receive and send buffer on
/// `fd`; returns the receive buffer the kernel granted (it doubles the
/// asked size for its bookkeeping and caps it).
pub fn enlarge_socket_buffers(fd: RawFd) -> io::Result<usize> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    // SAFETY: `fd` is the caller's open socket, which stays open for the
    // duration of this call (nothing here closes or keeps it).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    setsockopt(&fd, sockopt::RcvBuf, &UDP_SOCKET_BUFFER_BYTES).map_err(io::Error::from)?;
    setsockopt(&fd, sockopt::SndBuf, &UDP_SOCKET_BUFFER_BYTES).map_err(io::Error::from)?;
    getsockopt(&fd, sockopt::RcvBuf).map_err(io::Error::from)
}

/// What happened to one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the slot (at most [`UDP_QUERY_BYTES_MAX`]).
    pub len: usize,
    /// The datagram was longer than its slot (`MSG_TRUNC`).
    pub truncated: bool,
}

/// Buffers and message headers for one socket's batches.
pub struct UdpBatch {
    queries: Box<[[u8; UDP_QUERY_BYTES_MAX]; UDP_BATCH_DATAGRAMS_MAX]>,
    received: [Received; UDP_BATCH_DATAGRAMS_MAX],
    peers: [Option<SockaddrStorage>; UDP_BATCH_DATAGRAMS_MAX],
    /// How many slots the last receive filled.
    filled: usize,
    responses: Vec<Vec<u8>>,
    /// Slots whose response is to be sent, in receive order.
    to_send: [u8; UDP_BATCH_DATAGRAMS_MAX],
    to_send_len: usize,
    send_peers: [Option<SockaddrStorage>; UDP_BATCH_DATAGRAMS_MAX],
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
}

/// The outcome of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Responses the kernel took.
    pub sent: usize,
    /// Responses left because the socket would block.
    pub pending: usize,
}

impl Default for UdpBatch {
    fn default() -> Self {
        UdpBatch {
            // Built on the heap: 128 KiB is too much for a task's stack.
            queries: vec![[0u8; UDP_QUERY_BYTES_MAX]; UDP_BATCH_DATAGRAMS_MAX]
                .into_boxed_slice()
                .try_into()
                .expect("exactly UDP_BATCH_DATAGRAMS_MAX slots"),
            received: [Received {
                len: 0,
                truncated: false,
            }; UDP_BATCH_DATAGRAMS_MAX],
            peers: [None; UDP_BATCH_DATAGRAMS_MAX],
            filled: 0,
            responses: (0..UDP_BATCH_DATAGRAMS_MAX).map(|_| Vec::with_capacity(512)).collect(),
            to_send: [0; UDP_BATCH_DATAGRAMS_MAX],
            to_send_len: 0,
            send_peers: [None; UDP_BATCH_DATAGRAMS_MAX],
            recv_headers: MultiHeaders::preallocate(UDP_BATCH_DATAGRAMS_MAX, None),
            send_headers: MultiHeaders::preallocate(UDP_BATCH_DATAGRAMS_MAX, None),
        }
    }
}

impl UdpBatch {
    /// Receives up to [`UDP_BATCH_DATAGRAMS_MAX`] datagrams without
    /// blocking. `Ok(0)` means nothing was waiting (wait for readiness).
    /// Forgets the previous batch, sent or not.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.filled = 0;
        self.to_send_len = 0;
        let mut slices = self.queries.each_mut().map(|q| [IoSliceMut::new(q)]);
        let results = match recvmmsg(
            fd,
            &mut self.recv_headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => results,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(io::Error::from(e)),
        };
        let mut filled = 0;
        for (slot, msg) in results.enumerate() {
            self.received[slot] = Received {
                len: msg.bytes.min(UDP_QUERY_BYTES_MAX),
                truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
            };
            self.peers[slot] = msg.address;
            filled = slot + 1;
        }
        assert!(
            filled <= UDP_BATCH_DATAGRAMS_MAX,
            "recvmmsg filled more slots than it was given"
        );
        self.filled = filled;
        Ok(filled)
    }

    /// Slots filled by the last receive.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The query in `slot` and whether it was cut.
    pub fn query(&self, slot: usize) -> (&[u8], bool) {
        assert!(slot < self.filled, "slot {slot} not filled (batch of {})", self.filled);
        let r = self.received[slot];
        (&self.queries[slot][..r.len], r.truncated)
    }

    /// The sender of the query in `slot`, if it has an IP address.
    pub fn peer(&self, slot: usize) -> Option<SocketAddr> {
        assert!(slot < self.filled, "slot {slot} not filled (batch of {})", self.filled);
        self.peers[slot].as_ref().and_then(socket_addr)
    }

    /// The query in `slot` and the (cleared) response buffer for it.
    pub fn query_and_response(&mut self, slot: usize) -> (&[u8], bool, &mut Vec<u8>) {
        assert!(slot < self.filled, "slot {slot} not filled (batch of {})", self.filled);
        let r = self.received[slot];
        let out = &mut self.responses[slot];
        out.clear();
        (&self.queries[slot][..r.len], r.truncated, out)
    }

    /// Queues the response in `slot` for the next [`UdpBatch::send`].
    pub fn queue_response(&mut self, slot: usize) {
        assert!(slot < self.filled, "slot {slot} not filled (batch of {})", self.filled);
        assert!(
            self.to_send_len < self.filled,
            "more responses queued than queries received"
        );
        self.to_send[self.to_send_len] = slot as u8;
        self.send_peers[self.to_send_len] = self.peers[slot];
        self.to_send_len += 1;
    }

    /// Responses queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.to_send_len
    }

    /// Sends the queued responses without blocking. Those the kernel did
    /// not take stay queued (oldest first) for another call.
    pub fn send(&mut self, fd: RawFd) -> io::Result<Sent> {
        let count = self.to_send_len;
        if count == 0 {
            return Ok(Sent { sent: 0, pending: 0 });
        }
        let responses = &self.responses;
        let order = &self.to_send;
        let slices: [[IoSlice<'_>; 1]; UDP_BATCH_DATAGRAMS_MAX] = std::array::from_fn(|k| {
            [IoSlice::new(if k < count {
                &responses[order[k] as usize]
            } else {
                &[]
            })]
        });
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        let sent = match sendmmsg(
            fd,
            &mut self.send_headers,
            slices[..count].iter(),
            &self.send_peers[..count],
            no_cmsgs,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(results) => results.count(),
            Err(Errno::EAGAIN) => 0,
            Err(e) => return Err(io::Error::from(e)),
        };
        assert!(sent <= count, "sendmmsg sent more than it was given");
        self.to_send.copy_within(sent..count, 0);
        self.send_peers.copy_within(sent..count, 0);
        self.to_send_len = count - sent;
        Ok(Sent {
            sent,
            pending: self.to_send_len,
        })
    }

    /// Drops the oldest queued response (its send failed with an error
    /// that names that datagram, e.g. an unreachable peer).
    pub fn drop_oldest_queued(&mut self) {
        if self.to_send_len == 0 {
            return;
        }
        let count = self.to_send_len;
        self.to_send.copy_within(1..count, 0);
        self.send_peers.copy_within(1..count, 0);
        self.to_send_len = count - 1;
    }
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (server, client)
    }

    /// Waits (bounded) until the server socket has something to read.
    fn recv_some(batch: &mut UdpBatch, server: &UdpSocket) -> usize {
        for _ in 0..500 {
            let n = batch.recv(server.as_raw_fd()).unwrap();
            if n > 0 {
                return n;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("nothing received");
    }

    #[test]
    fn an_empty_socket_receives_nothing_without_blocking() {
        let (server, _client) = pair();
        let mut batch = UdpBatch::default();
        assert_eq!(batch.recv(server.as_raw_fd()).unwrap(), 0);
        assert!(batch.is_empty());
        assert_eq!(batch.send(server.as_raw_fd()).unwrap(), Sent { sent: 0, pending: 0 });
    }

    #[test]
    fn a_batch_receives_several_datagrams_and_answers_each_to_its_sender() {
        let (server, client) = pair();
        let (_, other) = pair();
        other.connect(server.local_addr().unwrap()).unwrap();
        for i in 0..5u8 {
            client.send(&[b'c', i]).unwrap();
        }
        other.send(b"o").unwrap();
        let mut batch = UdpBatch::default();
        let mut got = 0;
        let mut seen = Vec::new();
        while got < 6 {
            let n = recv_some(&mut batch, &server);
            for slot in 0..n {
                let peer = batch.peer(slot).unwrap();
                let (query, truncated, out) = batch.query_and_response(slot);
                assert!(!truncated);
                seen.push((query.to_vec(), peer));
                out.extend_from_slice(b"re:");
                out.extend_from_slice(query);
                batch.queue_response(slot);
            }
            assert_eq!(batch.send(server.as_raw_fd()).unwrap(), Sent { sent: n, pending: 0 });
            got += n;
        }
        assert_eq!(seen.len(), 6);
        assert!(seen.iter().any(|(q, p)| q == b"o" && *p == other.local_addr().unwrap()));
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[b'r', b'e', b':', b'c', i]);
        }
        let n = other.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"re:o");
    }

    #[test]
    fn only_queued_slots_are_sent() {
        let (server, client) = pair();
        client.send(b"drop me").unwrap();
        client.send(b"answer me").unwrap();
        let mut batch = UdpBatch::default();
        let mut slots = Vec::new();
        while slots.len() < 2 {
            let n = recv_some(&mut batch, &server);
            for slot in 0..n {
                let (q, _, out) = batch.query_and_response(slot);
                slots.push(q.to_vec());
                if q == b"answer me" {
                    out.extend_from_slice(b"ok");
                    batch.queue_response(slot);
                }
            }
            batch.send(server.as_raw_fd()).unwrap();
        }
        let mut buf = [0u8; 16];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ok");
        client.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        assert!(client.recv(&mut buf).is_err(), "the unqueued slot must not be answered");
    }

    #[test]
    fn a_datagram_longer_than_its_slot_is_reported_truncated() {
        let (server, client) = pair();
        client.send(&vec![7u8; UDP_QUERY_BYTES_MAX + 100]).unwrap();
        let mut batch = UdpBatch::default();
        recv_some(&mut batch, &server);
        let (query, truncated) = batch.query(0);
        assert!(truncated);
        assert_eq!(query.len(), UDP_QUERY_BYTES_MAX);
    }

    #[test]
    fn a_full_batch_is_bounded_by_its_slot_count() {
        let (server, client) = pair();
        for _ in 0..(UDP_BATCH_DATAGRAMS_MAX + 8) {
            client.send(b"q").unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut batch = UdpBatch::default();
        let first = recv_some(&mut batch, &server);
        assert!(first <= UDP_BATCH_DATAGRAMS_MAX);
        let mut total = first;
        for _ in 0..100 {
            if total == UDP_BATCH_DATAGRAMS_MAX + 8 {
                break;
            }
            total += batch.recv(server.as_raw_fd()).unwrap();
        }
        assert_eq!(total, UDP_BATCH_DATAGRAMS_MAX + 8);
    }

    #[test]
    fn socket_buffers_grow_past_the_default() {
        let (server, _client) = pair();
        let before = {
            use nix::sys::socket::{getsockopt, sockopt};
            getsockopt(&server, sockopt::RcvBuf).unwrap()
        };
        let granted = enlarge_socket_buffers(server.as_raw_fd()).unwrap();
        assert!(granted >= before, "{granted} < {before}");
        assert!(
            granted <= 2 * UDP_SOCKET_BUFFER_BYTES,
            "the kernel grants at most twice the ask"
        );
    }

    #[test]
    #[should_panic(expected = "not filled")]
    fn queueing_an_unfilled_slot_is_a_bug() {
        let mut batch = UdpBatch::default();
        batch.queue_response(0);
    }
}
