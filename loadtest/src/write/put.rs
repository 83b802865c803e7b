//! The `put` sub-command: a closed loop of KV writes from `--clients`
//! concurrent clients (one thread and one keep-alive connection each) for a
//! fixed time, against Proconsul (Consul's KV API) or etcd (its v3 JSON
//! gateway); reports acknowledged writes per second, per server-core (the
//! CPU of every server tree given) and latency percentiles.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::cpu::usage::CpuReading;
use crate::http::prepare_kv::value_for;
use crate::latency::LatencyRecorder;
use crate::limits::{PREPARE_KEYS_MAX, PREPARE_VALUE_BYTES_MAX, RUN_SECONDS_MAX, TIMEOUT_MS_MAX};
use crate::measure::{run_window, CpuSource};
use crate::phase::{Phase, RunControl};
use crate::report::{DetailRows, Summary};
use crate::write::client::Connection;
use crate::write::meter::TreesMeter;
use crate::write::protocol::{is_acked, key_name, put_request, WriteProtocol};
use crate::write::targets::check_targets;

/// Most concurrent clients (one thread each).
pub const PUT_CLIENTS_MAX: usize = 1_024;
/// Failed writes (refused, timed out, connection lost) one client tolerates
/// before it stops the run: a broken cluster is reported, not hammered.
pub const PUT_FAILURES_PER_CLIENT_MAX: u64 = 1_000;
/// Pause after a failed write before the next.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);

/// `put` sub-command.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// API spoken: `consul` (PUT /v1/kv/<key>) or `etcd` (POST /v3/kv/put).
    #[arg(long, value_enum, default_value_t = WriteProtocol::Consul)]
    pub protocol: WriteProtocol,
    /// Servers' HTTP addresses (127.0.0.0/8); client `i` writes to target `i mod n`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub targets: Vec<SocketAddr>,
    /// Concurrent clients, each with one write outstanding.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Size of the key space written over.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long = "value-bytes", default_value_t = 256)]
    pub value_bytes: usize,
    /// Key prefix.
    #[arg(long = "key-prefix", default_value = "bench/put-")]
    pub key_prefix: String,
    /// A write unanswered after this long fails (and its connection is reopened).
    #[arg(long = "timeout-ms", default_value_t = 5_000)]
    pub timeout_ms: u64,
    /// Root pids of the server process trees to meter (every cluster member).
    #[arg(long = "server-pids", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Measured seconds (after the warm-up).
    #[arg(long = "duration-s", default_value_t = 10)]
    pub duration_s: u64,
    /// Seconds of load before measuring starts.
    #[arg(long = "warmup-s", default_value_t = 2)]
    pub warmup_s: u64,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

fn check_range(name: &str, value: u64, min: u64, max: u64) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{name} must be in {min}..={max}, got {value}");
    }
    Ok(())
}

impl PutArgs {
    /// Checks every bound.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_targets(&self.targets)?;
        check_range("--clients", self.clients as u64, 1, PUT_CLIENTS_MAX as u64)?;
        check_range("--keys", self.keys, 1, PREPARE_KEYS_MAX)?;
        check_range(
            "--value-bytes",
            self.value_bytes as u64,
            1,
            PREPARE_VALUE_BYTES_MAX as u64,
        )?;
        check_range("--timeout-ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)?;
        check_range("--duration-s", self.duration_s, 1, RUN_SECONDS_MAX)?;
        check_range("--warmup-s", self.warmup_s, 0, RUN_SECONDS_MAX - self.duration_s)?;
        if self.key_prefix.is_empty()
            || self.key_prefix.starts_with('/')
            || !self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%' | b'"' | b'\\'))
        {
            bail!("--key-prefix must be printable ASCII, not start with '/', without '?', '#', '%', '\"' or '\\'");
        }
        Ok(())
    }
}

/// The key number client `client` writes on its `n`-th write: clients
/// start far apart and stride by a large prime, so concurrent writes rarely
/// hit the same key and every key is visited.
pub fn key_index(client: u64, n: u64, keys: u64) -> u64 {
    assert!(keys > 0, "validated: a non-empty key space");
    (client.wrapping_mul(7_919) % keys + n.wrapping_mul(104_729) % keys) % keys
}

/// What one client counted while measuring.
#[derive(Debug, Default)]
pub struct PutStats {
    pub acked: u64,
    /// Answers that were not an acknowledgement, by status.
    pub rejected: BTreeMap<u16, u64>,
    /// Timeouts, refused connections, lost connections.
    pub io_errors: u64,
    pub latency: LatencyRecorder,
}

impl PutStats {
    /// Adds another client's counts.
    pub fn merge(&mut self, other: &PutStats) {
        self.acked += other.acked;
        for (status, n) in &other.rejected {
            *self.rejected.entry(*status).or_default() += n;
        }
        self.io_errors += other.io_errors;
        self.latency.merge(&other.latency);
    }
}

/// What one client needs.
struct ClientPlan {
    index: u64,
    protocol: WriteProtocol,
    target: SocketAddr,
    timeout: Duration,
    keys: u64,
    key_prefix: String,
    value: Vec<u8>,
    /// Failed writes tolerated ([`PUT_FAILURES_PER_CLIENT_MAX`] in a run).
    failures_max: u64,
}

/// One client's closed loop until the run stops. Only writes both sent and
/// answered while measuring are counted.
fn run_client(plan: &ClientPlan, control: &RunControl) -> anyhow::Result<PutStats> {
    let host = plan.target.to_string();
    let mut conn = Connection::new(plan.target, plan.timeout);
    let mut stats = PutStats::default();
    let mut failures = 0u64;
    let mut n = 0u64;
    loop {
        let phase_at_send = control.phase();
        if phase_at_send == Phase::Stop {
            return Ok(stats);
        }
        let key = key_name(&plan.key_prefix, key_index(plan.index, n, plan.keys));
        n += 1;
        let request = put_request(plan.protocol, &host, &key, &plan.value);
        let sent = Instant::now();
        let result = conn.exchange(&request);
        let latency_ns = sent.elapsed().as_nanos() as u64;
        let counted = phase_at_send == Phase::Measure && control.phase() == Phase::Measure;
        let failed = match result {
            Ok(a) if is_acked(plan.protocol, a.status, &a.body) => {
                if counted {
                    stats.acked += 1;
                    stats.latency.record_ns(latency_ns);
                }
                false
            }
            Ok(a) => {
                *stats.rejected.entry(a.status).or_default() += 1;
                true
            }
            Err(_) => {
                stats.io_errors += 1;
                true
            }
        };
        if failed {
            failures += 1;
            if failures > plan.failures_max {
                control.advance(Phase::Stop);
                bail!(
                    "client {} gave up after {failures} failed writes to {} (statuses {:?}, io errors {})",
                    plan.index,
                    plan.target,
                    stats.rejected,
                    stats.io_errors
                );
            }
            std::thread::sleep(FAILURE_PAUSE);
        }
    }
}

/// `put`-specific part of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct PutDetails {
    pub protocol: WriteProtocol,
    pub clients: usize,
    pub targets: Vec<String>,
    pub keys: u64,
    pub value_bytes: usize,
    pub rejected: BTreeMap<u16, u64>,
    pub io_errors: u64,
}

impl DetailRows for PutDetails {
    fn rows(&self) -> Vec<(String, String)> {
        vec![
            ("protocol".into(), format!("{:?}", self.protocol).to_lowercase()),
            ("clients".into(), self.clients.to_string()),
            ("targets".into(), self.targets.join(",")),
            (
                "keys / value bytes".into(),
                format!("{} / {}", self.keys, self.value_bytes),
            ),
            (
                "failed writes (rejected by status / io)".into(),
                format!("{:?} / {}", self.rejected, self.io_errors),
            ),
        ]
    }
}

/// A cluster's server trees metered as one window's CPU.
impl CpuSource for TreesMeter {
    fn read(&self) -> anyhow::Result<CpuReading> {
        TreesMeter::read(self)
    }

    fn meters_server(&self) -> bool {
        TreesMeter::meters_server(self)
    }
}

/// Runs the `put` sub-command.
pub fn run(args: PutArgs) -> anyhow::Result<()> {
    args.validate()?;
    let meter = TreesMeter::new(&args.server_pids)?;
    let control = Arc::new(RunControl::new());
    let handles: Vec<_> = (0..args.clients as u64)
        .map(|i| {
            let plan = ClientPlan {
                index: i,
                protocol: args.protocol,
                target: args.targets[i as usize % args.targets.len()],
                timeout: Duration::from_millis(args.timeout_ms),
                keys: args.keys,
                key_prefix: args.key_prefix.clone(),
                value: value_for(1, i, args.value_bytes),
                failures_max: PUT_FAILURES_PER_CLIENT_MAX,
            };
            let control = control.clone();
            std::thread::Builder::new()
                .name(format!("put-{i}"))
                .spawn(move || run_client(&plan, &control))
                .context("spawning a client thread")
        })
        .collect::<anyhow::Result<_>>()?;
    let window = run_window(
        &control,
        &meter,
        Duration::from_secs(args.warmup_s),
        Duration::from_secs(args.duration_s),
    );
    let mut total = PutStats::default();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(stats)) => total.merge(&stats),
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(_) => failures.push(format!("client {i} panicked")),
        }
    }
    if !failures.is_empty() {
        bail!("the load failed: {}", failures.join("; "));
    }
    let window = window?;
    let details = PutDetails {
        protocol: args.protocol,
        clients: args.clients,
        targets: args.targets.iter().map(|t| t.to_string()).collect(),
        keys: args.keys,
        value_bytes: args.value_bytes,
        rejected: total.rejected.clone(),
        io_errors: total.io_errors,
    };
    let summary = Summary::new(
        "put",
        args.label.clone(),
        details.targets.join(","),
        &window,
        total.acked,
        total.latency.summary(),
        details,
    );
    summary.emit(args.json_out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        put: PutArgs,
    }

    fn parse(args: &[&str]) -> PutArgs {
        let mut argv = vec!["put"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").put
    }

    #[test]
    fn defaults_and_lists() {
        let a = parse(&[
            "--targets",
            "127.0.0.11:8500,127.0.0.12:8500",
            "--server-pids",
            "10,11",
            "--protocol",
            "etcd",
        ]);
        assert_eq!(a.protocol, WriteProtocol::Etcd);
        assert_eq!(a.targets.len(), 2);
        assert_eq!(a.server_pids, vec![10, 11]);
        assert_eq!((a.clients, a.keys, a.value_bytes), (16, 10_000, 256));
        a.validate().unwrap();
    }

    #[test]
    fn bounds_are_errors() {
        let err = |args: &[&str]| parse(args).validate().unwrap_err().to_string();
        assert!(err(&["--targets", "127.0.0.1:1", "--clients", "0"]).contains("--clients"));
        assert!(err(&["--targets", "127.0.0.1:1", "--clients", "1025"]).contains("--clients"));
        assert!(err(&["--targets", "127.0.0.1:1", "--keys", "0"]).contains("--keys"));
        assert!(err(&["--targets", "127.0.0.1:1", "--value-bytes", "0"]).contains("--value-bytes"));
        assert!(err(&["--targets", "127.0.0.1:1", "--key-prefix", "a\"b"]).contains("--key-prefix"));
        assert!(err(&["--targets", "10.1.1.1:1"]).contains("127.0.0.0/8"));
        assert!(Cli::try_parse_from(["put"]).is_err(), "--targets is required");
    }

    #[test]
    fn key_indices_stay_in_range_and_spread() {
        let keys = 10_000;
        let mut seen = std::collections::HashSet::new();
        for n in 0..keys {
            let k = key_index(3, n, keys);
            assert!(k < keys);
            seen.insert(k);
        }
        assert_eq!(
            seen.len() as u64,
            keys,
            "a client visits every key (stride coprime to the key space)"
        );
        assert_ne!(key_index(0, 0, keys), key_index(1, 0, keys), "clients start apart");
        assert_eq!(key_index(5, 9, 1), 0);
    }

    #[test]
    fn stats_merge_adds_everything() {
        let mut a = PutStats {
            acked: 2,
            ..Default::default()
        };
        a.rejected.insert(500, 1);
        a.latency.record_ns(1_000);
        let mut b = PutStats {
            acked: 3,
            io_errors: 4,
            ..Default::default()
        };
        b.rejected.insert(500, 2);
        b.latency.record_ns(2_000);
        a.merge(&b);
        assert_eq!((a.acked, a.rejected[&500], a.io_errors), (5, 3, 4));
        assert_eq!(a.latency.summary().count, 2);
    }

    /// A server answering `true` to every request on every connection.
    fn always_true_server() -> SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let n = match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        // Each request is a head and a 1-byte body.
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            if pending.len() < end + 5 {
                                break;
                            }
                            pending.drain(..end + 5);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue";
                            if s.write_all(answer).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn a_client_counts_acks_of_the_measured_window_only() {
        let plan = ClientPlan {
            index: 1,
            protocol: WriteProtocol::Consul,
            target: always_true_server(),
            timeout: Duration::from_secs(5),
            keys: 100,
            key_prefix: "k".into(),
            value: b"v".to_vec(),
            failures_max: 0,
        };
        let control = RunControl::new();
        let stats = std::thread::scope(|scope| {
            let client = scope.spawn(|| run_client(&plan, &control));
            // Warm-up writes are not counted.
            std::thread::sleep(Duration::from_millis(100));
            control.advance(Phase::Measure);
            std::thread::sleep(Duration::from_millis(200));
            control.advance(Phase::Stop);
            client.join().unwrap().unwrap()
        });
        assert!(stats.acked > 0, "acks while measuring");
        assert_eq!(
            stats.latency.summary().count,
            stats.acked,
            "one latency per counted ack"
        );
        assert_eq!((stats.io_errors, stats.rejected.len()), (0, 0));
    }

    #[test]
    fn a_client_counts_only_measured_acks_and_gives_up_on_a_dead_target() {
        // Nothing listens on this port (bound, then closed): every connect is refused.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let plan = ClientPlan {
            index: 0,
            protocol: WriteProtocol::Consul,
            target: dead,
            timeout: Duration::from_millis(200),
            keys: 10,
            key_prefix: "k".into(),
            value: b"v".to_vec(),
            failures_max: 5,
        };
        let control = RunControl::new();
        control.advance(Phase::Measure);
        let started = Instant::now();
        let err = run_client(&plan, &control).unwrap_err().to_string();
        assert!(err.contains("gave up after"), "{err}");
        assert_eq!(control.phase(), Phase::Stop, "a failing client stops the run");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
