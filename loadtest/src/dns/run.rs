//! The `dns` sub-command: load the queries, run the generator thread,
//! meter the measured window, report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::DnsArgs;
use crate::cpu::meter::CpuMeter;
use crate::dns::driver::{run_generator, DnsPlan};
use crate::dns::query_file::parse_queries;
use crate::dns::reply::rcode_name;
use crate::dns::stats::DnsStats;
use crate::input_file::read_bounded;
use crate::measure::run_window;
use crate::phase::RunControl;
use crate::report::{DetailRows, Summary};

/// DNS-specific part of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DnsDetails {
    pub window: usize,
    pub sockets: usize,
    pub batch: usize,
    /// Fixed rate asked for, if any.
    pub rate_target_qps: Option<u64>,
    pub queries_in_file: usize,
    pub sent: u64,
    /// Queries sent per second of the measured window.
    pub sent_per_s: f64,
    pub answered: u64,
    pub lost: u64,
    /// `lost` as a share of `sent`.
    pub loss_ratio: f64,
    pub unmatched: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub send_errors: u64,
    pub schedule_skipped: u64,
    pub answered_after_stop: u64,
    /// Answers by RCODE name (only those seen).
    pub rcodes: BTreeMap<&'static str, u64>,
}

impl DnsDetails {
    fn new(args: &DnsArgs, queries: usize, stats: &DnsStats, answered_after_stop: u64, wall_s: f64) -> DnsDetails {
        let mut rcodes = BTreeMap::new();
        for (code, &n) in stats.rcodes.iter().enumerate() {
            if n > 0 {
                *rcodes.entry(rcode_name(code as u8)).or_default() += n;
            }
        }
        DnsDetails {
            window: args.window,
            sockets: args.sockets,
            batch: args.batch,
            rate_target_qps: args.rate,
            queries_in_file: queries,
            sent: stats.sent,
            sent_per_s: stats.sent as f64 / wall_s,
            answered: stats.answered,
            lost: stats.lost,
            loss_ratio: if stats.sent == 0 {
                0.0
            } else {
                stats.lost as f64 / stats.sent as f64
            },
            unmatched: stats.unmatched,
            malformed: stats.malformed,
            truncated: stats.truncated,
            send_errors: stats.send_errors,
            schedule_skipped: stats.schedule_skipped,
            answered_after_stop,
            rcodes,
        }
    }
}

impl DetailRows for DnsDetails {
    fn rows(&self) -> Vec<(String, String)> {
        let rcodes: Vec<String> = self.rcodes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let mut rows = vec![
            (
                "window / sockets / batch".into(),
                format!("{} / {} / {}", self.window, self.sockets, self.batch),
            ),
            ("sent / answered".into(), format!("{} / {}", self.sent, self.answered)),
            ("lost (ratio)".into(), format!("{} ({:.6})", self.lost, self.loss_ratio)),
            ("rcodes".into(), rcodes.join(", ")),
            (
                "unmatched / malformed / truncated".into(),
                format!("{} / {} / {}", self.unmatched, self.malformed, self.truncated),
            ),
            ("send errors".into(), self.send_errors.to_string()),
        ];
        if let Some(rate) = self.rate_target_qps {
            rows.push((
                "rate target / sent per s / skipped".into(),
                format!("{rate} / {:.0} / {}", self.sent_per_s, self.schedule_skipped),
            ));
        }
        rows
    }
}

/// Runs the `dns` sub-command.
pub fn run(args: DnsArgs) -> anyhow::Result<()> {
    args.validate()?;
    let text = read_bounded(&args.queries_file)?;
    let queries = parse_queries(&text).with_context(|| format!("in {}", args.queries_file.display()))?;
    let query_count = queries.len();
    let meter = CpuMeter::new(args.run.server_pid)?;
    let control = Arc::new(RunControl::new());
    let plan = DnsPlan {
        target: args.target,
        sockets: args.sockets,
        batch: args.batch,
        window: args.window,
        rate_per_s: args.rate,
        timeout_ns: args.timeout_ms * 1_000_000,
        queries,
    };
    let generator = {
        let control = control.clone();
        std::thread::Builder::new()
            .name("dns-load".into())
            .spawn(move || run_generator(&plan, &control))
            .context("spawning the generator thread")?
    };
    let window = run_window(
        &control,
        &meter,
        Duration::from_secs(args.run.warmup_s),
        Duration::from_secs(args.run.duration_s),
    );
    let outcome = match generator.join() {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => bail!("the load failed: {e:#}"),
        Err(_) => bail!("the generator thread panicked"),
    };
    let window = window?;
    let details = DnsDetails::new(
        &args,
        query_count,
        &outcome.stats,
        outcome.answered_after_stop,
        window.wall_s,
    );
    let summary = Summary::new(
        "dns",
        args.run.label.clone(),
        args.target.to_string(),
        &window,
        outcome.stats.answered,
        outcome.stats.latency.summary(),
        details,
    );
    summary.emit(args.run.json_out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn details_name_the_rcodes_seen_and_the_loss_ratio() {
        let Command::Dns(args) = Cli::try_parse_from(["t", "dns", "--queries-file", "q", "--rate", "100"])
            .unwrap()
            .command
        else {
            panic!("not dns")
        };
        let mut stats = DnsStats {
            sent: 1_000,
            lost: 2,
            ..DnsStats::default()
        };
        stats.record_answer(0, false, 1_000);
        stats.record_answer(3, false, 1_000);
        let d = DnsDetails::new(&args, 5, &stats, 0, 2.0);
        assert_eq!(d.rcodes.len(), 2);
        assert_eq!(d.rcodes["NOERROR"], 1);
        assert_eq!(d.rcodes["NXDOMAIN"], 1);
        assert_eq!(d.loss_ratio, 0.002);
        assert_eq!(d.sent_per_s, 500.0);
        assert!(d.rows().iter().any(|(k, _)| k.starts_with("rate target")));
    }
}
