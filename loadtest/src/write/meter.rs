//! CPU of several server process trees metered as one: a cluster's servers
//! are separate roots (each a control plane with its data-plane child, or
//! one etcd member each), and a write costs CPU on all of them.

use crate::cpu::meter::CpuMeter;
use crate::cpu::usage::CpuReading;

/// Most trees metered together.
pub const METERED_ROOTS_MAX: usize = 16;

/// Meters the trees rooted at each of a set of pids.
#[derive(Debug, Clone)]
pub struct TreesMeter {
    /// Reads this generator and the machine.
    own: CpuMeter,
    servers: Vec<CpuMeter>,
}

impl TreesMeter {
    /// A meter for the trees at `roots`; fails when one does not exist or
    /// there are more than [`METERED_ROOTS_MAX`].
    pub fn new(roots: &[u32]) -> anyhow::Result<TreesMeter> {
        if roots.len() > METERED_ROOTS_MAX {
            anyhow::bail!("{} server pids given, at most {METERED_ROOTS_MAX}", roots.len());
        }
        Ok(TreesMeter {
            own: CpuMeter::new(None)?,
            servers: roots
                .iter()
                .map(|&pid| CpuMeter::new(Some(pid)))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// Whether any server is metered.
    pub fn meters_server(&self) -> bool {
        !self.servers.is_empty()
    }

    /// One reading: every tree's processes in one map (a pid belongs to one
    /// tree only, so the union loses nothing), this process and the machine.
    pub fn read(&self) -> anyhow::Result<CpuReading> {
        let mut reading = self.own.read()?;
        for meter in &self.servers {
            reading.server_ticks_by_pid.extend(meter.read()?.server_ticks_by_pid);
        }
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_as_two_roots_is_read_once() {
        let me = std::process::id();
        let meter = TreesMeter::new(&[me, me]).unwrap();
        assert!(meter.meters_server());
        let r = meter.read().unwrap();
        assert!(r.server_ticks_by_pid.contains_key(&me));
        assert!(!TreesMeter::new(&[]).unwrap().meters_server());
    }

    #[test]
    fn too_many_or_missing_roots_are_errors() {
        let many = vec![std::process::id(); METERED_ROOTS_MAX + 1];
        assert!(TreesMeter::new(&many).unwrap_err().to_string().contains("at most"));
        // Above the kernel's pid_max default, so it cannot exist.
        assert!(TreesMeter::new(&[u32::MAX - 1]).is_err());
    }
}
