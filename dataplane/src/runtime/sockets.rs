//! Listening sockets: a one-time probe without `SO_REUSEPORT` (so a port
//! held by another process is an error, never silently shared), then one
//! `SO_REUSEPORT` socket per core per address.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog of every TCP listener (the kernel caps it at somaxconn).
pub const LISTEN_BACKLOG: i32 = 4096;
/// A port still held is probed again for this long (a previous data plane
/// may be exiting after a `Shutdown`).
pub const PROBE_PATIENCE: Duration = Duration::from_secs(1);
const PROBE_RETRY: Duration = Duration::from_millis(50);

/// The concrete addresses every core binds (port 0 resolved once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenPlan {
    /// HTTP listen addresses.
    pub http: Vec<SocketAddr>,
    /// Each bound twice: UDP and TCP.
    pub dns: Vec<SocketAddr>,
}

/// A bind failure, worded like Consul's (`listen tcp 127.0.0.1:8500:
/// bind: address already in use`).
#[derive(Debug, thiserror::Error)]
#[error("listen {proto} {addr}: bind: {reason}")]
pub struct BindError {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// Go-style reason (`address already in use`).
    pub reason: String,
}

impl BindError {
    fn new(proto: &'static str, addr: SocketAddr, err: &io::Error) -> BindError {
        BindError {
            proto,
            addr,
            reason: go_style_reason(err),
        }
    }
}

/// The lower-case syscall reason Go prints for common bind errors.
fn go_style_reason(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        _ => err.to_string(),
    }
}

/// Binds each address once without `SO_REUSEPORT`, then releases it.
/// Port 0 is resolved to the port the kernel picked.
pub fn probe(http: &[SocketAddr], dns: &[SocketAddr]) -> Result<ListenPlan, BindError> {
    let mut plan = ListenPlan {
        http: Vec::with_capacity(http.len()),
        dns: Vec::with_capacity(dns.len()),
    };
    for &addr in http {
        let listener = with_patience(|| TcpListener::bind(addr)).map_err(|e| BindError::new("tcp", addr, &e))?;
        plan.http.push(listener.local_addr().unwrap_or(addr));
    }
    for &addr in dns {
        plan.dns.push(probe_dns(addr)?);
    }
    Ok(plan)
}

/// Tries for a port-0 DNS address: the kernel picks a free UDP port, and
/// the same number may already be taken for TCP.
const DNS_PORT_ZERO_TRIES_MAX: usize = 32;

/// DNS needs the same port for UDP and TCP. For a fixed port both must be
/// free (with patience for a previous data plane still exiting); for port
/// 0, a port free for both is picked, retrying when the kernel's UDP choice
/// is taken for TCP.
fn probe_dns(addr: SocketAddr) -> Result<SocketAddr, BindError> {
    let tries = if addr.port() == 0 { DNS_PORT_ZERO_TRIES_MAX } else { 1 };
    let mut last_error = None;
    for _ in 0..tries {
        let udp = with_patience(|| UdpSocket::bind(addr)).map_err(|e| BindError::new("udp", addr, &e))?;
        let resolved = udp.local_addr().unwrap_or(addr);
        let bound = if addr.port() == 0 {
            TcpListener::bind(resolved)
        } else {
            with_patience(|| TcpListener::bind(resolved))
        };
        match bound {
            Ok(tcp) => {
                drop((udp, tcp));
                return Ok(resolved);
            }
            Err(e) => last_error = Some(BindError::new("tcp", resolved, &e)),
        }
    }
    Err(last_error.expect("at least one try was made"))
}

fn with_patience<T>(mut bind: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let started = Instant::now();
    loop {
        match bind() {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && started.elapsed() < PROBE_PATIENCE => {
                std::thread::sleep(PROBE_RETRY);
            }
            other => return other,
        }
    }
}

fn shared_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A non-blocking `SO_REUSEPORT` TCP listener on `addr`.
pub fn tcp_listener(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let socket = shared_socket(addr, Type::STREAM, Protocol::TCP).map_err(|e| BindError::new("tcp", addr, &e))?;
    socket
        .listen(LISTEN_BACKLOG)
        .map_err(|e| BindError::new("tcp", addr, &e))?;
    Ok(socket.into())
}

/// A non-blocking `SO_REUSEPORT` UDP socket on `addr`.
pub fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, BindError> {
    let socket = shared_socket(addr, Type::DGRAM, Protocol::UDP).map_err(|e| BindError::new("udp", addr, &e))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback0() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn probe_resolves_port_zero_and_cores_can_share_it() {
        let plan = probe(&[loopback0()], &[loopback0()]).unwrap();
        assert_ne!(plan.http[0].port(), 0);
        assert_ne!(plan.dns[0].port(), 0);
        let a = tcp_listener(plan.http[0]).unwrap();
        let b = tcp_listener(plan.http[0]).unwrap();
        assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
        let u1 = udp_socket(plan.dns[0]).unwrap();
        let u2 = udp_socket(plan.dns[0]).unwrap();
        assert_eq!(u1.local_addr().unwrap(), u2.local_addr().unwrap());
        let _t = tcp_listener(plan.dns[0]).unwrap();
    }

    #[test]
    fn a_port_held_by_someone_else_is_an_error_worded_like_consul() {
        let held = std::net::TcpListener::bind(loopback0()).unwrap();
        let addr = held.local_addr().unwrap();
        let err = probe(&[addr], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("listen tcp {addr}: bind: address already in use")
        );
        let held_udp = std::net::UdpSocket::bind(loopback0()).unwrap();
        let uaddr = held_udp.local_addr().unwrap();
        let err = probe(&[], &[uaddr]).unwrap_err();
        assert_eq!(err.proto, "udp");
        assert!(err.to_string().ends_with("address already in use"));
    }

    #[test]
    fn even_reuseport_holders_are_detected() {
        let plan = probe(&[loopback0()], &[]).unwrap();
        let _other = tcp_listener(plan.http[0]).unwrap();
        assert!(probe(&plan.http, &[]).is_err(), "the probe binds without SO_REUSEPORT");
    }
}
