//! `watch` mode: many concurrent blocking KV queries held on one agent.
//!
//! Opens `--watchers` keep-alive connections (one thread, non-blocking,
//! epoll), spread round-robin over `--source-ips`; each learns its key's
//! `X-Consul-Index` and parks a blocking GET. Reports the server tree's
//! RSS before and after parking (bytes per parked query) and its CPU over
//! an idle `--hold-s` window. With `--write-key`, writes that key
//! `--writes` times through a separate connection and measures, per woken
//! watcher, the time from the write's HTTP response to the watcher's
//! response, and counts watchers of other keys that returned early.
//! That time is taken twice: when the generator read the response (it
//! includes the generator's own delay in getting to the socket) and from
//! the kernel's receive timestamp of the response (`SO_TIMESTAMPNS`, see
//! [`crate::watch_rx_time`]), the latter against the kernel timestamp of
//! the write's response. With `--repark-after-wave`, the watchers of the
//! written key send their next blocking GET only once every one of them
//! answered (or the wave timed out): the wave then measures the server's
//! fan-out alone, not the fan-out plus 10,000 re-park requests competing
//! for the same cores.
//!
//! Every phase is bounded in time; everything is closed at the end.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use socket2::{Domain, Socket, Type};

use crate::cli::ArgError;
use crate::cpu::meter::{cpu_count, ticks_per_second, CpuMeter};
use crate::cpu::usage::{usage, CpuUsage};
use crate::epoll::{Epoll, Ready, FAILED, READABLE, WRITABLE};
use crate::latency::{LatencyRecorder, LatencySummary};
use crate::watch_conn::{WatchConn, WatchEvent, WatchPhase};
use crate::watch_rss::tree_rss_bytes;
use crate::watch_rx_time;

/// Most watchers in one process (the process may hold 20,000 descriptors).
pub const WATCHERS_MAX: usize = 19_500;
/// Connections being set up at once (connect + index GET), so the
/// server's accept backlog is not overrun.
pub const SETUP_IN_FLIGHT_MAX: usize = 512;
/// Longest `--wait-s`, `--hold-s` or `--setup-timeout-s`.
pub const PHASE_SECONDS_MAX: u64 = 3_600;
/// Most `--writes`.
pub const WRITES_MAX: u64 = 100;
/// Most distinct watched keys.
pub const KEYS_WATCHED_MAX: usize = 100_000;
/// Most source addresses in `--source-ips`.
pub const WATCH_SOURCE_IPS_MAX: usize = 254;
/// Longest a write wave may take for all its watchers to answer.
const WAVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after parking before the RSS is read (the server parks the
/// queries it has read).
const SETTLE: Duration = Duration::from_secs(3);
/// Watching after the last wave for late wake-ups of other keys.
const AFTER_WAVES: Duration = Duration::from_secs(1);
/// With `--repark-after-wave`: time given to the held re-park requests to
/// be written and parked before the next wave.
const REPARK_SETTLE: Duration = Duration::from_secs(2);
/// Bytes read from a socket at once.
const READ_BYTES: usize = 16 * 1024;
/// Events per epoll wait.
const EVENTS_PER_WAIT: usize = 1024;
/// Token of no watcher.
const TOKEN_NONE: u64 = u64::MAX;

/// `watch` sub-command.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Server address (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub target: SocketAddr,
    /// Concurrent blocking queries to hold.
    #[arg(long, default_value_t = 1_000)]
    pub watchers: usize,
    /// Distinct keys watched: watcher `i` watches `<key-prefix><i mod K>`.
    #[arg(long = "keys-watched", default_value_t = 1)]
    pub keys_watched: usize,
    /// Prefix of the watched keys.
    #[arg(long = "key-prefix", default_value = "watch/k")]
    pub key_prefix: String,
    /// Source addresses as a range `127.0.2.1-127.0.2.40` (or one address).
    #[arg(long = "source-ips", default_value = "127.0.0.1")]
    pub source_ips: String,
    /// `wait=` of every blocking query, in seconds.
    #[arg(long = "wait-s", default_value_t = 300)]
    pub wait_s: u64,
    /// Idle window after parking over which the server CPU is metered.
    #[arg(long = "hold-s", default_value_t = 10)]
    pub hold_s: u64,
    /// Longest the watchers may take to connect and park.
    #[arg(long = "setup-timeout-s", default_value_t = 120)]
    pub setup_timeout_s: u64,
    /// Root pid of the server (RSS and CPU of it and its descendants).
    #[arg(long = "server-pid")]
    pub server_pid: Option<u32>,
    /// Key to write after the hold (created first, before the watchers park).
    #[arg(long = "write-key")]
    pub write_key: Option<String>,
    /// Writes to `--write-key`, one wave at a time.
    #[arg(long, default_value_t = 1)]
    pub writes: u64,
    /// Watchers of the written key send their next blocking GET only after
    /// the whole wave answered (measures the server's fan-out alone);
    /// without it they re-park as soon as their answer is read.
    #[arg(long = "repark-after-wave")]
    pub repark_after_wave: bool,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

/// Parses `A` or `A-B` (same /24, last octet ascending) into the addresses.
pub fn parse_ip_range(text: &str) -> Result<Vec<Ipv4Addr>, ArgError> {
    let bad = || ArgError(format!("--source-ips {text:?}: expected A.B.C.D or A.B.C.D-A.B.C.E"));
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
    let last: Ipv4Addr = last.parse().map_err(|_| bad())?;
    let (f, l) = (first.octets(), last.octets());
    if f[..3] != l[..3] || f[3] > l[3] {
        return Err(bad());
    }
    let ips: Vec<Ipv4Addr> = (f[3]..=l[3]).map(|o| Ipv4Addr::new(f[0], f[1], f[2], o)).collect();
    if ips.len() > WATCH_SOURCE_IPS_MAX {
        return Err(ArgError(format!(
            "--source-ips has {} addresses, at most {WATCH_SOURCE_IPS_MAX}",
            ips.len()
        )));
    }
    if let Some(ip) = ips.iter().find(|ip| !ip.is_loopback()) {
        return Err(ArgError(format!("--source-ips {ip} is outside 127.0.0.0/8")));
    }
    Ok(ips)
}

fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<(), ArgError> {
    if value < min || value > max {
        return Err(ArgError(format!("{name} must be in {min}..={max}, got {value}")));
    }
    Ok(())
}

impl WatchArgs {
    /// Checks every bound; returns the source addresses.
    pub fn validate(&self) -> Result<Vec<Ipv4Addr>, ArgError> {
        let IpAddr::V4(target) = self.target.ip() else {
            return Err(ArgError("--target must be IPv4 loopback".into()));
        };
        if !target.is_loopback() {
            return Err(ArgError(format!("--target {target} is outside 127.0.0.0/8")));
        }
        check_range("--watchers", self.watchers as u64, 1, WATCHERS_MAX as u64)?;
        check_range("--keys-watched", self.keys_watched as u64, 1, KEYS_WATCHED_MAX as u64)?;
        check_range("--wait-s", self.wait_s, 1, PHASE_SECONDS_MAX)?;
        check_range("--hold-s", self.hold_s, 0, PHASE_SECONDS_MAX)?;
        check_range("--setup-timeout-s", self.setup_timeout_s, 1, PHASE_SECONDS_MAX)?;
        check_range("--writes", self.writes, 1, WRITES_MAX)?;
        if self.server_pid == Some(0) {
            return Err(ArgError("--server-pid must be a process id, not 0".into()));
        }
        if self.key_prefix.is_empty() || self.key_prefix.bytes().any(|b| !b.is_ascii_graphic() || b == b'?') {
            return Err(ArgError(
                "--key-prefix must be non-empty printable ASCII without '?'".into(),
            ));
        }
        parse_ip_range(&self.source_ips)
    }

    fn key_of(&self, watcher: usize) -> String {
        format!("{}{}", self.key_prefix, watcher % self.keys_watched)
    }
}

/// The summary of a run.
#[derive(Debug, Serialize)]
pub struct WatchReport {
    pub label: Option<String>,
    pub watchers: usize,
    pub parked: usize,
    pub failed: usize,
    pub setup_s: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub rss_per_parked_bytes: Option<f64>,
    pub rss_by_pid_before: BTreeMap<u32, u64>,
    pub rss_by_pid_after: BTreeMap<u32, u64>,
    pub hold_s: f64,
    pub idle_cpu: Option<CpuUsage>,
    /// Blocking queries that returned during setup and hold (before any write).
    pub returned_before_writes: u64,
    pub writes: Vec<WaveReport>,
    /// Watchers of keys other than `--write-key` that returned during the waves.
    pub other_keys_woken: u64,
}

/// One write and the answers it caused.
#[derive(Debug, Serialize)]
pub struct WaveReport {
    pub write_rtt_us: f64,
    pub watchers_of_key: usize,
    pub answered: usize,
    /// Watcher responses read before the write's own response.
    pub answered_before_write_response: usize,
    /// From the write's HTTP response to each watcher's response, as the
    /// generator read them (includes its delay in reading the sockets).
    pub wake_to_response: LatencySummary,
    /// The same from kernel receive timestamps: each watcher response's
    /// arrival minus the write response's arrival (negative counts as 0).
    pub wake_to_response_kernel: LatencySummary,
    /// Watcher responses without a kernel timestamp (not in the above).
    pub kernel_stamps_missing: usize,
    /// From just before the write request was sent to each watcher
    /// response's kernel arrival: an upper bound of the above that does
    /// not depend on when the write's own response got out (the write's
    /// response can be queued behind the wake-ups it caused).
    pub write_sent_to_response_kernel: LatencySummary,
    /// Kernel arrival of the first to the last watcher response.
    pub fanout_span_kernel_us: f64,
    /// Whether the watchers re-parked only after the wave (`--repark-after-wave`).
    pub repark_after_wave: bool,
    /// Server and generator CPU from the write to the last answer (clock
    /// ticks: 10 ms resolution, so only indicative for short waves).
    pub cpu: Option<CpuUsage>,
}

/// One watcher and its socket.
struct Watcher {
    stream: Option<TcpStream>,
    conn: WatchConn,
    watches_write_key: bool,
    connected: bool,
    /// Set once its index GET answered; counted as parked.
    parked_since: Option<Instant>,
    answered_wave: Option<u64>,
    /// The epoll interest registered now (changed only when it differs,
    /// so a re-park costs no `epoll_ctl`).
    interest: u32,
}

/// Runs `watch`.
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let source_ips = args.validate()?;
    raise_nofile();
    let meter = CpuMeter::new(args.server_pid)?;
    if let Some(key) = &args.write_key {
        http_put(args.target, key, b"0").with_context(|| format!("creating {key}"))?;
    }
    let rss_before = args.server_pid.map(tree_rss_bytes).unwrap_or_default();
    let mut driver = Driver::new(&args)?;
    let setup_started = Instant::now();
    driver.open_all(&args, &source_ips)?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    driver.poll_for(SETTLE, None)?;
    let rss_after = args.server_pid.map(tree_rss_bytes).unwrap_or_default();
    let parked = driver.parked();

    let cpu_before = meter.read()?;
    let hold_started = Instant::now();
    driver.poll_for(Duration::from_secs(args.hold_s), None)?;
    let hold_s = hold_started.elapsed().as_secs_f64();
    let cpu_after = meter.read()?;
    let idle_cpu = (meter.meters_server() && hold_s > 0.0)
        .then(|| usage(&cpu_before, &cpu_after, true, hold_s, ticks_per_second(), cpu_count()));
    let returned_before_writes = driver.returned;
    driver.returned_other = 0;

    let mut waves = Vec::new();
    if let Some(key) = &args.write_key {
        for wave in 0..args.writes {
            let cpu_before = meter.read()?;
            let started = Instant::now();
            let mut report = driver.wave(&args, key, wave)?;
            let wave_s = started.elapsed().as_secs_f64();
            let cpu_after = meter.read()?;
            report.cpu = meter
                .meters_server()
                .then(|| usage(&cpu_before, &cpu_after, true, wave_s, ticks_per_second(), cpu_count()));
            waves.push(report);
            // After the wave's CPU is read: the re-parks are not part of it.
            driver.release_held()?;
        }
        driver.poll_for(AFTER_WAVES, None)?;
    }
    let sum = |m: &BTreeMap<u32, u64>| (!m.is_empty()).then(|| m.values().sum::<u64>());
    let (before, after) = (sum(&rss_before), sum(&rss_after));
    let report = WatchReport {
        label: args.label.clone(),
        watchers: args.watchers,
        parked,
        failed: driver.failed,
        setup_s,
        server_rss_before_bytes: before,
        server_rss_after_bytes: after,
        rss_per_parked_bytes: match (before, after) {
            (Some(b), Some(a)) if parked > 0 => Some((a as f64 - b as f64) / parked as f64),
            _ => None,
        },
        rss_by_pid_before: rss_before,
        rss_by_pid_after: rss_after,
        hold_s,
        idle_cpu,
        returned_before_writes,
        writes: waves,
        other_keys_woken: driver.returned_other,
    };
    drop(driver);
    print_report(&report);
    let line = serde_json::to_string(&report)?;
    println!("{line}");
    if let Some(path) = &args.json_out {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(f, "{line}")?;
    }
    if report.parked < report.watchers {
        bail!("only {} of {} watchers parked", report.parked, report.watchers);
    }
    Ok(())
}

fn print_report(r: &WatchReport) {
    eprintln!(
        "watchers {} parked {} failed {} (setup {:.1}s)",
        r.watchers, r.parked, r.failed, r.setup_s
    );
    if let (Some(b), Some(a), Some(per)) = (
        r.server_rss_before_bytes,
        r.server_rss_after_bytes,
        r.rss_per_parked_bytes,
    ) {
        eprintln!(
            "server RSS {:.1} MiB -> {:.1} MiB: {per:.0} bytes per parked query",
            b as f64 / 1048576.0,
            a as f64 / 1048576.0
        );
    }
    if let Some(cpu) = &r.idle_cpu {
        eprintln!(
            "idle hold {:.1}s: server {:.4} cores ({:.3} CPU-s)",
            r.hold_s,
            cpu.server_cores.unwrap_or(0.0),
            cpu.server_cpu_s.unwrap_or(0.0)
        );
    }
    eprintln!("returned before any write: {}", r.returned_before_writes);
    for (i, w) in r.writes.iter().enumerate() {
        let l = &w.wake_to_response;
        eprintln!(
            "write {i} (rtt {:.0}us): {}/{} answered ({} before the write's response); wake-to-response p50 {:.0}us p99 {:.0}us max {:.0}us",
            w.write_rtt_us, w.answered, w.watchers_of_key, w.answered_before_write_response, l.p50_us, l.p99_us, l.max_us
        );
        let k = &w.wake_to_response_kernel;
        eprintln!(
            "  kernel arrival: p50 {:.0}us p99 {:.0}us max {:.0}us; from the write sent: p99 {:.0}us; first to last {:.0}us ({} unstamped){}",
            k.p50_us,
            k.p99_us,
            k.max_us,
            w.write_sent_to_response_kernel.p99_us,
            w.fanout_span_kernel_us,
            w.kernel_stamps_missing,
            if w.repark_after_wave {
                ", re-parked after the wave"
            } else {
                ""
            }
        );
        if let Some(cpu) = &w.cpu {
            eprintln!(
                "  wave CPU-s: server {:.3}, generator {:.3}, other {:.2} cores",
                cpu.server_cpu_s.unwrap_or(0.0),
                cpu.generator_cpu_s,
                cpu.other_cores
            );
        }
    }
    if !r.writes.is_empty() {
        eprintln!("watchers of other keys woken during the writes: {}", r.other_keys_woken);
    }
}

/// The epoll loop over every watcher.
struct Driver {
    epoll: Epoll,
    watchers: Vec<Watcher>,
    events: Vec<Ready>,
    read_buf: Vec<u8>,
    setting_up: usize,
    failed: usize,
    returned: u64,
    returned_other: u64,
    /// The current write wave: its number, and answers seen so far.
    wave: Option<(u64, Vec<Answer>)>,
    /// `--repark-after-wave`: watchers of the written key whose next
    /// request waits for the end of the wave.
    hold_reparks: bool,
    held: Vec<usize>,
}

/// One watcher's answer in a wave: when the generator read it, and its
/// kernel receive time (ns since the Unix epoch) when the kernel gave one.
#[derive(Debug, Clone, Copy)]
struct Answer {
    read_at: Instant,
    rx_unix_ns: Option<u64>,
}

impl Driver {
    fn new(args: &WatchArgs) -> anyhow::Result<Driver> {
        Ok(Driver {
            epoll: Epoll::new(EVENTS_PER_WAIT)?,
            watchers: Vec::with_capacity(args.watchers),
            events: Vec::with_capacity(EVENTS_PER_WAIT),
            read_buf: vec![0; READ_BYTES],
            setting_up: 0,
            failed: 0,
            returned: 0,
            returned_other: 0,
            wave: None,
            hold_reparks: args.repark_after_wave,
            held: Vec::new(),
        })
    }

    fn parked(&self) -> usize {
        self.watchers
            .iter()
            .filter(|w| w.stream.is_some() && w.parked_since.is_some())
            .count()
    }

    /// Opens every watcher, at most [`SETUP_IN_FLIGHT_MAX`] setting up at once.
    fn open_all(&mut self, args: &WatchArgs, source_ips: &[Ipv4Addr]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(args.setup_timeout_s);
        let mut next = 0;
        while next < args.watchers || self.setting_up > 0 {
            if Instant::now() >= deadline {
                bail!(
                    "setup timed out after {}s: {} opened, {} still setting up",
                    args.setup_timeout_s,
                    next,
                    self.setting_up
                );
            }
            while next < args.watchers && self.setting_up < SETUP_IN_FLIGHT_MAX {
                let source = source_ips[next % source_ips.len()];
                let key = args.key_of(next);
                let watches_write_key = args.write_key.as_deref() == Some(key.as_str());
                match connect_from(source, args.target) {
                    Ok(stream) => {
                        self.epoll.add(stream.as_raw_fd(), next as u64, WRITABLE)?;
                        self.watchers.push(Watcher {
                            stream: Some(stream),
                            conn: WatchConn::new(&key, args.wait_s),
                            watches_write_key,
                            connected: false,
                            parked_since: None,
                            answered_wave: None,
                            interest: WRITABLE,
                        });
                        self.setting_up += 1;
                    }
                    Err(e) => {
                        bail!("watcher {next}: connect from {source} to {}: {e}", args.target);
                    }
                }
                next += 1;
            }
            self.poll_once(10)?;
        }
        Ok(())
    }

    /// Polls for `window`, or until `done` says so.
    fn poll_for(&mut self, window: Duration, done: Option<&dyn Fn(&Driver) -> bool>) -> anyhow::Result<()> {
        let deadline = Instant::now() + window;
        loop {
            if done.is_some_and(|d| d(self)) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.poll_once(left.as_millis().clamp(1, 100) as i32)?;
        }
    }

    fn poll_once(&mut self, timeout_ms: i32) -> anyhow::Result<()> {
        let mut events = std::mem::take(&mut self.events);
        self.epoll.wait(&mut events, timeout_ms)?;
        let now = Instant::now();
        for ev in &events {
            if ev.token != TOKEN_NONE {
                self.on_ready(ev.token as usize, ev.events, now);
            }
        }
        self.events = events;
        Ok(())
    }

    fn fail(&mut self, i: usize, why: &str) {
        let w = &mut self.watchers[i];
        if w.stream.take().is_some() {
            if w.parked_since.is_none() {
                self.setting_up -= 1;
            }
            self.failed += 1;
            if self.failed <= 10 {
                eprintln!("watcher {i} failed: {why}");
            }
        }
    }

    fn on_ready(&mut self, i: usize, events: u32, now: Instant) {
        let Some(stream) = self.watchers[i].stream.as_ref() else {
            return;
        };
        if !self.watchers[i].connected {
            match stream.take_error() {
                Ok(None) if events & FAILED == 0 => {}
                Ok(Some(e)) | Err(e) => return self.fail(i, &format!("connect: {e}")),
                Ok(None) => return self.fail(i, "connect failed"),
            }
            self.watchers[i].connected = true;
        }
        if events & READABLE != 0 || events & FAILED != 0 {
            if let Err(e) = self.read_ready(i, now) {
                return self.fail(i, &e);
            }
        }
        if let Err(e) = self.write_pending(i) {
            self.fail(i, &format!("write: {e}"));
        }
    }

    fn read_ready(&mut self, i: usize, now: Instant) -> Result<(), String> {
        let w = &mut self.watchers[i];
        let stream = w.stream.as_mut().expect("ready watcher has a stream");
        let (n, rx_unix_ns) = match watch_rx_time::recv(stream.as_raw_fd(), &mut self.read_buf) {
            Ok(r) if r.bytes == 0 => return Err("closed by the server".into()),
            Ok(r) => (r.bytes, r.rx_unix_ns),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("read: {e}")),
        };
        match w.conn.received(&self.read_buf[..n]).map_err(|e| e.to_string())? {
            None => {}
            Some(WatchEvent::Indexed { .. }) => {
                w.parked_since = Some(now);
                self.setting_up -= 1;
            }
            Some(WatchEvent::Returned { .. }) => {
                self.returned += 1;
                match &mut self.wave {
                    // The first answer of this watcher in the current wave.
                    Some((wave, answers)) if w.watches_write_key && w.answered_wave != Some(*wave) => {
                        w.answered_wave = Some(*wave);
                        answers.push(Answer {
                            read_at: now,
                            rx_unix_ns,
                        });
                        if self.hold_reparks {
                            self.held.push(i);
                        }
                    }
                    _ if !w.watches_write_key => self.returned_other += 1,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn write_pending(&mut self, i: usize) -> io::Result<()> {
        let w = &mut self.watchers[i];
        let stream = w.stream.as_mut().expect("ready watcher has a stream");
        let held = self.hold_reparks
            && w.watches_write_key
            && self
                .wave
                .as_ref()
                .is_some_and(|(wave, _)| w.answered_wave == Some(*wave));
        while !held && !w.conn.to_write().is_empty() {
            match stream.write(w.conn.to_write()) {
                Ok(n) => w.conn.wrote(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let interest = if held || w.conn.to_write().is_empty() {
            READABLE
        } else {
            READABLE | WRITABLE
        };
        if interest == w.interest {
            return Ok(());
        }
        w.interest = interest;
        self.epoll.modify(stream.as_raw_fd(), i as u64, interest)
    }

    /// Writes `key` once and waits for its watchers to answer.
    fn wave(&mut self, args: &WatchArgs, key: &str, wave: u64) -> anyhow::Result<WaveReport> {
        let watchers_of_key = self
            .watchers
            .iter()
            .filter(|w| {
                w.watches_write_key && w.stream.is_some() && matches!(w.conn.phase(), WatchPhase::Parked { .. })
            })
            .count();
        self.wave = Some((wave, Vec::with_capacity(watchers_of_key)));
        let sent = Instant::now();
        let put = http_put(args.target, key, format!("{wave}").as_bytes())?;
        let write_response = Instant::now();
        let all_answered = move |d: &Driver| d.wave.as_ref().is_some_and(|(_, a)| a.len() >= watchers_of_key);
        self.poll_for(WAVE_TIMEOUT, Some(&all_answered))?;
        let (_, answers) = self.wave.take().expect("the wave is current");
        let mut report = wave_report(&answers, write_response, &put, watchers_of_key);
        report.write_rtt_us = (write_response - sent).as_secs_f64() * 1e6;
        report.repark_after_wave = self.hold_reparks;
        Ok(report)
    }

    /// Sends the re-park requests held during the wave and gives them
    /// [`REPARK_SETTLE`] to park, so the next wave finds them parked.
    fn release_held(&mut self) -> anyhow::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        for i in std::mem::take(&mut self.held) {
            if self.watchers[i].stream.is_some() {
                if let Err(e) = self.write_pending(i) {
                    self.fail(i, &format!("write: {e}"));
                }
            }
        }
        self.poll_for(REPARK_SETTLE, None)
    }
}

/// The latencies of one wave's `answers`: from the generator's reads
/// against `write_response`, and from kernel receive times against the
/// kernel arrival of the write's response (when the kernel stamped it)
/// and against the time the write was sent.
fn wave_report(answers: &[Answer], write_response: Instant, put: &PutTimes, watchers_of_key: usize) -> WaveReport {
    let write_rx_unix_ns = put.response_rx_unix_ns;
    let mut from_sent = LatencyRecorder::new();
    let mut latency = LatencyRecorder::new();
    let mut kernel = LatencyRecorder::new();
    let mut before = 0;
    let mut missing = 0;
    let (mut first_rx, mut last_rx) = (u64::MAX, 0u64);
    for a in answers {
        if a.read_at < write_response {
            before += 1;
        }
        latency.record_ns(a.read_at.saturating_duration_since(write_response).as_nanos() as u64);
        if let Some(rx) = a.rx_unix_ns {
            from_sent.record_ns(rx.saturating_sub(put.sent_unix_ns));
        }
        match (a.rx_unix_ns, write_rx_unix_ns) {
            (Some(rx), Some(write_rx)) => {
                kernel.record_ns(rx.saturating_sub(write_rx));
                first_rx = first_rx.min(rx);
                last_rx = last_rx.max(rx);
            }
            _ => missing += 1,
        }
    }
    WaveReport {
        write_rtt_us: 0.0,
        watchers_of_key,
        answered: answers.len(),
        answered_before_write_response: before,
        wake_to_response: latency.summary(),
        wake_to_response_kernel: kernel.summary(),
        write_sent_to_response_kernel: from_sent.summary(),
        kernel_stamps_missing: missing,
        fanout_span_kernel_us: last_rx.saturating_sub(first_rx.min(last_rx)) as f64 / 1_000.0,
        repark_after_wave: false,
        cpu: None,
    }
}

/// A non-blocking connection from `source` to `target`, connect in progress.
fn connect_from(source: Ipv4Addr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    watch_rx_time::enable(socket.as_raw_fd())?;
    socket.bind(&SocketAddr::new(IpAddr::V4(source), 0).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// When a write went out and when its response came back.
#[derive(Debug, Clone, Copy)]
struct PutTimes {
    /// Just before the request was written (ns since the Unix epoch).
    sent_unix_ns: u64,
    /// Kernel receive time of the response's last bytes, when stamped.
    response_rx_unix_ns: Option<u64>,
}

fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `PUT /v1/kv/<key>` on a fresh connection; fails unless it answers
/// `true`.
fn http_put(target: SocketAddr, key: &str, value: &[u8]) -> anyhow::Result<PutTimes> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    watch_rx_time::enable(stream.as_raw_fd())?;
    let mut request = format!(
        "PUT /v1/kv/{key} HTTP/1.1\r\nHost: proconsul\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        value.len()
    )
    .into_bytes();
    request.extend_from_slice(value);
    let sent_unix_ns = unix_ns_now();
    stream.write_all(&request)?;
    let mut reader = crate::http::response::ResponseReader::new();
    let mut input = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + timeout;
    let mut rx_unix_ns = None;
    let response = loop {
        if Instant::now() >= deadline {
            bail!("PUT {key}: no response in {timeout:?}");
        }
        let got = watch_rx_time::recv(stream.as_raw_fd(), &mut buf)?;
        let n = got.bytes;
        if n == 0 {
            bail!("PUT {key}: connection closed before the response");
        }
        rx_unix_ns = got.rx_unix_ns.or(rx_unix_ns);
        input.extend_from_slice(&buf[..n]);
        if let Some(r) = reader.next(&input).map_err(|e| anyhow::anyhow!("PUT {key}: {e}"))? {
            break r;
        }
    };
    if response.status != 200 {
        bail!("PUT {key}: status {}", response.status);
    }
    let body = response.body.map(|r| &input[r]).unwrap_or_default();
    if body.trim_ascii() != b"true" {
        bail!("PUT {key}: answered {:?}", String::from_utf8_lossy(body));
    }
    Ok(PutTimes {
        sent_unix_ns,
        response_rx_unix_ns: rx_unix_ns,
    })
}

/// Raises the soft descriptor limit to the hard one.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer, then in-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: WatchArgs,
    }

    fn parse(extra: &[&str]) -> WatchArgs {
        let mut argv = vec!["watch"];
        argv.extend_from_slice(extra);
        Wrap::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn ip_ranges() {
        let ips = parse_ip_range("127.0.2.1-127.0.2.40").unwrap();
        assert_eq!(ips.len(), 40);
        assert_eq!(ips[39], Ipv4Addr::new(127, 0, 2, 40));
        assert_eq!(parse_ip_range("127.0.0.1").unwrap(), vec![Ipv4Addr::LOCALHOST]);
        assert!(parse_ip_range("127.0.2.9-127.0.2.1").is_err());
        assert!(parse_ip_range("127.0.2.1-127.0.3.1").is_err());
        assert!(parse_ip_range("10.0.0.1").unwrap_err().0.contains("outside"));
        assert!(parse_ip_range("nope").is_err());
    }

    #[test]
    fn bounds_are_errors() {
        let a = parse(&["--watchers", "19000", "--keys-watched", "10", "--write-key", "watch/k0"]);
        assert_eq!(a.validate().unwrap(), vec![Ipv4Addr::LOCALHOST]);
        assert_eq!(a.key_of(13), "watch/k3");
        assert!(parse(&["--watchers", "19501"])
            .validate()
            .unwrap_err()
            .0
            .contains("--watchers"));
        assert!(parse(&["--watchers", "0"]).validate().is_err());
        assert!(parse(&["--writes", "101"])
            .validate()
            .unwrap_err()
            .0
            .contains("--writes"));
        assert!(parse(&["--wait-s", "0"]).validate().is_err());
        assert!(parse(&["--target", "10.1.1.1:8500"]).validate().is_err());
        assert!(parse(&["--key-prefix", "a?b"]).validate().is_err());
        assert!(parse(&["--server-pid", "0"]).validate().is_err());
    }

    #[test]
    fn repark_after_wave_is_an_option() {
        assert!(!parse(&[]).repark_after_wave);
        assert!(parse(&["--repark-after-wave"]).repark_after_wave);
    }

    #[test]
    fn a_wave_is_measured_from_the_generator_and_from_kernel_stamps() {
        let write_response = Instant::now();
        let write_rx = 1_000_000_000_000u64;
        let answers = [
            // Read 5 ms after the write's response, arrived 1 ms after it.
            Answer {
                read_at: write_response + Duration::from_millis(5),
                rx_unix_ns: Some(write_rx + 1_000_000),
            },
            // Arrived 3 ms after it.
            Answer {
                read_at: write_response + Duration::from_millis(6),
                rx_unix_ns: Some(write_rx + 3_000_000),
            },
            // Arrived before the write's own response; no stamp on the
            // generator side for the last one.
            Answer {
                read_at: write_response + Duration::from_millis(7),
                rx_unix_ns: Some(write_rx - 500_000),
            },
            Answer {
                read_at: write_response + Duration::from_millis(8),
                rx_unix_ns: None,
            },
        ];
        let put = PutTimes {
            sent_unix_ns: write_rx - 2_000_000,
            response_rx_unix_ns: Some(write_rx),
        };
        let r = wave_report(&answers, write_response, &put, 4);
        assert_eq!((r.answered, r.watchers_of_key, r.kernel_stamps_missing), (4, 4, 1));
        assert_eq!(r.wake_to_response.count, 4);
        assert!(
            (r.wake_to_response.max_us - 8_000.0).abs() < 10.0,
            "{:?}",
            r.wake_to_response
        );
        let k = r.wake_to_response_kernel;
        assert_eq!(k.count, 3);
        assert!((k.max_us - 3_000.0).abs() < 5.0, "{k:?}");
        assert!(k.p50_us < 1_010.0, "an arrival before the write counts as 0: {k:?}");
        assert!(
            (r.fanout_span_kernel_us - 3_500.0).abs() < 1.0,
            "{}",
            r.fanout_span_kernel_us
        );
        // From the write sent (2 ms before its response arrived): 1.5 to 5 ms.
        let s = r.write_sent_to_response_kernel;
        assert_eq!(s.count, 3);
        assert!(
            (s.max_us - 5_000.0).abs() < 5.0 && (s.p50_us - 3_000.0).abs() < 5.0,
            "{s:?}"
        );
        // No stamp on the write's response: nothing measured against it.
        let put = PutTimes {
            response_rx_unix_ns: None,
            ..put
        };
        let r = wave_report(&answers, write_response, &put, 4);
        assert_eq!((r.kernel_stamps_missing, r.wake_to_response_kernel.count), (4, 0));
        assert_eq!(r.write_sent_to_response_kernel.count, 3);
    }

    #[test]
    fn connect_from_a_loopback_source_reaches_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect_from(Ipv4Addr::new(127, 0, 0, 1), listener.local_addr().unwrap()).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        drop(stream);
    }
}
