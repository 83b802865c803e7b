//! The `visibility` sub-command: how long after a write on the leader it is
//! visible on a client agent.
//!
//! * KV over HTTP: a blocking query for the key is parked on the client
//!   before the write; a thread reads its answer and notes when the body
//!   holds the new value (an answer woken by anything else re-parks at its
//!   new index).
//! * DNS: a thread polls the client's DNS for `vis<i>.service.consul`
//!   while the leader registers that service through `/v1/catalog/register`.
//!
//! Both report the time from sending the write to the value being visible,
//! and from the write's acknowledgement to visibility (0 when it was
//! visible first).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::latency::{LatencyRecorder, LatencySummary};
use crate::machine::MachineFacts;
use crate::write::client::Connection;
use crate::write::dns_probe::DnsProbe;
use crate::write::protocol::{base64_encode, is_acked, put_request, WriteProtocol};
use crate::write::targets::check_loopback;

/// Most writes in one run.
pub const VISIBILITY_WRITES_MAX: u64 = 100_000;
/// Longest wait for one write to become visible, in seconds.
pub const VISIBILITY_WAIT_S_MAX: u64 = 60;
/// Pause after parking the blocking query, before the write, so it is
/// parked on the server (not timed).
const PARK_PAUSE: Duration = Duration::from_millis(2);

/// `visibility` sub-command.
#[derive(Debug, Clone, Args)]
pub struct VisibilityArgs {
    /// HTTP address of the server that takes the writes (the leader).
    #[arg(long)]
    pub leader: SocketAddr,
    /// HTTP address of the client agent watched.
    #[arg(long)]
    pub client: SocketAddr,
    /// DNS address of the client agent (UDP); without it the DNS part is skipped.
    #[arg(long = "client-dns")]
    pub client_dns: Option<SocketAddr>,
    /// Writes per part (KV, DNS).
    #[arg(long, default_value_t = 200)]
    pub writes: u64,
    /// Key written and watched.
    #[arg(long, default_value = "bench/visibility")]
    pub key: String,
    /// Longest wait for one write to become visible (seconds); also the
    /// blocking query's `wait`.
    #[arg(long = "wait-s", default_value_t = 10)]
    pub wait_s: u64,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

impl VisibilityArgs {
    /// Checks every bound.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_loopback(&self.leader)?;
        check_loopback(&self.client)?;
        if let Some(dns) = &self.client_dns {
            check_loopback(dns)?;
        }
        if !(1..=VISIBILITY_WRITES_MAX).contains(&self.writes) {
            bail!("--writes must be in 1..={VISIBILITY_WRITES_MAX}, got {}", self.writes);
        }
        if !(1..=VISIBILITY_WAIT_S_MAX).contains(&self.wait_s) {
            bail!("--wait-s must be in 1..={VISIBILITY_WAIT_S_MAX}, got {}", self.wait_s);
        }
        if self.key.is_empty()
            || self.key.starts_with('/')
            || !self
                .key
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%'))
        {
            bail!("--key must be printable ASCII, not start with '/', without '?', '#' or '%'");
        }
        Ok(())
    }
}

/// Whether a KV read's JSON body holds `value` (Consul renders it base64).
pub fn kv_body_holds(body: &[u8], value: &[u8]) -> bool {
    let needle = format!("\"Value\":\"{}\"", base64_encode(value));
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The blocking read of `key` at `index`.
pub fn blocking_get(host: &str, key: &str, index: u64, wait_s: u64) -> Vec<u8> {
    format!(
        "GET /v1/kv/{key}?index={index}&wait={wait_s}s HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\n\r\n"
    )
    .into_bytes()
}

/// The catalog registration of service `service` on a node of its own.
pub fn register_request(host: &str, service: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "Node": "visibility-bench",
        "Address": "10.77.0.1",
        "Service": { "ID": service, "Service": service, "Port": 8080 },
    })
    .to_string();
    let mut req = format!(
        "PUT /v1/catalog/register HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// Times of one part (KV or DNS).
#[derive(Debug, Default)]
struct PartTimes {
    write_to_visible: LatencyRecorder,
    ack_to_visible: LatencyRecorder,
    write_ack: LatencyRecorder,
    visible_before_ack: u64,
}

impl PartTimes {
    fn record(&mut self, sent: Instant, acked: Instant, visible: Instant) {
        self.write_to_visible.record_ns(ns_between(sent, visible));
        self.write_ack.record_ns(ns_between(sent, acked));
        if visible < acked {
            self.visible_before_ack += 1;
        }
        self.ack_to_visible.record_ns(ns_between(acked, visible));
    }

    fn summary(&self) -> PartSummary {
        PartSummary {
            write_to_visible: self.write_to_visible.summary(),
            ack_to_visible: self.ack_to_visible.summary(),
            write_ack: self.write_ack.summary(),
            visible_before_ack: self.visible_before_ack,
        }
    }
}

/// Nanoseconds from `a` to `b`, 0 when `b` is earlier.
fn ns_between(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_nanos() as u64
}

/// One part's percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct PartSummary {
    /// From sending the write on the leader to visible on the client.
    pub write_to_visible: LatencySummary,
    /// From the leader's acknowledgement to visible on the client (0 when first visible).
    pub ack_to_visible: LatencySummary,
    /// The write's own round trip on the leader.
    pub write_ack: LatencySummary,
    /// Writes visible on the client before the leader's answer was read.
    pub visible_before_ack: u64,
}

/// Parks a blocking query on `watcher` and reads answers until the body
/// holds `value`; re-parks at each new index. The instant it was read.
fn watch_until_visible(
    watcher: &mut Connection,
    key: &str,
    mut index: u64,
    value: &[u8],
    wait_s: u64,
    deadline: Instant,
) -> anyhow::Result<(Instant, u64)> {
    let host = watcher.target().to_string();
    loop {
        let answer = watcher.receive()?;
        let read_at = Instant::now();
        if answer.status == 200 && kv_body_holds(&answer.body, value) {
            return Ok((read_at, answer.consul_index.unwrap_or(index)));
        }
        if read_at >= deadline {
            bail!("{key}: the written value was not visible on {host} within the wait");
        }
        index = answer.consul_index.unwrap_or(index);
        watcher.send(&blocking_get(&host, key, index, wait_s))?;
    }
}

fn kv_part(args: &VisibilityArgs, times: &mut PartTimes) -> anyhow::Result<()> {
    let wait = Duration::from_secs(args.wait_s);
    let mut leader = Connection::new(args.leader, wait + Duration::from_secs(1));
    let mut watcher = Connection::new(args.client, wait + Duration::from_secs(1));
    let client_host = args.client.to_string();
    let leader_host = args.leader.to_string();
    let first = watcher
        .exchange(format!("GET /v1/kv/{} HTTP/1.1\r\nHost: {client_host}\r\n\r\n", args.key).as_bytes())
        .context("first read on the client")?;
    let Some(mut index) = first.consul_index else {
        bail!("the client's KV answer (status {}) has no X-Consul-Index", first.status)
    };
    let run_tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for i in 0..args.writes {
        let value = format!("visibility-{run_tag}-{i}").into_bytes();
        watcher.send(&blocking_get(&client_host, &args.key, index, args.wait_s))?;
        std::thread::sleep(PARK_PAUSE);
        let deadline = Instant::now() + wait;
        let (sent, acked, seen) = std::thread::scope(|scope| -> anyhow::Result<_> {
            let watch =
                scope.spawn(|| watch_until_visible(&mut watcher, &args.key, index, &value, args.wait_s, deadline));
            let sent = Instant::now();
            let answer = leader.exchange(&put_request(WriteProtocol::Consul, &leader_host, &args.key, &value));
            let acked = Instant::now();
            let seen = watch
                .join()
                .map_err(|_| anyhow::anyhow!("the watcher thread panicked"))?;
            let answer = answer.context("the write on the leader")?;
            if !is_acked(WriteProtocol::Consul, answer.status, &answer.body) {
                bail!("the leader refused write {i}: status {}", answer.status);
            }
            Ok((sent, acked, seen?))
        })?;
        index = seen.1;
        times.record(sent, acked, seen.0);
    }
    Ok(())
}

fn dns_part(args: &VisibilityArgs, dns: SocketAddr, times: &mut PartTimes) -> anyhow::Result<()> {
    let wait = Duration::from_secs(args.wait_s);
    let mut leader = Connection::new(args.leader, wait);
    let leader_host = args.leader.to_string();
    let run_tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() % 100_000)
        .unwrap_or(0);
    let mut probe = DnsProbe::new(dns)?;
    for i in 0..args.writes {
        let service = format!("vis{run_tag}x{i}");
        let name = format!("{service}.service.consul");
        let deadline = Instant::now() + wait;
        let (sent, acked, seen) = std::thread::scope(|scope| -> anyhow::Result<_> {
            let poll = scope.spawn(|| probe.wait_answered(&name, deadline));
            let sent = Instant::now();
            let answer = leader.exchange(&register_request(&leader_host, &service));
            let acked = Instant::now();
            let seen = poll.join().map_err(|_| anyhow::anyhow!("the DNS poller panicked"))?;
            let answer = answer.context("the registration on the leader")?;
            if !is_acked(WriteProtocol::Consul, answer.status, &answer.body) {
                bail!("the leader refused registration {i}: status {}", answer.status);
            }
            Ok((sent, acked, seen.with_context(|| format!("{name} on {dns}"))?))
        })?;
        times.record(sent, acked, seen);
    }
    Ok(())
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct VisibilitySummary {
    pub mode: &'static str,
    pub label: Option<String>,
    pub leader: String,
    pub client: String,
    pub writes: u64,
    pub kv: PartSummary,
    pub dns: Option<PartSummary>,
    pub machine: MachineFacts,
}

fn print_part(name: &str, p: &PartSummary) {
    let row = |what: &str, s: &LatencySummary| {
        println!(
            "{name:<4} {what:<18} p50 {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs  (n={})",
            s.p50_us, s.p99_us, s.max_us, s.count
        )
    };
    row("write → visible", &p.write_to_visible);
    row("ack → visible", &p.ack_to_visible);
    row("write ack", &p.write_ack);
    println!("{name:<4} visible before the ack was read: {}", p.visible_before_ack);
}

/// Runs the `visibility` sub-command.
pub fn run(args: VisibilityArgs) -> anyhow::Result<()> {
    args.validate()?;
    let mut kv = PartTimes::default();
    kv_part(&args, &mut kv).context("KV visibility")?;
    let dns = match args.client_dns {
        Some(addr) => {
            let mut t = PartTimes::default();
            dns_part(&args, addr, &mut t).context("DNS visibility")?;
            Some(t.summary())
        }
        None => None,
    };
    let summary = VisibilitySummary {
        mode: "visibility",
        label: args.label.clone(),
        leader: args.leader.to_string(),
        client: args.client.to_string(),
        writes: args.writes,
        kv: kv.summary(),
        dns,
        machine: MachineFacts::of_this_machine(),
    };
    print_part("kv", &summary.kv);
    if let Some(d) = &summary.dns {
        print_part("dns", d);
    }
    crate::write::output::emit_json(&summary, args.json_out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        v: VisibilityArgs,
    }

    fn parse(args: &[&str]) -> VisibilityArgs {
        let mut argv = vec![
            "visibility",
            "--leader",
            "127.0.0.11:8500",
            "--client",
            "127.0.0.14:8500",
        ];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").v
    }

    #[test]
    fn args_and_bounds() {
        let a = parse(&["--client-dns", "127.0.0.14:8600"]);
        assert_eq!((a.writes, a.wait_s, a.key.as_str()), (200, 10, "bench/visibility"));
        a.validate().unwrap();
        assert!(parse(&["--writes", "0"])
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--writes"));
        assert!(parse(&["--wait-s", "61"])
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--wait-s"));
        assert!(parse(&["--key", "/x"])
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--key"));
        assert!(parse(&["--client-dns", "10.0.0.1:53"]).validate().is_err());
    }

    #[test]
    fn the_body_must_hold_exactly_the_written_value() {
        let body = br#"[{"LockIndex":0,"Key":"k","Flags":0,"Value":"dmlzLTE=","CreateIndex":5,"ModifyIndex":9}]"#;
        assert!(kv_body_holds(body, b"vis-1"));
        assert!(!kv_body_holds(body, b"vis-2"));
        assert!(!kv_body_holds(b"", b"vis-1"));
    }

    #[test]
    fn requests_are_well_formed() {
        let get = String::from_utf8(blocking_get("h", "bench/v", 42, 10)).unwrap();
        assert!(
            get.starts_with("GET /v1/kv/bench/v?index=42&wait=10s HTTP/1.1\r\n"),
            "{get}"
        );
        let reg = String::from_utf8(register_request("h", "vis7")).unwrap();
        let (head, body) = reg.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("PUT /v1/catalog/register HTTP/1.1\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["Service"]["Service"], "vis7");
        assert_eq!(json["Node"], "visibility-bench");
    }

    #[test]
    fn times_are_split_around_the_ack() {
        let mut t = PartTimes::default();
        let sent = Instant::now();
        let acked = sent + Duration::from_millis(4);
        t.record(sent, acked, sent + Duration::from_millis(5));
        t.record(sent, acked, sent + Duration::from_millis(3));
        let s = t.summary();
        assert_eq!(s.visible_before_ack, 1);
        assert_eq!(s.write_to_visible.count, 2);
        assert!((s.write_ack.p50_us - 4_000.0).abs() < 10.0);
        assert!(s.ack_to_visible.p50_us < 10.0, "visible before the ack counts as 0");
        assert!((s.ack_to_visible.max_us - 1_000.0).abs() < 10.0);
    }
}
