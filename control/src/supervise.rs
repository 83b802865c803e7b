//! Starting, adopting and restarting the data plane.
//!
//! The data plane is this same executable run as
//! `proconsul __dataplane <DataplaneLaunch JSON>`, in a process group of its
//! own (a Ctrl-C in the terminal reaches the agent, which then stops it in
//! order). It writes `<run_dir>/dataplane.pid` itself.
//!
//! At start, a live `__dataplane` process named by that pid file is an
//! orphan of a previous control plane on the same data dir: it re-attaches
//! by itself. If its launch fingerprint matches ours it is adopted;
//! otherwise it is told to exit and a fresh one is spawned. Afterwards a
//! data plane that dies is replaced, within a restart budget.
//!
//! Pure parts: [`dataplane_launch`], [`RestartBudget`], [`parse_pid_file`],
//! [`is_dataplane_cmdline`]. The rest is process IO.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use proconsul_shared::agent_info::DataplaneLaunch;
use tokio::process::{Child, Command};

use crate::agent::shutdown::Shutdown;
use crate::config::Config;
use crate::rpc::hub::{AttachHub, AttachedDataplane};

/// The hidden verb that runs the data plane.
pub const DATAPLANE_VERB: &str = "__dataplane";
/// The pid file the data plane writes in the run dir.
pub const DATAPLANE_PID_FILE: &str = "dataplane.pid";
/// How long an orphan data plane gets to re-attach.
pub const ORPHAN_ATTACH_WAIT_MS: u64 = 2_000;
/// How long a data plane told to exit gets before SIGKILL.
pub const DATAPLANE_EXIT_WAIT_MS: u64 = 3_000;
/// How often a data plane we did not spawn (so cannot `wait` on) is checked.
pub const ADOPTED_POLL_MS: u64 = 100;
/// Delay before a restart while within the budget.
pub const RESTART_DELAY_MS: u64 = 200;
/// Most restarts within [`RESTART_WINDOW_MS`] before backing off.
pub const RESTARTS_PER_WINDOW_MAX: usize = 10;
/// The window restarts are counted in.
pub const RESTART_WINDOW_MS: u64 = 60_000;
/// Longest back-off between restarts once over budget.
pub const RESTART_BACKOFF_MS_MAX: u64 = 30_000;
/// Largest pid file we read.
const PID_FILE_BYTES_MAX: u64 = 64;

/// How the data plane is launched, from the agent configuration.
pub fn dataplane_launch(config: &Config, run_dir: &Path) -> DataplaneLaunch {
    let listeners = |port: i32| -> Vec<SocketAddr> {
        if port < 0 {
            return Vec::new();
        }
        config
            .client_addrs
            .iter()
            .map(|ip: &IpAddr| SocketAddr::new(*ip, port as u16))
            .collect()
    };
    DataplaneLaunch {
        run_dir: run_dir.display().to_string(),
        http_addrs: listeners(config.ports.http),
        dns_addrs: listeners(config.ports.dns),
        threads: config.dataplane_threads,
        log_level: config.log_level.as_str().to_string(),
        exit_with_control_plane: config.dev,
        http_max_conns_per_client: config.http_max_conns_per_client,
        wake_hold_ms_max: config.wake_hold_ms_max,
    }
}

/// Counts restarts in a sliding window and says how long to wait before the
/// next one: a short delay within budget, then an exponential back-off (up
/// to [`RESTART_BACKOFF_MS_MAX`]) while the data plane keeps dying. Pure.
#[derive(Debug)]
pub struct RestartBudget {
    recent: VecDeque<Instant>,
    window: Duration,
    max_in_window: usize,
    over_budget_streak: u32,
}

impl Default for RestartBudget {
    fn default() -> Self {
        RestartBudget::new(Duration::from_millis(RESTART_WINDOW_MS), RESTARTS_PER_WINDOW_MAX)
    }
}

impl RestartBudget {
    pub fn new(window: Duration, max_in_window: usize) -> RestartBudget {
        assert!(max_in_window > 0, "a restart budget must allow at least one restart");
        RestartBudget {
            recent: VecDeque::with_capacity(max_in_window + 1),
            window,
            max_in_window,
            over_budget_streak: 0,
        }
    }

    /// Records a restart about to happen at `now` and returns the delay to
    /// wait first, and whether the budget is exhausted.
    pub fn next_restart(&mut self, now: Instant) -> (Duration, bool) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        let over = self.recent.len() >= self.max_in_window;
        let delay = if over {
            self.over_budget_streak = self.over_budget_streak.saturating_add(1);
            let exp = self.over_budget_streak.min(16);
            Duration::from_millis((RESTART_DELAY_MS << exp).min(RESTART_BACKOFF_MS_MAX))
        } else {
            self.over_budget_streak = 0;
            Duration::from_millis(RESTART_DELAY_MS)
        };
        self.recent.push_back(now + delay);
        if self.recent.len() > self.max_in_window {
            self.recent.pop_front();
        }
        (delay, over)
    }
}

/// The pid in a pid file's text.
pub fn parse_pid_file(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|pid| *pid > 1)
}

/// Whether a `/proc/<pid>/cmdline` (NUL-separated) is a data plane's.
pub fn is_dataplane_cmdline(cmdline: &[u8]) -> bool {
    cmdline.split(|b| *b == 0).any(|arg| arg == DATAPLANE_VERB.as_bytes())
}

/// Whether `pid` is a live data-plane process (not a zombie, not a reused
/// pid running something else).
pub fn is_live_dataplane(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => is_dataplane_cmdline(&cmdline),
        Err(_) => false,
    }
}

/// The pid of a live data plane named by the run dir's pid file.
pub fn orphan_dataplane(run_dir: &Path) -> Option<u32> {
    use std::io::Read;
    let file = std::fs::File::open(run_dir.join(DATAPLANE_PID_FILE)).ok()?;
    let mut text = String::new();
    file.take(PID_FILE_BYTES_MAX).read_to_string(&mut text).ok()?;
    parse_pid_file(&text).filter(|pid| *pid != std::process::id() && is_live_dataplane(*pid))
}

fn signal(pid: u32, sig: Signal) {
    if let Err(e) = kill(Pid::from_raw(pid as i32), sig) {
        tracing::debug!(target: "agent.supervise", "{sig} to data plane pid {pid}: {e}");
    }
}

/// The data plane the supervisor is responsible for.
enum Running {
    /// Our child: waited on, so never a zombie.
    Child(Child, u32),
    /// An orphan we adopted: polled through /proc.
    Adopted(u32),
    /// None (a spawn failed); the next restart is due.
    Nothing,
}

/// Supervises the data plane until the agent shuts down, then stops it.
pub struct Supervisor {
    exe: PathBuf,
    launch: DataplaneLaunch,
    run_dir: PathBuf,
    hub: Arc<AttachHub>,
    shutdown: Shutdown,
}

impl Supervisor {
    pub fn new(exe: PathBuf, launch: DataplaneLaunch, hub: Arc<AttachHub>, shutdown: Shutdown) -> Supervisor {
        let run_dir = PathBuf::from(&launch.run_dir);
        Supervisor {
            exe,
            launch,
            run_dir,
            hub,
            shutdown,
        }
    }

    fn spawn(&self) -> Running {
        let json = match serde_json::to_string(&self.launch) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(target: "agent.supervise", "cannot encode the data plane launch: {e}");
                return Running::Nothing;
            }
        };
        let spawned = Command::new(&self.exe)
            .arg(DATAPLANE_VERB)
            .arg(json)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(false)
            .spawn();
        match spawned {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                tracing::info!(target: "agent.supervise", "started data plane: pid={pid}");
                Running::Child(child, pid)
            }
            Err(e) => {
                tracing::error!(target: "agent.supervise", "cannot start the data plane ({}): {e}", self.exe.display());
                Running::Nothing
            }
        }
    }

    /// Waits up to `timeout` for the attach status to satisfy `pred`.
    async fn wait_attached(
        &self,
        timeout: Duration,
        pred: impl Fn(&Option<AttachedDataplane>) -> bool,
    ) -> Option<AttachedDataplane> {
        let mut rx = self.hub.subscribe();
        let status = match tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await {
            Ok(Ok(status)) => status.clone(),
            _ => None,
        };
        status
    }

    /// Waits for a pid that is not our child to go away, bounded.
    async fn wait_pid_gone(pid: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !is_live_dataplane(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(ADOPTED_POLL_MS)).await;
        }
        !is_live_dataplane(pid)
    }

    /// Stops an orphan we will not adopt: `Shutdown` if it is attached,
    /// else SIGTERM; SIGKILL when it does not go in time.
    async fn retire_orphan(&self, pid: u32, attached: bool) {
        if !(attached && self.hub.request_exit() == Some(pid)) {
            signal(pid, Signal::SIGTERM);
        }
        if !Self::wait_pid_gone(pid, Duration::from_millis(DATAPLANE_EXIT_WAIT_MS)).await {
            tracing::warn!(target: "agent.supervise", "orphan data plane pid {pid} did not exit; killing it");
            signal(pid, Signal::SIGKILL);
            Self::wait_pid_gone(pid, Duration::from_millis(DATAPLANE_EXIT_WAIT_MS)).await;
        }
    }

    /// Adopts a matching orphan, or replaces it, or spawns a first data plane.
    async fn adopt_or_spawn(&self) -> Running {
        let Some(pid) = orphan_dataplane(&self.run_dir) else {
            return self.spawn();
        };
        tracing::info!(target: "agent.supervise", "found a running data plane: pid={pid}; waiting for it to attach");
        let attached = self
            .wait_attached(Duration::from_millis(ORPHAN_ATTACH_WAIT_MS), |s| {
                s.as_ref().is_some_and(|d| d.pid == pid)
            })
            .await;
        match attached {
            Some(d) if d.launch_fingerprint == self.launch.fingerprint() => {
                tracing::info!(target: "agent.supervise", "adopted data plane: pid={pid}");
                return Running::Adopted(pid);
            }
            Some(_) => {
                tracing::info!(target: "agent.supervise", "data plane pid {pid} runs another listen configuration; replacing it");
                self.retire_orphan(pid, true).await;
            }
            None => {
                tracing::warn!(target: "agent.supervise", "data plane pid {pid} did not attach within {ORPHAN_ATTACH_WAIT_MS} ms; replacing it");
                self.retire_orphan(pid, false).await;
            }
        }
        self.spawn()
    }

    /// Returns when the running data plane has gone.
    async fn wait_gone(running: &mut Running) {
        match running {
            Running::Child(child, pid) => match child.wait().await {
                Ok(status) => tracing::warn!(target: "agent.supervise", "data plane pid {pid} exited: {status}"),
                Err(e) => tracing::warn!(target: "agent.supervise", "waiting for data plane pid {pid}: {e}"),
            },
            Running::Adopted(pid) => {
                while is_live_dataplane(*pid) {
                    tokio::time::sleep(Duration::from_millis(ADOPTED_POLL_MS)).await;
                }
                tracing::warn!(target: "agent.supervise", "adopted data plane pid {pid} is gone");
            }
            Running::Nothing => {}
        }
    }

    /// Supervises until the agent shuts down, then stops the data plane
    /// (bounded; SIGKILL as the last resort) and reaps it.
    pub async fn run(self) {
        let mut budget = RestartBudget::default();
        let mut running = tokio::select! {
            _ = self.shutdown.wait() => Running::Nothing,
            r = self.adopt_or_spawn() => r,
        };
        while !self.shutdown.is_triggered() {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                _ = Self::wait_gone(&mut running) => {}
            }
            running = Running::Nothing;
            let (delay, over) = budget.next_restart(Instant::now());
            if over {
                tracing::error!(
                    target: "agent.supervise",
                    "data plane restarted more than {RESTARTS_PER_WINDOW_MAX} times in {} s; next attempt in {} ms",
                    RESTART_WINDOW_MS / 1000,
                    delay.as_millis()
                );
            }
            tokio::select! {
                _ = self.shutdown.wait() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            running = self.spawn();
        }
        self.stop(running).await;
    }

    async fn stop(&self, running: Running) {
        let exit_wait = Duration::from_millis(DATAPLANE_EXIT_WAIT_MS);
        match running {
            Running::Nothing => {}
            Running::Child(mut child, pid) => {
                if self.hub.request_exit() != Some(pid) {
                    signal(pid, Signal::SIGTERM);
                }
                match tokio::time::timeout(exit_wait, child.wait()).await {
                    Ok(_) => tracing::info!(target: "agent.supervise", "data plane pid {pid} stopped"),
                    Err(_) => {
                        tracing::warn!(target: "agent.supervise", "data plane pid {pid} did not stop in {} ms; killing it", exit_wait.as_millis());
                        signal(pid, Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                }
            }
            Running::Adopted(pid) => {
                if self.hub.request_exit() != Some(pid) {
                    signal(pid, Signal::SIGTERM);
                }
                if !Self::wait_pid_gone(pid, exit_wait).await {
                    tracing::warn!(target: "agent.supervise", "data plane pid {pid} did not stop; killing it");
                    signal(pid, Signal::SIGKILL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, HostFacts, PartialConfig};

    fn config(f: impl FnOnce(&mut PartialConfig)) -> Config {
        let mut p = PartialConfig {
            dev: Some(true),
            ..Default::default()
        };
        f(&mut p);
        resolve(p, &HostFacts::default(), Vec::new()).unwrap()
    }

    #[test]
    fn launch_from_config() {
        let c = config(|p| {
            p.client_addr = Some("127.0.0.1 127.0.0.2".into());
            p.ports.http = Some(18500);
            p.ports.dns = Some(18600);
            p.node_name = Some("n".into());
        });
        let l = dataplane_launch(&c, Path::new("/run/x"));
        assert_eq!(l.run_dir, "/run/x");
        let http: Vec<String> = l.http_addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(http, ["127.0.0.1:18500", "127.0.0.2:18500"]);
        assert_eq!(l.dns_addrs.len(), 2);
        assert_eq!(l.dns_addrs[0].port(), 18600);
        assert_eq!(l.threads, 0);
        assert_eq!(l.log_level, "debug");
        assert!(l.exit_with_control_plane, "dev data planes exit with the agent");
        assert_eq!(l.http_max_conns_per_client, 200);
    }

    #[test]
    fn disabled_listeners_have_no_addresses() {
        let c = config(|p| {
            p.ports.http = Some(-1);
            p.node_name = Some("n".into());
        });
        let l = dataplane_launch(&c, Path::new("/r"));
        assert!(l.http_addrs.is_empty());
        assert_eq!(l.dns_addrs.len(), 1);
    }

    #[test]
    fn restart_budget_backs_off_and_recovers() {
        let window = Duration::from_secs(60);
        let mut b = RestartBudget::new(window, 3);
        let t0 = Instant::now();
        for i in 0..3 {
            let (d, over) = b.next_restart(t0 + Duration::from_secs(i));
            assert_eq!(d, Duration::from_millis(RESTART_DELAY_MS));
            assert!(!over);
        }
        let (d1, over) = b.next_restart(t0 + Duration::from_secs(4));
        assert!(over);
        assert_eq!(d1, Duration::from_millis(RESTART_DELAY_MS * 2));
        let (d2, _) = b.next_restart(t0 + Duration::from_secs(5));
        assert!(d2 > d1, "the back-off grows");
        let mut last = d2;
        for i in 0..30 {
            let (d, _) = b.next_restart(t0 + Duration::from_secs(6 + i));
            assert!(d >= last || d == Duration::from_millis(RESTART_BACKOFF_MS_MAX));
            assert!(d <= Duration::from_millis(RESTART_BACKOFF_MS_MAX));
            last = d;
        }
        let (d, over) = b.next_restart(t0 + Duration::from_secs(600));
        assert!(!over, "a quiet window restores the budget");
        assert_eq!(d, Duration::from_millis(RESTART_DELAY_MS));
    }

    #[test]
    fn pid_files_and_cmdlines() {
        assert_eq!(parse_pid_file("1234\n"), Some(1234));
        assert_eq!(parse_pid_file(" 99 "), Some(99));
        assert_eq!(parse_pid_file("1"), None, "init is never ours");
        assert_eq!(parse_pid_file("x"), None);
        assert_eq!(parse_pid_file(""), None);
        assert!(is_dataplane_cmdline(
            b"/usr/bin/proconsul\0__dataplane\0{\"run_dir\":1}\0"
        ));
        assert!(!is_dataplane_cmdline(b"/usr/bin/proconsul\0agent\0-dev\0"));
        assert!(!is_dataplane_cmdline(b"/bin/sh\0-c\0echo __dataplane_x\0"));
        assert!(!is_dataplane_cmdline(b""));
    }

    #[test]
    fn orphan_detection_reads_the_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(orphan_dataplane(dir.path()), None, "no pid file");
        std::fs::write(dir.path().join(DATAPLANE_PID_FILE), std::process::id().to_string()).unwrap();
        assert_eq!(orphan_dataplane(dir.path()), None, "our own pid is not an orphan");
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(dir.path().join(DATAPLANE_PID_FILE), sleeper.id().to_string()).unwrap();
        assert_eq!(
            orphan_dataplane(dir.path()),
            None,
            "a live process that is not a data plane"
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[tokio::test]
    async fn supervisor_restarts_a_dying_child_and_stops_it_on_shutdown() {
        // `sh -c 'exit 0' __dataplane <json>` stands in for a data plane that
        // dies at once: the supervisor must keep restarting it, reap every
        // one, and return promptly once the agent shuts down.
        let dir = tempfile::tempdir().unwrap();
        let c = config(|p| p.node_name = Some("n".into()));
        let launch = dataplane_launch(&c, dir.path());
        let script = dir.path().join("fake-dataplane.sh");
        let log = dir.path().join("starts.log");
        std::fs::write(&script, format!("#!/bin/sh\necho start >> {}\nexit 0\n", log.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let shutdown = Shutdown::new();
        let sup = Supervisor::new(script.clone(), launch, AttachHub::new(), shutdown.clone());
        let task = tokio::spawn(sup.run());
        let deadline = Instant::now() + Duration::from_secs(10);
        let starts = || std::fs::read_to_string(&log).map(|s| s.lines().count()).unwrap_or(0);
        while starts() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(starts() >= 3, "restarted after each exit");
        shutdown.trigger(crate::agent::shutdown::ShutdownReason::Leave);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_child_that_ignores_shutdown_is_killed_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(|p| p.node_name = Some("n".into()));
        let launch = dataplane_launch(&c, dir.path());
        let script = dir.path().join("stubborn.sh");
        let pid_file = dir.path().join("child.pid");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntrap '' TERM\necho $$ > {}\nwhile :; do sleep 0.05; done\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let shutdown = Shutdown::new();
        let sup = Supervisor::new(script, launch, AttachHub::new(), shutdown.clone());
        let task = tokio::spawn(sup.run());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        let started = Instant::now();
        shutdown.trigger(crate::agent::shutdown::ShutdownReason::Leave);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(DATAPLANE_EXIT_WAIT_MS - 100));
        assert!(kill(Pid::from_raw(pid), None).is_err(), "the child is gone and reaped");
    }
}
