//! Batched datagram IO: `sendmmsg` and `recvmmsg` over a fixed set of
//! buffers, allocated once. Sockets are connected, so no addresses.

use std::io;
use std::os::fd::RawFd;

/// `slots` datagram buffers of `slot_bytes` each, with their iovecs and
/// message headers pointing into them.
pub struct MsgBatch {
    buffers: Vec<u8>,
    slot_bytes: usize,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl MsgBatch {
    /// Buffers for `slots` datagrams of up to `slot_bytes`.
    pub fn new(slots: usize, slot_bytes: usize) -> MsgBatch {
        assert!(slots > 0 && slot_bytes > 0, "a batch holds at least one byte");
        let mut buffers = vec![0u8; slots * slot_bytes];
        let base = buffers.as_mut_ptr();
        let mut iovecs: Vec<libc::iovec> = (0..slots)
            .map(|k| libc::iovec {
                // SAFETY: k * slot_bytes is inside `buffers`.
                iov_base: unsafe { base.add(k * slot_bytes) } as *mut libc::c_void,
                iov_len: slot_bytes,
            })
            .collect();
        let iov_base = iovecs.as_mut_ptr();
        let headers = (0..slots)
            .map(|k| {
                // SAFETY: an all-zero mmsghdr is valid (null name, no control).
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                // SAFETY: k < slots = iovecs.len().
                h.msg_hdr.msg_iov = unsafe { iov_base.add(k) };
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // The heap blocks of `buffers` and `iovecs` never move: neither Vec
        // is resized after this point, and moving a Vec keeps its block.
        MsgBatch {
            buffers,
            slot_bytes,
            iovecs,
            headers,
        }
    }

    /// How many datagrams the batch holds.
    pub fn slots(&self) -> usize {
        self.headers.len()
    }

    /// Fills slot `k` with `bytes` for sending; returns the slot so the
    /// caller can patch it (the message id).
    pub fn fill(&mut self, k: usize, bytes: &[u8]) -> &mut [u8] {
        assert!(bytes.len() <= self.slot_bytes, "datagram larger than its slot");
        let start = k * self.slot_bytes;
        self.buffers[start..start + bytes.len()].copy_from_slice(bytes);
        self.iovecs[k].iov_len = bytes.len();
        &mut self.buffers[start..start + bytes.len()]
    }

    /// Sends slots `0..count` on `fd`; returns how many went out. A full
    /// socket buffer is `Ok(0)`.
    pub fn send(&mut self, fd: RawFd, count: usize) -> io::Result<usize> {
        assert!(count <= self.slots(), "send of more slots than the batch has");
        // SAFETY: headers point at live iovecs and buffers of this batch.
        let n = unsafe { libc::sendmmsg(fd, self.headers.as_mut_ptr(), count as libc::c_uint, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// Receives up to all slots from `fd` without blocking; returns how
    /// many datagrams arrived (0 when none is waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for v in &mut self.iovecs {
            v.iov_len = self.slot_bytes;
        }
        // SAFETY: as in `send`; the kernel writes at most iov_len per slot.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// The datagram received in slot `k` (cut to the slot if it was longer).
    pub fn received(&self, k: usize) -> &[u8] {
        let len = (self.headers[k].msg_len as usize).min(self.slot_bytes);
        let start = k * self.slot_bytes;
        &self.buffers[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trip_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        let mut out = MsgBatch::new(4, 64);
        for k in 0..3u8 {
            let slot = out.fill(k as usize, &[k; 10]);
            slot[0] = 100 + k;
        }
        assert_eq!(out.send(a.as_raw_fd(), 3).unwrap(), 3);
        let mut inb = MsgBatch::new(4, 8);
        let mut got = Vec::new();
        for _ in 0..200 {
            let n = inb.recv(b.as_raw_fd()).unwrap();
            got.extend((0..n).map(|k| inb.received(k).to_vec()));
            if got.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], vec![101, 1, 1, 1, 1, 1, 1, 1], "cut to the 8-byte slot");
        assert_eq!(inb.recv(b.as_raw_fd()).unwrap(), 0, "nothing waiting is not an error");
    }
}
