//! The summary of a run: a human table and one JSON line (printed last,
//! so scripts take `tail -n 1`), optionally appended to a results file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::cpu::usage::{per_server_core, CpuUsage};
use crate::latency::LatencySummary;
use crate::machine::MachineFacts;
use crate::measure::Window;

/// Mode-specific rows of the human table.
pub trait DetailRows {
    /// `(name, value)` pairs, in display order.
    fn rows(&self) -> Vec<(String, String)>;
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<D: Serialize> {
    /// `http` or `dns`.
    pub mode: &'static str,
    pub label: Option<String>,
    pub target: String,
    /// Seconds measured.
    pub wall_s: f64,
    /// What counts as done: 2xx responses (HTTP), answers of any rcode (DNS).
    pub operations: u64,
    pub operations_per_s: f64,
    /// Operations per CPU-second of the server's process tree.
    pub operations_per_server_core: Option<f64>,
    /// A generator thread failed and stopped the run early.
    pub cut_short: bool,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub latency: LatencySummary,
    #[serde(flatten)]
    pub details: D,
    pub machine: MachineFacts,
}

impl<D: Serialize + DetailRows> Summary<D> {
    /// Assembles a summary from a measured window.
    pub fn new(
        mode: &'static str,
        label: Option<String>,
        target: String,
        window: &Window,
        operations: u64,
        latency: LatencySummary,
        details: D,
    ) -> Summary<D> {
        Summary {
            mode,
            label,
            target,
            wall_s: window.wall_s,
            operations,
            operations_per_s: operations as f64 / window.wall_s,
            operations_per_server_core: per_server_core(operations, &window.cpu),
            cut_short: window.cut_short,
            cpu: window.cpu,
            latency,
            details,
            machine: MachineFacts::of_this_machine(),
        }
    }

    /// The one-line JSON form.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a summary always serializes")
    }

    /// The human table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "n/a (no --server-pid)".to_string(), |v| format!("{v:.digits$}"))
        };
        let mut rows: Vec<(String, String)> = vec![
            ("mode".into(), self.mode.into()),
            ("label".into(), self.label.clone().unwrap_or_default()),
            ("target".into(), self.target.clone()),
            ("measured s".into(), format!("{:.2}", self.wall_s)),
            ("operations".into(), self.operations.to_string()),
            ("operations/s".into(), format!("{:.0}", self.operations_per_s)),
            ("server cores".into(), opt(self.cpu.server_cores, 3)),
            (
                "operations per server-core".into(),
                opt(self.operations_per_server_core, 0),
            ),
            ("generator cores".into(), format!("{:.3}", self.cpu.generator_cores)),
            ("softirq cores".into(), format!("{:.3}", self.cpu.softirq_cores)),
            ("other busy cores".into(), format!("{:.3}", self.cpu.other_cores)),
            (
                "latency p50 / p99 / p99.9 µs".into(),
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    self.latency.p50_us, self.latency.p99_us, self.latency.p999_us
                ),
            ),
            (
                "latency mean / max µs".into(),
                format!("{:.1} / {:.1}", self.latency.mean_us, self.latency.max_us),
            ),
        ];
        rows.extend(self.details.rows());
        rows.push((
            "machine".into(),
            format!(
                "{} cores, kernel {}, {}",
                self.machine.cpus, self.machine.kernel, self.machine.cpu_model
            ),
        ));
        if self.cut_short {
            rows.push(("WARNING".into(), "the run was cut short by a failing generator".into()));
        }
        if self.cpu.other_cores > 0.25 {
            rows.push((
                "WARNING".into(),
                "other processes were busy during the run; figures are disturbed".into(),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
        rows.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
    }

    /// Prints the table and the JSON line; appends the line to `json_out`.
    pub fn emit(&self, json_out: Option<&Path>) -> anyhow::Result<()> {
        let line = self.json_line();
        print!("{}", self.table());
        println!("{line}");
        match json_out {
            Some(path) => append_line(path, &line),
            None => Ok(()),
        }
    }
}

/// Appends `line` and a newline to the results file at `path` (created if
/// missing): one JSON line per measured run.
pub fn append_line(path: &Path, line: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Extra {
        lost: u64,
    }

    impl DetailRows for Extra {
        fn rows(&self) -> Vec<(String, String)> {
            vec![("lost".into(), self.lost.to_string())]
        }
    }

    fn window(server_cpu_s: Option<f64>) -> Window {
        Window {
            wall_s: 2.0,
            cpu: CpuUsage {
                server_cpu_s,
                server_cores: server_cpu_s.map(|s| s / 2.0),
                generator_cpu_s: 1.0,
                generator_cores: 0.5,
                system_busy_cores: 1.5,
                softirq_cores: 0.1,
                other_cores: 0.0,
            },
            cut_short: false,
        }
    }

    fn latency() -> LatencySummary {
        LatencySummary {
            count: 10,
            mean_us: 1.0,
            p50_us: 1.0,
            p90_us: 2.0,
            p99_us: 3.0,
            p999_us: 4.0,
            max_us: 5.0,
        }
    }

    #[test]
    fn json_line_is_flat_and_one_line() {
        let s = Summary::new(
            "dns",
            Some("x".into()),
            "127.0.0.1:1".into(),
            &window(Some(0.8)),
            200_000,
            latency(),
            Extra { lost: 3 },
        );
        let line = s.json_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["mode"], "dns");
        assert_eq!(v["operations"], 200_000);
        assert_eq!(v["operations_per_s"], 100_000.0);
        assert_eq!(v["operations_per_server_core"], 250_000.0);
        assert_eq!(v["server_cores"], 0.4);
        assert_eq!(v["lost"], 3);
        assert_eq!(v["latency"]["p99_us"], 3.0);
        assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    }

    #[test]
    fn table_says_when_the_server_was_not_metered() {
        let s = Summary::new(
            "http",
            None,
            "t".into(),
            &window(None),
            10,
            latency(),
            Extra { lost: 0 },
        );
        let t = s.table();
        assert!(t.contains("operations per server-core"));
        assert!(t.contains("n/a (no --server-pid)"));
        assert!(t.contains("lost"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&s.json_line()).unwrap()["operations_per_server_core"],
            serde_json::Value::Null
        );
    }
}
