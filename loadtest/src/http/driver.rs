//! One generator thread: nonblocking sockets on a level-triggered epoll,
//! each connection driven by its [`ConnCore`]. Failed connections are
//! reopened, at most [`RECONNECTS_PER_THREAD_MAX`] times per thread.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::epoll::{Epoll, Ready, FAILED, READABLE, WRITABLE};
use crate::http::conn::{AfterRead, ConnCore};
use crate::http::stats::HttpStats;
use crate::limits::RECONNECTS_PER_THREAD_MAX;
use crate::phase::{Phase, RunControl};

/// How long one epoll wait may block: the longest delay before a phase
/// change is seen.
const WAIT_TIMEOUT_MS: i32 = 10;
/// How often connections are checked against the timeout, in ns.
const TIMEOUT_SCAN_INTERVAL_NS: u64 = 50_000_000;
/// Most reads served to one connection per readiness report (fairness).
const READS_PER_EVENT_MAX: usize = 64;
/// Events taken per epoll wait.
const EVENTS_PER_WAIT: usize = 512;

/// What one thread does.
#[derive(Debug, Clone)]
pub struct ThreadPlan {
    pub target: SocketAddr,
    /// Source addresses, used round-robin by global connection number.
    pub source_ips: Vec<Ipv4Addr>,
    pub connections: usize,
    /// Global number of this thread's first connection (spreads paths and
    /// sources across threads).
    pub first_connection: usize,
    pub requests: Arc<[Vec<u8>]>,
    pub pipeline_depth: usize,
    pub timeout_ns: u64,
}

struct Slot {
    socket: Option<Socket>,
    connecting: bool,
    /// When the connect was started, for the connect timeout.
    connect_started_ns: u64,
    /// Whether EPOLLOUT is in the registered interest.
    watching_writable: bool,
    source_ip: Option<Ipv4Addr>,
    core: ConnCore,
}

/// Why a connection is being reopened.
enum Fault {
    Connect(String),
    Io(String),
    Protocol(String),
    Timeout(usize),
    ServerClose,
}

struct Driver<'a> {
    plan: &'a ThreadPlan,
    epoll: Epoll,
    slots: Vec<Slot>,
    stats: HttpStats,
    base: Instant,
    reconnects: u64,
    last_fault: String,
    /// Slots closed by a fault, reopened after the current batch of events
    /// (never from inside a handler, so failures cannot recurse).
    to_open: Vec<usize>,
}

/// Runs one thread's connections until the run stops; returns what it
/// counted in the measured phase.
pub fn run_thread(plan: &ThreadPlan, control: &RunControl) -> anyhow::Result<HttpStats> {
    let mut driver = Driver {
        plan,
        epoll: Epoll::new(EVENTS_PER_WAIT)?,
        slots: Vec::with_capacity(plan.connections),
        stats: HttpStats::default(),
        base: Instant::now(),
        reconnects: 0,
        last_fault: String::new(),
        to_open: Vec::with_capacity(plan.connections),
    };
    for i in 0..plan.connections {
        let global = plan.first_connection + i;
        let source_ip = (!plan.source_ips.is_empty()).then(|| plan.source_ips[global % plan.source_ips.len()]);
        driver.slots.push(Slot {
            socket: None,
            connecting: false,
            connect_started_ns: 0,
            watching_writable: false,
            source_ip,
            core: ConnCore::new(plan.requests.clone(), global, plan.pipeline_depth),
        });
        driver.to_open.push(i);
    }
    let result = driver.run(control);
    if result.is_err() {
        control.advance(Phase::Stop);
    }
    result
}

impl Driver<'_> {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn run(&mut self, control: &RunControl) -> anyhow::Result<HttpStats> {
        let mut ready: Vec<Ready> = Vec::with_capacity(EVENTS_PER_WAIT);
        let mut measuring = false;
        let mut last_scan_ns = 0;
        loop {
            match control.phase() {
                Phase::Stop => break,
                Phase::Measure if !measuring => {
                    self.stats.clear();
                    measuring = true;
                }
                _ => {}
            }
            if self.reconnects > RECONNECTS_PER_THREAD_MAX {
                bail!(
                    "gave up after {} reconnects to {} (limit {RECONNECTS_PER_THREAD_MAX}); last failure: {}",
                    self.reconnects,
                    self.plan.target,
                    self.last_fault
                );
            }
            let reopening = std::mem::take(&mut self.to_open);
            for &i in &reopening {
                self.open(i);
            }
            // Failed connects are retried every millisecond at most.
            let timeout_ms = if self.to_open.is_empty() { WAIT_TIMEOUT_MS } else { 1 };
            self.epoll.wait(&mut ready, timeout_ms)?;
            for r in &ready {
                self.handle(r.token as usize, r.events);
            }
            let now = self.now_ns();
            if now - last_scan_ns >= TIMEOUT_SCAN_INTERVAL_NS {
                last_scan_ns = now;
                self.expire(now);
            }
        }
        Ok(std::mem::take(&mut self.stats))
    }

    /// Starts a nonblocking connect for slot `i`.
    fn open(&mut self, i: usize) {
        let now = self.now_ns();
        match connect_nonblocking(self.plan.target, self.slots[i].source_ip) {
            Ok(socket) => {
                let fd = socket.as_raw_fd();
                if let Err(e) = self.epoll.add(fd, i as u64, READABLE | WRITABLE) {
                    self.fault(i, Fault::Connect(format!("epoll add: {e}")));
                    return;
                }
                let slot = &mut self.slots[i];
                slot.socket = Some(socket);
                slot.connecting = true;
                slot.connect_started_ns = now;
                slot.watching_writable = true;
            }
            Err(e) => self.fault(i, Fault::Connect(e.to_string())),
        }
    }

    /// Counts the fault, closes slot `i` and queues it to be opened again.
    fn fault(&mut self, i: usize, fault: Fault) {
        match fault {
            Fault::Connect(e) => {
                self.stats.connect_errors += 1;
                self.last_fault = format!("connect: {e}");
            }
            Fault::Io(e) => {
                self.stats.io_errors += 1;
                self.last_fault = format!("io: {e}");
            }
            Fault::Protocol(e) => {
                self.stats.protocol_errors += 1;
                self.last_fault = format!("protocol: {e}");
            }
            Fault::Timeout(n) => {
                self.stats.timeouts += n as u64;
                self.last_fault = format!("{n} requests timed out");
            }
            Fault::ServerClose => self.stats.server_closes += 1,
        }
        self.stats.reconnects += 1;
        self.reconnects += 1;
        // Dropping the socket closes it, which also removes it from epoll.
        self.slots[i].socket = None;
        self.slots[i].connecting = false;
        self.to_open.push(i);
    }

    fn handle(&mut self, i: usize, events: u32) {
        if self.slots[i].socket.is_none() {
            return;
        }
        if self.slots[i].connecting {
            if events & (WRITABLE | FAILED) == 0 {
                return;
            }
            let error = match self.slots[i].socket.as_ref().map(Socket::take_error) {
                Some(Ok(None)) if events & FAILED == 0 => None,
                Some(Ok(Some(e))) | Some(Err(e)) => Some(e.to_string()),
                _ => Some("connection failed".to_string()),
            };
            if let Some(e) = error {
                self.fault(i, Fault::Connect(e));
                return;
            }
            let now = self.now_ns();
            self.slots[i].connecting = false;
            self.slots[i].core.open(now);
            self.flush(i);
            return;
        }
        if events & (READABLE | FAILED) != 0 && !self.read(i) {
            return;
        }
        self.flush(i);
    }

    /// Reads what is there. False if the slot was reopened.
    fn read(&mut self, i: usize) -> bool {
        for _ in 0..READS_PER_EVENT_MAX {
            let slot = &mut self.slots[i];
            let Some(socket) = slot.socket.as_ref() else {
                return false;
            };
            let space = slot.core.read_space();
            let offered = space.len();
            let result = (&*socket).read(space);
            match result {
                Ok(0) => {
                    let fault = if slot.core.outstanding() > 0 {
                        Fault::Io("server closed the connection with requests outstanding".into())
                    } else {
                        Fault::ServerClose
                    };
                    self.fault(i, fault);
                    return false;
                }
                Ok(n) => {
                    let now = self.now_ns();
                    let slot = &mut self.slots[i];
                    match slot.core.received(n, now, &mut self.stats) {
                        Ok(AfterRead::Continue) => {}
                        Ok(AfterRead::Reopen) => {
                            self.fault(i, Fault::ServerClose);
                            return false;
                        }
                        Err(e) => {
                            self.fault(i, Fault::Protocol(e.0.to_string()));
                            return false;
                        }
                    }
                    if n < offered {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fault(i, Fault::Io(e.to_string()));
                    return false;
                }
            }
        }
        true
    }

    /// Writes what the connection has queued; watches for writability
    /// only while something is left.
    fn flush(&mut self, i: usize) {
        loop {
            let slot = &mut self.slots[i];
            let Some(socket) = slot.socket.as_ref() else { return };
            if slot.core.to_write().is_empty() {
                break;
            }
            match (&*socket).write(slot.core.to_write()) {
                Ok(n) => slot.core.wrote(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fault(i, Fault::Io(e.to_string()));
                    return;
                }
            }
        }
        let slot = &mut self.slots[i];
        let want_writable = !slot.core.to_write().is_empty();
        if want_writable != slot.watching_writable {
            let fd = slot.socket.as_ref().map(|s| s.as_raw_fd()).expect("checked above");
            let interest = if want_writable { READABLE | WRITABLE } else { READABLE };
            match self.epoll.modify(fd, i as u64, interest) {
                Ok(()) => self.slots[i].watching_writable = want_writable,
                Err(e) => self.fault(i, Fault::Io(format!("epoll modify: {e}"))),
            }
        }
    }

    /// Reopens connections whose oldest request (or connect) is too old.
    fn expire(&mut self, now_ns: u64) {
        let timeout = self.plan.timeout_ns;
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if slot.socket.is_none() {
                continue;
            }
            if slot.connecting {
                if now_ns.saturating_sub(slot.connect_started_ns) > timeout {
                    self.fault(i, Fault::Connect("connect timed out".into()));
                }
            } else if let Some(sent) = slot.core.oldest_sent_ns() {
                if now_ns.saturating_sub(sent) > timeout {
                    let n = slot.core.outstanding();
                    self.fault(i, Fault::Timeout(n));
                }
            }
        }
    }
}

/// A nonblocking TCP socket, bound to `source_ip` if given, with its
/// connect started.
fn connect_nonblocking(target: SocketAddr, source_ip: Option<Ipv4Addr>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(target), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source_ip {
        // Let connect() pick the port, so each (source, target) pair has
        // its own ephemeral range.
        let one: libc::c_int = 1;
        // SAFETY: valid fd, option value is a c_int that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        socket.bind(&SockAddr::from(SocketAddrV4::new(ip, 0)))?;
    }
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// A tiny keep-alive server that answers every request with `OK`,
    /// one thread per connection, for a bounded number of requests.
    fn serve(listener: TcpListener, connections: usize, requests_max: usize) {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                let mut answered = 0;
                while answered < requests_max {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if s.write_all(OK).is_err() {
                            return;
                        }
                        answered += 1;
                    }
                }
            });
        }
    }

    fn plan(target: SocketAddr, connections: usize, depth: usize) -> ThreadPlan {
        ThreadPlan {
            target,
            source_ips: vec![Ipv4Addr::new(127, 0, 0, 1)],
            connections,
            first_connection: 0,
            requests: vec![crate::http::request::get_request("t", "/x")].into(),
            pipeline_depth: depth,
            timeout_ns: 2_000_000_000,
        }
    }

    #[test]
    fn drives_pipelined_connections_against_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, 4, 1_000_000));
        let control = Arc::new(RunControl::new());
        let c2 = control.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c2.advance(Phase::Measure);
            std::thread::sleep(Duration::from_millis(300));
            c2.advance(Phase::Stop);
        });
        let stats = run_thread(&plan(target, 4, 4), &control).unwrap();
        stopper.join().unwrap();
        assert!(stats.responses > 100, "only {} responses", stats.responses);
        assert_eq!(stats.successes(), stats.responses);
        assert_eq!(stats.connect_errors + stats.io_errors + stats.protocol_errors, 0);
        assert_eq!(stats.latency.count(), stats.responses);
    }

    #[test]
    fn refused_connections_end_the_thread_with_a_clear_error() {
        // Bind then drop: nothing listens on this port any more.
        let target = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let control = RunControl::new();
        let started = Instant::now();
        let err = run_thread(&plan(target, 8, 1), &control).unwrap_err().to_string();
        assert!(err.contains("gave up after"), "{err}");
        assert!(err.contains("connect"), "{err}");
        assert_eq!(control.phase(), Phase::Stop, "a failed thread stops the run");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_silent_server_times_requests_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        // Accepts and never answers; keeps the sockets open.
        let holder = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut held = Vec::new();
            let end = Instant::now() + Duration::from_millis(900);
            while Instant::now() < end {
                if let Ok((s, _)) = listener.accept() {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let control = Arc::new(RunControl::new());
        control.advance(Phase::Measure);
        let c2 = control.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            c2.advance(Phase::Stop);
        });
        let mut p = plan(target, 2, 1);
        p.timeout_ns = 200_000_000;
        let stats = run_thread(&p, &control).unwrap();
        stopper.join().unwrap();
        holder.join().unwrap();
        assert_eq!(stats.responses, 0);
        assert!(stats.timeouts >= 2, "timeouts {}", stats.timeouts);
        assert!(stats.reconnects >= 2);
    }
}
