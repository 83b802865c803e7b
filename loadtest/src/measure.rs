//! The measured window: warm up, read the CPU counters, let the load run,
//! stop it, read them again.

use std::time::{Duration, Instant};

use crate::cpu::meter::{cpu_count, ticks_per_second, CpuMeter};
use crate::cpu::usage::{usage, CpuReading, CpuUsage};
use crate::phase::{Phase, RunControl};

/// How often the main thread looks for a generator that stopped the run.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What the measured window lasted and cost.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub wall_s: f64,
    pub cpu: CpuUsage,
    /// A generator stopped the run before its end.
    pub cut_short: bool,
}

/// Where a window reads its CPU counters: one process tree
/// ([`CpuMeter`]) or several metered as one.
pub trait CpuSource {
    /// One reading of every metered process, this one and the machine.
    fn read(&self) -> anyhow::Result<CpuReading>;
    /// Whether any server process is metered.
    fn meters_server(&self) -> bool;
}

impl CpuSource for CpuMeter {
    fn read(&self) -> anyhow::Result<CpuReading> {
        CpuMeter::read(self)
    }

    fn meters_server(&self) -> bool {
        CpuMeter::meters_server(self)
    }
}

/// Sleeps up to `duration`; returns false if the run was stopped meanwhile.
fn sleep_while_running(control: &RunControl, duration: Duration) -> bool {
    let end = Instant::now() + duration;
    loop {
        if control.phase() == Phase::Stop {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep(POLL_INTERVAL.min(end - now));
    }
}

/// Runs the phases on the calling thread while generators load the server.
/// Ends in [`Phase::Stop`] whatever happens.
pub fn run_window<M: CpuSource>(
    control: &RunControl,
    meter: &M,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Window> {
    let warmed = sleep_while_running(control, warmup);
    let before = match meter.read() {
        Ok(r) => r,
        Err(e) => {
            control.advance(Phase::Stop);
            return Err(e);
        }
    };
    control.advance(Phase::Measure);
    let start = Instant::now();
    let completed = warmed && sleep_while_running(control, duration);
    control.advance(Phase::Stop);
    let wall_s = start.elapsed().as_secs_f64().max(1e-6);
    let after = meter.read()?;
    Ok(Window {
        wall_s,
        cpu: usage(
            &before,
            &after,
            meter.meters_server(),
            wall_s,
            ticks_per_second(),
            cpu_count(),
        ),
        cut_short: !completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lasts_its_duration_and_ends_stopped() {
        let control = RunControl::new();
        let meter = CpuMeter::new(None).unwrap();
        let w = run_window(&control, &meter, Duration::ZERO, Duration::from_millis(100)).unwrap();
        assert!(w.wall_s >= 0.1 && w.wall_s < 2.0, "{}", w.wall_s);
        assert!(!w.cut_short);
        assert_eq!(control.phase(), Phase::Stop);
        assert_eq!(w.cpu.server_cpu_s, None);
    }

    #[test]
    fn a_stopped_run_ends_early() {
        let control = RunControl::new();
        control.advance(Phase::Stop);
        let meter = CpuMeter::new(None).unwrap();
        let t = Instant::now();
        let w = run_window(&control, &meter, Duration::from_secs(30), Duration::from_secs(30)).unwrap();
        assert!(w.cut_short);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
