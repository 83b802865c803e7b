//! Whether DNS datagrams are waiting on a core's UDP sockets: the input
//! of wake pacing ([`crate::blocking::wake_pacing`]). One `ioctl(FIONREAD)`
//! per socket on a duplicate of the DNS socket's descriptor (the same
//! kernel socket, so the same receive queue), asked only while wake-ups
//! are queued and pacing is on.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Most DNS sockets one core watches (one per DNS listen address).
pub const DNS_SOCKETS_WATCHED_MAX: usize = 64;

/// The DNS UDP sockets of one core, as duplicates.
#[derive(Debug, Default)]
pub struct DnsQueueProbe {
    sockets: Vec<UdpSocket>,
}

/// Why a socket could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot duplicate the dns socket: {0}")]
    Duplicate(#[from] std::io::Error),
    #[error("already watching {DNS_SOCKETS_WATCHED_MAX} dns sockets")]
    Full,
}

impl DnsQueueProbe {
    /// Watches `socket`'s receive queue (through a duplicate descriptor).
    pub fn watch(&mut self, socket: &UdpSocket) -> Result<(), ProbeError> {
        if self.sockets.len() >= DNS_SOCKETS_WATCHED_MAX {
            return Err(ProbeError::Full);
        }
        self.sockets.push(socket.try_clone()?);
        Ok(())
    }

    /// Sockets watched.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// No socket watched.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// A datagram is waiting on at least one watched socket. A failed
    /// `ioctl` counts as nothing waiting (pacing then never holds).
    pub fn datagrams_waiting(&self) -> bool {
        self.sockets.iter().any(|s| next_datagram_bytes(s) > 0)
    }
}

/// Size of the next queued datagram (0 when none, or on error).
fn next_datagram_bytes(socket: &UdpSocket) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int to the pointer, which is valid
    // for the call; the descriptor is owned by `socket`.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut bytes as *mut libc::c_int) };
    if rc < 0 {
        return 0;
    }
    usize::try_from(bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn until(done: impl Fn() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn sees_a_queued_datagram_until_it_is_read() {
        let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut probe = DnsQueueProbe::default();
        assert!(!probe.datagrams_waiting(), "nothing watched");
        probe.watch(&dns).unwrap();
        assert_eq!(probe.len(), 1);
        assert!(!probe.datagrams_waiting(), "empty queue");
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"query", dns.local_addr().unwrap()).unwrap();
        assert!(until(|| probe.datagrams_waiting()), "the duplicate sees the queue");
        let mut buf = [0u8; 16];
        assert_eq!(dns.recv(&mut buf).unwrap(), 5);
        assert!(!probe.datagrams_waiting(), "read by the original: gone");
    }

    #[test]
    fn the_number_of_sockets_is_bounded() {
        let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut probe = DnsQueueProbe::default();
        for _ in 0..DNS_SOCKETS_WATCHED_MAX {
            probe.watch(&dns).unwrap();
        }
        assert!(matches!(probe.watch(&dns), Err(ProbeError::Full)));
    }
}
