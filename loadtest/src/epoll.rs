//! A thin, level-triggered epoll wrapper (the only IO multiplexing the
//! HTTP generator needs).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Readiness of interest or reported.
pub const READABLE: u32 = libc::EPOLLIN as u32;
/// Writable (for connect completion and blocked writes).
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;
/// Error or hang-up (always reported, never asked for).
pub const FAILED: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

/// One epoll instance, with room for `capacity` events per wait.
pub struct Epoll {
    fd: OwnedFd,
    raw: Vec<libc::epoll_event>,
}

/// One ready descriptor: the token it was registered with and its readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub token: u64,
    pub events: u32,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Epoll {
    /// A new epoll instance (close-on-exec) reporting up to `capacity`
    /// descriptors per wait.
    pub fn new(capacity: usize) -> io::Result<Epoll> {
        assert!(capacity > 0, "an epoll wait reports at least one event");
        // SAFETY: plain syscall; the returned fd is owned from here on.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            raw: vec![libc::epoll_event { events: 0, u64: 0 }; capacity],
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest,
            u64: token,
        };
        // SAFETY: `ev` lives across the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    /// Watches `fd` for `interest`, reporting it as `token`.
    pub fn add(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Waits up to `timeout_ms` and fills `out` (cleared first) with what is ready.
    pub fn wait(&mut self, out: &mut Vec<Ready>, timeout_ms: i32) -> io::Result<()> {
        out.clear();
        let capacity = self.raw.len() as libc::c_int;
        // SAFETY: `raw` has room for `capacity` events.
        let n = match check(unsafe {
            libc::epoll_wait(self.fd.as_raw_fd(), self.raw.as_mut_ptr(), capacity, timeout_ms)
        }) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        out.extend(self.raw[..n].iter().map(|e| Ready {
            token: e.u64,
            events: e.events,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_readable_with_its_token() {
        let mut ep = Epoll::new(8).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        ep.add(b.as_raw_fd(), 77, READABLE).unwrap();
        let mut out = Vec::new();
        ep.wait(&mut out, 0).unwrap();
        assert!(out.is_empty());
        a.write_all(b"x").unwrap();
        ep.wait(&mut out, 1_000).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].token, 77);
        assert_ne!(out[0].events & READABLE, 0);
        ep.modify(b.as_raw_fd(), 78, WRITABLE).unwrap();
        ep.wait(&mut out, 1_000).unwrap();
        assert_eq!(out[0].token, 78);
        assert_ne!(out[0].events & WRITABLE, 0);
    }
}
