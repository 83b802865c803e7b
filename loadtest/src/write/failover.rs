//! The `failover` sub-command: writes run against every server of a
//! cluster; the leader's whole process tree is killed with SIGKILL; the
//! time from the kill to the first write acknowledged after it (sent after
//! the kill, so committed by a new leader) is the unavailability a client
//! saw. Also reported: the time until a survivor names a new leader.
//!
//! Only the process trees named with `--server-pid` can be killed: the
//! script that started the servers passes their pids.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::cpu::meter::CpuMeter;
use crate::http::prepare_kv::value_for;
use crate::machine::MachineFacts;
use crate::write::client::Connection;
use crate::write::leader::{find_leader, LeaderView};
use crate::write::protocol::{is_acked, key_name, put_request, WriteProtocol};
use crate::write::targets::check_targets;

/// Most writer threads per server.
pub const FAILOVER_CLIENTS_PER_TARGET_MAX: usize = 64;
/// Longest wait for the cluster to recover after the kill, in seconds.
pub const FAILOVER_WAIT_S_MAX: u64 = 300;
/// Pause after a failed write (a refused connect returns at once).
const FAILURE_PAUSE: Duration = Duration::from_millis(5);
/// How often the main thread looks at the progress.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long finding the leader before the kill may take.
const LEADER_BEFORE_KILL_WAIT: Duration = Duration::from_secs(30);

/// `--server-pid` entry: which process tree serves which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPid {
    pub ip: IpAddr,
    pub pid: u32,
}

/// Parses `IP=PID`.
pub fn parse_server_pid(text: &str) -> Result<ServerPid, String> {
    let (ip, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected IP=PID"))?;
    let ip: IpAddr = ip.parse().map_err(|e| format!("{ip:?}: {e}"))?;
    let pid: u32 = pid.parse().map_err(|e| format!("{pid:?}: {e}"))?;
    if pid <= 1 {
        return Err(format!("{pid} is not a server's pid"));
    }
    Ok(ServerPid { ip, pid })
}

/// `failover` sub-command.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// API spoken: `consul` or `etcd`.
    #[arg(long, value_enum, default_value_t = WriteProtocol::Consul)]
    pub protocol: WriteProtocol,
    /// Every server's HTTP address (127.0.0.0/8).
    #[arg(long, value_delimiter = ',', required = true)]
    pub targets: Vec<SocketAddr>,
    /// `IP=PID`: the root pid of the server on that address; repeat per server.
    #[arg(long = "server-pid", value_parser = parse_server_pid, required = true)]
    pub server_pids: Vec<ServerPid>,
    /// Writer threads per server, each with one write outstanding.
    #[arg(long = "clients-per-target", default_value_t = 4)]
    pub clients_per_target: usize,
    /// A write unanswered after this long fails and its connection is reopened.
    #[arg(long = "timeout-ms", default_value_t = 1_000)]
    pub timeout_ms: u64,
    /// Seconds of writes before the kill.
    #[arg(long = "warmup-s", default_value_t = 2)]
    pub warmup_s: u64,
    /// Longest wait after the kill for a write to be acknowledged.
    #[arg(long = "wait-s", default_value_t = 30)]
    pub wait_s: u64,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

impl FailoverArgs {
    /// Checks every bound.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_targets(&self.targets)?;
        if self.targets.len() < 2 {
            bail!("a failover needs at least 2 servers, got {}", self.targets.len());
        }
        if !(1..=FAILOVER_CLIENTS_PER_TARGET_MAX).contains(&self.clients_per_target) {
            bail!("--clients-per-target must be in 1..={FAILOVER_CLIENTS_PER_TARGET_MAX}");
        }
        if !(1..=crate::limits::TIMEOUT_MS_MAX).contains(&self.timeout_ms) {
            bail!("--timeout-ms must be in 1..={}", crate::limits::TIMEOUT_MS_MAX);
        }
        if self.warmup_s > 60 {
            bail!("--warmup-s must be at most 60");
        }
        if !(1..=FAILOVER_WAIT_S_MAX).contains(&self.wait_s) {
            bail!("--wait-s must be in 1..={FAILOVER_WAIT_S_MAX}");
        }
        for t in &self.targets {
            if !self.server_pids.iter().any(|s| s.ip == t.ip()) {
                bail!("no --server-pid for {}: every server must be killable", t.ip());
            }
        }
        Ok(())
    }
}

/// What the writers saw, shared with the main thread.
#[derive(Debug, Default)]
struct Progress {
    /// Set just before the signals are sent.
    kill_at: Mutex<Option<Instant>>,
    /// The first write sent after the kill and acknowledged: when, by whom.
    first_ack_after_kill: Mutex<Option<(Instant, SocketAddr)>>,
    acks_before_kill: AtomicU64,
    acks_after_kill: AtomicU64,
    failed_writes: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    fn kill_at(&self) -> Option<Instant> {
        *self.kill_at.lock().expect("progress lock")
    }

    /// Records an acknowledged write sent at `sent`.
    fn acked(&self, sent: Instant, acked: Instant, by: SocketAddr) {
        match self.kill_at() {
            Some(kill) if sent >= kill => {
                self.acks_after_kill.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_ack_after_kill.lock().expect("progress lock");
                if first.is_none_or(|(t, _)| acked < t) {
                    *first = Some((acked, by));
                }
            }
            Some(_) => {}
            None => {
                self.acks_before_kill.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn writer(protocol: WriteProtocol, target: SocketAddr, client: u64, timeout: Duration, progress: &Progress) {
    let host = target.to_string();
    let mut conn = Connection::new(target, timeout);
    let value = value_for(2, client, 256);
    let mut n = 0u64;
    while !progress.stop.load(Ordering::Relaxed) {
        let key = key_name("bench/failover-", (client * 1_000 + n) % 10_000);
        n += 1;
        let sent = Instant::now();
        match conn.exchange(&put_request(protocol, &host, &key, &value)) {
            Ok(a) if is_acked(protocol, a.status, &a.body) => progress.acked(sent, Instant::now(), target),
            _ => {
                progress.failed_writes.fetch_add(1, Ordering::Relaxed);
                conn.close();
                std::thread::sleep(FAILURE_PAUSE);
            }
        }
    }
}

/// The result of one failover.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverSummary {
    pub mode: &'static str,
    pub label: Option<String>,
    pub protocol: WriteProtocol,
    pub old_leader: String,
    pub killed_pids: Vec<u32>,
    /// From the kill to the first acknowledged write sent after it.
    pub kill_to_first_ack_ms: Option<f64>,
    /// The server that answered it.
    pub first_ack_by: Option<String>,
    /// From the kill to a survivor naming a leader other than the old one.
    pub kill_to_new_leader_ms: Option<f64>,
    pub new_leader: Option<String>,
    pub acks_before_kill: u64,
    pub acks_after_kill: u64,
    pub failed_writes: u64,
    pub machine: MachineFacts,
}

/// Every pid of the tree rooted at `root` (root included).
fn process_tree(root: u32) -> anyhow::Result<Vec<u32>> {
    let reading = CpuMeter::new(Some(root))?.read()?;
    Ok(reading.server_ticks_by_pid.keys().copied().collect())
}

fn kill9(pids: &[u32]) {
    for &pid in pids {
        // SAFETY: kill has no memory-safety preconditions; the pids are the
        // tree of a server this run was told it may kill.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Runs the `failover` sub-command.
pub fn run(args: FailoverArgs) -> anyhow::Result<()> {
    args.validate()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let LeaderView { leader: old_leader, .. } = find_leader(
        args.protocol,
        &args.targets,
        None,
        Instant::now() + LEADER_BEFORE_KILL_WAIT,
    )
    .context("finding the leader before the kill")?;
    let root = args
        .server_pids
        .iter()
        .find(|s| s.ip == old_leader.ip())
        .map(|s| s.pid)
        .with_context(|| format!("no --server-pid for the leader {old_leader}"))?;
    let killed_pids = process_tree(root).with_context(|| format!("the leader's process tree at pid {root}"))?;
    let survivors: Vec<SocketAddr> = args.targets.iter().copied().filter(|t| *t != old_leader).collect();
    let progress = Progress::default();
    let summary = std::thread::scope(|scope| -> anyhow::Result<FailoverSummary> {
        let mut client = 0u64;
        for &target in &args.targets {
            for _ in 0..args.clients_per_target {
                let progress = &progress;
                let c = client;
                std::thread::Builder::new()
                    .name(format!("failover-{c}"))
                    .spawn_scoped(scope, move || writer(args.protocol, target, c, timeout, progress))
                    .context("spawning a writer")?;
                client += 1;
            }
        }
        let result = measure(&args, &progress, old_leader, &killed_pids, &survivors);
        progress.stop.store(true, Ordering::Relaxed);
        result
    })?;
    println!(
        "failover: old leader {}, killed pids {:?}; kill → first ack {} (by {}); kill → new leader named {} ({})",
        summary.old_leader,
        summary.killed_pids,
        summary
            .kill_to_first_ack_ms
            .map_or("none".into(), |v| format!("{v:.1} ms")),
        summary.first_ack_by.as_deref().unwrap_or("-"),
        summary
            .kill_to_new_leader_ms
            .map_or("none".into(), |v| format!("{v:.1} ms")),
        summary.new_leader.as_deref().unwrap_or("-"),
    );
    crate::write::output::emit_json(&summary, args.json_out.as_deref())
}

/// Warm-up, kill, then wait for the first acknowledgement and a new leader.
fn measure(
    args: &FailoverArgs,
    progress: &Progress,
    old_leader: SocketAddr,
    killed_pids: &[u32],
    survivors: &[SocketAddr],
) -> anyhow::Result<FailoverSummary> {
    std::thread::sleep(Duration::from_secs(args.warmup_s));
    if progress.acks_before_kill.load(Ordering::Relaxed) == 0 {
        bail!("no write was acknowledged in the {} s before the kill", args.warmup_s);
    }
    let kill_at = Instant::now();
    *progress.kill_at.lock().expect("progress lock") = Some(kill_at);
    kill9(killed_pids);
    let deadline = kill_at + Duration::from_secs(args.wait_s);
    let mut new_leader: Option<(Instant, SocketAddr)> = None;
    let mut first_ack = None;
    while Instant::now() < deadline && (first_ack.is_none() || new_leader.is_none()) {
        first_ack = *progress.first_ack_after_kill.lock().expect("progress lock");
        if new_leader.is_none() {
            let poll_deadline = Instant::now() + POLL_INTERVAL * 20;
            if let Ok(view) = find_leader(args.protocol, survivors, Some(old_leader), poll_deadline) {
                new_leader = Some((view.seen_at, view.leader));
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(FailoverSummary {
        mode: "failover",
        label: args.label.clone(),
        protocol: args.protocol,
        old_leader: old_leader.to_string(),
        killed_pids: killed_pids.to_vec(),
        kill_to_first_ack_ms: first_ack.map(|(t, _)| ms(t - kill_at)),
        first_ack_by: first_ack.map(|(_, by)| by.to_string()),
        kill_to_new_leader_ms: new_leader.map(|(t, _)| ms(t.saturating_duration_since(kill_at))),
        new_leader: new_leader.map(|(_, l)| l.to_string()),
        acks_before_kill: progress.acks_before_kill.load(Ordering::Relaxed),
        acks_after_kill: progress.acks_after_kill.load(Ordering::Relaxed),
        failed_writes: progress.failed_writes.load(Ordering::Relaxed),
        machine: MachineFacts::of_this_machine(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        f: FailoverArgs,
    }

    fn parse(args: &[&str]) -> Result<FailoverArgs, clap::Error> {
        let mut argv = vec!["failover"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| c.f)
    }

    const THREE: &str = "127.0.0.11:8500,127.0.0.12:8500,127.0.0.13:8500";

    #[test]
    fn server_pids_parse_as_ip_equals_pid() {
        assert_eq!(
            parse_server_pid("127.0.0.11=4242"),
            Ok(ServerPid {
                ip: "127.0.0.11".parse().unwrap(),
                pid: 4242
            })
        );
        assert!(parse_server_pid("127.0.0.11").unwrap_err().contains("IP=PID"));
        assert!(parse_server_pid("x=1").is_err());
        assert!(parse_server_pid("127.0.0.1=1").unwrap_err().contains("not a server"));
        assert!(parse_server_pid("127.0.0.1=-5").is_err());
    }

    #[test]
    fn every_server_needs_a_pid() {
        let a = parse(&[
            "--targets",
            THREE,
            "--server-pid",
            "127.0.0.11=100",
            "--server-pid",
            "127.0.0.12=101",
            "--server-pid",
            "127.0.0.13=102",
        ])
        .unwrap();
        assert_eq!((a.clients_per_target, a.timeout_ms, a.wait_s), (4, 1_000, 30));
        a.validate().unwrap();
        let b = parse(&["--targets", THREE, "--server-pid", "127.0.0.11=100"]).unwrap();
        assert!(b
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no --server-pid for 127.0.0.12"));
        let c = parse(&["--targets", "127.0.0.11:8500", "--server-pid", "127.0.0.11=100"]).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("at least 2"));
        let d = parse(&["--targets", THREE, "--server-pid", "127.0.0.11=100", "--wait-s", "0"]).unwrap();
        assert!(d.validate().is_err());
        assert!(parse(&["--targets", THREE]).is_err(), "--server-pid is required");
    }

    #[test]
    fn only_writes_sent_after_the_kill_count_for_recovery() {
        let p = Progress::default();
        let a: SocketAddr = "127.0.0.12:8500".parse().unwrap();
        let b: SocketAddr = "127.0.0.13:8500".parse().unwrap();
        let t0 = Instant::now();
        p.acked(t0, t0, a);
        *p.kill_at.lock().unwrap() = Some(t0 + Duration::from_millis(10));
        // Sent before the kill, answered after: the old leader may have committed it.
        p.acked(t0 + Duration::from_millis(5), t0 + Duration::from_millis(20), a);
        p.acked(t0 + Duration::from_millis(30), t0 + Duration::from_millis(90), a);
        p.acked(t0 + Duration::from_millis(40), t0 + Duration::from_millis(60), b);
        assert_eq!(p.acks_before_kill.load(Ordering::Relaxed), 1);
        assert_eq!(p.acks_after_kill.load(Ordering::Relaxed), 2);
        assert_eq!(
            *p.first_ack_after_kill.lock().unwrap(),
            Some((t0 + Duration::from_millis(60), b))
        );
    }

    #[test]
    fn the_process_tree_of_this_process_holds_itself() {
        let tree = process_tree(std::process::id()).unwrap();
        assert!(tree.contains(&std::process::id()));
    }
}
