//! Process helpers: liveness through `/proc`, signals through `libc::kill`,
//! and finding the data plane a control plane re-executed.
//!
//! Everything here acts on one PID at a time, and only on processes the
//! tests started (the control plane) or that it started (the data plane,
//! recognised by its `__dataplane` command line naming the test's own
//! loopback address).

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// How often the helpers below re-check a process while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Whether `pid` names a running process (zombies and dead processes are
/// not running).
pub fn pid_alive(pid: u32) -> bool {
    let stat = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(_) => return false,
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Sends `signal` to exactly `pid`. Returns whether the signal was delivered.
pub fn send_signal(pid: u32, signal: i32) -> bool {
    assert!(pid > 1, "refusing to signal pid {pid}");
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; a positive pid
    // addresses exactly one process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// `kill -9 <pid>`.
pub fn kill9(pid: u32) -> bool {
    send_signal(pid, libc::SIGKILL)
}

/// Waits until `pid` is no longer running. Returns whether it stopped in time.
pub fn wait_pid_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pid_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// The NUL-separated arguments of `pid`, or nothing if it is gone.
pub fn cmdline(pid: u32) -> Vec<String> {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether `pid` is a data plane (`proconsul __dataplane <launch json>`)
/// whose launch configuration listens on `ip`.
pub fn is_dataplane_of(pid: u32, ip: Ipv4Addr) -> bool {
    let args = cmdline(pid);
    let needle = format!("\"{ip}:");
    pid_alive(pid) && args.iter().any(|a| a == "__dataplane") && args.iter().any(|a| a.contains(&needle))
}

/// Every running data plane that listens on `ip` (the test's own address).
pub fn dataplanes_of(ip: Ipv4Addr) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| is_dataplane_of(*pid, ip))
        .collect();
    pids.sort_unstable();
    pids
}

/// Reads a pid file (`<run_dir>/dataplane.pid`): a decimal pid, optionally
/// followed by a newline.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Polls `probe` every `interval` until it yields a value or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, interval: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(interval);
    }
}
