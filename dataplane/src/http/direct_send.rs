//! Non-blocking socket calls made directly on a connection's descriptor,
//! outside the runtime's submission queue, for the wake-up of a parked
//! blocking query (issue #4, fan-out): its response goes out with one
//! `send` from the woken task while the connection's hang-up read stays in
//! flight, instead of cancelling that read, waiting for the cancellation,
//! submitting a write, waiting for its completion and submitting a new
//! read (three submissions, three completions and two extra task wake-ups
//! per answer). A response larger than the socket's free send buffer
//! leaves a remainder for the ordinary asynchronous write.

use std::io;
use std::os::fd::RawFd;

/// How a [`send_now`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendNow {
    /// Every byte was handed to the kernel.
    All,
    /// The first `sent` bytes were (possibly 0): the send buffer is full;
    /// the rest must be written asynchronously.
    Partial { sent: usize },
    /// The connection is broken (reset, closed for writing): nobody will
    /// read the rest.
    Broken,
}

/// Longest a [`send_now`] keeps retrying after `EINTR`.
const INTERRUPTED_RETRIES_MAX: u32 = 8;

/// What one `send` call's return value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    /// That many bytes (> 0) went out.
    Sent(usize),
    /// Interrupted by a signal: try again.
    Retry,
    /// Nothing went out now (`EAGAIN`, or a `send` of a non-empty buffer
    /// that returned 0): the rest goes through the ordinary write, which
    /// reports whatever is wrong with the connection.
    Full,
    /// The connection is broken.
    Broken,
}

/// Classifies `send`'s return value `n`. `errno` is read only when `n` is
/// negative: a `send` that returns 0 leaves `errno` as an earlier call set
/// it, which says nothing about this one.
fn send_step(n: isize, errno: impl FnOnce() -> io::Error) -> SendStep {
    if n > 0 {
        return SendStep::Sent(n as usize);
    }
    if n == 0 {
        return SendStep::Full;
    }
    match errno().kind() {
        io::ErrorKind::WouldBlock => SendStep::Full,
        io::ErrorKind::Interrupted => SendStep::Retry,
        _ => SendStep::Broken,
    }
}

/// Sends as much of `bytes` on `fd` as fits now, without blocking and
/// without `SIGPIPE`.
pub fn send_now(fd: RawFd, bytes: &[u8]) -> SendNow {
    let mut sent = 0;
    let mut interrupted = 0;
    while sent < bytes.len() {
        let rest = &bytes[sent..];
        // SAFETY: `rest` is valid for `rest.len()` bytes during the call;
        // the flags make the call non-blocking and signal-free.
        let n = unsafe {
            libc::send(
                fd,
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        match send_step(n, io::Error::last_os_error) {
            SendStep::Sent(bytes) => sent += bytes,
            SendStep::Retry if interrupted < INTERRUPTED_RETRIES_MAX => interrupted += 1,
            SendStep::Retry | SendStep::Full => return SendNow::Partial { sent },
            SendStep::Broken => return SendNow::Broken,
        }
    }
    SendNow::All
}

/// Appends what `fd` has ready now to `input`, at most `bytes_max` bytes,
/// without blocking. Returns how many were read; 0 when nothing was
/// ready, the peer closed, or the read failed (the connection's next
/// ordinary read reports those).
pub fn recv_ready(fd: RawFd, input: &mut Vec<u8>, bytes_max: usize) -> usize {
    input.reserve(bytes_max);
    let spare = input.spare_capacity_mut();
    let want = spare.len().min(bytes_max);
    // SAFETY: `spare` has room for `want` bytes; the kernel writes at
    // most that many, and only those are marked initialised below.
    let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), want, libc::MSG_DONTWAIT) };
    if n <= 0 {
        return 0;
    }
    let n = n as usize;
    debug_assert!(n <= want, "recv wrote past the buffer");
    // SAFETY: the kernel initialised the first `n` spare bytes.
    unsafe { input.set_len(input.len() + n) };
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    #[test]
    fn send_returning_zero_does_not_read_errno() {
        let stale = || -> io::Error { panic!("errno read after a send that returned 0") };
        assert_eq!(send_step(0, stale), SendStep::Full);
        assert_eq!(send_step(7, stale), SendStep::Sent(7));
        let errno = |code| move || io::Error::from_raw_os_error(code);
        assert_eq!(send_step(-1, errno(libc::EAGAIN)), SendStep::Full);
        assert_eq!(send_step(-1, errno(libc::EINTR)), SendStep::Retry);
        assert_eq!(send_step(-1, errno(libc::ECONNRESET)), SendStep::Broken);
        assert_eq!(send_step(-1, errno(libc::EPIPE)), SendStep::Broken);
    }

    #[test]
    fn a_small_response_goes_out_whole() {
        let (a, mut b) = pair();
        assert_eq!(send_now(a.as_raw_fd(), b"HTTP/1.1 200 OK\r\n\r\n"), SendNow::All);
        let mut got = [0u8; 19];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HTTP/1.1 200 OK\r\n\r\n");
    }

    #[test]
    fn a_full_send_buffer_leaves_a_remainder_and_never_blocks() {
        let (a, _b) = pair();
        // The peer never reads: the kernel takes only so much.
        let big = vec![b'x'; 64 * 1024 * 1024];
        match send_now(a.as_raw_fd(), &big) {
            SendNow::Partial { sent } => assert!(sent < big.len(), "{sent}"),
            other => panic!("expected a partial send, got {other:?}"),
        }
        assert_eq!(send_now(a.as_raw_fd(), &big), SendNow::Partial { sent: 0 });
    }

    #[test]
    fn a_reset_connection_is_broken() {
        let (a, b) = pair();
        // Linger 0: closing resets the connection.
        socket2::SockRef::from(&b)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(b);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(send_now(a.as_raw_fd(), b"late"), SendNow::Broken);
    }

    #[test]
    fn ready_bytes_are_appended_up_to_the_bound() {
        let (a, mut b) = pair();
        let mut input = b"GET /v1/kv/k?ind".to_vec();
        assert_eq!(recv_ready(a.as_raw_fd(), &mut input, 1024), 0, "nothing ready");
        b.write_all(b"ex=7 HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(recv_ready(a.as_raw_fd(), &mut input, 4), 4);
        assert_eq!(recv_ready(a.as_raw_fd(), &mut input, 1024), 13);
        assert_eq!(input, b"GET /v1/kv/k?index=7 HTTP/1.1\r\n\r\n");
    }
}
