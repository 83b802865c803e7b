//! What a run cost, from a reading taken before and one taken after.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cpu::proc_stat::SystemTimes;

/// One reading of every CPU counter the meter follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuReading {
    /// `utime + stime` ticks of each process in the server's tree. Empty
    /// when no server pid was given.
    pub server_ticks_by_pid: BTreeMap<u32, u64>,
    /// User + system CPU of this generator (all threads), in microseconds.
    pub generator_cpu_us: u64,
    /// The whole machine.
    pub system: SystemTimes,
}

/// CPU spent during a run, in seconds and in cores (seconds per wall second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuUsage {
    /// CPU-seconds of the server's process tree; `None` without a server pid.
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    pub generator_cpu_s: f64,
    pub generator_cores: f64,
    /// Busy cores of the whole machine.
    pub system_busy_cores: f64,
    /// Cores in softirq. Informational: loopback packet processing runs
    /// as softirq in the context of the sending task and, on the kernels
    /// measured here, is also charged to that task's `stime`, so it is
    /// already inside the server and generator figures.
    pub softirq_cores: f64,
    /// Busy cores that are neither the server nor this generator: other
    /// tenants. Much above 0.1 means the run was disturbed.
    pub other_cores: f64,
}

/// Server CPU ticks spent between two readings. A pid present only after
/// started during the run: all its ticks count. A pid whose counter went
/// down was reused: its later ticks count. A pid gone by the end took its
/// ticks with it (they are not attributable any more).
pub fn server_ticks_spent(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, &t1)| match before.get(pid) {
            Some(&t0) if t0 <= t1 => t1 - t0,
            _ => t1,
        })
        .sum()
}

/// Computes the usage of a run of `wall_s` seconds on a machine with
/// `cpus` cores whose clock ticks `ticks_per_s` times a second.
pub fn usage(
    before: &CpuReading,
    after: &CpuReading,
    server_metered: bool,
    wall_s: f64,
    ticks_per_s: u64,
    cpus: usize,
) -> CpuUsage {
    assert!(wall_s > 0.0, "a run lasts some time");
    assert!(ticks_per_s > 0 && cpus > 0, "clock and core count are known");
    let ticks_per_s = ticks_per_s as f64;
    let server_cpu_s = server_metered
        .then(|| server_ticks_spent(&before.server_ticks_by_pid, &after.server_ticks_by_pid) as f64 / ticks_per_s);
    let generator_cpu_s = after.generator_cpu_us.saturating_sub(before.generator_cpu_us) as f64 / 1e6;
    let total = after.system.total_ticks.saturating_sub(before.system.total_ticks);
    let idle = after.system.idle_ticks.saturating_sub(before.system.idle_ticks);
    let softirq = after.system.softirq_ticks.saturating_sub(before.system.softirq_ticks);
    let share = |ticks: u64| {
        if total == 0 {
            0.0
        } else {
            ticks as f64 / total as f64 * cpus as f64
        }
    };
    let system_busy_cores = share(total.saturating_sub(idle));
    let softirq_cores = share(softirq);
    let server_cores = server_cpu_s.map(|s| s / wall_s);
    let generator_cores = generator_cpu_s / wall_s;
    CpuUsage {
        server_cpu_s,
        server_cores,
        generator_cpu_s,
        generator_cores,
        system_busy_cores,
        softirq_cores,
        other_cores: system_busy_cores - server_cores.unwrap_or(0.0) - generator_cores,
    }
}

/// Operations per server CPU-second (= per server core), when the server
/// was metered and spent measurable CPU.
pub fn per_server_core(operations: u64, usage: &CpuUsage) -> Option<f64> {
    match usage.server_cpu_s {
        Some(s) if s > 0.0 => Some(operations as f64 / s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(server: &[(u32, u64)], generator_cpu_us: u64, total: u64, idle: u64, softirq: u64) -> CpuReading {
        CpuReading {
            server_ticks_by_pid: server.iter().copied().collect(),
            generator_cpu_us,
            system: SystemTimes {
                total_ticks: total,
                idle_ticks: idle,
                softirq_ticks: softirq,
            },
        }
    }

    #[test]
    fn server_ticks_handle_new_reused_and_gone_pids() {
        let before: BTreeMap<u32, u64> = [(1, 100), (2, 50), (3, 70)].into_iter().collect();
        // 1 spent 30; 2 was reused (counter went down) and spent 5; 3 exited; 4 is new with 8.
        let after: BTreeMap<u32, u64> = [(1, 130), (2, 5), (4, 8)].into_iter().collect();
        assert_eq!(server_ticks_spent(&before, &after), 30 + 5 + 8);
    }

    #[test]
    fn usage_in_cores_over_ten_seconds() {
        // 2 cores, 100 ticks/s, 10 s: 2,000 ticks in total.
        let before = reading(&[(7, 1_000)], 2_000_000, 10_000, 4_000, 100);
        let after = reading(&[(7, 1_800)], 7_000_000, 12_000, 4_200, 300);
        let u = usage(&before, &after, true, 10.0, 100, 2);
        assert_eq!(u.server_cpu_s, Some(8.0));
        assert_eq!(u.server_cores, Some(0.8));
        assert_eq!(u.generator_cpu_s, 5.0);
        assert_eq!(u.generator_cores, 0.5);
        assert!((u.system_busy_cores - 1.8).abs() < 1e-9);
        assert!((u.softirq_cores - 0.2).abs() < 1e-9);
        assert!(
            (u.other_cores - 0.5).abs() < 1e-9,
            "busy 1.8 - server 0.8 - generator 0.5"
        );
        assert_eq!(per_server_core(400_000, &u), Some(50_000.0));
    }

    #[test]
    fn unmetered_server_gives_no_per_core_figure() {
        let r = reading(&[], 0, 100, 100, 0);
        let u = usage(&r, &r, false, 1.0, 100, 2);
        assert_eq!(u.server_cpu_s, None);
        assert_eq!(per_server_core(10, &u), None);
        assert_eq!(u.system_busy_cores, 0.0);
    }
}
