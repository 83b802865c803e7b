//! The phases of a run, shared by the main thread and the generator
//! threads: warm up, measure, stop. The main thread moves them forward; a
//! generator thread that fails moves straight to stop.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Load runs, nothing is counted yet.
    Warmup,
    /// Load runs and is counted.
    Measure,
    /// Generators finish up and return their counts.
    Stop,
}

/// The phase, readable from every thread without locks.
#[derive(Debug)]
pub struct RunControl {
    phase: AtomicU8,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl::new()
    }
}

impl RunControl {
    /// A run in its warm-up.
    pub fn new() -> RunControl {
        RunControl {
            phase: AtomicU8::new(Phase::Warmup as u8),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Warmup,
            1 => Phase::Measure,
            _ => Phase::Stop,
        }
    }

    /// Moves to `next`. Phases only move forward: a stopped run stays stopped.
    pub fn advance(&self, next: Phase) {
        self.phase.fetch_max(next as u8, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        let c = RunControl::new();
        assert_eq!(c.phase(), Phase::Warmup);
        c.advance(Phase::Measure);
        assert_eq!(c.phase(), Phase::Measure);
        c.advance(Phase::Stop);
        c.advance(Phase::Measure);
        assert_eq!(c.phase(), Phase::Stop, "a failed generator's stop is not undone");
    }
}
