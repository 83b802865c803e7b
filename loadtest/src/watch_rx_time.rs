//! Kernel receive timestamps on TCP sockets (`SO_TIMESTAMPNS`): the time a
//! response's last segment entered this host's receive path, read from the
//! control message `recvmsg` returns with the bytes. On loopback that is
//! the moment the server's send reached the stack, so a latency taken from
//! it excludes how long the generator took to get round to reading the
//! socket (it shares the CPUs with the server).

use std::io;
use std::os::fd::RawFd;

/// `SO_TIMESTAMPNS` (asm-generic value, also x86-64 and aarch64); the
/// control message it produces has the same type (`SCM_TIMESTAMPNS`).
const SO_TIMESTAMPNS: libc::c_int = 35;
/// Room for one `timespec` control message (and some slack for others).
const CONTROL_BYTES: usize = 128;

/// Asks the kernel to stamp every segment received on `fd`.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What one [`recv`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes read (0: the peer closed).
    pub bytes: usize,
    /// Kernel receive time of the last segment read, nanoseconds since the
    /// Unix epoch (`CLOCK_REALTIME`); `None` when the kernel gave none.
    pub rx_unix_ns: Option<u64>,
}

/// One `recvmsg` into `buf` (non-blocking sockets report `WouldBlock`).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 elements: the control buffer must be aligned for `cmsghdr`.
    let mut control = [0u64; CONTROL_BYTES / 8];
    // SAFETY: zeroed msghdr is a valid empty header; fields set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_BYTES as _;
    // SAFETY: `msg` points at `iov`/`buf` and `control`, which outlive the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Received {
        bytes: n as usize,
        rx_unix_ns: timestamp_of(&msg),
    })
}

/// The `SCM_TIMESTAMPNS` control message of a `recvmsg` result, if any.
fn timestamp_of(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by `recvmsg`; the CMSG macros stay within
    // `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == SO_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                if ts.tv_sec <= 0 && ts.tv_nsec <= 0 {
                    return None;
                }
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn unix_ns_now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
    }

    #[test]
    fn a_tcp_read_carries_the_kernel_receive_time_of_its_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut writer, _) = listener.accept().unwrap();
        enable(reader.as_raw_fd()).unwrap();
        // The first socket to ask turns stamping on from a kernel work
        // item: give it time before the bytes arrive.
        std::thread::sleep(Duration::from_millis(50));
        let before_send = unix_ns_now();
        writer.write_all(b"hello").unwrap();
        // The bytes sit in the socket while the reader is "busy".
        std::thread::sleep(Duration::from_millis(50));
        let read_at = unix_ns_now();
        let mut buf = [0u8; 16];
        let got = recv(reader.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..got.bytes], b"hello");
        let rx = got.rx_unix_ns.expect("the kernel stamped the segment");
        assert!(rx >= before_send, "stamped before it was sent: {rx} < {before_send}");
        assert!(
            rx + 40_000_000 <= read_at,
            "the stamp is the arrival, not the read: {rx} vs read at {read_at}"
        );
    }

    #[test]
    fn without_enabling_there_is_no_timestamp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut writer, _) = listener.accept().unwrap();
        writer.write_all(b"x").unwrap();
        let mut buf = [0u8; 4];
        let got = recv(reader.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((got.bytes, got.rx_unix_ns), (1, None));
    }
}
