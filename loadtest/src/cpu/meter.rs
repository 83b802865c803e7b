//! Reads the counters behind [`CpuReading`] from `/proc` and `getrusage`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use crate::cpu::proc_stat::{parse_process_stat, parse_system_stat, SystemTimes};
use crate::cpu::tree::descendants;
use crate::cpu::usage::CpuReading;

/// Reads the CPU of a server's process tree, of this process and of the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    server_pid: Option<u32>,
}

impl CpuMeter {
    /// A meter for the tree rooted at `server_pid` (if any). Fails when that
    /// process does not exist, so a typo is caught before the load starts.
    pub fn new(server_pid: Option<u32>) -> anyhow::Result<CpuMeter> {
        if let Some(pid) = server_pid {
            if read_process_ticks(pid).is_none() {
                bail!("--server-pid {pid}: no such process (or /proc/{pid}/stat unreadable)");
            }
        }
        Ok(CpuMeter { server_pid })
    }

    /// Whether a server is metered.
    pub fn meters_server(&self) -> bool {
        self.server_pid.is_some()
    }

    /// Takes one reading. The server tree is walked afresh each time, so a
    /// process it starts during the run is counted.
    pub fn read(&self) -> anyhow::Result<CpuReading> {
        let mut server_ticks_by_pid = BTreeMap::new();
        if let Some(root) = self.server_pid {
            for pid in descendants(root, &process_links()) {
                if let Some(ticks) = read_process_ticks(pid) {
                    server_ticks_by_pid.insert(pid, ticks);
                }
            }
        }
        Ok(CpuReading {
            server_ticks_by_pid,
            generator_cpu_us: generator_cpu_us(),
            system: system_times()?,
        })
    }
}

/// Clock ticks per second (`utime`/`stime` unit).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Cores online.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn read_process_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_process_stat(&text).map(|t| t.cpu_ticks())
}

/// `(pid, ppid)` of every process visible now. Processes that vanish while
/// we scan are skipped.
fn process_links() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid: u32 = name.to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let t = parse_process_stat(&text)?;
        Some((t.pid, t.ppid))
    })
    .collect()
}

fn generator_cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF covers every thread of this process.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn system_times() -> anyhow::Result<SystemTimes> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_system_stat(&text).context("/proc/stat has no parsable `cpu` line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_this_process_as_the_server() {
        let me = std::process::id();
        let meter = CpuMeter::new(Some(me)).unwrap();
        let reading = meter.read().unwrap();
        assert!(reading.server_ticks_by_pid.contains_key(&me));
        assert!(reading.system.total_ticks > 0);
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn missing_server_pid_is_an_error() {
        // Pid numbers stop at 2^22 on Linux.
        let err = CpuMeter::new(Some(u32::MAX - 1)).unwrap_err();
        assert!(err.to_string().contains("no such process"));
    }
}
