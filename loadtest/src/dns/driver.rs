//! The DNS generator loop, on one thread: send a batch on the next socket
//! while the window (and in fixed-rate mode, the schedule) allows, drain
//! every socket's replies, expire old queries, and sleep in `ppoll` only
//! when nothing moved. After the run stops, replies are still collected
//! for one timeout so the queries of the last moments are not miscounted
//! as lost or answered.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use anyhow::Context;

use crate::dns::batch::MsgBatch;
use crate::dns::inflight::InFlight;
use crate::dns::pacer::Pacer;
use crate::dns::query_file::QueryTemplate;
use crate::dns::reply::{echoes_question, parse_reply_header};
use crate::dns::stats::DnsStats;
use crate::limits::DNS_REPLY_BYTES_MAX;
use crate::phase::{Phase, RunControl};

/// Largest query message (a 255-byte name plus header and type/class fits).
const QUERY_BYTES_MAX: usize = 512;
/// Kernel buffer asked for on each socket, in bytes.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;
/// How often outstanding queries are checked against the timeout, in ns.
const EXPIRE_INTERVAL_NS: u64 = 10_000_000;
/// Longest sleep when idle, in ns.
const IDLE_WAIT_NS_MAX: u64 = 1_000_000;
/// `recvmmsg` calls per socket per loop turn, at most.
const RECV_CALLS_PER_TURN_MAX: usize = 4;

/// What the DNS generator does.
#[derive(Debug, Clone)]
pub struct DnsPlan {
    pub target: SocketAddr,
    pub sockets: usize,
    pub batch: usize,
    pub window: usize,
    pub rate_per_s: Option<u64>,
    pub timeout_ns: u64,
    pub queries: Vec<QueryTemplate>,
}

/// What the generator counted.
#[derive(Debug, Clone, Default)]
pub struct DnsOutcome {
    /// Counted during the measured phase, plus the loss found while draining.
    pub stats: DnsStats,
    /// Replies collected after the stop (not counted as answered).
    pub answered_after_stop: u64,
}

struct Generator<'a> {
    plan: &'a DnsPlan,
    sockets: Vec<UdpSocket>,
    send: MsgBatch,
    recv: MsgBatch,
    inflight: InFlight,
    stats: DnsStats,
    next_query: usize,
    next_socket: usize,
    base: Instant,
    /// Queries sent in this batch, by slot, to cancel the unsent ones.
    ids: Vec<u16>,
    /// One entry per socket, for the idle wait.
    poll_fds: Vec<libc::pollfd>,
}

/// Opens `count` UDP sockets connected to `target`, nonblocking.
fn open_sockets(target: SocketAddr, count: usize) -> anyhow::Result<Vec<UdpSocket>> {
    let local: SocketAddr = if target.is_ipv4() {
        "127.0.0.1:0".parse().expect("static address")
    } else {
        "[::1]:0".parse().expect("static address")
    };
    (0..count)
        .map(|_| -> anyhow::Result<UdpSocket> {
            let s = UdpSocket::bind(local).context("binding a UDP socket")?;
            let r = socket2::SockRef::from(&s);
            // Larger buffers are a wish; the kernel caps them at rmem_max.
            let _ = r.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
            let _ = r.set_send_buffer_size(SOCKET_BUFFER_BYTES);
            s.connect(target)
                .with_context(|| format!("connecting a UDP socket to {target}"))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect()
}

/// Runs the generator until the run stops, then drains.
pub fn run_generator(plan: &DnsPlan, control: &RunControl) -> anyhow::Result<DnsOutcome> {
    assert!(!plan.queries.is_empty(), "validated: at least one query");
    for q in &plan.queries {
        assert!(q.wire.len() <= QUERY_BYTES_MAX, "a query message fits its slot");
    }
    let sockets = open_sockets(plan.target, plan.sockets)?;
    let poll_fds = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd() as RawFd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut g = Generator {
        plan,
        sockets,
        send: MsgBatch::new(plan.batch, QUERY_BYTES_MAX),
        recv: MsgBatch::new(plan.batch, DNS_REPLY_BYTES_MAX),
        inflight: InFlight::new(plan.window),
        stats: DnsStats::default(),
        next_query: 0,
        next_socket: 0,
        base: Instant::now(),
        ids: vec![0; plan.batch],
        poll_fds,
    };
    let result = g.run(control);
    if result.is_err() {
        control.advance(Phase::Stop);
    }
    result
}

impl Generator<'_> {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn run(&mut self, control: &RunControl) -> anyhow::Result<DnsOutcome> {
        // Up to 10 ms of sends may pile up behind schedule (a descheduled
        // generator catches up in one burst); beyond that they are skipped.
        let burst = self.plan.rate_per_s.map(|r| (r / 100).max(self.plan.batch as u64));
        let mut pacer = self.plan.rate_per_s.map(|r| Pacer::new(r, 0, burst.unwrap_or(1)));
        let mut measuring = false;
        let mut last_expire_ns = 0;
        loop {
            let now = self.now_ns();
            match control.phase() {
                Phase::Stop => break,
                Phase::Measure if !measuring => {
                    self.stats.clear();
                    if let Some(p) = pacer.as_mut() {
                        p.restart(now);
                    }
                    measuring = true;
                }
                _ => {}
            }
            let mut want = self.inflight.room().min(self.plan.batch) as u64;
            if let Some(p) = pacer.as_mut() {
                want = p.grant(now, want);
            }
            let mut progress = false;
            if want > 0 {
                progress |= self.send_batch(want as usize, now)? > 0;
            }
            progress |= self.receive_all(true)? > 0;
            if now - last_expire_ns >= EXPIRE_INTERVAL_NS {
                last_expire_ns = now;
                self.stats.lost += self.inflight.expire(now, self.plan.timeout_ns);
            }
            if !progress {
                let wait = match (&pacer, self.inflight.room() > 0) {
                    (Some(p), true) => p.wait_ns(self.now_ns()).min(IDLE_WAIT_NS_MAX),
                    _ => IDLE_WAIT_NS_MAX,
                };
                self.wait_readable(wait)?;
            }
        }
        self.stats.schedule_skipped = pacer.as_ref().map_or(0, Pacer::skipped);
        let answered_after_stop = self.drain()?;
        Ok(DnsOutcome {
            stats: std::mem::take(&mut self.stats),
            answered_after_stop,
        })
    }

    /// Sends `count` queries on the next socket. Returns how many went out.
    fn send_batch(&mut self, count: usize, now: u64) -> anyhow::Result<usize> {
        let socket = self.next_socket;
        self.next_socket = (self.next_socket + 1) % self.sockets.len();
        for k in 0..count {
            let query = self.next_query;
            self.next_query = (self.next_query + 1) % self.plan.queries.len();
            let id = self.inflight.start(socket as u16, query as u32, now);
            self.ids[k] = id;
            let slot = self.send.fill(k, &self.plan.queries[query].wire);
            slot[..2].copy_from_slice(&id.to_be_bytes());
        }
        let sent = match self.send.send(self.sockets[socket].as_raw_fd(), count) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                // An ICMP port-unreachable from an earlier datagram.
                self.stats.send_errors += 1;
                0
            }
            Err(e) => return Err(e).context("sendmmsg"),
        };
        for &id in &self.ids[sent..count] {
            self.inflight.cancel(id);
        }
        self.stats.sent += sent as u64;
        Ok(sent)
    }

    /// Reads every socket's waiting replies. `count` false: replies only
    /// free their ids (drain after stop). Returns how many matched.
    fn receive_all(&mut self, count: bool) -> anyhow::Result<u64> {
        let mut matched = 0;
        for s in 0..self.sockets.len() {
            let fd = self.sockets[s].as_raw_fd();
            for _ in 0..RECV_CALLS_PER_TURN_MAX {
                let n = match self.recv.recv(fd) {
                    Ok(n) => n,
                    Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                        self.stats.send_errors += 1;
                        0
                    }
                    Err(e) => return Err(e).context("recvmmsg"),
                };
                let now = self.now_ns();
                for k in 0..n {
                    matched += u64::from(self.take_reply(k, s as u16, now, count));
                }
                if n < self.recv.slots() {
                    break;
                }
            }
        }
        Ok(matched)
    }

    /// Matches the reply in receive slot `k`. Returns whether it answered
    /// an outstanding query.
    fn take_reply(&mut self, k: usize, socket: u16, now: u64, count: bool) -> bool {
        let bytes = self.recv.received(k);
        let Some(header) = parse_reply_header(bytes).filter(|h| h.is_response) else {
            self.stats.malformed += u64::from(count);
            return false;
        };
        let matches = self
            .inflight
            .query_of(header.id, socket)
            .is_some_and(|q| echoes_question(bytes, self.plan.queries[q as usize].question()));
        if !matches {
            self.stats.unmatched += u64::from(count);
            return false;
        }
        let latency = self
            .inflight
            .complete(header.id, socket, now)
            .expect("query_of just found it outstanding");
        if count {
            self.stats.record_answer(header.rcode, header.truncated, latency);
        }
        true
    }

    /// Collects replies for up to one timeout after the stop; what is
    /// still outstanding then is lost.
    fn drain(&mut self) -> anyhow::Result<u64> {
        let end = self.now_ns() + self.plan.timeout_ns;
        let mut answered = 0;
        while self.inflight.outstanding() > 0 && self.now_ns() < end {
            let got = self.receive_all(false)?;
            answered += got;
            if got == 0 {
                self.wait_readable(IDLE_WAIT_NS_MAX)?;
            }
        }
        self.stats.lost += self.inflight.expire(u64::MAX - 1, 0);
        Ok(answered)
    }

    /// Sleeps until a socket is readable or `wait_ns` passes.
    fn wait_readable(&mut self, wait_ns: u64) -> io::Result<()> {
        if wait_ns == 0 {
            return Ok(());
        }
        let fds = &mut self.poll_fds;
        let ts = libc::timespec {
            tv_sec: (wait_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (wait_ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `fds` and `ts` live across the call.
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::query_file::encode_query;
    use std::sync::Arc;
    use std::time::Duration;

    /// Answers each query by flipping QR on, until `stop` is set; drops
    /// every `drop_every`-th query when nonzero. Bounded by a deadline.
    fn echo_server(drop_every: u64) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let h = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(3);
            let mut buf = [0u8; 512];
            let mut seen = 0u64;
            while Instant::now() < end {
                let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
                seen += 1;
                if drop_every > 0 && seen.is_multiple_of(drop_every) {
                    continue;
                }
                buf[2] |= 0x80;
                let _ = s.send_to(&buf[..n], from);
            }
        });
        (addr, h)
    }

    fn plan(target: SocketAddr, rate: Option<u64>) -> DnsPlan {
        DnsPlan {
            target,
            sockets: 2,
            batch: 8,
            window: 16,
            rate_per_s: rate,
            timeout_ns: 200_000_000,
            queries: vec![
                encode_query("a.service.consul", "A").unwrap(),
                encode_query("b.service.consul", "SRV").unwrap(),
            ],
        }
    }

    fn run_for(plan: &DnsPlan, measure: Duration) -> DnsOutcome {
        let control = Arc::new(RunControl::new());
        let c2 = control.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c2.advance(Phase::Measure);
            std::thread::sleep(measure);
            c2.advance(Phase::Stop);
        });
        let out = run_generator(plan, &control).unwrap();
        stopper.join().unwrap();
        out
    }

    #[test]
    fn closed_loop_gets_every_query_answered() {
        let (addr, server) = echo_server(0);
        let out = run_for(&plan(addr, None), Duration::from_millis(300));
        server.join().unwrap();
        let s = &out.stats;
        assert!(s.answered > 100, "answered {}", s.answered);
        assert_eq!(s.lost, 0);
        assert_eq!(s.unmatched + s.malformed + s.send_errors, 0);
        assert_eq!(s.rcodes[0], s.answered);
        assert_eq!(s.latency.count(), s.answered);
    }

    #[test]
    fn dropped_queries_are_counted_lost() {
        let (addr, server) = echo_server(10);
        let out = run_for(&plan(addr, None), Duration::from_millis(600));
        server.join().unwrap();
        assert!(out.stats.lost > 0, "lost {}", out.stats.lost);
        assert!(out.stats.answered > out.stats.lost);
    }

    #[test]
    fn fixed_rate_sends_at_the_rate() {
        let (addr, server) = echo_server(0);
        let out = run_for(&plan(addr, Some(2_000)), Duration::from_millis(500));
        server.join().unwrap();
        // 2,000/s for 0.5 s: about 1,000 queries (timer slack allowed).
        let sent = out.stats.sent;
        assert!((800..=1_200).contains(&sent), "sent {sent}");
        assert_eq!(out.stats.lost, 0);
    }
}
